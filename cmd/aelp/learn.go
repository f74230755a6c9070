package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/aelp/aelp/app/pipeline"
	"github.com/aelp/aelp/learner"
	"github.com/aelp/aelp/learner/ppo"
	"github.com/aelp/aelp/schemas"
	"github.com/mattn/go-isatty"
)

// learnFlags are the learner's settings, shared by learn and run. Flag
// names follow the original design's configuration names.
type learnFlags struct {
	enableIS       bool
	crisisWeight   float64
	alpha          float64
	beta           float64
	temperature    float64
	betaAnneal     int64
	minCrisisRatio float64
	capacity       int
	minBuffer      int
	batchSize      int
	spi            float64
	epochs         int
	minibatches    int
	lr             float64
	gamma          float64
	entropyCoef    float64
	targetKL       float64
	maxStaleness   int64
	hidden         string
	ppoWorkers     int
	metricsEvery   int64
	snapshotEvery  int64
	ckptEvery      int64
}

func (f *learnFlags) register(fs *flagSet) {
	r := learner.DefaultReplay()
	p := learner.DefaultPPO(16, 12)
	fs.BoolVar(&f.enableIS, "enable-importance-sampling", true, "sample crisis experiences by priority and correct with IS weights (false: uniform)")
	fs.Float64Var(&f.crisisWeight, "crisis-parent-weight", r.CrisisWeight, "priority weight of crisis-parent experiences")
	fs.Float64Var(&f.alpha, "importance-sampling-alpha", r.Alpha, "prioritisation exponent α")
	fs.Float64Var(&f.beta, "importance-sampling-beta", r.Beta0, "initial IS exponent β0, annealed to 1")
	fs.Float64Var(&f.temperature, "temperature", r.Temperature, "temperature T in the exponent α/T")
	fs.Int64Var(&f.betaAnneal, "beta-anneal-updates", r.AnnealSteps, "updates over which β rises to 1")
	fs.Float64Var(&f.minCrisisRatio, "min-crisis-parent-ratio", r.MinCrisisRatio, "floor on the crisis stratum's sampling mass")
	fs.IntVar(&f.capacity, "replay-buffer-capacity", r.Capacity, "replay buffer capacity (oldest evicted)")
	fs.IntVar(&f.minBuffer, "min-buffer", 1000, "items in the buffer before the first update")
	fs.IntVar(&f.batchSize, "batch-size", 256, "samples drawn per update")
	fs.Float64Var(&f.spi, "samples-per-insert", 1, "rate limiter: samples drawn per experience ingested")
	fs.IntVar(&f.epochs, "epochs", p.Epochs, "PPO epochs per update")
	fs.IntVar(&f.minibatches, "minibatches", p.Minibatches, "PPO minibatches per epoch")
	fs.Float64Var(&f.lr, "learning-rate", p.LR, "Adam learning rate")
	fs.Float64Var(&f.gamma, "gamma", p.Gamma, "discount factor")
	fs.Float64Var(&f.entropyCoef, "entropy-coef", p.EntropyCoef, "entropy bonus coefficient")
	fs.Float64Var(&f.targetKL, "target-kl", p.TargetKL, "stop an update early past this approx KL (0: off)")
	fs.Int64Var(&f.maxStaleness, "max-staleness", 0, "drop samples more than this many policy versions old (0: off)")
	fs.StringVar(&f.hidden, "hidden", "64,64", "hidden layer widths")
	fs.IntVar(&f.ppoWorkers, "ppo-workers", p.Workers, "goroutines computing each PPO minibatch's gradient (1: serial)")
	fs.Int64Var(&f.metricsEvery, "metrics-every", 50, "publish TrainingMetrics every N updates")
	fs.Int64Var(&f.snapshotEvery, "snapshot-every", 100, "publish a PolicySnapshot every N updates")
	fs.Int64Var(&f.ckptEvery, "checkpoint-every", 500, "write a checkpoint every N updates")
}

func (f *learnFlags) config(stateDim, numActions int) (learner.Config, error) {
	r := learner.DefaultReplay()
	r.Uniform = !f.enableIS
	r.CrisisWeight, r.Alpha, r.Beta0, r.Temperature = f.crisisWeight, f.alpha, f.beta, f.temperature
	r.AnnealSteps, r.MinCrisisRatio, r.Capacity = f.betaAnneal, f.minCrisisRatio, f.capacity
	p := learner.DefaultPPO(stateDim, numActions)
	p.Epochs, p.Minibatches, p.LR, p.Gamma = f.epochs, f.minibatches, f.lr, f.gamma
	p.EntropyCoef, p.TargetKL, p.MaxStaleness, p.Workers = f.entropyCoef, f.targetKL, f.maxStaleness, f.ppoWorkers
	p.Hidden = nil
	for _, h := range splitList(f.hidden) {
		var w int
		if _, err := fmt.Sscanf(h, "%d", &w); err != nil {
			return learner.Config{}, usagef("invalid --hidden %q: want comma-separated widths", f.hidden)
		}
		p.Hidden = append(p.Hidden, w)
	}
	if err := r.Validate(); err != nil {
		return learner.Config{}, usagef("%v", err)
	}
	if err := p.Validate(); err != nil {
		return learner.Config{}, usagef("%v", strings.TrimPrefix(err.Error(), ppo.ErrInvalidConfig.Error()+": "))
	}
	return learner.Config{
		Replay: r, PPO: p, StateDim: stateDim, NumActions: numActions,
		MinBuffer: f.minBuffer, BatchSize: f.batchSize, SamplesPerInsert: f.spi,
		MetricsEvery: f.metricsEvery, SnapshotEvery: f.snapshotEvery, CheckpointEvery: f.ckptEvery,
	}, nil
}

func runLearn(ctx context.Context, args []string) error {
	fs := newFlagSet("learn")
	var lf logFlags
	var kf kafkaFlags
	var lrn learnFlags
	lf.register(fs)
	kf.register(fs, "127.0.0.1:9092")
	lrn.register(fs)
	experiment := fs.String("experiment", "", "experiment id (experiment_id, required)")
	learnerID := fs.String("learner-id", "learner-1", "learner id in metrics")
	stateDim := fs.Int("state-dim", 16, "state width of the experiences")
	numActions := fs.Int("num-actions", 12, "number of actions")
	ckpt := fs.String("checkpoint", "", "checkpoint file (write-then-rename); resumed from unless --fresh")
	fresh := fs.Bool("fresh", false, "start from scratch instead of resuming from --checkpoint")
	freshIfMissing := fs.Bool("fresh-if-missing", false, "start from scratch only when --checkpoint does not exist yet (for supervised restarts)")
	bounded := fs.Bool("bounded", false, "read up to the end offsets seen at start, train, checkpoint and exit")
	maxUpdates := fs.Int64("max-updates", 0, "stop after this many updates (0: no limit)")
	seed := fs.Uint64("seed", 1, "random seed")
	truthKey := fs.String("ground-truth-key", schemas.KeyTrueSegment, "metadata key of the true segment (tag accuracy and per-segment returns only)")
	tagged := fs.String("tagged-topic", "aelp.experiences.tagged", "topic of tagged experiences")
	metrics := fs.String("metrics-topic", "aelp.metrics", "topic for TrainingMetrics")
	policy := fs.String("policy-topic", "aelp.policy", "topic for PolicySnapshot")
	dlq := fs.String("dead-letter-topic", "aelp.deadletter", "topic for records that fail to decode or validate")
	httpAddr := fs.String("http", "", "serve /metrics and /healthz on this address (e.g. :9103)")
	if err := fs.parse(args); err != nil {
		return err
	}
	log, kcfg, err := connect("learn", &lf, &kf)
	if err != nil {
		return err
	}
	cfg, err := lrn.config(*stateDim, *numActions)
	if err != nil {
		return err
	}
	if *truthKey == "" {
		return usagef("--ground-truth-key must not be empty")
	}
	srv, err := startServing(*httpAddr, log)
	if err != nil {
		return err
	}
	defer srv.close()
	cfg.Kafka, cfg.ExperimentID, cfg.LearnerID = kcfg, *experiment, *learnerID
	cfg.CheckpointPath, cfg.Fresh, cfg.Bounded, cfg.MaxUpdates, cfg.Seed = *ckpt, *fresh, *bounded, *maxUpdates, *seed
	cfg.FreshIfMissing, cfg.GroundTruthKey = *freshIfMissing, *truthKey
	cfg.TaggedTopic, cfg.MetricsTopic, cfg.PolicyTopic, cfg.DeadLetterTopic = *tagged, *metrics, *policy, *dlq
	cfg.Log, cfg.Registry, cfg.Health = log, srv.reg, srv.health
	if err := cfg.Validate(); err != nil {
		return usagef("%v", err)
	}
	l, err := learner.New(cfg)
	if err != nil {
		return err
	}
	if err := l.Run(ctx); err != nil {
		return err
	}
	s := l.Stats()
	fmt.Printf("learned from %d experiences: %d updates, %d samples, checkpoint %s\n", s.Ingested, s.Updates, s.Sampled, *ckpt)
	return nil
}

func runRun(ctx context.Context, args []string) error {
	fs := newFlagSet("run")
	var lf logFlags
	var kf kafkaFlags
	var sf simFlags
	var lrn learnFlags
	lf.register(fs)
	kf.register(fs, "")
	sf.register(fs)
	lrn.register(fs)
	episodes := fs.Int64("episodes", 60_000, "simulated users (simulation_episodes)")
	workers := fs.Int("workers", 2, "simulator goroutines")
	seed := fs.Uint64("seed", 1, "random seed")
	experiment := fs.String("experiment", "", "experiment id (default run-<unix time>)")
	dataDir := fs.String("data-dir", "data/run", "directory for the checkpoint (and the broker log with --persist)")
	persist := fs.Bool("persist", false, "keep the embedded broker's log on disk under --data-dir")
	evalEpisodes := fs.Int("eval-episodes", 20_000, "held-out journeys per evaluated policy")
	curve := fs.Int("curve", 0, "after the run, evaluate every policy snapshot on this many held-out journeys and print the learning curve (0: off)")
	lrDecay := fs.Bool("lr-decay", true, "lower the learning rate linearly over the run, to a third of --learning-rate by its last possible update (false: constant)")
	if err := fs.parse(args); err != nil {
		return err
	}
	if lf.level == "info" && os.Getenv("AELP_LOG_LEVEL") == "" {
		lf.level = "warn" // the progress display and summary say what info would
	}
	log, err := lf.logger("run")
	if err != nil {
		return err
	}
	scfg, err := sf.config()
	if err != nil {
		return err
	}
	lcfg, err := lrn.config(scfg.StateDim, scfg.NumActions())
	if err != nil {
		return err
	}
	cfg := pipeline.Config{
		DataDir: *dataDir, Persist: *persist, ExperimentID: *experiment, Episodes: *episodes,
		Workers: *workers, Seed: *seed, Sim: scfg, Learner: lcfg, EvalEpisodes: *evalEpisodes, ConstantLR: !*lrDecay,
		CurveEpisodes: *curve,
		Progress:      os.Stderr, ProgressTTY: isatty.IsTerminal(os.Stderr.Fd()), Log: log,
	}
	if kf.brokers != "" {
		if cfg.Kafka, err = kf.config(); err != nil {
			return err
		}
	}
	if *episodes < 1 || *evalEpisodes < 1 {
		return usagef("--episodes and --eval-episodes must be at least 1")
	}
	if *curve < 0 {
		return usagef("--curve %d: must be 0 (off) or a number of journeys", *curve)
	}
	sum, err := pipeline.Run(ctx, cfg)
	if err != nil && ctx.Err() != nil {
		fmt.Fprintf(os.Stderr, "aelp run: interrupted after %.1fs: %d users simulated, %d experiences tagged, %d updates; learner checkpoint %s\n",
			sum.Elapsed.Seconds(), sum.Sim.Users, sum.Agg.Tagged, sum.Learn.Updates, sum.Checkpoint)
		return errInterrupted
	}
	if err != nil {
		return err
	}
	sum.Print(os.Stdout)
	return nil
}
