package main

import (
	"context"
	"errors"

	"github.com/aelp/aelp/serve"
)

func serveSetup() (*flagSet, action) {
	fs := newFlagSet("serve")
	sh := newShared(fs, sharedFlags{kafka: true, writes: true, shutdown: true})
	cfg := newConfig(fs, serve.DefaultConfig)
	fs.StringVar(&cfg.Addr, "http", cfg.Addr, "serve the API (/v1/...), /metrics and /healthz on this address")
	fs.StringVar(&cfg.ExperimentID, "experiment", cfg.ExperimentID, "experiment id: the policy snapshots served and the decisions' experiment_id (required)")
	fs.StringVar(&cfg.PolicyTopic, "policy-topic", cfg.PolicyTopic, "topic of policy snapshots to follow")
	fs.StringVar(&cfg.DecisionsTopic, "decisions-topic", cfg.DecisionsTopic, "topic the decisions are logged to (keyed by user id)")
	fs.StringVar(&cfg.OutcomesTopic, "outcomes-topic", cfg.OutcomesTopic, "topic the outcomes are logged to (keyed by user id)")
	fs.IntVar(&cfg.Partitions, "partitions", cfg.Partitions, "partitions of the decisions and outcomes topics when they are created")
	fs.IntVar(&cfg.StateDim, "state-dim", cfg.StateDim, "state width a request must carry and a snapshot must take")
	fs.IntVar(&cfg.BidLevels, "bid-levels", cfg.BidLevels, "bid levels in the action space (action = bid × creatives + creative)")
	fs.IntVar(&cfg.Creatives, "creatives", cfg.Creatives, "creatives in the action space")
	fs.Float64Var(&cfg.Epsilon, "epsilon", cfg.Epsilon, "exploration ε: the served distribution is (1 − ε)·policy + ε/actions")
	fs.Float64Var(&cfg.MinPropensity, "min-propensity", cfg.MinPropensity, "floor on every action's served probability (at most 1/actions), by more uniform mixing")
	fs.BoolVar(&cfg.AllowLoggingPolicy, "allow-logging-policy", cfg.AllowLoggingPolicy, "serve the uniform logging policy (version -1) until a snapshot is loaded, instead of answering 503")
	fs.BoolVar(&cfg.LogSync, "log-sync", cfg.LogSync, "answer only once the broker has acknowledged the record (default: answer once it is in the log buffer)")
	fs.IntVar(&cfg.LogBuffer, "log-buffer", cfg.LogBuffer, "records the log buffer holds; a request that finds it full gets 503 with Retry-After")
	fs.IntVar(&cfg.LogBatch, "log-batch", cfg.LogBatch, "most records in one write to the broker")
	fs.Int64Var(&cfg.MaxBody, "max-body", cfg.MaxBody, "largest request body in bytes; a longer one gets 400 without being read further")
	fs.IntVar(&cfg.MaxDeferred, "max-deferred", cfg.MaxDeferred, "deferred decisions held for activation; a deferred decide that finds it full gets 503")
	fs.DurationVar(&cfg.DeferTTL, "defer-ttl", cfg.DeferTTL, "how long a deferred decision waits for POST /v1/activate before it is dropped (counted, never logged)")
	fs.Var(listValue{&cfg.OutcomeKinds}, "outcome-kinds", "outcome kinds accepted, a comma-separated `list`")
	fs.DurationVar(&cfg.RetryAfter, "retry-after", cfg.RetryAfter, "Retry-After of a 503 answer (rounded up to seconds)")
	fs.Uint64Var(&cfg.Seed, "seed", cfg.Seed, "seed of the action sampling (0: random)")
	return fs, func(ctx context.Context) error {
		srv, err := sh.startRole("serve", func(e roleEnv) { cfg.Kafka, cfg.Log, cfg.ShutdownTimeout = e.kafka, e.log, e.shutdown }, func() error {
			if err := cfg.Validate(); errors.Is(err, serve.ErrNoExperiment) {
				return usageError{"--experiment is required"}
			} else if err != nil {
				return err
			}
			return nil
		})
		if err != nil {
			return err
		}
		defer srv.close()
		cfg.Registry, cfg.Health = srv.reg, srv.health
		s, err := serve.New(*cfg)
		if err != nil {
			return err
		}
		return s.Run(ctx)
	}
}
