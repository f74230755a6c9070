package experiment

import (
	"bytes"
	"context"
	"image/png"
	"math"
	"strings"
	"testing"

	"github.com/aelp/aelp/learner/ope"
)

// TestOPEExperiment runs the OPE experiment small (2 seeds, snapshots at
// 0 and 10 updates, 3,000 logged journeys, 20,000 held-out ones) and
// checks its invariants: the logging policy's own estimate is its logged
// mean exactly (every weight 1, ESS = journeys), every figure is finite,
// the snapshots (which have a value head) get DR-V, each cell's truth is
// the held-out mean of its segment, and DR's interval holds the truth in
// at least two thirds of the cells (the command's figures are in
// docs/off-policy-evaluation.md; the estimators' coverage at the nominal
// rate is tested in learner/ope on an MDP with exact values).
func TestOPEExperiment(t *testing.T) {
	cfg := OPEConfig{Seeds: 2, Journeys: 3000, TruthEpisodes: 20000, Snapshots: []int{0, 10}, OPE: ope.Config{Resamples: 200}}
	res, err := ExecuteOPE(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	// logging, 2 snapshots, uniform; 3 segments each.
	if want := 2 * 4 * 3; len(res.Cells) != want {
		t.Fatalf("%d cells, want %d", len(res.Cells), want)
	}
	covered := 0
	for i := range res.Cells {
		c := &res.Cells[i]
		logging := strings.HasPrefix(c.Target, "logging")
		if c.Segment == SegmentAll && c.Journeys != cfg.Journeys {
			t.Errorf("%s seed %d: %d journeys, want %d", c.Target, c.Seed, c.Journeys, cfg.Journeys)
		}
		if !(c.TruthEpisodes > 0 && finite(c.Truth, c.TruthCI, c.ESS, c.Logged)) {
			t.Errorf("%s %s seed %d: truth %v ± %v of %d episodes, ESS %v, logged %v", c.Target, c.Segment, c.Seed, c.Truth, c.TruthCI, c.TruthEpisodes, c.ESS, c.Logged)
		}
		for _, e := range c.Estimates {
			if !finite(e.Value, e.Lo, e.Hi) || e.Lo > e.Value || e.Value > e.Hi {
				t.Errorf("%s %s seed %d %s: %+v", c.Target, c.Segment, c.Seed, e.Estimator, e.Interval)
			}
		}
		if _, ok := estimateOf(c, ope.DRValue); ok != strings.HasPrefix(c.Target, "snapshot") {
			t.Errorf("%s: DR-V present %v, want it exactly for the snapshots", c.Target, ok)
		}
		if logging {
			p, _ := estimateOf(c, ope.PDIS)
			if c.ESS != float64(c.Journeys) || p.Value != c.Logged {
				t.Errorf("logging %s seed %d: ESS %v of %d, PDIS %v, logged %v: want every weight 1", c.Segment, c.Seed, c.ESS, c.Journeys, p.Value, c.Logged)
			}
		}
		if e, ok := estimateOf(c, ope.DR); ok && c.Covered(e) {
			covered++
		}
	}
	if 3*covered < 2*len(res.Cells) {
		t.Errorf("DR covers the truth in %d of %d cells, want at least two thirds", covered, len(res.Cells))
	}
	var out bytes.Buffer
	if err := res.Print(&out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"truth ± 95%", "95% CI coverage", "snapshot 10", "uniform", "DR-V"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "NaN") || strings.Contains(out.String(), "Inf") {
		t.Errorf("table holds a non-finite figure:\n%s", out.String())
	}
	out.Reset()
	if err := res.WritePNG(&out); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(&out)
	if err != nil {
		t.Fatalf("estimate-vs-truth plot: %v", err)
	}
	if b := img.Bounds(); b.Dx() < 1000 || b.Dy() < 300 {
		t.Errorf("estimate-vs-truth plot is %v", b)
	}
}

func finite(xs ...float64) bool {
	for _, x := range xs {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return false
		}
	}
	return true
}

func TestOPEConfigValidate(t *testing.T) {
	for _, c := range []OPEConfig{
		{Snapshots: []int{}},
		{Snapshots: []int{10, 5}},
		{Snapshots: []int{5, 5}},
		{Snapshots: []int{-1}},
		{Epsilon: 1.5},
		{Epsilon: -0.1},
		{Journeys: 1},
		{Seeds: -1},
		{Workers: -2},
		{OPE: ope.Config{Clip: -1}},
	} {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v: no error", c)
		}
	}
	if err := DefaultOPEConfig().Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
}
