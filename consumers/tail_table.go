package consumers

import (
	"encoding/base64"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aelp/aelp/schemas"
	"github.com/segmentio/kafka-go"
)

// The terminal form of tail: a table of TrainingMetrics, one summary line
// per record of another schema.

// TableWriter prints entries as rows for a terminal: a header line (again
// every HeaderEvery TrainingMetrics rows) and one aligned row per
// TrainingMetrics record; other records get one "p<partition>@<offset>"
// summary line; headers, when present, follow in brackets.
type TableWriter struct {
	// W receives the rows.
	W io.Writer
	// HeaderEvery repeats the header after that many metrics rows.
	// Default 25.
	HeaderEvery int

	rows int
	buf  []byte
}

// metricsHeader and metricsRow share their column widths.
const metricsHeader = "TIME          EXPERIMENT       UPDATE   BUFFER  CRISIS%  BATCH%  EXPECT%   W_MEAN  W_MIN  W_MAX  BETA   POL_LOSS   VAL_LOSS  ENTROPY  APPROX_KL  CLIP  EXPL_VAR\n"

// Write prints one entry.
func (t *TableWriter) Write(e *TailEntry) error {
	t.buf = t.buf[:0]
	if e.Err == nil && e.Schema == schemas.NameTrainingMetrics {
		var m schemas.TrainingMetrics
		if err := m.FromNative(e.Native); err == nil {
			every := t.HeaderEvery
			if every <= 0 {
				every = 25
			}
			if t.rows%every == 0 {
				t.buf = append(t.buf, metricsHeader...)
			}
			t.rows++
			t.buf = AppendMetricsRow(t.buf, &m)
			t.buf = appendHeaders(t.buf, e.Message.Headers)
			t.buf = append(t.buf, '\n')
			if m.Tagging != nil {
				t.buf = AppendTagging(t.buf, m.Tagging)
			}
			if m.OPE != nil {
				t.buf = AppendOPE(t.buf, m.OPE)
			}
			_, err := t.W.Write(t.buf)
			return err
		}
	}
	t.buf = AppendSummary(t.buf, e)
	t.buf = append(t.buf, '\n')
	_, err := t.W.Write(t.buf)
	return err
}

// AppendMetricsRow appends one aligned table row for m (no newline), in
// the columns of the TableWriter's header: time of day (UTC), experiment
// (truncated to 16 characters), update, buffer size, crisis share of the
// buffer, measured and expected crisis share of the batch (percent), IS
// weight mean, min and max, β, policy and value loss, entropy, approx KL,
// clip fraction and explained variance.
func AppendMetricsRow(dst []byte, m *schemas.TrainingMetrics) []byte {
	exp := m.ExperimentID
	if len(exp) > 16 {
		exp = exp[:15] + "…"
	}
	return fmt.Appendf(dst, "%-12s  %-16s %6d %8d  %6.1f%%  %5.1f%%  %6.1f%%  %7.3f %6.3f %6.3f  %4.2f %10.4f %10.4f  %7.4f  %9.5f  %4.2f  %8.3f",
		m.Timestamp.UTC().Format("15:04:05.000"), exp, m.Update, m.BufferSize,
		100*m.CrisisFractionInBuffer, 100*m.CrisisParentRatioInBatch, 100*m.ExpectedCrisisRatio,
		m.ImportanceWeightsMean, m.ImportanceWeightsMin, m.ImportanceWeightsMax, m.Beta,
		m.PolicyLoss, m.ValueLoss, m.Entropy, m.ApproxKL, m.ClipFrac, m.ExplainedVariance)
}

// AppendTagging appends the per-source tag accuracy a metrics record
// carries as one line indented under its row: per tag source its records
// with ground truth, precision, recall, F1, Brier score and ECE ("—" where
// undefined), ending in a newline.
func AppendTagging(dst []byte, ts []schemas.TagSourceAccuracy) []byte {
	dst = append(dst, "    tags:"...)
	for i, a := range ts {
		if i > 0 {
			dst = append(dst, " |"...)
		}
		dst = fmt.Appendf(dst, " %s n=%d", a.Source, a.Records)
		for _, f := range []struct {
			name, format string
			p            *float64
		}{{"P", "%.3f", a.Precision}, {"R", "%.3f", a.Recall}, {"F1", "%.3f", a.F1}, {"Brier", "%.4f", a.Brier}, {"ECE", "%.4f", a.ECE}} {
			dst = append(dst, ' ')
			dst = append(dst, f.name...)
			dst = append(dst, '=')
			if f.p == nil {
				dst = append(dst, "—"...)
			} else {
				dst = fmt.Appendf(dst, f.format, *f.p)
			}
		}
	}
	return append(dst, '\n')
}

// AppendOPE appends the off-policy evaluation of a snapshot a metrics
// record carries, indented under its row: a line with the snapshot, the
// estimator, the evaluation set, the serving policy and the gate's
// decision, then one line per segment (estimate, bounds, ESS and the
// serving policy's bound when it was compared), each ending in a newline.
func AppendOPE(dst []byte, e *schemas.OffPolicyEvaluation) []byte {
	serving := "logging policy"
	if e.ServingVersion >= 0 {
		serving = fmt.Sprintf("v%d", e.ServingVersion)
	}
	verdict := "PROMOTED"
	if !e.Promoted {
		verdict = "HELD BACK"
	}
	dst = fmt.Appendf(dst, "    ope: snapshot v%d, %s %.0f%% on %d held-out journeys, serving %s: %s (%s) %s\n",
		e.PolicyVersion, e.Estimator, 100*e.Confidence, e.Journeys, serving, verdict, e.Reason, e.Detail)
	if len(e.Segments) == 0 {
		return dst
	}
	dst = append(dst, "    SEGMENT              JOURNEYS    ESTIMATE         LCB         UCB       ESS  SERVING_LCB\n"...)
	for _, s := range e.Segments {
		name := s.Segment
		if len(name) > 20 {
			name = name[:19] + "…"
		}
		dst = fmt.Appendf(dst, "    %-20s %8d %11.4g %11.4g %11.4g %9.0f", name, s.Journeys, s.Estimate, s.LCB, s.UCB, s.ESS)
		if s.ServingLCB != nil {
			dst = fmt.Appendf(dst, "  %11.4g", *s.ServingLCB)
		} else {
			dst = append(dst, "            —"...)
		}
		dst = append(dst, '\n')
	}
	return dst
}

// AppendSummary appends a one-line summary of any entry (no newline):
// "p<partition>@<offset> <time> key=<key> <schema> <fields>", the fields
// depending on the schema; an undecodable value shows the error and the
// value as base64 (cut at 64 characters); headers follow in brackets.
func AppendSummary(dst []byte, e *TailEntry) []byte {
	m := &e.Message
	dst = fmt.Appendf(dst, "p%d@%-6d %s key=%s ", m.Partition, m.Offset, m.Time.UTC().Format("15:04:05.000"), printable(m.Key))
	switch {
	case e.Err != nil:
		b64 := base64.StdEncoding.EncodeToString(m.Value)
		if len(b64) > 64 {
			b64 = b64[:64] + "…"
		}
		dst = fmt.Appendf(dst, "UNDECODABLE (%v) value=%s (%d bytes)", e.Err, b64, len(m.Value))
	default:
		dst = fmt.Appendf(dst, "%s v%d", shortName(e.Schema), e.Version)
		dst = appendFields(dst, e.Schema, e.Native)
	}
	return appendHeaders(dst, m.Headers)
}

func shortName(s string) string {
	if i := strings.LastIndexByte(s, '.'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// appendFields appends the fields worth a glance of a known schema.
func appendFields(dst []byte, schema string, n map[string]any) []byte {
	field := func(m map[string]any, k string) any {
		v := m[k]
		if f, ok := v.(float64); ok {
			return strconv.FormatFloat(f, 'g', 4, 64)
		}
		if t, ok := v.(time.Time); ok {
			return t.UTC().Format(time.RFC3339)
		}
		return v
	}
	exp := n
	if x, ok := n["experience"].(map[string]any); ok {
		exp = x
	}
	switch schema {
	case schemas.NameExperience, schemas.NameTaggedExperience:
		dst = fmt.Appendf(dst, " id=%v user=%v step=%v action=%v reward=%v value=%v done=%v",
			field(exp, "id"), field(exp, "user_id"), field(exp, "step"), field(exp, "action"),
			field(exp, "reward"), field(exp, "value"), field(exp, "done"))
		if schema == schemas.NameTaggedExperience {
			dst = fmt.Appendf(dst, " event_type=%v tag_source=%v tag_score=%v",
				field(n, "event_type"), field(n, "tag_source"), field(n, "tag_score"))
		}
	case schemas.NamePolicySnapshot:
		dst = fmt.Appendf(dst, " experiment=%v version=%v", field(n, "experiment_id"), field(n, "version"))
	default:
		keys := make([]string, 0, len(n))
		for k := range n {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			dst = fmt.Appendf(dst, " %s=%v", k, field(n, k))
		}
	}
	return dst
}

// appendHeaders appends " [k=v k=v]" (nothing without headers).
func appendHeaders(dst []byte, hs []kafka.Header) []byte {
	if len(hs) == 0 {
		return dst
	}
	dst = append(dst, " ["...)
	for i, h := range hs {
		if i > 0 {
			dst = append(dst, ' ')
		}
		dst = append(dst, h.Key...)
		dst = append(dst, '=')
		dst = append(dst, printable(h.Value)...)
	}
	return append(dst, ']')
}

// printable returns b as a quoted string when it holds spaces or is not
// UTF-8, as is otherwise; "-" for nil.
func printable(b []byte) string {
	if b == nil {
		return "-"
	}
	s := string(b)
	if !utf8.ValidString(s) || strings.ContainsAny(s, " \t\n\"") || s == "" {
		return strconv.Quote(s)
	}
	return s
}
