package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/aelp/aelp/app/experiment"
	"github.com/aelp/aelp/learner"
)

// floatsValue is a comma-separated list of numbers.
type floatsValue struct{ p *[]float64 }

func (v floatsValue) String() string {
	if v.p == nil {
		return ""
	}
	parts := make([]string, len(*v.p))
	for i, x := range *v.p {
		parts[i] = strconv.FormatFloat(x, 'g', -1, 64)
	}
	return strings.Join(parts, ",")
}

func (v floatsValue) Set(s string) error {
	var out []float64
	for _, p := range splitList(s) {
		x, err := strconv.ParseFloat(p, 64)
		if err != nil {
			return fmt.Errorf("%q is not a comma-separated list of numbers", s)
		}
		out = append(out, x)
	}
	*v.p = out
	return nil
}
func (v floatsValue) target() any { return v.p }

// sweepOptions are aelp experiment sweep's options besides the sweep's
// configuration.
type sweepOptions struct {
	// PNG is where the heat maps are drawn ("": no plot).
	PNG string
}

func defaultSweepOptions() sweepOptions { return sweepOptions{PNG: filepath.Join("out", "sweep.png")} }

// sweepSetup is `aelp experiment sweep`.
func sweepSetup() (*flagSet, action) {
	fs := newFlagSet("experiment sweep")
	cfg := newConfig(fs, experiment.DefaultSweepConfig)
	opt := newConfig(fs, defaultSweepOptions)
	b := &cfg.Base
	r := &b.Replay
	simFlags(fs, &b.Sim)
	fs.Var(floatsValue{&cfg.Weights}, "weights", "crisis weights of the grid, a comma-separated `list` (1: uniform sampling, the baseline)")
	fs.Var(floatsValue{&cfg.Alphas}, "alphas", "prioritisation exponents α of the grid, a comma-separated `list`")
	fs.Var(floatsValue{&cfg.Betas}, "betas", "β schedules of the grid by their β0, a comma-separated `list` (annealed to 1 over --beta-anneal-updates; 1: fixed at 1)")
	fs.Int64Var(&r.AnnealSteps, "beta-anneal-updates", r.AnnealSteps, "updates over which β rises to 1 (0: half of --updates)")
	fs.Float64Var(&r.Temperature, "temperature", r.Temperature, "temperature T in the exponent α/T")
	fs.Float64Var(&r.MinCrisisRatio, "min-crisis-parent-ratio", r.MinCrisisRatio, "floor on the crisis stratum's sampling mass")
	fs.IntVar(&r.Capacity, "replay-buffer-capacity", r.Capacity, "replay buffer capacity (oldest evicted)")
	fs.IntVar(&b.MinBuffer, "min-buffer", b.MinBuffer, "items in the buffer before the first update")
	fs.IntVar(&b.BatchSize, "batch-size", b.BatchSize, "samples drawn per update")
	fs.Float64Var(&b.SamplesPerInsert, "samples-per-insert", b.SamplesPerInsert, "samples drawn per experience inserted")
	fs.IntVar(&b.Updates, "updates", b.Updates, "PPO updates per run")
	fs.IntVar(&b.Seeds, "seeds", b.Seeds, "training seeds per cell (at least 2)")
	fs.Uint64Var(&b.FirstSeed, "first-seed", b.FirstSeed, "first training seed")
	fs.IntVar(&b.EvalEpisodes, "eval-episodes", b.EvalEpisodes, "held-out journeys per run's evaluation")
	fs.IntVar(&b.Workers, "parallel", b.Workers, "runs in parallel")
	fs.BoolVar(&b.TagWithTruth, "tag-with-truth", b.TagWithTruth, "tag with the simulator's ground truth instead of the aggregator's classifier")
	taggerFlags(fs, &b.Classifier)
	fs.StringVar(&opt.PNG, "png", opt.PNG, "write the heat maps here (empty: no plot)")
	return fs, func(ctx context.Context) error {
		if err := checkSim(b.Sim); err != nil {
			return err
		}
		// The learn role's PPO settings for the simulator's shape, each
		// agent on one goroutine: the runs themselves are the parallelism.
		b.PPO = learner.DefaultPPO(b.Sim.StateDim, b.Sim.NumActions())
		b.PPO.Workers = 1
		b.Progress = os.Stderr
		if err := cfg.Validate(); err != nil {
			return usagef("%v", err)
		}
		c := cfg.WithDefaults()
		fmt.Fprintf(os.Stderr, "aelp experiment sweep: %d weights × %d α × %d β schedules, %d seeds, %d updates per run, %d runs in parallel (learners in-process, no Kafka)\n",
			len(c.Weights), len(c.Alphas), len(c.Betas), c.Base.Seeds, c.Base.Updates, c.Base.Workers)
		res, err := experiment.ExecuteSweep(ctx, *cfg)
		if err != nil {
			return err
		}
		res.Print(os.Stdout)
		return savePlot(opt.PNG, "heat maps", res.SavePNG)
	}
}
