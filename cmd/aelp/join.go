package main

import (
	"context"
	"fmt"

	"github.com/aelp/aelp/app/pipeline"
	"github.com/aelp/aelp/consumers"
	"github.com/aelp/aelp/consumers/join"
	"github.com/aelp/aelp/internal/kafkax"
	"github.com/aelp/aelp/producers"
	"github.com/aelp/aelp/producers/sim"
)

// windowsValue is --window: a duration, or kind=duration pairs.
type windowsValue struct{ p *join.Windows }

func (v windowsValue) String() string {
	if v.p == nil {
		return ""
	}
	return v.p.String()
}

func (v windowsValue) target() any { return v.p }

func (v windowsValue) Set(s string) error {
	w, err := join.ParseWindows(s)
	if err != nil {
		return err
	}
	*v.p = w
	return nil
}

// joinCoreFlags registers the join core's flags onto j (join, run --live).
func joinCoreFlags(fs *flagSet, j *join.Config) {
	fs.Var(windowsValue{&j.Windows}, "window",
		"attribution `window` in event time after a decision: a duration (10m), or per outcome kind, e.g. 10m,conversion=24h,click=30m")
	fs.DurationVar(&j.Grace, "grace", j.Grace, "how far the watermark stays behind the highest event time seen (out-of-order slack)")
	fs.DurationVar(&j.IdleAdvance, "idle-advance", j.IdleAdvance, "wall time without records after which a partition's watermark follows the wall clock")
	fs.DurationVar(&j.BackwardWindow, "backward-window", j.BackwardWindow, "how long an outcome that arrives before its decision is held for it (event time)")
	fs.Float64Var(&j.DefaultReward, "default-reward", j.DefaultReward, "reward of a decision no outcome is attributed to")
	fs.IntVar(&j.MaxPending, "max-pending", j.MaxPending, "open decisions at which reading decisions pauses until windows close (back pressure)")
}

// runLiveFlags registers aelp run's --live and its join flags.
func runLiveFlags(fs *flagSet, cfg *pipeline.Config) {
	fs.BoolVar(&cfg.Live, "live", cfg.Live, "live mode: simulate decisions and delayed outcomes, join them (aelp join), then aggregate and learn")
	joinCoreFlags(fs, &cfg.Join)
	fs.BoolVar(&cfg.Serve, "serve", cfg.Serve, "with --live: run the decision server (aelp serve) in the loop; the simulator acts through its HTTP API: simulate → serve → decisions/outcomes → join → aggregate → learn → policy → serve")
	fs.StringVar(&cfg.ServeAddr, "serve-http", cfg.ServeAddr, "with --serve: the decision server's listen address")
	fs.Float64Var(&cfg.ServeEpsilon, "serve-epsilon", cfg.ServeEpsilon, "with --serve: the decision server's exploration ε")
	fs.IntVar(&cfg.DecideWorkers, "decide-workers", cfg.DecideWorkers, "with --serve: journeys the simulator keeps in flight (decide requests at once)")
}

func joinSetup() (*flagSet, action) {
	fs := newFlagSet("join")
	sh := newShared(fs, sharedFlags{kafka: true, writes: true, http: ":9104", shutdown: true})
	cfg := newConfig(fs, consumers.DefaultJoinConfig)
	j := &cfg.Join
	joinCoreFlags(fs, j)
	fs.IntVar(&j.MaxSteps, "max-steps", j.MaxSteps, "a decision at step max-steps-1 ends its episode (0: unknown)")
	fs.IntVar(&j.Limits.StateDim, "state-dim", j.Limits.StateDim, "required state width of a decision (0: unchecked)")
	fs.IntVar(&j.Limits.NumActions, "num-actions", j.Limits.NumActions, "number of actions; a decision's action and distribution must fit (0: unchecked)")
	fs.StringVar(&cfg.DecisionsTopic, "decisions-topic", cfg.DecisionsTopic, "topic of Decision records")
	fs.StringVar(&cfg.OutcomesTopic, "outcomes-topic", cfg.OutcomesTopic, "topic of Outcome records (co-partitioned with the decisions)")
	fs.StringVar(&cfg.OutTopic, "out-topic", cfg.OutTopic, "topic to publish the joined experiences to")
	fs.StringVar(&cfg.LateTopic, "late-topic", cfg.LateTopic, "topic for late and unmatched outcomes (reason in the aelp.error header)")
	fs.StringVar(&cfg.DeadLetterTopic, "dead-letter-topic", cfg.DeadLetterTopic, "topic for records that fail to decode or validate")
	fs.StringVar(&cfg.Group, "group", cfg.Group, "consumer group id")
	isolationFlag(fs, &cfg.Isolation)
	fs.DurationVar(&cfg.Tick, "tick", cfg.Tick, "how often watermarks move without traffic and safe offsets are committed")
	fs.IntVar(&cfg.Partitions, "partitions", cfg.Partitions, "partitions of the topics when they are created")
	return fs, func(ctx context.Context) error {
		srv, err := sh.startRole("join", func(e roleEnv) { cfg.Kafka, cfg.Log, cfg.ShutdownTimeout = e.kafka, e.log, e.shutdown }, cfg.Validate)
		if err != nil {
			return err
		}
		defer srv.close()
		cfg.Registry, cfg.Health = srv.reg, srv.health
		jn, err := consumers.NewJoiner(*cfg)
		if err != nil {
			return err
		}
		return jn.Run(ctx)
	}
}

// simulateLive is the simulate command's choice of records and, in live
// mode, its topics and delay model.
type simulateLive struct {
	// Emit is "experiences" (joined transitions on --topic) or
	// "decisions" (live mode: Decision and Outcome records).
	Emit                          string
	DecisionsTopic, OutcomesTopic string
	Live                          sim.LiveConfig
	// DecideURL, DecideWorkers and OutcomePosts: live mode through a
	// decision server (producers.LiveSimulateConfig).
	DecideURL                   string
	DecideWorkers, OutcomePosts int
}

func defaultSimulateLive() simulateLive {
	return simulateLive{Emit: "experiences", DecisionsTopic: kafkax.TopicDecisions, OutcomesTopic: kafkax.TopicOutcomes,
		Live: sim.DefaultLiveConfig(), DecideWorkers: producers.DefaultDecideWorkers, OutcomePosts: producers.DefaultOutcomePosts}
}

// liveFlags registers simulate's --emit and live-mode flags.
func liveFlags(fs *flagSet) *simulateLive {
	l := newConfig(fs, defaultSimulateLive)
	fs.StringVar(&l.Emit, "emit", l.Emit, "`records` to publish: experiences (joined transitions) or decisions (live mode: Decision records now, Outcome records later in event time)")
	fs.StringVar(&l.DecisionsTopic, "decisions-topic", l.DecisionsTopic, "live mode: topic of Decision records")
	fs.StringVar(&l.OutcomesTopic, "outcomes-topic", l.OutcomesTopic, "live mode: topic of Outcome records")
	fs.Float64Var(&l.Live.ArrivalRate, "arrival-rate", l.Live.ArrivalRate, "live mode: users arriving per second of event time")
	fs.DurationVar(&l.Live.ConversionMedian, "conversion-median", l.Live.ConversionMedian, "live mode: median of the log-normal conversion delay")
	fs.Float64Var(&l.Live.ConversionSigma, "conversion-sigma", l.Live.ConversionSigma, "live mode: log-scale σ of the conversion delay")
	fs.Float64Var(&l.Live.DuplicateShare, "duplicate-share", l.Live.DuplicateShare, "live mode: share of outcomes delivered twice")
	fs.Float64Var(&l.Live.DisorderShare, "disorder-share", l.Live.DisorderShare, "live mode: share of outcomes delivered out of order")
	fs.StringVar(&l.DecideURL, "decide-url", l.DecideURL, "live mode: act through the decision server (aelp serve) at this base `URL`: each decision from POST /v1/decide (the server logs it), the outcomes posted to /v1/outcome; nothing is written to Kafka by the simulator")
	fs.IntVar(&l.DecideWorkers, "decide-workers", l.DecideWorkers, "live mode with --decide-url: journeys simulated at once (decide requests in flight)")
	fs.IntVar(&l.OutcomePosts, "outcome-posts", l.OutcomePosts, "live mode with --decide-url: outcome posts in flight (started in delivery order)")
	return l
}

// validate checks --emit and, in live mode, the delay model.
func (l *simulateLive) validate() error {
	switch l.Emit {
	case "experiences":
		if l.DecideURL != "" {
			return usagef("--decide-url needs --emit decisions")
		}
		return nil
	case "decisions":
		if err := l.Live.Validate(); err != nil {
			return usagef("%v", err)
		}
		if l.DecideWorkers < 1 || l.OutcomePosts < 1 {
			return usagef("--decide-workers %d, --outcome-posts %d: must be at least 1", l.DecideWorkers, l.OutcomePosts)
		}
		if l.DecideURL != "" {
			if err := producers.CheckDecideURL(l.DecideURL); err != nil {
				return usagef("--decide-url: %v", err)
			}
		}
		if l.DecisionsTopic == "" || l.OutcomesTopic == "" || l.DecisionsTopic == l.OutcomesTopic {
			return usagef("--decisions-topic %q and --outcomes-topic %q: give two different topics", l.DecisionsTopic, l.OutcomesTopic)
		}
		return nil
	}
	return usagef("--emit %q: give experiences or decisions", l.Emit)
}

// runLive runs the simulator in live mode and prints what it published.
func (l *simulateLive) run(ctx context.Context, cfg producers.SimulateConfig) error {
	s, err := producers.NewLiveSimulator(producers.LiveSimulateConfig{SimulateConfig: cfg,
		DecisionsTopic: l.DecisionsTopic, OutcomesTopic: l.OutcomesTopic, Live: l.Live,
		DecideURL: l.DecideURL, DecideWorkers: l.DecideWorkers, OutcomePosts: l.OutcomePosts})
	if err != nil {
		return err
	}
	rep, err := s.Run(ctx)
	if err != nil {
		return err
	}
	if l.DecideURL != "" {
		fmt.Printf("%d decisions served by %s and %d outcomes posted, from %d users in %s (%d requests retried)\n",
			rep.Decisions, l.DecideURL, rep.Outcomes, rep.Users, rep.Elapsed.Round(1e6), rep.Retries)
		return nil
	}
	fmt.Printf("published %d decisions and %d outcomes from %d users in %s\n",
		rep.Decisions, rep.Outcomes, rep.Users, rep.Elapsed.Round(1e6))
	return nil
}
