package experiment

import (
	"bytes"
	"context"
	"math"
	"strings"
	"testing"

	"github.com/aelp/aelp/producers/sim"
	"gonum.org/v1/gonum/stat/distuv"
)

func tinySweep() SweepConfig {
	c := SweepConfig{Base: tinyConfig(), Weights: []float64{1, 3}, Alphas: []float64{0.6}, Betas: []float64{0.4, 1}}
	c.Base.Seeds = 2
	c.Base.CurvePoints = 1
	c.Base.Replay.AnnealSteps = 0 // Updates/2
	return c
}

// TestShortSweep runs a 1 × 2 × 2 grid over 2 seeds: the weight-1 cells
// are the baseline's runs (made once), every cell trains on the
// baseline's streams, and the report and heat maps come out.
func TestShortSweep(t *testing.T) {
	cfg := tinySweep()
	res, err := ExecuteSweep(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Runs != 3*2 {
		t.Errorf("%d runs, want 6 (the baseline and 2 cells, 2 seeds)", res.Runs)
	}
	if got := res.Config.Base.Replay.AnnealSteps; got != int64(cfg.Base.Updates/2) {
		t.Errorf("anneal steps %d, want Updates/2 = %d", got, cfg.Base.Updates/2)
	}
	if len(res.Cells) != 4 {
		t.Fatalf("%d cells, want 4", len(res.Cells))
	}
	for _, c := range res.Cells {
		if c.Uniform != (c.Weight == 1) || len(c.Runs) != 2 {
			t.Fatalf("cell %+v: uniform %t with %d runs", c, c.Uniform, len(c.Runs))
		}
		for i, r := range c.Runs {
			b := res.Baseline[i]
			if c.Uniform && r.Seed != b.Seed {
				t.Errorf("uniform cell seed %d: not the baseline's run", b.Seed)
			}
			if r.Inserted != b.Inserted || r.Episodes != b.Episodes || r.EvalSeed != b.EvalSeed || r.Updates != cfg.Base.Updates {
				t.Errorf("cell w %g β0 %g seed %d: %d inserted / %d episodes, baseline %d / %d: want the same stream",
					c.Weight, c.Beta0, r.Seed, r.Inserted, r.Episodes, b.Inserted, b.Episodes)
			}
			if !c.Uniform && !(r.BatchCrisisShare > b.BatchCrisisShare) {
				t.Errorf("cell w %g seed %d: batch crisis share %v not above uniform's %v", c.Weight, r.Seed, r.BatchCrisisShare, b.BatchCrisisShare)
			}
			if !c.Uniform && r.CrisisWeightMean != c.Weight {
				t.Errorf("cell w %g: batches drawn with weight %v", c.Weight, r.CrisisWeightMean)
			}
		}
	}
	var out bytes.Buffer
	res.Print(&out)
	for _, s := range []string{"| 0.6 | fixed 1 | 3 |", "| 0.6 | 0.4 → 1 over 6 | 1 (uniform) |", "Best cell by Δ value per user", "Bonferroni"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("report lacks %q:\n%s", s, out.String())
		}
	}
	var png bytes.Buffer
	if err := res.WritePNG(&png); err != nil || !bytes.HasPrefix(png.Bytes(), []byte("\x89PNG")) {
		t.Errorf("WritePNG: %v (%d bytes)", err, png.Len())
	}
}

func TestSweepValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*SweepConfig)
		want   string
	}{
		{"default", func(*SweepConfig) {}, ""},
		{"weight twice", func(c *SweepConfig) { c.Weights = []float64{1, 5, 5} }, "given twice"},
		{"only uniform", func(c *SweepConfig) { c.Weights = []float64{1} }, "nothing to compare"},
		{"negative weight", func(c *SweepConfig) { c.Weights = []float64{-2, 5} }, "crisis weight -2"},
		{"empty alphas", func(c *SweepConfig) { c.Alphas = []float64{} }, "alpha: empty"},
		{"beta above 1", func(c *SweepConfig) { c.Betas = []float64{1.5} }, "beta0 1.5"},
		{"one seed", func(c *SweepConfig) { c.Base.Seeds = 1 }, "seeds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultSweepConfig()
			tt.mutate(&c)
			err := c.Validate()
			if (tt.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("Validate() = %v, want %q", err, tt.want)
			}
		})
	}
	d := DefaultSweepConfig().WithDefaults()
	if n := len(d.cells()); n != 20 || d.Base.Updates != DefaultSweepUpdates || d.Base.Replay.AnnealSteps != DefaultSweepUpdates/2 {
		t.Errorf("default sweep: %d cells, %d updates, anneal %d; want 20, %d, %d", n, d.Base.Updates, d.Base.Replay.AnnealSteps,
			DefaultSweepUpdates, DefaultSweepUpdates/2)
	}
}

// TestSweepBest builds a result with known figures: cell A beats uniform
// by exactly 1 on every seed, cell B by 0.5 ± noise; Best picks A, counts
// its wins, and corrects its interval for the choice among the cells.
func TestSweepBest(t *testing.T) {
	runs := func(vs ...float64) []Run {
		out := make([]Run, len(vs))
		for i, v := range vs {
			out[i] = Run{Eval: sim.EvalReport{ValuePerUser: v}}
		}
		return out
	}
	base := runs(1, 2, 3, 4)
	res := SweepResult{Baseline: base, Cells: []SweepCell{
		{Weight: 1, Uniform: true, Runs: base},
		{Weight: 2, Runs: runs(2, 3, 4, 5)},
		{Weight: 5, Runs: runs(1.2, 2.9, 3.3, 4.6)},
		{Weight: 9, Runs: runs(0, 1, 2, 3)},
	}}
	b := res.Best(ColValuePerUser)
	if b.Cell.Cell.Weight != 2 || b.RunnerUp.Cell.Weight != 5 || b.Wins != 4 || b.K != 3 {
		t.Fatalf("best %g (runner-up %g), %d wins of %d cells; want 2, 5, 4 wins, 3 cells", b.Cell.Cell.Weight, b.RunnerUp.Cell.Weight, b.Wins, b.K)
	}
	if b.Corrected.Mean != 1 || b.Corrected.HalfWidth != 0 {
		t.Errorf("corrected %+v, want 1 ± 0 (no spread)", b.Corrected)
	}
	// best − runner-up = (0.8, 0.1, 0.7, 0.4): mean 0.5.
	if math.Abs(b.OverRunnerUp.Mean-0.5) > 1e-12 {
		t.Errorf("best − runner-up %v, want 0.5", b.OverRunnerUp.Mean)
	}
	d := []float64{0.8, 0.1, 0.7, 0.4}
	got := corrected(d, 3)
	sd := math.Sqrt((0.09 + 0.16 + 0.04 + 0.01) / 3)
	want := distuv.StudentsT{Mu: 0, Sigma: 1, Nu: 3}.Quantile(1-0.025/3) * sd / 2
	if math.Abs(got.HalfWidth-want) > 1e-12 || !(got.HalfWidth > PairedDiff(d, make([]float64, 4)).HalfWidth) {
		t.Errorf("corrected half-width %v, want %v (wider than the uncorrected %v)", got.HalfWidth, want, PairedDiff(d, make([]float64, 4)).HalfWidth)
	}
}
