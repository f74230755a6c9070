package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"text/tabwriter"

	"github.com/aelp/aelp/learner"
	policytopic "github.com/aelp/aelp/learner/policy"
	"github.com/aelp/aelp/learner/ppo"
	"github.com/aelp/aelp/producers/sim"
)

// runEvaluate is the simulator's evaluation mode: a policy on held-out
// journeys, per segment, with 95% confidence intervals.
func runEvaluate(ctx context.Context, args []string) error {
	fs := newFlagSet("evaluate")
	var lf logFlags
	var kf kafkaFlags
	var sf simFlags
	lf.register(fs)
	kf.register(fs, "127.0.0.1:9092")
	sf.register(fs)
	policy := fs.String("policy", "snapshot", "policy to evaluate: snapshot (newest on the policy topic), snapshots (every snapshot of the experiment: the learning curve), checkpoint (a learner checkpoint file), logging (uniform), oracle (exact, no sampling)")
	experiment := fs.String("experiment", "", "experiment whose snapshots to evaluate (with --policy snapshot or snapshots)")
	policyTopic := fs.String("policy-topic", "aelp.policy", "topic of policy snapshots")
	ckpt := fs.String("checkpoint", "", "learner checkpoint file (with --policy checkpoint)")
	episodes := fs.Int("episodes", 20_000, "held-out journeys")
	seed := fs.Uint64("seed", sim.HeldOutSeed(1), "seed of the held-out journeys: 2^40 + the training seed (the default is training seed 1's, the journeys aelp run and aelp experiment ab evaluate it on)")
	isolation := isolationFlag(fs)
	if err := fs.parse(args); err != nil {
		return err
	}
	iso, err := parseIsolation(*isolation)
	if err != nil {
		return err
	}
	log, err := lf.logger("evaluate")
	if err != nil {
		return err
	}
	scfg, err := sf.config()
	if err != nil {
		return err
	}
	if *episodes < 1 {
		return usagef("--episodes must be at least 1")
	}
	var p sim.Policy
	name := *policy
	switch *policy {
	case "logging":
		p = sim.Uniform{N: scfg.NumActions()}
	case "oracle":
		o, err := sim.Oracle(scfg)
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
	case "checkpoint":
		if *ckpt == "" {
			return usagef("--policy checkpoint needs --checkpoint FILE")
		}
		ck, err := learner.ReadCheckpoint(*ckpt)
		if err != nil {
			return err
		}
		agent, err := ppo.Restore(ck.Agent, rand.New(rand.NewPCG(1, 1)))
		if err != nil {
			return fmt.Errorf("checkpoint %s: %w", *ckpt, err)
		}
		p = agent.Snapshot()
		name = fmt.Sprintf("checkpoint %s (version %d)", *ckpt, agent.Version())
	case "snapshots":
		if *experiment == "" {
			return usagef("--policy snapshots needs --experiment ID")
		}
		kcfg, err := kf.config()
		if err != nil {
			return err
		}
		src := policytopic.Source{Kafka: kcfg, Topic: *policyTopic, ExperimentID: *experiment, Isolation: iso, Log: log}
		pts, err := policytopic.EvaluateSnapshots(ctx, src, scfg, *episodes, *seed)
		if err != nil {
			return err
		}
		if len(pts) == 0 {
			return fmt.Errorf("no policy snapshot of experiment %q on %s", *experiment, *policyTopic)
		}
		fmt.Printf("%d snapshots of %s, each on %d held-out journeys (seed %d); ± is the 95%% CI half-width\n\n", len(pts), *experiment, *episodes, *seed)
		return policytopic.WriteCurve(os.Stdout, pts)
	case "snapshot":
		if *experiment == "" {
			return usagef("--policy snapshot needs --experiment ID")
		}
		kcfg, err := kf.config()
		if err != nil {
			return err
		}
		snap, err := policytopic.Source{Kafka: kcfg, Topic: *policyTopic, ExperimentID: *experiment, Isolation: iso, Log: log}.Latest(ctx)
		if err != nil {
			return err
		}
		if snap == nil {
			return fmt.Errorf("no policy snapshot of experiment %q on %s", *experiment, *policyTopic)
		}
		pol, err := ppo.LoadPolicy(snap.Architecture, snap.Params, snap.ObsMean, snap.ObsVar, snap.ObsCount)
		if err != nil {
			return err
		}
		p = pol
		name = fmt.Sprintf("snapshot %s v%d", *experiment, snap.Version)
	default:
		return usagef("unknown --policy %q (want snapshot, snapshots, checkpoint, logging or oracle)", *policy)
	}
	rep, err := sim.Evaluate(scfg, p, *episodes, *seed)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(os.Stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintf(w, "%s on %d held-out journeys (seed %d); ± is the 95%% CI half-width\n", name, rep.Episodes, *seed)
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
