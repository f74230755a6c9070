package main

import (
	"context"
	"fmt"
	"time"

	"github.com/aelp/aelp/consumers"
	"github.com/aelp/aelp/internal/broker"
	"github.com/aelp/aelp/internal/kafkax"
	"github.com/aelp/aelp/internal/lifecycle"
	"github.com/aelp/aelp/internal/obs"
	"github.com/aelp/aelp/producers"
	"github.com/aelp/aelp/producers/sim"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// serving is the --http endpoint of a long-running role: its metrics and
// its health, which the role's lifecycle turns ready and not ready.
type serving struct {
	reg    *prometheus.Registry
	health *obs.Health
	srv    *obs.Server
}

func startServing(addr string, log zerolog.Logger) (*serving, error) {
	s := &serving{reg: obs.NewRegistry(), health: &obs.Health{}}
	s.health.SetReady(false, "connecting to the broker")
	srv, err := obs.Serve(addr, s.reg, s.health, log)
	if err != nil {
		return nil, usagef("%v", err)
	}
	s.srv = srv
	return s, nil
}

func (s *serving) close() { _ = s.srv.Close() }

// roleEnv is what a long-running role takes from the shared flags.
type roleEnv struct {
	log      zerolog.Logger
	kafka    kafkax.Config
	shutdown time.Duration
}

// startRole starts a long-running role's command: the logger, connection
// and shutdown timeout from the shared flags, which set applies to the
// role's configuration, the configuration validated (a usage error), then
// the --http endpoint, which the caller closes.
func (sh *shared) startRole(name string, set func(roleEnv), validate func() error) (*serving, error) {
	log, kcfg, err := sh.connect(name)
	if err != nil {
		return nil, err
	}
	timeout, err := sh.shutdownTimeout()
	if err != nil {
		return nil, err
	}
	set(roleEnv{log: log, kafka: kcfg, shutdown: timeout})
	if err := validate(); err != nil {
		return nil, configError(err)
	}
	return startServing(sh.http, log)
}

// simFlags registers the simulator model's flags onto c (simulate,
// evaluate, run, bench, experiment ab).
func simFlags(fs *flagSet, c *sim.Config) {
	fs.Float64Var(&c.CrisisFraction, "crisis-fraction", c.CrisisFraction, "share of simulated users who are crisis parents")
	fs.IntVar(&c.BidLevels, "bid-levels", c.BidLevels, "bid levels in the action space")
	fs.IntVar(&c.Creatives, "creatives", c.Creatives, "creatives in the action space")
	fs.IntVar(&c.StateDim, "state-dim", c.StateDim, "width of the state vector")
	fs.IntVar(&c.MaxSteps, "max-steps", c.MaxSteps, "ad opportunities per user journey")
	fs.Float64Var(&c.LabelShare, "label-share", c.LabelShare, "share of users carrying an explicit event_type label")
}

// checkSim validates the simulator flags (a usage error when invalid).
func checkSim(c sim.Config) error {
	if err := c.Validate(); err != nil {
		return usagef("%v", err)
	}
	return nil
}

func brokerSetup() (*flagSet, action) {
	fs := newFlagSet("broker")
	sh := newShared(fs, sharedFlags{shutdown: true})
	cfg := newConfig(fs, broker.DefaultConfig)
	fs.StringVar(&cfg.Listen, "listen", cfg.Listen, "host:port to listen on")
	fs.StringVar(&cfg.DataDir, "data-dir", cfg.DataDir, "directory for topics, records and offsets (empty: memory only)")
	fs.IntVar(&cfg.DefaultPartitions, "partitions", cfg.DefaultPartitions, "partitions of topics created without a count")
	return fs, func(ctx context.Context) error {
		log, err := sh.logger("broker")
		if err != nil {
			return err
		}
		timeout, err := sh.shutdownTimeout()
		if err != nil {
			return err
		}
		cfg.Logger = log
		if err := cfg.Validate(); err != nil {
			return usagef("%v", err)
		}
		var b *broker.Broker
		return lifecycle.Run(ctx, lifecycle.Role{
			Name: "broker", ShutdownTimeout: timeout, Log: log,
			Run: func(ctx context.Context, _ *lifecycle.Scope) error {
				if b, err = broker.Start(*cfg); err != nil {
					return err
				}
				log.Info().Strs("addrs", b.Addrs()).Str("data_dir", cfg.DataDir).Msg("embedded broker listening")
				<-ctx.Done()
				return nil
			},
			Drain: func(context.Context) error {
				if b != nil {
					log.Info().Msg("stopping embedded broker")
					b.Close()
					log.Info().Msg("embedded broker stopped")
				}
				return nil
			},
		})
	}
}

func simulateSetup() (*flagSet, action) {
	fs := newFlagSet("simulate")
	sh := newShared(fs, sharedFlags{kafka: true, writes: true, http: ":9101", shutdown: true})
	cfg := newConfig(fs, producers.DefaultSimulateConfig)
	simFlags(fs, &cfg.Sim)
	fs.StringVar(&cfg.ExperimentID, "experiment", cfg.ExperimentID, "experiment id (required)")
	fs.Int64Var(&cfg.Users, "users", cfg.Users, "publish this many users' journeys, then exit (bounded)")
	fs.Float64Var(&cfg.Rate, "rate", cfg.Rate, "experiences per second; with no --users, run until stopped")
	fs.IntVar(&cfg.Workers, "workers", cfg.Workers, "simulator goroutines")
	fs.Uint64Var(&cfg.Seed, "seed", cfg.Seed, "random seed")
	fs.StringVar(&cfg.Topic, "topic", cfg.Topic, "topic to publish experiences to")
	fs.StringVar(&cfg.PolicyTopic, "policy-topic", cfg.PolicyTopic, "topic of policy snapshots to act with")
	fs.BoolVar(&cfg.FollowPolicy, "follow-policy", cfg.FollowPolicy, "act with the newest policy snapshot of the experiment")
	fs.IntVar(&cfg.Partitions, "partitions", cfg.Partitions, "partitions of the topic when it is created")
	live := liveFlags(fs)
	return fs, func(ctx context.Context) error {
		if err := live.validate(); err != nil {
			return err
		}
		srv, err := sh.startRole("simulate", func(e roleEnv) { cfg.Kafka, cfg.Log, cfg.ShutdownTimeout = e.kafka, e.log, e.shutdown }, cfg.Validate)
		if err != nil {
			return err
		}
		defer srv.close()
		cfg.Registry, cfg.Health = srv.reg, srv.health
		if live.Emit == "decisions" {
			return live.run(ctx, *cfg)
		}
		s, err := producers.NewSimulator(*cfg)
		if err != nil {
			return err
		}
		rep, err := s.Run(ctx)
		if err != nil {
			return err
		}
		fmt.Printf("published %d experiences from %d users (policy version %d) in %s\n",
			rep.Experiences, rep.Users, rep.PolicyVersion, rep.Elapsed.Round(1e6))
		return nil
	}
}

func aggregateSetup() (*flagSet, action) {
	fs := newFlagSet("aggregate")
	sh := newShared(fs, sharedFlags{kafka: true, writes: true, http: ":9102", shutdown: true})
	cfg := newConfig(fs, consumers.DefaultAggregateConfig)
	c := &cfg.Classifier
	taggerFlags(fs, c)
	fs.StringVar(&cfg.TaggerStatePath, "tagger-state", cfg.TaggerStatePath, "file the learned tagger's state is loaded from at start (when it exists) and saved to every 10 s after a commit and on shutdown, so a restart, a crash included, keeps what it learned (empty: not kept)")
	fs.StringVar(&cfg.Group, "group", cfg.Group, "consumer group id (aelp run's aggregator uses the default too: both resume from the same committed offsets)")
	fs.StringVar(&cfg.InTopic, "in-topic", cfg.InTopic, "topic to read experiences from")
	fs.StringVar(&cfg.OutTopic, "out-topic", cfg.OutTopic, "topic to publish tagged experiences to")
	fs.StringVar(&cfg.DeadLetterTopic, "dead-letter-topic", cfg.DeadLetterTopic, "topic for records that fail to decode or validate")
	isolationFlag(fs, &cfg.Isolation)
	fs.Var(listValue{&c.Keywords}, "keywords", "crisis indicator profile keywords, a comma-separated `list`")
	fs.Var(listValue{&c.CrisisCampaigns}, "crisis-campaigns", "crisis-targeted campaign ids, a comma-separated `list`")
	fs.Float64Var(&c.ScoreThreshold, "score-threshold", c.ScoreThreshold, "metadata score at or above which a user is a crisis parent")
	fs.Float64Var(&c.EngagementThreshold, "engagement-threshold", c.EngagementThreshold, "crisis-content engagement at or above which the behaviour rule fires")
	fs.Int64Var(&c.UrgentSearchThreshold, "urgent-search-threshold", c.UrgentSearchThreshold, "urgent searches at or above which the behaviour rule fires")
	fs.Float64Var(&c.ValuePercentile, "value-threshold-percentile", c.ValuePercentile, "value percentile at or above which the VALUE rule tags crisis")
	fs.Int64Var(&c.WarmUp, "value-warmup", c.WarmUp, "values observed before the VALUE rule is trusted")
	fs.StringVar(&c.LabelKey, "label-key", c.LabelKey, "metadata key of an explicit event_type label")
	fs.StringVar(&c.GroundTruthKey, "ground-truth-key", c.GroundTruthKey, "metadata key of the true segment (accuracy only)")
	fs.IntVar(&cfg.Limits.StateDim, "state-dim", cfg.Limits.StateDim, "required state width (0: unchecked)")
	fs.IntVar(&cfg.Limits.NumActions, "num-actions", cfg.Limits.NumActions, "number of actions; larger actions are invalid (0: unchecked)")
	fs.IntVar(&cfg.Partitions, "partitions", cfg.Partitions, "partitions of the topics when they are created")
	return fs, func(ctx context.Context) error {
		srv, err := sh.startRole("aggregate", func(e roleEnv) { cfg.Kafka, cfg.Log, cfg.ShutdownTimeout = e.kafka, e.log, e.shutdown }, cfg.Validate)
		if err != nil {
			return err
		}
		defer srv.close()
		cfg.Registry, cfg.Health = srv.reg, srv.health
		a, err := consumers.NewAggregator(*cfg)
		if err != nil {
			return err
		}
		return a.Run(ctx)
	}
}
