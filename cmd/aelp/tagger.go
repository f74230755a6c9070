package main

import (
	"context"
	"os"

	"github.com/aelp/aelp/app/experiment"
	"github.com/aelp/aelp/app/tagger"
	"github.com/aelp/aelp/consumers/classify"
	"github.com/aelp/aelp/learner"
)

// taggerSetup measures the crisis taggers (rules, learned, Bayes limit) on
// a simulated stream, without Kafka.
func taggerSetup() (*flagSet, action) {
	fs := newFlagSet("tagger")
	cfg := newConfig(fs, tagger.DefaultConfig)
	simFlags(fs, &cfg.Sim)
	taggerFlags(fs, &cfg.Classifier)
	fs.IntVar(&cfg.Users, "users", cfg.Users, "simulated users (aelp run's number by default)")
	fs.IntVar(&cfg.Workers, "workers", cfg.Workers, "simulator streams the users are split over")
	fs.Uint64Var(&cfg.Seed, "seed", cfg.Seed, "simulator seed")
	fs.IntVar(&cfg.Ghosts, "ghosts", cfg.Ghosts, "with --policy-updates: Monte Carlo journeys per segment and user of the learned policy's posterior")
	opt := newConfig(fs, func() taggerOptions { return taggerOptions{} })
	policyUpdates := &opt.PolicyUpdates
	fs.IntVar(policyUpdates, "policy-updates", opt.PolicyUpdates, "act with a policy trained for this many updates (as aelp experiment ab's importance-sampling arm with the rules' tags, on seed --seed) instead of the uniform logging policy; its stream's Bayes limit is then estimated by Monte Carlo (0: uniform, exact)")
	return fs, func(ctx context.Context) error {
		if *policyUpdates < 0 {
			return usagef("--policy-updates %d: must not be negative", *policyUpdates)
		}
		if err := cfg.Validate(); err != nil {
			return usagef("%v", err)
		}
		if *policyUpdates > 0 {
			ecfg := experiment.DefaultConfig()
			// The policy learns from the rules' tags, so that the stream it
			// makes does not change with the learned tagger's settings.
			ecfg.Sim, ecfg.Classifier, ecfg.Updates = cfg.Sim, cfg.Classifier, *policyUpdates
			ecfg.Classifier.Tagger = classify.TaggerRules
			ecfg.PPO = learner.DefaultPPO(cfg.Sim.StateDim, cfg.Sim.NumActions())
			pol, err := experiment.TrainedPolicy(ctx, ecfg, cfg.Seed)
			if err != nil {
				return err
			}
			cfg.Policy = pol
		}
		rep, err := tagger.Measure(*cfg)
		if err != nil {
			return err
		}
		return rep.Write(os.Stdout)
	}
}

// taggerOptions are aelp tagger's options besides the measurement's
// configuration.
type taggerOptions struct {
	// PolicyUpdates, when > 0, trains the acting policy for this many
	// updates first (0: the uniform logging policy acts).
	PolicyUpdates int
}

// taggerFlags binds the learned tagger's flags onto c.
func taggerFlags(fs *flagSet, c *classify.Config) {
	fs.Var(&c.Tagger, "tagger", "who tags the unlabelled records: rules (the hand-set METADATA and VALUE rules) or learned (a calibrated logistic model trained on the labelled records, after its warm-up)")
	fs.Var(&c.Objective, "tagger-objective", "what the learned tagger's threshold on P(crisis) is chosen for: f1, precision=P (most recall with precision >= P) or cost=R (a missed crisis parent costs R false crisis tags)")
	fs.Int64Var(&c.TaggerWarmUp, "tagger-warmup", c.TaggerWarmUp, "labelled records the learned tagger trains on before it decides (the rules decide until then)")
}
