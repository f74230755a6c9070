package main

import (
	"context"
	"os"

	"github.com/aelp/aelp/app/bench"
)

// benchServeSetup is `aelp bench-serve`: the decision server's latency at
// a fixed rate (open loop), POST /v1/decide beside GET /healthz.
func benchServeSetup() (*flagSet, action) {
	fs := newFlagSet("bench-serve")
	sh := newShared(fs, sharedFlags{kafka: true, embedded: true})
	cfg := newConfig(fs, bench.DefaultServeConfig)
	fs.StringVar(&cfg.URL, "url", cfg.URL, "load the decision server at this base `URL` instead of starting one in-process (on an embedded broker, or --brokers)")
	fs.Float64Var(&cfg.Rate, "rate", cfg.Rate, "requests per second scheduled per endpoint (open loop: sent on schedule whatever the answers)")
	fs.DurationVar(&cfg.Duration, "duration", cfg.Duration, "measured time per endpoint")
	fs.DurationVar(&cfg.Warmup, "warmup", cfg.Warmup, "unmeasured load before each endpoint's measurement")
	fs.IntVar(&cfg.Connections, "connections", cfg.Connections, "client connections (requests in flight at most; waiting for one counts in the latency)")
	fs.BoolVar(&cfg.LogSync, "log-sync", cfg.LogSync, "run the in-process server with --log-sync (answer after the broker's ack)")
	fs.Float64Var(&cfg.Epsilon, "epsilon", cfg.Epsilon, "exploration ε of the in-process server")
	fs.Uint64Var(&cfg.Seed, "seed", cfg.Seed, "seed of the request states and the policy snapshot")
	return fs, func(ctx context.Context) error {
		sh.quiet()
		log, err := sh.logger("bench-serve")
		if err != nil {
			return err
		}
		cfg.Progress, cfg.Log = os.Stderr, log
		if len(sh.kafka.Brokers) > 0 {
			if cfg.Kafka, err = sh.kafkaConfig(); err != nil {
				return err
			}
		}
		if err := cfg.Validate(); err != nil {
			return usagef("%v", err)
		}
		rep, err := bench.RunServe(ctx, *cfg)
		if err != nil {
			return err
		}
		rep.Print(os.Stdout)
		return nil
	}
}
