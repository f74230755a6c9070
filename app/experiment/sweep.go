package experiment

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"
)

// Defaults of the sweep (SweepConfig), chosen so that the default grid
// (16 cells and the uniform baseline, 5 seeds: 85 runs) fits well under an
// hour on 2 cores; see docs/tuning.md for the measurement behind them.
const (
	// DefaultSweepUpdates is the number of PPO updates per run.
	DefaultSweepUpdates = 2000
	// DefaultSweepEvalEpisodes is the number of held-out journeys each
	// final policy is evaluated on.
	DefaultSweepEvalEpisodes = 10_000
)

// DefaultSweepWeights, DefaultSweepAlphas and DefaultSweepBetas are the
// default grid: crisis weights 1 (uniform), 2, 5 (the design's), 10 and
// 14.6 (a true 5× probability ratio at α = 0.6); α 0.6 (the design's) and
// 1; β0 0.4 annealed to 1, and 1 from the start.
var (
	DefaultSweepWeights = []float64{1, 2, 5, 10, 14.6}
	DefaultSweepAlphas  = []float64{0.6, 1}
	DefaultSweepBetas   = []float64{0.4, 1}
)

// SweepConfig configures `aelp experiment sweep`: a grid of crisis weight
// × α × β schedule, each cell trained over Base.Seeds seeds on the same
// streams as the uniform-sampling baseline and evaluated on the same
// held-out users, each run the A/B experiment's run (the learn role's
// training core, learner/train, fed by the simulator through the
// aggregator's tagging; see Execute).
//
// A weight equal to Base.Replay.RegularWeight (1) gives every item the
// same priority, so P(i) = 1/N and every IS weight is 1 whatever α and β:
// it is uniform sampling, so those cells are the baseline's runs (run
// once per seed, not once per α and β), unless the crisis floor binds
// (SweepResult.FloorBinds says).
type SweepConfig struct {
	// Base is each run's configuration: simulator, agent, tagging, buffer
	// capacity and floor, rate limiter, Updates, Seeds, FirstSeed,
	// EvalEpisodes, Workers (runs in parallel) and Progress. Its
	// Replay.CrisisWeight, Alpha and Beta0 are set per cell, and its
	// Replay.AnnealSteps, when 0, is Updates/2 (β reaches 1 halfway, as
	// in the A/B's 2,000 of 4,000). Default DefaultSweepBase().
	Base Config
	// Weights are the crisis weights. Default DefaultSweepWeights.
	Weights []float64
	// Alphas are the prioritisation exponents α. Default DefaultSweepAlphas.
	Alphas []float64
	// Betas are the β schedules, by their β0: annealed linearly to 1 over
	// Base.Replay.AnnealSteps updates (β0 = 1: fixed at 1). Default
	// DefaultSweepBetas.
	Betas []float64
}

// DefaultSweepBase returns the sweep's per-run defaults: the A/B's
// (DefaultConfig) with DefaultSweepUpdates updates, β annealed over half
// of them, DefaultSweepEvalEpisodes held-out journeys, and the learning
// curve reduced to its ends (one point, on 500 journeys), which the sweep
// does not report.
func DefaultSweepBase() Config {
	c := DefaultConfig()
	c.Updates = DefaultSweepUpdates
	c.Replay.AnnealSteps = 0 // Updates/2
	c.EvalEpisodes = DefaultSweepEvalEpisodes
	c.CurvePoints = 1
	c.CurveEpisodes = 500
	return c
}

// DefaultSweepConfig returns the default grid on DefaultSweepBase.
func DefaultSweepConfig() SweepConfig {
	return SweepConfig{Base: DefaultSweepBase(), Weights: slices.Clone(DefaultSweepWeights),
		Alphas: slices.Clone(DefaultSweepAlphas), Betas: slices.Clone(DefaultSweepBetas)}
}

func (c *SweepConfig) setDefaults() {
	if c.Base.Updates == 0 {
		c.Base.Updates = DefaultSweepUpdates
	}
	if c.Base.Replay.AnnealSteps == 0 {
		c.Base.Replay.AnnealSteps = max(1, int64(c.Base.Updates)/2)
	}
	c.Base.setDefaults()
	if c.Weights == nil {
		c.Weights = slices.Clone(DefaultSweepWeights)
	}
	if c.Alphas == nil {
		c.Alphas = slices.Clone(DefaultSweepAlphas)
	}
	if c.Betas == nil {
		c.Betas = slices.Clone(DefaultSweepBetas)
	}
}

// WithDefaults returns c with the documented defaults filled in.
func (c SweepConfig) WithDefaults() SweepConfig { c.setDefaults(); return c }

// Validate reports the first invalid field (after defaults).
func (c SweepConfig) Validate() error {
	c.setDefaults()
	if err := c.Base.Validate(); err != nil {
		return err
	}
	check := func(name string, xs []float64, ok func(float64) bool, want string) error {
		if len(xs) == 0 {
			return fmt.Errorf("%s: empty", name)
		}
		for i, x := range xs {
			if !ok(x) || math.IsInf(x, 0) {
				return fmt.Errorf("%s %v: must be %s", name, x, want)
			}
			if slices.Contains(xs[:i], x) {
				return fmt.Errorf("%s %v: given twice", name, x)
			}
		}
		return nil
	}
	if err := check("crisis weight", c.Weights, func(x float64) bool { return x > 0 }, "finite and positive"); err != nil {
		return err
	}
	if err := check("alpha", c.Alphas, func(x float64) bool { return x >= 0 }, "finite and non-negative"); err != nil {
		return err
	}
	if err := check("beta0", c.Betas, func(x float64) bool { return x >= 0 && x <= 1 }, "in [0, 1]"); err != nil {
		return err
	}
	if !slices.ContainsFunc(c.Weights, func(w float64) bool { return w != c.Base.Replay.RegularWeight }) {
		return fmt.Errorf("crisis weights %v: all equal the regular weight, nothing to compare with uniform sampling", c.Weights)
	}
	for _, cell := range c.cells() {
		if err := cell.cfg.trainConfig(0, cell.Uniform).Validate(); err != nil {
			return fmt.Errorf("cell w %g α %g β0 %g: %w", cell.Weight, cell.Alpha, cell.Beta0, err)
		}
	}
	return nil
}

// SweepCell is one cell of the grid and its runs.
type SweepCell struct {
	// Weight, Alpha and Beta0 are the cell's crisis weight, α and β0.
	Weight, Alpha, Beta0 float64
	// Uniform marks a cell whose weight is the regular weight: uniform
	// sampling, whose runs are the baseline's.
	Uniform bool
	// Runs are the cell's runs, one per seed, in seed order.
	Runs []Run

	cfg Config
}

// cells returns the grid in table order (α, then β0, then weight), each
// with its run configuration; the runs are not made.
func (c SweepConfig) cells() []SweepCell {
	var out []SweepCell
	for _, a := range c.Alphas {
		for _, b := range c.Betas {
			for _, w := range c.Weights {
				cfg := c.Base.fixedArm()
				cfg.Replay.CrisisWeight, cfg.Replay.Alpha, cfg.Replay.Beta0 = w, a, b
				out = append(out, SweepCell{Weight: w, Alpha: a, Beta0: b, Uniform: w == c.Base.Replay.RegularWeight, cfg: cfg})
			}
		}
	}
	return out
}

// SweepResult is the outcome of a sweep.
type SweepResult struct {
	// Config is the configuration run, defaults filled in.
	Config SweepConfig
	// Baseline are the uniform-sampling runs, one per seed.
	Baseline []Run
	// Cells are the grid's cells in table order (α, β0, weight).
	Cells []SweepCell
	// Runs is the number of runs made; Elapsed the sweep's wall time.
	Runs    int
	Elapsed time.Duration
}

// FloorBinds reports whether the crisis floor (MinCrisisRatio) would
// bind at weight 1: the baseline's mean crisis share of the buffer, as
// the batches saw it, below the floor. Then a weight-1 cell is not
// uniform sampling, and its runs (the baseline's) stand for it only
// approximately.
func (r SweepResult) FloorBinds() bool {
	return meanOf(r.Baseline, func(x Run) float64 { return x.BatchCrisisShare }) < r.Config.Base.Replay.MinCrisisRatio
}

// ExecuteSweep runs the sweep: the uniform baseline and every cell whose
// weight is not the regular weight, for every seed, Base.Workers runs at a
// time; each run is deterministic given its seed and cell, whatever the
// scheduling. Progress gets a line per finished run. Cancelling ctx stops
// the runs at the next update and returns ctx's error.
func ExecuteSweep(ctx context.Context, cfg SweepConfig) (SweepResult, error) {
	if err := prepare(&cfg, "sweep"); err != nil {
		return SweepResult{}, err
	}
	start := time.Now()
	b := cfg.Base
	res := SweepResult{Config: cfg, Baseline: make([]Run, b.Seeds), Cells: cfg.cells()}
	jobs := []armJob{{name: ArmUniform, cfg: b.fixedArm(), runs: res.Baseline, uniform: true}}
	for k := range res.Cells {
		c := &res.Cells[k]
		if c.Uniform {
			c.Runs = res.Baseline
			continue
		}
		c.Runs = make([]Run, b.Seeds)
		jobs = append(jobs, armJob{name: fmt.Sprintf("w %g α %g β0 %g", c.Weight, c.Alpha, c.Beta0), cfg: c.cfg, runs: c.Runs})
	}
	res.Runs = len(jobs) * b.Seeds
	prog := newProgress(b.Progress, res.Runs, start)
	if err := runArms(ctx, b.Workers, b.FirstSeed, b.Seeds, jobs, prog, 20); err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil && errors.Is(err, ctxErr) {
			return res, ctxErr
		}
		return res, err
	}
	res.Elapsed = time.Since(start)
	return res, nil
}
