package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/aelp/aelp/app/experiment"
	"github.com/aelp/aelp/learner"
)

// runExperiment dispatches `aelp experiment <name>`; the only experiment is
// ab.
func runExperiment(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Println("Usage: aelp experiment ab [flags]\n\n  ab  importance sampling vs uniform sampling on identical simulated streams, over seeds\n\n'aelp experiment ab -h' lists the flags.")
		if len(args) == 0 {
			return usagef("name an experiment: ab")
		}
		return errHelp
	}
	if args[0] != "ab" {
		return usagef("unknown experiment %q (want ab)", args[0])
	}
	return runAB(ctx, args[1:])
}

func runAB(ctx context.Context, args []string) error {
	fs := newFlagSet("experiment ab")
	var sf simFlags
	sf.register(fs)
	d := experiment.DefaultConfig()
	r := d.Replay
	weight := fs.Float64("crisis-parent-weight", r.CrisisWeight, "priority weight of crisis-parent experiences in the IS arm")
	alpha := fs.Float64("importance-sampling-alpha", r.Alpha, "prioritisation exponent α of the IS arm")
	beta := fs.Float64("importance-sampling-beta", r.Beta0, "initial IS exponent β0, annealed to 1")
	temp := fs.Float64("temperature", r.Temperature, "temperature T in the exponent α/T")
	anneal := fs.Int64("beta-anneal-updates", r.AnnealSteps, "updates over which β rises to 1")
	minRatio := fs.Float64("min-crisis-parent-ratio", r.MinCrisisRatio, "floor on the crisis stratum's sampling mass")
	capacity := fs.Int("replay-buffer-capacity", r.Capacity, "replay buffer capacity (oldest evicted)")
	minBuffer := fs.Int("min-buffer", d.MinBuffer, "items in the buffer before the first update")
	batch := fs.Int("batch-size", d.BatchSize, "samples drawn per update")
	spi := fs.Float64("samples-per-insert", d.SamplesPerInsert, "samples drawn per experience inserted")
	updates := fs.Int("updates", d.Updates, "PPO updates per arm and seed")
	seeds := fs.Int("seeds", d.Seeds, "training seeds (at least 2)")
	firstSeed := fs.Uint64("first-seed", d.FirstSeed, "first training seed")
	evalEpisodes := fs.Int("eval-episodes", d.EvalEpisodes, "held-out journeys per final evaluation")
	curvePoints := fs.Int("curve-points", d.CurvePoints, "held-out evaluations during training")
	curveEpisodes := fs.Int("curve-episodes", d.CurveEpisodes, "held-out journeys per curve point")
	workers := fs.Int("workers", d.Workers, "runs in parallel")
	truth := fs.Bool("tag-with-truth", false, "tag with the simulator's ground truth instead of the aggregator's classifier")
	png := fs.String("png", filepath.Join("out", "ab.png"), "write the learning curves here (empty: no plot)")
	if err := fs.parse(args); err != nil {
		return err
	}
	scfg, err := sf.config()
	if err != nil {
		return err
	}
	cfg := d
	cfg.Sim = scfg
	cfg.PPO = learner.DefaultPPO(scfg.StateDim, scfg.NumActions())
	cfg.Replay.CrisisWeight, cfg.Replay.Alpha, cfg.Replay.Beta0, cfg.Replay.Temperature = *weight, *alpha, *beta, *temp
	cfg.Replay.AnnealSteps, cfg.Replay.MinCrisisRatio, cfg.Replay.Capacity = *anneal, *minRatio, *capacity
	cfg.MinBuffer, cfg.BatchSize, cfg.SamplesPerInsert = *minBuffer, *batch, *spi
	cfg.Updates, cfg.Seeds, cfg.FirstSeed = *updates, *seeds, *firstSeed
	cfg.EvalEpisodes, cfg.CurvePoints, cfg.CurveEpisodes, cfg.Workers = *evalEpisodes, *curvePoints, *curveEpisodes, *workers
	cfg.TagWithTruth = *truth
	cfg.Progress = os.Stderr
	if err := cfg.Validate(); err != nil {
		return usagef("%v", err)
	}
	fmt.Fprintf(os.Stderr, "aelp experiment ab: %d seeds × 2 arms × %d updates, %d runs in parallel (learners in-process, no Kafka)\n",
		cfg.Seeds, cfg.Updates, cfg.Workers)
	res, err := experiment.Execute(ctx, cfg)
	if err != nil {
		return err
	}
	res.Print(os.Stdout)
	if *png != "" {
		if dir := filepath.Dir(*png); dir != "." {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
		}
		if err := res.SavePNG(*png); err != nil {
			return err
		}
		fmt.Printf("\nlearning curves: %s\n", *png)
	}
	return nil
}
