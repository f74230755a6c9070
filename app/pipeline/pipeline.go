// Package pipeline runs the whole aelp pipeline in one process — embedded
// broker (unless brokers are given), simulator, aggregator and learner —
// for `aelp run`, then evaluates the learned policy on held-out episodes
// beside the logging policy and the oracle. It wires roles; it holds no
// domain logic of its own.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aelp/aelp/app/tagger"
	"github.com/aelp/aelp/consumers"
	"github.com/aelp/aelp/consumers/classify"
	"github.com/aelp/aelp/consumers/join"
	"github.com/aelp/aelp/internal/broker"
	"github.com/aelp/aelp/internal/kafkax"
	"github.com/aelp/aelp/internal/lifecycle"
	"github.com/aelp/aelp/learner"
	"github.com/aelp/aelp/learner/policy"
	"github.com/aelp/aelp/learner/ppo"
	"github.com/aelp/aelp/producers"
	"github.com/aelp/aelp/producers/sim"
	"github.com/aelp/aelp/schemas"
	"github.com/aelp/aelp/serve"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"
)

// Config configures a pipeline run.
type Config struct {
	// Kafka is the connection; with no Brokers an embedded broker is
	// started in-process on a free port.
	Kafka kafkax.Config
	// DataDir holds the embedded broker's log (when Persist) and the
	// learner's checkpoint. Default ./data/run.
	DataDir string
	// Persist keeps the embedded broker's log in DataDir/kafka instead of
	// memory.
	Persist bool
	// ExperimentID names the run. Default "run-<unix time>".
	ExperimentID string
	// Episodes is the number of simulated users (simulation_episodes).
	// Default 60,000.
	Episodes int64
	// Workers is the number of simulator goroutines. Default 2.
	Workers int
	// Seed seeds the simulator and the learner.
	Seed uint64
	// Sim is the simulator model. Default sim.DefaultConfig().
	Sim sim.Config
	// Classifier configures the aggregator's crisis tagger. Default
	// classify.DefaultConfig().
	Classifier classify.Config
	// Learner configures the learner; Kafka, ExperimentID, StateDim,
	// NumActions, CheckpointPath, Fresh and Seed are set by Run.
	Learner learner.Config
	// MaxAhead is how many experiences the simulators may publish ahead
	// of what the learner has ingested; they wait beyond it, as a live ad
	// system is paced by its traffic, so that the learner's snapshots
	// reach them while the run lasts. Default 20,000.
	MaxAhead int64
	// ConstantLR keeps the learner's learning rate constant. By default
	// (false) a run whose learner has the constant schedule lowers the
	// rate linearly over the run instead, to a third of its start by the
	// last possible update (Episodes·MaxSteps·SamplesPerInsert/BatchSize;
	// journeys that end early on budget leave it a little higher). At a
	// constant rate the policy keeps drifting to the end of a short run:
	// it trades crisis for regular users at the ambiguous boundary and
	// back over a few hundred updates, and the final snapshot can land in
	// such a swing (crisis return once 17.9 against the logging policy's
	// 20.0 at the defaults).
	ConstantLR bool
	// EvalEpisodes is the number of held-out journeys each policy is
	// evaluated on. Default 20,000.
	EvalEpisodes int
	// CurveEpisodes, when positive, evaluates every policy snapshot the
	// learner published during the run on that many held-out journeys
	// (seed EvalSeed) after the run: the learning curve.
	CurveEpisodes int
	// EvalSeed seeds the held-out evaluation (not used for training).
	// Default sim.HeldOutSeed(Seed), 2⁴⁰ + Seed: the held-out journeys
	// aelp experiment ab and aelp evaluate use for the same training seed.
	EvalSeed uint64
	// Progress receives progress lines (a bar when ProgressTTY).
	Progress io.Writer
	// ProgressTTY redraws one status line instead of printing lines.
	ProgressTTY bool
	// Log receives the roles' logs.
	Log zerolog.Logger
	// Registry, when set, receives every role's metrics.
	Registry prometheus.Registerer
	// ShutdownTimeout is each role's time to drain after ctx ends
	// (lifecycle.Role). Default lifecycle.DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
	// Isolation is the aggregator's isolation level (consumers.
	// AggregateConfig.Isolation): read_committed by default.
	Isolation kafkax.Isolation
	// Live runs the simulator in live mode (Decision records, and Outcome
	// records later in simulated event time) and the join (aelp join,
	// configured by Join, its limits and max steps from Sim) in front of
	// the aggregator: simulate → join → aggregate → learn.
	Live bool
	// Join configures the live run's join core. Default join.Config{}
	// with its defaults (10 min windows).
	Join join.Config
	// BayesGhosts is the number of ghost journeys per segment and user of
	// the Monte Carlo posterior the run's Bayes limit of crisis tagging is
	// computed from (see measureTagLimit); negative: the limit is not
	// computed. Default DefaultBayesGhosts. A live run does not compute it.
	BayesGhosts int
	// Serve, with Live, puts the decision server (aelp serve) in the
	// loop: the simulator acts through its HTTP API on ServeAddr and the
	// server follows the learner's snapshots (see newServer).
	Serve bool
	// ServeAddr is the server's listen address. Default 127.0.0.1:0
	// (loopback, a free port).
	ServeAddr string
	// ServeEpsilon is the server's exploration share ε. DefaultConfig:
	// 0.05 (aelp serve's default); 0 is no exploration.
	ServeEpsilon float64
	// DecideWorkers is the simulator's journeys in flight with Serve.
	// Default producers.DefaultDecideWorkers.
	DecideWorkers int
}

// PPOWorkers is the number of goroutines a run's learner computes each
// PPO minibatch on by default, learner.DefaultPPO's count. A run keeps it
// at 1 whatever that default becomes: the simulators, the aggregator, the
// broker and the learner's readers are runnable beside the update, and
// every one of an update's 25 hand-offs waits for the second worker's
// goroutine to get a processor; on the shared 2-core machine runs
// streamed slower and took more CPU with two workers than with one
// (docs/ppo.md, "The blocking worker pool"). The update's results do not
// depend on the count (ppo.Config.Workers), so a run's policy is the same.
const PPOWorkers = 1

// DefaultConfig returns the defaults of `aelp run`: the data under
// data/run, 60,000 users on 2 simulator goroutines, seed 1,
// sim.DefaultConfig(), learner.DefaultConfig() with PPOWorkers PPO
// workers, at most 20,000 experiences
// ahead of the learner, 20,000 held-out journeys per evaluation and
// lifecycle.DefaultShutdownTimeout. The experiment id and the evaluation
// seed are derived when Run starts (see their fields). Seed, Learner and
// the booleans are left alone by setDefaults; every other zero field takes
// the value given here.
func DefaultConfig() Config {
	lcfg := learner.DefaultConfig()
	lcfg.PPO.Workers = PPOWorkers
	return Config{
		DataDir: filepath.Join("data", "run"), Episodes: 60_000, Workers: 2, Seed: 1, Sim: sim.DefaultConfig(),
		Classifier: classify.DefaultConfig(), Learner: lcfg, MaxAhead: 20_000, EvalEpisodes: 20_000,
		ShutdownTimeout: lifecycle.DefaultShutdownTimeout, ServeAddr: "127.0.0.1:0", ServeEpsilon: 0.05,
		DecideWorkers: producers.DefaultDecideWorkers,
	}
}

func (c *Config) setDefaults() {
	d := DefaultConfig()
	if c.DataDir == "" {
		c.DataDir = d.DataDir
	}
	if c.ExperimentID == "" {
		c.ExperimentID = fmt.Sprintf("run-%d", time.Now().Unix())
	}
	if c.Episodes == 0 {
		c.Episodes = d.Episodes
	}
	if c.Workers == 0 {
		c.Workers = d.Workers
	}
	if c.Sim == (sim.Config{}) {
		c.Sim = d.Sim
	}
	if c.Classifier.LabelKey == "" && c.Classifier.Keywords == nil {
		c.Classifier = d.Classifier
	}
	if c.EvalEpisodes == 0 {
		c.EvalEpisodes = d.EvalEpisodes
	}
	if c.MaxAhead == 0 {
		c.MaxAhead = d.MaxAhead
	}
	if c.EvalSeed == 0 {
		c.EvalSeed = sim.HeldOutSeed(c.Seed)
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = d.ShutdownTimeout
	}
	if c.BayesGhosts == 0 {
		c.BayesGhosts = DefaultBayesGhosts
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
	if c.ServeAddr == "" {
		c.ServeAddr = d.ServeAddr
	}
	if c.DecideWorkers == 0 {
		c.DecideWorkers = d.DecideWorkers
	}
}

// Validate reports the first invalid field (after defaults), the learner's
// configuration included as Run completes it.
func (c Config) Validate() error {
	c.setDefaults()
	switch {
	case c.Episodes < 1:
		return fmt.Errorf("episodes %d: must be at least 1", c.Episodes)
	case c.EvalEpisodes < 1:
		return fmt.Errorf("eval episodes %d: must be at least 1", c.EvalEpisodes)
	case c.CurveEpisodes < 0:
		return fmt.Errorf("curve episodes %d: must be 0 (off) or a number of journeys", c.CurveEpisodes)
	case c.Workers < 1:
		return fmt.Errorf("workers %d: must be at least 1", c.Workers)
	case c.ShutdownTimeout < 0:
		return fmt.Errorf("shutdown timeout %s: must not be negative", c.ShutdownTimeout)
	}
	switch {
	case c.Serve && !c.Live:
		return errors.New("serve: the decision server is in the live loop only: add live")
	case !(c.ServeEpsilon >= 0 && c.ServeEpsilon <= 1):
		return fmt.Errorf("serve epsilon %v: must be in [0, 1]", c.ServeEpsilon)
	case c.DecideWorkers < 1:
		return fmt.Errorf("decide workers %d: must be at least 1", c.DecideWorkers)
	}
	if err := c.Join.Validate(); c.Live && err != nil {
		return fmt.Errorf("join: %w", err)
	}
	if err := c.Sim.Validate(); err != nil {
		return fmt.Errorf("simulator: %w", err)
	}
	if err := c.Classifier.Validate(); err != nil {
		return err
	}
	kcfg := c.Kafka
	if len(kcfg.Brokers) == 0 {
		kcfg = kafkax.DefaultConfig() // an embedded broker
	}
	return c.learnerConfig(kcfg).Validate()
}

// learnerConfig is the learner's configuration of a run on kcfg.
func (c Config) learnerConfig(kcfg kafkax.Config) learner.Config {
	lcfg := c.Learner
	lcfg.Kafka, lcfg.ExperimentID, lcfg.Seed = kcfg, c.ExperimentID, c.Seed
	lcfg.StateDim, lcfg.NumActions = c.Sim.StateDim, c.Sim.NumActions()
	if lcfg.PPO.ObsDim == 0 {
		lcfg.PPO = learner.DefaultPPO(lcfg.StateDim, lcfg.NumActions)
		lcfg.PPO.Workers = PPOWorkers
	}
	if !c.ConstantLR && lcfg.PPO.LRSchedule == ppo.ScheduleConstant {
		lcfg.PPO.LRSchedule, lcfg.PPO.TotalUpdates = ppo.ScheduleLinear, decayUpdates(c, lcfg.WithDefaults())
	}
	lcfg.CheckpointPath = filepath.Join(c.DataDir, c.ExperimentID+".ckpt")
	lcfg.Fresh = true
	lcfg.ShutdownTimeout = c.ShutdownTimeout
	lcfg.Log = c.Log.With().Str("role", "learn").Logger()
	lcfg.Registry = c.Registry
	return lcfg
}

// Summary is what a run produced.
type Summary struct {
	// ExperimentID names the run; Brokers are where it ran (embedded or
	// given).
	ExperimentID string
	Brokers      []string
	Embedded     bool
	// Tagger is the aggregator's crisis tagger configuration.
	Tagger classify.Config
	// TagLimit is the Bayes limit of crisis tagging on the run's own
	// stream beside the aggregator's tags on the same records (nil when
	// not computed: a live run, or BayesGhosts < 0).
	TagLimit *tagger.StreamLimit
	// Sim, Agg and Learn are the roles' final figures.
	Sim   producers.SimulateReport
	Agg   consumers.AggregateStats
	Learn learner.Stats
	// Learned, Logging are evaluations on held-out journeys; Oracle the
	// exact reference.
	Learned, Logging sim.EvalReport
	Oracle           sim.OracleReport
	// HeldBack is the time the simulators waited for the learner to come
	// within MaxAhead (live: the join's output), summed over their
	// goroutines. With the learner's Stats.UpdateTime and WaitTime it
	// tells which stage held the stream up.
	HeldBack time.Duration
	// Served, with the promotion gate on (Learner.OPE.Promote lcb), is
	// the evaluation of the policy serving at the end — the newest
	// snapshot on the policy topic, the one the simulators act with, or
	// the logging policy when the gate promoted none; ServedVersion is its
	// version (−1: the logging policy). Learned is the learner's last
	// policy, promoted or not.
	Served        *sim.EvalReport
	ServedVersion int64
	// Curve is the evaluation of every policy snapshot in version order,
	// when Config.CurveEpisodes asked for it.
	Curve []policy.CurvePoint
	// Checkpoint is the learner's checkpoint file.
	Checkpoint string
	// Elapsed is the wall time of the streaming part; EvalElapsed of the
	// evaluation; TagLimitElapsed of the Bayes limit's computation.
	Elapsed, EvalElapsed, TagLimitElapsed time.Duration
	// Join is the join's figures of a live run (nil otherwise), with the
	// windows it used.
	Join        *consumers.JoinStats
	JoinWindows join.Windows
	// Serve is the decision server's figures of a live run with Serve
	// (nil otherwise), and the simulator's retried requests.
	Serve        *serve.Stats
	ServeRetries int64
}

// Run runs the pipeline to completion: the simulator publishes Episodes
// users' journeys (acting with the learner's newest snapshots as they
// arrive), the aggregator tags them, the learner trains until its
// samples-per-insert budget for them is spent, then the learned policy is
// evaluated. Cancelling ctx stops every role cleanly (the learner still
// checkpoints) and returns the figures so far with ctx's error.
func Run(ctx context.Context, cfg Config) (Summary, error) {
	cfg.setDefaults()
	sum := Summary{ExperimentID: cfg.ExperimentID, Tagger: cfg.Classifier}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return sum, fmt.Errorf("run: %w", err)
	}
	kcfg, stopBroker, err := connect(cfg, &sum)
	if err != nil {
		return sum, fmt.Errorf("run: %w", err)
	}
	defer stopBroker()
	if err := kafkax.EnsureTopics(ctx, kcfg, kafkax.DefaultTopics(6)...); err != nil {
		return sum, fmt.Errorf("run: %w", err)
	}
	r, err := newRoles(cfg, kcfg)
	if err != nil {
		return sum, fmt.Errorf("run: %w", err)
	}
	sum.Checkpoint = r.lcfg.CheckpointPath
	start := time.Now()
	stream := r.stream
	if cfg.Live {
		stream = r.streamLive
	}
	runErr := stream(ctx, cfg, kcfg, start)
	sum.Elapsed = time.Since(start)
	sum.Sim, sum.Agg, sum.Learn = r.sim.Stats(), r.agg.Stats(), r.lrn.Stats()
	sum.HeldBack = time.Duration(r.held.Load())
	if r.jn != nil {
		st := r.jn.Stats()
		sum.Join, sum.JoinWindows = &st, r.jn.Config().Join.Windows
	}
	if r.srv != nil {
		st := r.srv.Stats()
		sum.Serve, sum.ServeRetries = &st, r.live.Stats().Retries
	}
	if runErr != nil {
		return sum, fmt.Errorf("run: %w", runErr)
	}
	if err := ctx.Err(); err != nil {
		return sum, err
	}
	if sum.Learn.Updates == 0 {
		return sum, fmt.Errorf("run: the learner made no update (%d experiences ingested, min buffer %d)",
			sum.Learn.Ingested, r.lcfg.WithDefaults().MinBuffer)
	}
	evalStart := time.Now()
	if err := evaluate(ctx, cfg, kcfg, r, &sum); err != nil {
		return sum, fmt.Errorf("run: %w", err)
	}
	sum.EvalElapsed = time.Since(evalStart)
	if !cfg.Live && cfg.BayesGhosts > 0 {
		fmt.Fprintf(cfg.Progress, "computing the Bayes limit of crisis tagging on the run's stream (%d ghost journeys per segment and user)...\n", cfg.BayesGhosts)
		limStart := time.Now()
		if sum.TagLimit, err = measureTagLimit(ctx, cfg, kcfg, r); err != nil {
			return sum, fmt.Errorf("run: %w", err)
		}
		sum.TagLimitElapsed = time.Since(limStart)
	}
	return sum, nil
}

// connect returns the connection of the run: cfg.Kafka, or an embedded
// broker started here (stop closes it).
func connect(cfg Config, sum *Summary) (kcfg kafkax.Config, stop func(), err error) {
	kcfg, stop = cfg.Kafka, func() {}
	if len(kcfg.Brokers) == 0 {
		bc := broker.Config{Listen: "127.0.0.1:0", Logger: cfg.Log}
		if cfg.Persist {
			bc.DataDir = filepath.Join(cfg.DataDir, "kafka")
		}
		b, err := broker.Start(bc)
		if err != nil {
			return kcfg, stop, err
		}
		kcfg.Brokers, stop = b.Addrs(), b.Close
		sum.Embedded = true
	}
	kcfg = kcfg.WithDefaults()
	sum.Brokers = kcfg.Brokers
	return kcfg, stop, nil
}

// roles are the three roles of a run (four when live: the simulator in
// live mode and the join).
type roles struct {
	lcfg learner.Config
	lrn  *learner.Learner
	agg  *consumers.Aggregator
	sim  *producers.Simulator
	live *producers.LiveSimulator
	jn   *consumers.Joiner
	srv  *serve.Server // with Serve
	// held is the time the simulator goroutines waited in their pace
	// function (MaxAhead), summed over them, in nanoseconds.
	held atomic.Int64
}

// heldBack adds the time since t0 to the simulators' waits.
func (r *roles) heldBack(t0 time.Time) { r.held.Add(int64(time.Since(t0))) }

// newRoles configures the learner, the aggregator and the simulator, the
// simulators paced to stay within MaxAhead experiences of the learner.
func newRoles(cfg Config, kcfg kafkax.Config) (*roles, error) {
	r := &roles{lcfg: cfg.learnerConfig(kcfg)}
	var err error
	if r.lrn, err = learner.New(r.lcfg); err != nil {
		return nil, err
	}
	// The aggregator's group is aelp aggregate's default: tagging does not
	// depend on the experiment, so a run on shared brokers resumes where
	// the last aggregator of the raw topic committed instead of tagging
	// every earlier experiment's records again.
	agg := consumers.DefaultAggregateConfig()
	if r.agg, err = consumers.NewAggregator(consumers.AggregateConfig{
		Kafka: kcfg, Group: agg.Group, InTopic: agg.InTopic, Isolation: cfg.Isolation, Classifier: cfg.Classifier,
		TaggerStatePath: taggerStatePath(cfg),
		Limits:          schemas.Limits{StateDim: cfg.Sim.StateDim, NumActions: cfg.Sim.NumActions()},
		ShutdownTimeout: cfg.ShutdownTimeout,
		Log:             cfg.Log.With().Str("role", "aggregate").Logger(), Registry: cfg.Registry,
	}); err != nil {
		return nil, err
	}
	if cfg.Live {
		return r, r.newLiveRoles(cfg, kcfg)
	}
	pace := func(ctx context.Context) error {
		defer r.heldBack(time.Now())
		for r.sim.Stats().Experiences-r.lrn.Stats().Consumed() > cfg.MaxAhead {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(5 * time.Millisecond):
			}
		}
		return nil
	}
	if r.sim, err = producers.NewSimulator(producers.SimulateConfig{
		Kafka: kcfg, ExperimentID: cfg.ExperimentID, Users: cfg.Episodes, Workers: cfg.Workers,
		Seed: cfg.Seed, Sim: cfg.Sim, FollowPolicy: true, Pace: pace, ShutdownTimeout: cfg.ShutdownTimeout,
		Log: cfg.Log.With().Str("role", "simulate").Logger(), Registry: cfg.Registry,
	}); err != nil {
		return nil, err
	}
	return r, nil
}

// stream runs the three roles and the progress display until the learner
// has finished the data (or ctx ends, or a role fails).
func (r *roles) stream(ctx context.Context, cfg Config, kcfg kafkax.Config, start time.Time) error {
	g, gctx := errgroup.WithContext(ctx)
	aggCtx, stopAgg := context.WithCancel(gctx)
	defer stopAgg()
	progCtx, stopProg := context.WithCancel(context.Background())
	defer stopProg()
	var roles sync.WaitGroup
	roles.Add(3)
	g.Go(func() error { defer roles.Done(); return r.agg.Run(aggCtx) })
	g.Go(func() error {
		// The learner returns after Finish (or on failure); the aggregator
		// has then nothing left to do.
		defer roles.Done()
		defer stopAgg()
		return r.lrn.Run(gctx)
	})
	g.Go(func() error {
		defer roles.Done()
		if _, err := r.sim.Run(gctx); err != nil {
			return err
		}
		// Wait until the aggregator's group has committed everything on
		// the raw topic (every record published is acknowledged by now),
		// then let the learner finish the data.
		if err := awaitGroupCaughtUp(gctx, kcfg, r.agg, cfg.Log); err != nil {
			if gctx.Err() != nil {
				return nil
			}
			return err
		}
		r.lrn.Finish()
		return nil
	})
	g.Go(func() error { progress(progCtx, cfg, r.sim, r.agg, r.lrn, start); return nil })
	go func() { roles.Wait(); stopProg() }() // the display ends with the roles
	return g.Wait()
}

// awaitGroupCaughtUp waits until the aggregator's consumer group has no
// lag on its input topic: every record up to the end offsets (the last
// stable offsets) committed, so its outputs are acknowledged. A look-up
// that fails (a coordinator moving) is retried until ctx ends.
func awaitGroupCaughtUp(ctx context.Context, kcfg kafkax.Config, a *consumers.Aggregator, log zerolog.Logger) error {
	acfg := a.Config()
	rd, err := kafkax.NewReader(kcfg, acfg.InTopic, kafkax.ReadOptions{Logger: log})
	if err != nil {
		return fmt.Errorf("await the aggregator: %w", err)
	}
	defer rd.Close()
	for {
		lag, err := rd.GroupLag(ctx, acfg.Group)
		if err == nil && lag == 0 {
			return nil
		}
		if errors.Is(err, kafkax.ErrAuth) {
			return fmt.Errorf("await the aggregator: %w", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// evaluate evaluates the learned policy, the logging policy and the oracle
// on the held-out journeys, and the learning curve when asked for.
func evaluate(ctx context.Context, cfg Config, kcfg kafkax.Config, r *roles, sum *Summary) error {
	fmt.Fprintf(cfg.Progress, "evaluating the learned policy, the logging policy and the oracle on %d held-out journeys each...\n", cfg.EvalEpisodes)
	var err error
	learned := r.lrn.Agent().Snapshot()
	if sum.Learned, err = sim.Evaluate(cfg.Sim, learned, cfg.EvalEpisodes, cfg.EvalSeed); err != nil {
		return fmt.Errorf("evaluate learned policy: %w", err)
	}
	if sum.Logging, err = sim.Evaluate(cfg.Sim, sim.Uniform{N: cfg.Sim.NumActions()}, cfg.EvalEpisodes, cfg.EvalSeed); err != nil {
		return fmt.Errorf("evaluate logging policy: %w", err)
	}
	if sum.Oracle, err = sim.Oracle(cfg.Sim); err != nil {
		return fmt.Errorf("oracle: %w", err)
	}
	if r.lcfg.WithDefaults().OPE.Promote == learner.PromoteLCB {
		if err := evaluateServed(ctx, cfg, kcfg, r, sum); err != nil {
			return err
		}
	}
	if cfg.CurveEpisodes > 0 {
		src := policy.Source{Kafka: kcfg, Topic: r.lcfg.WithDefaults().PolicyTopic, ExperimentID: cfg.ExperimentID, Log: cfg.Log}
		if sum.Curve, err = policy.EvaluateSnapshots(ctx, src, cfg.Sim, cfg.CurveEpisodes, cfg.EvalSeed); err != nil {
			return fmt.Errorf("learning curve: %w", err)
		}
	}
	return nil
}

// evaluateServed evaluates the policy serving at the end of a gated run:
// the newest snapshot on the policy topic, or the logging policy.
func evaluateServed(ctx context.Context, cfg Config, kcfg kafkax.Config, r *roles, sum *Summary) error {
	src := policy.Source{Kafka: kcfg, Topic: r.lcfg.WithDefaults().PolicyTopic, ExperimentID: cfg.ExperimentID, Log: cfg.Log}
	snap, err := src.Latest(ctx)
	if err != nil {
		return fmt.Errorf("serving policy: %w", err)
	}
	if snap == nil {
		sum.Served, sum.ServedVersion = &sum.Logging, -1
		return nil
	}
	pol, err := ppo.LoadPolicy(snap.Architecture, snap.Params, snap.ObsMean, snap.ObsVar, snap.ObsCount)
	if err != nil {
		return fmt.Errorf("serving policy v%d: %w", snap.Version, err)
	}
	ev, err := sim.Evaluate(cfg.Sim, pol, cfg.EvalEpisodes, cfg.EvalSeed)
	if err != nil {
		return fmt.Errorf("evaluate serving policy v%d: %w", snap.Version, err)
	}
	sum.Served, sum.ServedVersion = &ev, snap.Version
	return nil
}

// decayUpdates is the TotalUpdates of the linear schedule that brings the
// learning rate to a third of its start at the run's last possible update,
// U = Episodes·MaxSteps·SamplesPerInsert/BatchSize: 1.5·U.
func decayUpdates(cfg Config, l learner.Config) int {
	u := float64(cfg.Episodes) * float64(cfg.Sim.MaxSteps) * l.SamplesPerInsert / float64(l.BatchSize)
	return int(math.Ceil(1.5 * math.Max(u, 1)))
}

func progress(ctx context.Context, cfg Config, s *producers.Simulator, a *consumers.Aggregator, l *learner.Learner, start time.Time) {
	every := 5 * time.Second
	if cfg.ProgressTTY {
		every = 250 * time.Millisecond
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			if cfg.ProgressTTY {
				fmt.Fprint(cfg.Progress, "\r\033[K")
			}
			return
		case <-t.C:
		}
		ss, as, ls := s.Stats(), a.Stats(), l.Stats()
		frac := float64(ss.Users) / float64(cfg.Episodes)
		line := fmt.Sprintf("%5.1fs users %d/%d  tagged %d  ingested %d  updates %d  policy v%d",
			time.Since(start).Seconds(), ss.Users, cfg.Episodes, as.Tagged, ls.Ingested, ls.Updates, ls.PolicyVersion)
		if cfg.ProgressTTY {
			const width = 24
			n := int(frac * width)
			n = max(0, min(width, n))
			fmt.Fprintf(cfg.Progress, "\r\033[K[%s%s] %s", strings.Repeat("#", n), strings.Repeat(".", width-n), line)
		} else {
			fmt.Fprintln(cfg.Progress, line)
		}
	}
}
