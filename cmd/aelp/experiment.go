package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/aelp/aelp/app/experiment"
	"github.com/aelp/aelp/learner"
)

// abOptions are aelp experiment ab's options besides the experiment's
// configuration.
type abOptions struct {
	// PNG is where the learning curves are drawn ("": no plot).
	PNG string
	// Factor is what the arms differ in: sampling (importance vs uniform)
	// or tagger (rules vs learned tagger, hard vs soft priority).
	Factor string
}

func defaultABOptions() abOptions {
	return abOptions{PNG: filepath.Join("out", "ab.png"), Factor: "sampling"}
}

// abSetup is `aelp experiment ab`.
func abSetup() (*flagSet, action) {
	fs := newFlagSet("experiment ab")
	cfg := newConfig(fs, experiment.DefaultConfig)
	opt := newConfig(fs, defaultABOptions)
	simFlags(fs, &cfg.Sim)
	r := &cfg.Replay
	fs.Float64Var(&r.CrisisWeight, "crisis-parent-weight", r.CrisisWeight, "priority weight of crisis-parent experiences in the IS arm")
	fs.Float64Var(&r.Alpha, "importance-sampling-alpha", r.Alpha, "prioritisation exponent α of the IS arm")
	fs.Float64Var(&r.Beta0, "importance-sampling-beta", r.Beta0, "initial IS exponent β0, annealed to 1")
	fs.Float64Var(&r.Temperature, "temperature", r.Temperature, "temperature T in the exponent α/T")
	fs.Int64Var(&r.AnnealSteps, "beta-anneal-updates", r.AnnealSteps, "updates over which β rises to 1")
	fs.Float64Var(&r.MinCrisisRatio, "min-crisis-parent-ratio", r.MinCrisisRatio, "floor on the crisis stratum's sampling mass")
	fs.IntVar(&r.Capacity, "replay-buffer-capacity", r.Capacity, "replay buffer capacity (oldest evicted)")
	fs.IntVar(&cfg.MinBuffer, "min-buffer", cfg.MinBuffer, "items in the buffer before the first update")
	fs.IntVar(&cfg.BatchSize, "batch-size", cfg.BatchSize, "samples drawn per update")
	fs.Float64Var(&cfg.SamplesPerInsert, "samples-per-insert", cfg.SamplesPerInsert, "samples drawn per experience inserted")
	fs.IntVar(&cfg.Updates, "updates", cfg.Updates, "PPO updates per arm and seed")
	fs.IntVar(&cfg.Seeds, "seeds", cfg.Seeds, "training seeds (at least 2)")
	fs.Uint64Var(&cfg.FirstSeed, "first-seed", cfg.FirstSeed, "first training seed")
	fs.IntVar(&cfg.EvalEpisodes, "eval-episodes", cfg.EvalEpisodes, "held-out journeys per final evaluation")
	fs.IntVar(&cfg.CurvePoints, "curve-points", cfg.CurvePoints, "held-out evaluations during training")
	fs.IntVar(&cfg.CurveEpisodes, "curve-episodes", cfg.CurveEpisodes, "held-out journeys per curve point")
	fs.IntVar(&cfg.Workers, "workers", cfg.Workers, "runs in parallel")
	fs.BoolVar(&cfg.TagWithTruth, "tag-with-truth", cfg.TagWithTruth, "tag with the simulator's ground truth instead of the aggregator's classifier")
	fs.BoolVar(&cfg.AdaptiveArm, "adaptive-crisis-weight", cfg.AdaptiveArm, "add a third arm: importance sampling with the adaptive crisis weight, starting at --crisis-parent-weight")
	fs.Float64Var(&cfg.Adaptive.MaxWeight, "max-crisis-weight", cfg.Adaptive.MaxWeight, "largest crisis weight the adaptive arm may set")
	fs.Float64Var(&cfg.Adaptive.Smoothing, "adaptive-smoothing", cfg.Adaptive.Smoothing, "time constant, in updates, of the adaptive arm's moving averages")
	fs.BoolVar(&cfg.SoftPriority, "soft-priority", cfg.SoftPriority, "give the IS arm's experiences the priority w·p + (1 − p) from their calibrated tag_score p instead of their hard tag's weight")
	taggerFlags(fs, &cfg.Classifier)
	fs.StringVar(&opt.PNG, "png", opt.PNG, "write the learning curves here (empty: no plot; sampling factor only)")
	fs.StringVar(&opt.Factor, "factor", opt.Factor, "what the arms differ in: sampling (importance vs uniform sampling) or tagger (rules vs learned tagger with hard priority, and learned with soft priority, all importance sampling)")
	return fs, func(ctx context.Context) error {
		if err := checkSim(cfg.Sim); err != nil {
			return err
		}
		// The agents take the learn role's PPO settings for the simulator's
		// shape.
		cfg.PPO = learner.DefaultPPO(cfg.Sim.StateDim, cfg.Sim.NumActions())
		cfg.Progress = os.Stderr
		if err := cfg.Validate(); err != nil {
			return usagef("%v", err)
		}
		switch opt.Factor {
		case "sampling":
		case "tagger":
			return abTagger(ctx, *cfg)
		default:
			return usagef("--factor %q: want sampling or tagger", opt.Factor)
		}
		arms := 2
		if cfg.AdaptiveArm {
			arms = 3
		}
		fmt.Fprintf(os.Stderr, "aelp experiment ab: %d seeds × %d arms × %d updates, %d runs in parallel (learners in-process, no Kafka)\n",
			cfg.Seeds, arms, cfg.Updates, cfg.Workers)
		res, err := experiment.Execute(ctx, *cfg)
		if err != nil {
			return err
		}
		res.Print(os.Stdout)
		return savePlot(opt.PNG, "learning curves", res.SavePNG)
	}
}

// savePlot writes a plot with save to path, creating its directory, and
// says where ("" path: no plot).
func savePlot(path, what string, save func(string) error) error {
	if path == "" {
		return nil
	}
	if dir := filepath.Dir(path); dir != "." {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	if err := save(path); err != nil {
		return err
	}
	fmt.Printf("\n%s: %s\n", what, path)
	return nil
}

// abTagger is `aelp experiment ab --factor tagger`.
func abTagger(ctx context.Context, cfg experiment.Config) error {
	if cfg.TagWithTruth || cfg.SoftPriority || cfg.AdaptiveArm {
		return usagef("--factor tagger sets the tagging of every arm: drop --tag-with-truth, --soft-priority and --adaptive-crisis-weight")
	}
	fmt.Fprintf(os.Stderr, "aelp experiment ab --factor tagger: %d seeds × %d arms × %d updates, %d runs in parallel (learners in-process, no Kafka)\n",
		cfg.Seeds, len(experiment.TaggerArms), cfg.Updates, cfg.Workers)
	res, err := experiment.ExecuteTagger(ctx, cfg)
	if err != nil {
		return err
	}
	res.Print(os.Stdout)
	return nil
}
