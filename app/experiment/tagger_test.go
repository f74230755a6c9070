package experiment

import (
	"bytes"
	"context"
	"math"
	"strings"
	"testing"
)

// TestShortTaggerFactor: the three arms train on the same stream (same
// inserts and episodes), the two learned arms tag alike and unlike the
// rules, soft priority draws fewer tagged-crisis items than hard, and the
// table has every row with finite figures.
func TestShortTaggerFactor(t *testing.T) {
	cfg := tinyConfig()
	cfg.Seeds = 2
	cfg.Classifier.TaggerWarmUp = 200
	res, err := ExecuteTagger(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i := range cfg.Seeds {
		rules, hard, soft := res.Runs[0][i], res.Runs[1][i], res.Runs[2][i]
		for _, r := range []Run{hard, soft} {
			if r.Updates != cfg.Updates || r.Inserted != rules.Inserted || r.Episodes != rules.Episodes || r.EvalSeed != rules.EvalSeed {
				t.Errorf("seed %d: arm ran %d updates / %d inserted / %d episodes / eval seed %d, rules %d / %d / %d / %d: want the same stream",
					rules.Seed, r.Updates, r.Inserted, r.Episodes, r.EvalSeed, rules.Updates, rules.Inserted, rules.Episodes, rules.EvalSeed)
			}
		}
		if hard.TagPrecision != soft.TagPrecision || hard.TagRecall != soft.TagRecall {
			t.Errorf("seed %d: the learned arms tag differently (%v/%v vs %v/%v)", rules.Seed, hard.TagPrecision, hard.TagRecall, soft.TagPrecision, soft.TagRecall)
		}
		if hard.TagPrecision == rules.TagPrecision && hard.TagRecall == rules.TagRecall {
			t.Errorf("seed %d: learned tags measure as the rules' (%v/%v): the tagger did not change", rules.Seed, hard.TagPrecision, hard.TagRecall)
		}
		if !(soft.BatchCrisisShare < hard.BatchCrisisShare) {
			t.Errorf("seed %d: soft priority's tagged crisis share of batches %v not below hard's %v", rules.Seed, soft.BatchCrisisShare, hard.BatchCrisisShare)
		}
	}
	rows := res.Rows()
	want := []string{TaggerArms[0].Name, TaggerArms[1].Name, TaggerArms[2].Name,
		"learned − rules (hard, paired)", "soft − hard (learned, paired)", "logging (uniform random)", "oracle (exact)"}
	if len(rows) != len(want) {
		t.Fatalf("got %d rows, want %d", len(rows), len(want))
	}
	for i, row := range rows {
		if row.Name != want[i] {
			t.Errorf("row %d is %q, want %q", i, row.Name, want[i])
		}
		for c, s := range row.Cells {
			if math.IsNaN(s.Mean) || math.IsInf(s.Mean, 0) || (!row.Exact && !s.Finite()) {
				t.Errorf("row %q column %q: %+v, want finite", row.Name, ColumnNames[c], s)
			}
		}
	}
	var out bytes.Buffer
	res.Print(&out)
	for _, w := range []string{"--factor tagger", "Reading (learned − rules", "Reading (soft − hard", "tag precision / recall"} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("printed table lacks %q:\n%s", w, out.String())
		}
	}
	cfg.TagWithTruth = true
	if _, err := ExecuteTagger(context.Background(), cfg); err == nil {
		t.Error("ExecuteTagger with TagWithTruth: no error")
	}
}
