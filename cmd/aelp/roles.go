package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/aelp/aelp/consumers"
	"github.com/aelp/aelp/consumers/classify"
	"github.com/aelp/aelp/internal/obs"
	"github.com/aelp/aelp/producers"
	"github.com/aelp/aelp/producers/sim"
	"github.com/aelp/aelp/schemas"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// serving is the --http endpoint of a long-running role.
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

// simFlags are the simulator model's flags, shared by simulate, evaluate
// and run.
type simFlags struct {
	crisisFraction float64
	bidLevels      int
	creatives      int
	stateDim       int
	maxSteps       int
	labelShare     float64
}

func (f *simFlags) register(fs *flagSet) {
	d := sim.DefaultConfig()
	fs.Float64Var(&f.crisisFraction, "crisis-fraction", d.CrisisFraction, "share of simulated users who are crisis parents")
	fs.IntVar(&f.bidLevels, "bid-levels", d.BidLevels, "bid levels in the action space")
	fs.IntVar(&f.creatives, "creatives", d.Creatives, "creatives in the action space")
	fs.IntVar(&f.stateDim, "state-dim", d.StateDim, "width of the state vector")
	fs.IntVar(&f.maxSteps, "max-steps", d.MaxSteps, "ad opportunities per user journey")
	fs.Float64Var(&f.labelShare, "label-share", d.LabelShare, "share of users carrying an explicit event_type label")
}

func (f *simFlags) config() (sim.Config, error) {
	c := sim.DefaultConfig()
	c.CrisisFraction, c.BidLevels, c.Creatives = f.crisisFraction, f.bidLevels, f.creatives
	c.StateDim, c.MaxSteps, c.LabelShare = f.stateDim, f.maxSteps, f.labelShare
	if err := c.Validate(); err != nil {
		return c, usagef("%v", err)
	}
	return c, nil
}

func runSimulate(ctx context.Context, args []string) error {
	fs := newFlagSet("simulate")
	var lf logFlags
	var kf kafkaFlags
	var sf simFlags
	lf.register(fs)
	kf.register(fs, "127.0.0.1:9092")
	sf.register(fs)
	experiment := fs.String("experiment", "", "experiment id (required)")
	users := fs.Int64("users", 0, "publish this many users' journeys, then exit (bounded)")
	rate := fs.Float64("rate", 0, "experiences per second; with no --users, run until stopped")
	workers := fs.Int("workers", 2, "simulator goroutines")
	seed := fs.Uint64("seed", 1, "random seed")
	topic := fs.String("topic", "aelp.experiences.raw", "topic to publish experiences to")
	policyTopic := fs.String("policy-topic", "aelp.policy", "topic of policy snapshots to act with")
	follow := fs.Bool("follow-policy", true, "act with the newest policy snapshot of the experiment")
	partitions := fs.Int("partitions", 6, "partitions of the topic when it is created")
	httpAddr := fs.String("http", "", "serve /metrics and /healthz on this address (e.g. :9101)")
	if err := fs.parse(args); err != nil {
		return err
	}
	log, kcfg, err := connect("simulate", &lf, &kf)
	if err != nil {
		return err
	}
	scfg, err := sf.config()
	if err != nil {
		return err
	}
	srv, err := startServing(*httpAddr, log)
	if err != nil {
		return err
	}
	defer srv.close()
	s, err := producers.NewSimulator(producers.SimulateConfig{
		Kafka: kcfg, Topic: *topic, PolicyTopic: *policyTopic, ExperimentID: *experiment,
		Users: *users, Rate: *rate, Workers: *workers, Seed: *seed, Sim: scfg, FollowPolicy: *follow,
		Partitions: *partitions, Log: log, Registry: srv.reg, Health: srv.health,
	})
	if err != nil {
		return usagef("%v", strings.TrimPrefix(err.Error(), "simulate: "))
	}
	rep, err := s.Run(ctx)
	if err != nil {
		return err
	}
	fmt.Printf("published %d experiences from %d users (policy version %d) in %s\n",
		rep.Experiences, rep.Users, rep.PolicyVersion, rep.Elapsed.Round(1e6))
	return nil
}

func runAggregate(ctx context.Context, args []string) error {
	fs := newFlagSet("aggregate")
	var lf logFlags
	var kf kafkaFlags
	lf.register(fs)
	kf.register(fs, "127.0.0.1:9092")
	d := classify.DefaultConfig()
	group := fs.String("group", "aelp-aggregator", "consumer group id")
	in := fs.String("in-topic", "aelp.experiences.raw", "topic to read experiences from")
	out := fs.String("out-topic", "aelp.experiences.tagged", "topic to publish tagged experiences to")
	dlq := fs.String("dead-letter-topic", "aelp.deadletter", "topic for records that fail to decode or validate")
	keywords := fs.String("keywords", strings.Join(d.Keywords, ","), "crisis indicator profile keywords")
	campaigns := fs.String("crisis-campaigns", strings.Join(d.CrisisCampaigns, ","), "crisis-targeted campaign ids")
	scoreThreshold := fs.Float64("score-threshold", d.ScoreThreshold, "metadata score at or above which a user is a crisis parent")
	engagement := fs.Float64("engagement-threshold", d.EngagementThreshold, "crisis-content engagement at or above which the behaviour rule fires")
	urgent := fs.Int64("urgent-search-threshold", d.UrgentSearchThreshold, "urgent searches at or above which the behaviour rule fires")
	percentile := fs.Float64("value-threshold-percentile", d.ValuePercentile, "value percentile at or above which the VALUE rule tags crisis")
	warmup := fs.Int64("value-warmup", d.WarmUp, "values observed before the VALUE rule is trusted")
	labelKey := fs.String("label-key", d.LabelKey, "metadata key of an explicit event_type label")
	truthKey := fs.String("ground-truth-key", d.GroundTruthKey, "metadata key of the true segment (accuracy only)")
	stateDim := fs.Int("state-dim", 16, "required state width (0: unchecked)")
	actions := fs.Int("num-actions", 12, "number of actions; larger actions are invalid (0: unchecked)")
	partitions := fs.Int("partitions", 6, "partitions of the topics when they are created")
	httpAddr := fs.String("http", "", "serve /metrics and /healthz on this address (e.g. :9102)")
	if err := fs.parse(args); err != nil {
		return err
	}
	log, kcfg, err := connect("aggregate", &lf, &kf)
	if err != nil {
		return err
	}
	ccfg := d
	ccfg.Keywords, ccfg.CrisisCampaigns = splitList(*keywords), splitList(*campaigns)
	ccfg.ScoreThreshold, ccfg.EngagementThreshold, ccfg.UrgentSearchThreshold = *scoreThreshold, *engagement, *urgent
	ccfg.ValuePercentile, ccfg.WarmUp, ccfg.LabelKey, ccfg.GroundTruthKey = *percentile, *warmup, *labelKey, *truthKey
	srv, err := startServing(*httpAddr, log)
	if err != nil {
		return err
	}
	defer srv.close()
	a, err := consumers.NewAggregator(consumers.AggregateConfig{
		Kafka: kcfg, InTopic: *in, OutTopic: *out, DeadLetterTopic: *dlq, Group: *group, Classifier: ccfg,
		Limits: schemas.Limits{StateDim: *stateDim, NumActions: *actions}, Partitions: *partitions,
		Log: log, Registry: srv.reg, Health: srv.health,
	})
	if err != nil {
		return usagef("%v", strings.TrimPrefix(err.Error(), "aggregate: "))
	}
	return a.Run(ctx)
}
