package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"text/tabwriter"

	"github.com/aelp/aelp/app/pipeline"
	"github.com/aelp/aelp/internal/kafkax"
	"github.com/aelp/aelp/learner"
	policytopic "github.com/aelp/aelp/learner/policy"
	"github.com/aelp/aelp/learner/ppo"
	"github.com/aelp/aelp/producers/sim"
	"github.com/rs/zerolog"
)

// evaluateConfig is what aelp evaluate evaluates, and on what.
type evaluateConfig struct {
	// Policy is snapshot, snapshots, checkpoint, logging or oracle.
	Policy string
	// Experiment and PolicyTopic select the snapshots; Isolation is how
	// they are read.
	Experiment, PolicyTopic string
	Isolation               kafkax.Isolation
	// Checkpoint is the learner checkpoint file of --policy checkpoint.
	Checkpoint string
	// Episodes held-out journeys of seed Seed, on the simulator Sim.
	Episodes int
	Seed     uint64
	Sim      sim.Config
}

// defaultEvaluateConfig evaluates the newest snapshot on the held-out
// journeys aelp run evaluates on (pipeline.DefaultConfig: their number,
// and the held-out seed of its training seed).
func defaultEvaluateConfig() evaluateConfig {
	p := pipeline.DefaultConfig()
	return evaluateConfig{Policy: "snapshot", PolicyTopic: kafkax.TopicPolicy, Isolation: kafkax.ReadCommitted,
		Episodes: p.EvalEpisodes, Seed: sim.HeldOutSeed(p.Seed), Sim: p.Sim}
}

// evaluateSetup is the simulator's evaluation mode: a policy on held-out
// journeys, per segment, with 95% confidence intervals.
func evaluateSetup() (*flagSet, action) {
	fs := newFlagSet("evaluate")
	sh := newShared(fs, sharedFlags{kafka: true})
	cfg := newConfig(fs, defaultEvaluateConfig)
	simFlags(fs, &cfg.Sim)
	fs.StringVar(&cfg.Policy, "policy", cfg.Policy, "policy to evaluate: snapshot (newest on the policy topic), snapshots (every snapshot of the experiment: the learning curve), checkpoint (a learner checkpoint file), logging (uniform), oracle (exact, no sampling)")
	fs.StringVar(&cfg.Experiment, "experiment", cfg.Experiment, "experiment whose snapshots to evaluate (with --policy snapshot or snapshots)")
	fs.StringVar(&cfg.PolicyTopic, "policy-topic", cfg.PolicyTopic, "topic of policy snapshots")
	fs.StringVar(&cfg.Checkpoint, "checkpoint", cfg.Checkpoint, "learner checkpoint file (with --policy checkpoint)")
	fs.IntVar(&cfg.Episodes, "episodes", cfg.Episodes, "held-out journeys")
	fs.Uint64Var(&cfg.Seed, "seed", cfg.Seed, "seed of the held-out journeys: 2^40 + the training seed (the default is training seed 1's, the journeys aelp run and aelp experiment ab evaluate it on)")
	isolationFlag(fs, &cfg.Isolation)
	opt := newConfig(fs, defaultEvaluateOPEOptions)
	evaluateOPEFlags(fs, opt)
	return fs, func(ctx context.Context) error {
		if err := checkOPEOptions(*opt); err != nil {
			return err
		}
		log, err := sh.logger("evaluate")
		if err != nil {
			return err
		}
		if err := checkSim(cfg.Sim); err != nil {
			return err
		}
		if cfg.Episodes < 1 {
			return usagef("--episodes must be at least 1")
		}
		return evaluate(ctx, *cfg, *opt, sh, log)
	}
}

// evaluate runs --policy: the oracle's and the curve's tables are printed
// as they are; every other policy is evaluated on the held-out journeys,
// or with --ope estimated from logged experiences.
func evaluate(ctx context.Context, cfg evaluateConfig, opt evaluateOPEOptions, sh *shared, log zerolog.Logger) error {
	if opt.OPE && (cfg.Policy == "oracle" || cfg.Policy == "snapshots") {
		return usagef("--ope evaluates one policy: --policy snapshot, checkpoint or logging, not %s", cfg.Policy)
	}
	var p sim.Policy
	name := cfg.Policy
	var err error
	switch cfg.Policy {
	case "logging":
		p = sim.Uniform{N: cfg.Sim.NumActions()}
	case "oracle":
		return printOracle(cfg.Sim)
	case "checkpoint":
		p, name, err = checkpointPolicy(cfg.Checkpoint)
	case "snapshots":
		return printCurve(ctx, cfg, sh, log)
	case "snapshot":
		p, name, err = latestSnapshot(ctx, cfg, sh, log)
	default:
		return usagef("unknown --policy %q (want snapshot, snapshots, checkpoint, logging or oracle)", cfg.Policy)
	}
	if err != nil {
		return err
	}
	if opt.OPE {
		return evaluateOPE(ctx, os.Stdout, opePolicy(p, name, cfg.Sim.NumActions()), cfg, opt, sh, log)
	}
	rep, err := sim.Evaluate(cfg.Sim, p, cfg.Episodes, cfg.Seed)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(os.Stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintf(w, "%s on %d held-out journeys (seed %d); ± is the 95%% CI half-width\n", name, rep.Episodes, cfg.Seed)
	fmt.Fprintf(w, "segment\tjourneys\tmean return\tconversion rate [95%% CI]\n")
	for _, s := range []struct {
		n string
		e sim.SegmentEval
	}{{"crisis", rep.Crisis}, {"regular", rep.Regular}} {
		fmt.Fprintf(w, "%s\t%d\t%.3f ± %.3f\t%.4f [%.4f, %.4f]\n", s.n, s.e.Episodes, s.e.MeanReturn, s.e.ReturnCI,
			s.e.ConversionRate, s.e.ConversionLo, s.e.ConversionHi)
	}
	fmt.Fprintf(w, "all users\t%d\t%.3f ± %.3f\t\n", rep.Episodes, rep.ValuePerUser, rep.ValuePerUserCI)
	return w.Flush()
}

// printOracle prints the exact optimum of the model, per segment.
func printOracle(c sim.Config) error {
	o, err := sim.Oracle(c)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(os.Stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintf(w, "oracle (exact, from the model)\tbest action\treturn\tconversion\tadaptive return\tuniform return\n")
	for _, s := range []struct {
		n string
		o sim.SegmentOracle
	}{{"crisis", o.Crisis}, {"regular", o.Regular}} {
		fmt.Fprintf(w, "%s\t%d (bid %d, creative %d)\t%.3f\t%.3f\t%.3f\t%.3f\n", s.n, s.o.BestAction, s.o.BestBid, s.o.BestCreative,
			s.o.BestReturn, s.o.BestConversion, s.o.AdaptiveReturn, s.o.UniformReturn)
	}
	fmt.Fprintf(w, "value per user\t\t%.3f\t\t%.3f\t%.3f\n", o.BestValuePerUser, o.AdaptiveValuePerUser, o.UniformValuePerUser)
	return w.Flush()
}

// checkpointPolicy loads the policy of a learner checkpoint file.
func checkpointPolicy(path string) (sim.Policy, string, error) {
	if path == "" {
		return nil, "", usagef("--policy checkpoint needs --checkpoint FILE")
	}
	ck, err := learner.ReadCheckpoint(path)
	if err != nil {
		return nil, "", err
	}
	agent, err := ppo.Restore(ck.Agent, rand.New(rand.NewPCG(1, 1)))
	if err != nil {
		return nil, "", fmt.Errorf("checkpoint %s: %w", path, err)
	}
	return agent.Snapshot(), fmt.Sprintf("checkpoint %s (version %d)", path, agent.Version()), nil
}

// snapshotSource is the policy topic of --experiment (a usage error
// without one).
func snapshotSource(cfg evaluateConfig, sh *shared, log zerolog.Logger) (policytopic.Source, error) {
	if cfg.Experiment == "" {
		return policytopic.Source{}, usagef("--policy %s needs --experiment ID", cfg.Policy)
	}
	kcfg, err := sh.kafkaConfig()
	if err != nil {
		return policytopic.Source{}, err
	}
	return policytopic.Source{Kafka: kcfg, Topic: cfg.PolicyTopic, ExperimentID: cfg.Experiment, Isolation: cfg.Isolation, Log: log}, nil
}

// printCurve evaluates every snapshot of the experiment: its learning
// curve.
func printCurve(ctx context.Context, cfg evaluateConfig, sh *shared, log zerolog.Logger) error {
	src, err := snapshotSource(cfg, sh, log)
	if err != nil {
		return err
	}
	pts, err := policytopic.EvaluateSnapshots(ctx, src, cfg.Sim, cfg.Episodes, cfg.Seed)
	if err != nil {
		return err
	}
	if len(pts) == 0 {
		return fmt.Errorf("no policy snapshot of experiment %q on %s", cfg.Experiment, cfg.PolicyTopic)
	}
	fmt.Printf("%d snapshots of %s, each on %d held-out journeys (seed %d); ± is the 95%% CI half-width\n\n", len(pts), cfg.Experiment, cfg.Episodes, cfg.Seed)
	return policytopic.WriteCurve(os.Stdout, pts)
}

// latestSnapshot loads the experiment's newest policy snapshot.
func latestSnapshot(ctx context.Context, cfg evaluateConfig, sh *shared, log zerolog.Logger) (sim.Policy, string, error) {
	src, err := snapshotSource(cfg, sh, log)
	if err != nil {
		return nil, "", err
	}
	snap, err := src.Latest(ctx)
	if err != nil {
		return nil, "", err
	}
	if snap == nil {
		return nil, "", fmt.Errorf("no policy snapshot of experiment %q on %s", cfg.Experiment, cfg.PolicyTopic)
	}
	pol, err := ppo.LoadPolicy(snap.Architecture, snap.Params, snap.ObsMean, snap.ObsVar, snap.ObsCount)
	if err != nil {
		return nil, "", err
	}
	return pol, fmt.Sprintf("snapshot %s v%d", cfg.Experiment, snap.Version), nil
}
