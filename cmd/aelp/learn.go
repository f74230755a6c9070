package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/aelp/aelp/app/pipeline"
	"github.com/aelp/aelp/learner"
	"github.com/aelp/aelp/learner/train"
	"github.com/mattn/go-isatty"
)

// learnerFlags registers the learner's training settings onto c, shared by
// learn and run. Flag names follow the original design's configuration
// names.
func learnerFlags(fs *flagSet, c *learner.Config) {
	r, p := &c.Replay, &c.PPO
	fs.Var(notValue{&r.Uniform}, "enable-importance-sampling", "sample crisis experiences by priority and correct with IS weights (false: uniform)")
	fs.Float64Var(&r.CrisisWeight, "crisis-parent-weight", r.CrisisWeight, "priority weight of crisis-parent experiences (with --adaptive-crisis-weight: the first batch's)")
	adaptiveFlags(fs, &c.Adaptive)
	fs.Float64Var(&r.Alpha, "importance-sampling-alpha", r.Alpha, "prioritisation exponent α")
	fs.Float64Var(&r.Beta0, "importance-sampling-beta", r.Beta0, "initial IS exponent β0, annealed to 1")
	fs.Float64Var(&r.Temperature, "temperature", r.Temperature, "temperature T in the exponent α/T")
	fs.Int64Var(&r.AnnealSteps, "beta-anneal-updates", r.AnnealSteps, "updates over which β rises to 1")
	fs.Float64Var(&r.MinCrisisRatio, "min-crisis-parent-ratio", r.MinCrisisRatio, "floor on the crisis stratum's sampling mass")
	fs.IntVar(&r.Capacity, "replay-buffer-capacity", r.Capacity, "replay buffer capacity (oldest evicted)")
	fs.IntVar(&c.MinBuffer, "min-buffer", c.MinBuffer, "items in the buffer before the first update")
	fs.IntVar(&c.BatchSize, "batch-size", c.BatchSize, "samples drawn per update")
	fs.Float64Var(&c.SamplesPerInsert, "samples-per-insert", c.SamplesPerInsert, "rate limiter: samples drawn per experience ingested")
	fs.IntVar(&p.Epochs, "epochs", p.Epochs, "PPO epochs per update")
	fs.IntVar(&p.Minibatches, "minibatches", p.Minibatches, "PPO minibatches per epoch")
	fs.Float64Var(&p.LR, "learning-rate", p.LR, "Adam learning rate")
	fs.Float64Var(&p.Gamma, "gamma", p.Gamma, "discount factor")
	fs.Float64Var(&p.EntropyCoef, "entropy-coef", p.EntropyCoef, "entropy bonus coefficient")
	fs.Float64Var(&p.TargetKL, "target-kl", p.TargetKL, "stop an update early past this approx KL (0: off)")
	fs.Int64Var(&p.MaxStaleness, "max-staleness", p.MaxStaleness, "drop samples more than this many policy versions old (0: off)")
	fs.Var(intsValue{&p.Hidden}, "hidden", "hidden layer widths, a comma-separated `list`")
	fs.IntVar(&p.Workers, "ppo-workers", p.Workers, "goroutines computing each PPO minibatch's gradient (1: serial)")
	fs.Int64Var(&c.MetricsEvery, "metrics-every", c.MetricsEvery, "publish TrainingMetrics every N updates")
	fs.Int64Var(&c.SnapshotEvery, "snapshot-every", c.SnapshotEvery, "publish a PolicySnapshot every N updates")
	fs.Int64Var(&c.CheckpointEvery, "checkpoint-every", c.CheckpointEvery, "write a checkpoint every N updates")
	gateFlags(fs, c)
}

// shapeLearner sizes c's networks for records of stateDim × numActions
// (the flags set the rest of its PPO configuration).
func shapeLearner(c *learner.Config, stateDim, numActions int) {
	c.StateDim, c.NumActions = stateDim, numActions
	c.PPO.ObsDim, c.PPO.NumActions = stateDim, numActions
}

func learnSetup() (*flagSet, action) {
	fs := newFlagSet("learn")
	sh := newShared(fs, sharedFlags{kafka: true, writes: true, http: ":9103", shutdown: true})
	cfg := newConfig(fs, learner.DefaultConfig)
	learnerFlags(fs, cfg)
	fs.StringVar(&cfg.ExperimentID, "experiment", cfg.ExperimentID, "experiment id (experiment_id, required)")
	fs.StringVar(&cfg.LearnerID, "learner-id", cfg.LearnerID, "learner id in metrics")
	fs.IntVar(&cfg.StateDim, "state-dim", cfg.StateDim, "state width of the experiences")
	fs.IntVar(&cfg.NumActions, "num-actions", cfg.NumActions, "number of actions")
	fs.StringVar(&cfg.CheckpointPath, "checkpoint", cfg.CheckpointPath, "checkpoint file (write-then-rename); resumed from unless --fresh")
	fs.BoolVar(&cfg.Fresh, "fresh", cfg.Fresh, "start from scratch instead of resuming from --checkpoint")
	fs.BoolVar(&cfg.FreshIfMissing, "fresh-if-missing", cfg.FreshIfMissing, "start from scratch only when --checkpoint does not exist yet (for supervised restarts)")
	fs.BoolVar(&cfg.Bounded, "bounded", cfg.Bounded, "read up to the end offsets seen at start, train, checkpoint and exit")
	fs.Int64Var(&cfg.MaxUpdates, "max-updates", cfg.MaxUpdates, "stop after this many updates (0: no limit)")
	fs.Uint64Var(&cfg.Seed, "seed", cfg.Seed, "random seed")
	fs.StringVar(&cfg.GroundTruthKey, "ground-truth-key", cfg.GroundTruthKey, "metadata key of the true segment (tag accuracy and per-segment returns only)")
	fs.StringVar(&cfg.TaggedTopic, "tagged-topic", cfg.TaggedTopic, "topic of tagged experiences")
	fs.StringVar(&cfg.MetricsTopic, "metrics-topic", cfg.MetricsTopic, "topic for TrainingMetrics")
	fs.StringVar(&cfg.PolicyTopic, "policy-topic", cfg.PolicyTopic, "topic for PolicySnapshot")
	fs.StringVar(&cfg.DeadLetterTopic, "dead-letter-topic", cfg.DeadLetterTopic, "topic for records that fail to decode or validate")
	return fs, func(ctx context.Context) error {
		srv, err := sh.startRole("learn", func(e roleEnv) {
			cfg.Kafka, cfg.Log, cfg.ShutdownTimeout = e.kafka, e.log, e.shutdown
			shapeLearner(cfg, cfg.StateDim, cfg.NumActions)
		}, func() error {
			if cfg.GroundTruthKey == "" {
				return usageError{"--ground-truth-key must not be empty"}
			}
			return cfg.Validate()
		})
		if err != nil {
			return err
		}
		defer srv.close()
		cfg.Registry, cfg.Health = srv.reg, srv.health
		l, err := learner.New(*cfg)
		var re *learner.ResumeError
		if errors.As(err, &re) {
			return fmt.Errorf("%w (give --fresh to start without it)", err)
		}
		if me, ok := errors.AsType[*learner.MismatchError](err); ok {
			flag := map[string]string{"ExperimentID": "--experiment", "TaggedTopic": "--tagged-topic"}[me.Field]
			return fmt.Errorf("%w (resume it with %s %s, or give another --checkpoint, or --fresh to start over)", err, flag, me.Saved)
		}
		if err != nil {
			return err
		}
		if err := l.Run(ctx); err != nil {
			return err
		}
		s := l.Stats()
		fmt.Printf("learned from %d experiences: %d updates, %d samples, checkpoint %s\n", s.Ingested, s.Updates, s.Sampled, cfg.CheckpointPath)
		return nil
	}
}

func runSetup() (*flagSet, action) {
	fs := newFlagSet("run")
	sh := newShared(fs, sharedFlags{kafka: true, embedded: true, writes: true, shutdown: true})
	cfg := newConfig(fs, pipeline.DefaultConfig)
	simFlags(fs, &cfg.Sim)
	learnerFlags(fs, &cfg.Learner)
	taggerFlags(fs, &cfg.Classifier)
	fs.Int64Var(&cfg.Episodes, "episodes", cfg.Episodes, "simulated users (simulation_episodes)")
	fs.IntVar(&cfg.Workers, "workers", cfg.Workers, "simulator goroutines")
	fs.Uint64Var(&cfg.Seed, "seed", cfg.Seed, "random seed")
	fs.StringVar(&cfg.ExperimentID, "experiment", cfg.ExperimentID, "experiment id (default run-<unix time>)")
	fs.StringVar(&cfg.DataDir, "data-dir", cfg.DataDir, "directory for the checkpoint (and the broker log with --persist)")
	fs.BoolVar(&cfg.Persist, "persist", cfg.Persist, "keep the embedded broker's log on disk under --data-dir")
	fs.IntVar(&cfg.EvalEpisodes, "eval-episodes", cfg.EvalEpisodes, "held-out journeys per evaluated policy")
	fs.IntVar(&cfg.CurveEpisodes, "curve", cfg.CurveEpisodes, "after the run, evaluate every policy snapshot on this many held-out journeys and print the learning curve (0: off)")
	isolationFlag(fs, &cfg.Isolation)
	runLiveFlags(fs, cfg)
	fs.Var(notValue{&cfg.ConstantLR}, "lr-decay", "lower the learning rate linearly over the run, to a third of --learning-rate by its last possible update (false: constant)")
	prof := profileFlags(fs)
	return fs, func(ctx context.Context) (err error) {
		sh.quiet() // the progress display and summary say what info would
		log, err := sh.logger("run")
		if err != nil {
			return err
		}
		if len(sh.kafka.Brokers) > 0 {
			if cfg.Kafka, err = sh.kafkaConfig(); err != nil {
				return err
			}
		} else { // the embedded broker: only the writers' settings apply
			if err := sh.kafka.WithDefaults().Validate(); err != nil {
				return usagef("%v", err)
			}
			cfg.Kafka.Partitioner, cfg.Kafka.MaxMessageBytes = sh.kafka.Partitioner, sh.kafka.MaxMessageBytes
		}
		if cfg.ShutdownTimeout, err = sh.shutdownTimeout(); err != nil {
			return err
		}
		shapeLearner(&cfg.Learner, cfg.Sim.StateDim, cfg.Sim.NumActions())
		cfg.Progress, cfg.ProgressTTY, cfg.Log = os.Stderr, isatty.IsTerminal(os.Stderr.Fd()), log
		if err := cfg.Validate(); err != nil {
			return configError(err)
		}
		stopProfile, err := prof.start()
		if err != nil {
			return err
		}
		defer func() { err = errors.Join(err, stopProfile()) }()
		sum, err := pipeline.Run(ctx, *cfg)
		if err != nil && ctx.Err() != nil {
			fmt.Fprintf(os.Stderr, "aelp run: interrupted after %.1fs: %d users simulated, %d experiences tagged, %d updates; learner checkpoint %s\n",
				sum.Elapsed.Seconds(), sum.Sim.Users, sum.Agg.Tagged, sum.Learn.Updates, sum.Checkpoint)
			if errors.Is(err, context.Canceled) {
				return nil // a clean stop: the line above says what it did
			}
		}
		if err != nil {
			return err
		}
		sum.Print(os.Stdout)
		return nil
	}
}

// adaptiveFlags registers the adaptive crisis weight's settings onto a,
// shared by learn, run and experiment ab.
func adaptiveFlags(fs *flagSet, a *train.Adaptive) {
	fs.BoolVar(&a.Enabled, "adaptive-crisis-weight", a.Enabled, "make the crisis weight follow the crisis and regular experiences' TD errors: P(crisis)/P(regular) = their smoothed RMS ratio, within [1, --max-crisis-weight]")
	fs.Float64Var(&a.MaxWeight, "max-crisis-weight", a.MaxWeight, "largest crisis weight --adaptive-crisis-weight may set")
	fs.Float64Var(&a.Smoothing, "adaptive-smoothing", a.Smoothing, "time constant, in updates, of --adaptive-crisis-weight's moving averages")
}
