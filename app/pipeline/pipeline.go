// Package pipeline runs the whole aelp pipeline in one process — embedded
// broker (unless brokers are given), simulator, aggregator and learner —
// for `aelp run`, then evaluates the learned policy on held-out episodes
// beside the logging policy and the oracle. It wires roles; it holds no
// domain logic of its own.
package pipeline

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aelp/aelp/consumers"
	"github.com/aelp/aelp/internal/broker"
	"github.com/aelp/aelp/internal/kafkax"
	"github.com/aelp/aelp/learner"
	"github.com/aelp/aelp/learner/policy"
	"github.com/aelp/aelp/learner/ppo"
	"github.com/aelp/aelp/producers"
	"github.com/aelp/aelp/producers/sim"
	"github.com/aelp/aelp/schemas"
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
}

func (c *Config) setDefaults() {
	if c.DataDir == "" {
		c.DataDir = filepath.Join("data", "run")
	}
	if c.ExperimentID == "" {
		c.ExperimentID = fmt.Sprintf("run-%d", time.Now().Unix())
	}
	if c.Episodes == 0 {
		c.Episodes = 60_000
	}
	if c.Workers == 0 {
		c.Workers = 2
	}
	if c.Sim == (sim.Config{}) {
		c.Sim = sim.DefaultConfig()
	}
	if c.EvalEpisodes == 0 {
		c.EvalEpisodes = 20_000
	}
	if c.MaxAhead == 0 {
		c.MaxAhead = 20_000
	}
	if c.EvalSeed == 0 {
		c.EvalSeed = sim.HeldOutSeed(c.Seed)
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
}

// Summary is what a run produced.
type Summary struct {
	// ExperimentID names the run; Brokers are where it ran (embedded or
	// given).
	ExperimentID string
	Brokers      []string
	Embedded     bool
	// Sim, Agg and Learn are the roles' final figures.
	Sim   producers.SimulateReport
	Agg   consumers.AggregateStats
	Learn learner.Stats
	// Learned, Logging are evaluations on held-out journeys; Oracle the
	// exact reference.
	Learned, Logging sim.EvalReport
	Oracle           sim.OracleReport
	// Curve is the evaluation of every policy snapshot in version order,
	// when Config.CurveEpisodes asked for it.
	Curve []policy.CurvePoint
	// Checkpoint is the learner's checkpoint file.
	Checkpoint string
	// Elapsed is the wall time of the streaming part; EvalElapsed of the
	// evaluation.
	Elapsed, EvalElapsed time.Duration
}

// Run runs the pipeline to completion: the simulator publishes Episodes
// users' journeys (acting with the learner's newest snapshots as they
// arrive), the aggregator tags them, the learner trains until its
// samples-per-insert budget for them is spent, then the learned policy is
// evaluated. Cancelling ctx stops every role cleanly (the learner still
// checkpoints) and returns the figures so far with ctx's error.
func Run(ctx context.Context, cfg Config) (Summary, error) {
	cfg.setDefaults()
	sum := Summary{ExperimentID: cfg.ExperimentID}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return sum, fmt.Errorf("run: %w", err)
	}
	kcfg := cfg.Kafka
	if len(kcfg.Brokers) == 0 {
		bc := broker.Config{Listen: "127.0.0.1:0", Logger: cfg.Log}
		if cfg.Persist {
			bc.DataDir = filepath.Join(cfg.DataDir, "kafka")
		}
		b, err := broker.Start(bc)
		if err != nil {
			return sum, fmt.Errorf("run: %w", err)
		}
		defer b.Close()
		kcfg.Brokers = b.Addrs()
		sum.Embedded = true
	}
	kcfg = kcfg.WithDefaults()
	sum.Brokers = kcfg.Brokers
	if err := kafkax.EnsureTopics(ctx, kcfg, kafkax.DefaultTopics(6)...); err != nil {
		return sum, fmt.Errorf("run: %w", err)
	}

	lcfg := cfg.Learner
	lcfg.Kafka, lcfg.ExperimentID, lcfg.Seed = kcfg, cfg.ExperimentID, cfg.Seed
	lcfg.StateDim, lcfg.NumActions = cfg.Sim.StateDim, cfg.Sim.NumActions()
	if lcfg.PPO.ObsDim == 0 {
		lcfg.PPO = learner.DefaultPPO(lcfg.StateDim, lcfg.NumActions)
	}
	if !cfg.ConstantLR && lcfg.PPO.LRSchedule == ppo.ScheduleConstant {
		lcfg.PPO.LRSchedule, lcfg.PPO.TotalUpdates = ppo.ScheduleLinear, decayUpdates(cfg, lcfg.WithDefaults())
	}
	lcfg.CheckpointPath = filepath.Join(cfg.DataDir, cfg.ExperimentID+".ckpt")
	lcfg.Fresh = true
	lcfg.Log = cfg.Log.With().Str("role", "learn").Logger()
	lcfg.Registry = cfg.Registry
	lrn, err := learner.New(lcfg)
	if err != nil {
		return sum, fmt.Errorf("run: %w", err)
	}
	sum.Checkpoint = lcfg.CheckpointPath
	agg, err := consumers.NewAggregator(consumers.AggregateConfig{
		Kafka: kcfg, Group: "aelp-aggregator-" + cfg.ExperimentID,
		Limits: schemas.Limits{StateDim: cfg.Sim.StateDim, NumActions: cfg.Sim.NumActions()},
		Log:    cfg.Log.With().Str("role", "aggregate").Logger(), Registry: cfg.Registry,
	})
	if err != nil {
		return sum, fmt.Errorf("run: %w", err)
	}
	var simr *producers.Simulator
	pace := func(ctx context.Context) error {
		for simr.Stats().Experiences-lrn.Stats().Ingested > cfg.MaxAhead {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(5 * time.Millisecond):
			}
		}
		return nil
	}
	simr, err = producers.NewSimulator(producers.SimulateConfig{
		Kafka: kcfg, ExperimentID: cfg.ExperimentID, Users: cfg.Episodes, Workers: cfg.Workers,
		Seed: cfg.Seed, Sim: cfg.Sim, FollowPolicy: true, Pace: pace,
		Log: cfg.Log.With().Str("role", "simulate").Logger(), Registry: cfg.Registry,
	})
	if err != nil {
		return sum, fmt.Errorf("run: %w", err)
	}

	start := time.Now()
	g, gctx := errgroup.WithContext(ctx)
	aggCtx, stopAgg := context.WithCancel(gctx)
	defer stopAgg()
	g.Go(func() error { return agg.Run(aggCtx) })
	g.Go(func() error {
		// The learner returns after Finish (or on failure); the aggregator
		// has then nothing left to do.
		defer stopAgg()
		return lrn.Run(gctx)
	})
	g.Go(func() error {
		rep, err := simr.Run(gctx)
		if err != nil {
			return err
		}
		// Wait until the aggregator has committed everything published,
		// then let the learner finish the data.
		for agg.Stats().Committed < rep.Experiences {
			select {
			case <-gctx.Done():
				return nil
			case <-time.After(50 * time.Millisecond):
			}
		}
		lrn.Finish()
		return nil
	})
	progDone := make(chan struct{})
	progCtx, stopProg := context.WithCancel(context.Background())
	go func() {
		defer close(progDone)
		progress(progCtx, cfg, simr, agg, lrn, start)
	}()
	runErr := g.Wait()
	stopProg()
	<-progDone
	sum.Elapsed = time.Since(start)
	sum.Sim, sum.Agg, sum.Learn = simr.Stats(), agg.Stats(), lrn.Stats()
	if runErr != nil {
		return sum, fmt.Errorf("run: %w", runErr)
	}
	if err := ctx.Err(); err != nil {
		return sum, err
	}
	if sum.Learn.Updates == 0 {
		return sum, fmt.Errorf("run: the learner made no update (%d experiences ingested, min buffer %d)",
			sum.Learn.Ingested, lcfg.WithDefaults().MinBuffer)
	}

	evalStart := time.Now()
	fmt.Fprintf(cfg.Progress, "evaluating the learned policy, the logging policy and the oracle on %d held-out journeys each...\n", cfg.EvalEpisodes)
	learned := lrn.Agent().Snapshot()
	if sum.Learned, err = sim.Evaluate(cfg.Sim, learned, cfg.EvalEpisodes, cfg.EvalSeed); err != nil {
		return sum, fmt.Errorf("run: evaluate learned policy: %w", err)
	}
	if sum.Logging, err = sim.Evaluate(cfg.Sim, sim.Uniform{N: cfg.Sim.NumActions()}, cfg.EvalEpisodes, cfg.EvalSeed); err != nil {
		return sum, fmt.Errorf("run: evaluate logging policy: %w", err)
	}
	if sum.Oracle, err = sim.Oracle(cfg.Sim); err != nil {
		return sum, fmt.Errorf("run: oracle: %w", err)
	}
	if cfg.CurveEpisodes > 0 {
		src := policy.Source{Kafka: kcfg, Topic: lcfg.WithDefaults().PolicyTopic, ExperimentID: cfg.ExperimentID, Log: cfg.Log}
		if sum.Curve, err = policy.EvaluateSnapshots(ctx, src, cfg.Sim, cfg.CurveEpisodes, cfg.EvalSeed); err != nil {
			return sum, fmt.Errorf("run: learning curve: %w", err)
		}
	}
	sum.EvalElapsed = time.Since(evalStart)
	return sum, nil
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
