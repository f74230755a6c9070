package pipeline

import (
	"fmt"
	"io"

	"github.com/aelp/aelp/consumers/classify"
)

// writeTagging writes the summary's tagging lines: the tagger, precision,
// recall, F1 and the calibration (Brier score, ECE) of tag_score overall
// and per tag source.
func writeTagging(tw io.Writer, cfg classify.Config, acc classify.Report) {
	if cfg.Tagger == classify.TaggerLearned {
		fmt.Fprintf(tw, "  crisis tagger\tlearned (objective %s, rules for the first %d labelled records)\n", cfg.Objective, cfg.TaggerWarmUp)
	} else {
		fmt.Fprintf(tw, "  crisis tagger\trules\n")
	}
	ov := acc.Overall
	fmt.Fprintf(tw, "  crisis tag precision / recall / F1\t%.3f / %.3f / %.3f\n", ov.Precision, ov.Recall, ov.F1)
	fmt.Fprintf(tw, "  tag_score Brier / ECE\t%.4f / %.4f\n", ov.Brier, ov.ECE)
	for src, m := range acc.BySource {
		if m.Total() == 0 {
			continue
		}
		tagged := m.TP + m.FP
		switch {
		case tagged == 0:
			fmt.Fprintf(tw, "    %s decided %d records\tno crisis tag, %d crisis parents missed; Brier %.4f, ECE %.4f\n",
				classify.Source(src), m.Total(), m.FN, m.Brier, m.ECE)
		default:
			fmt.Fprintf(tw, "    %s decided %d records\t%d crisis tags, precision %.3f, recall %.3f, F1 %.3f; Brier %.4f, ECE %.4f\n",
				classify.Source(src), m.Total(), tagged, m.Precision, m.Recall, m.F1, m.Brier, m.ECE)
		}
	}
}
