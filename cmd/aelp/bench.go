package main

import (
	"context"
	"os"
	"time"

	"github.com/aelp/aelp/app/bench"
)

// runBench is `aelp bench`: end-to-end throughput and latency beside raw
// kafka-go passes in the same run, then in-process micro-benchmarks.
func runBench(ctx context.Context, args []string) error {
	fs := newFlagSet("bench")
	var lf logFlags
	var kf kafkaFlags
	var sf simFlags
	lf.register(fs)
	kf.register(fs, "")
	sf.register(fs)
	users := fs.Int("users", 20_000, "simulated users (journeys) pushed through the throughput stages")
	workers := fs.Int("workers", 2, "simulator (and raw producer) goroutines")
	partitions := fs.Int("partitions", 6, "partitions of the topics the run creates")
	rate := fs.Float64("rate", 3000, "records per second of the latency phase")
	latencyFor := fs.Duration("latency-duration", 15*time.Second, "how long the latency phase produces (pipeline, then raw)")
	noLatency := fs.Bool("skip-latency", false, "skip the latency phase")
	noMicro := fs.Bool("skip-micro", false, "skip the in-process micro-benchmarks")
	seed := fs.Uint64("seed", 1, "random seed")
	if err := fs.parse(args); err != nil {
		return err
	}
	if lf.level == "info" && os.Getenv("AELP_LOG_LEVEL") == "" {
		lf.level = "warn" // the progress lines and the table say what info would
	}
	log, err := lf.logger("bench")
	if err != nil {
		return err
	}
	scfg, err := sf.config()
	if err != nil {
		return err
	}
	cfg := bench.Config{
		Users: *users, Workers: *workers, Partitions: *partitions, Rate: *rate, LatencyDuration: *latencyFor,
		SkipLatency: *noLatency, SkipMicro: *noMicro, Seed: *seed, Sim: scfg, Progress: os.Stderr, Log: log,
	}
	if kf.brokers != "" {
		if cfg.Kafka, err = kf.config(); err != nil {
			return err
		}
	}
	if err := cfg.Validate(); err != nil {
		return usagef("%v", err)
	}
	rep, err := bench.Run(ctx, cfg)
	if err != nil {
		return err
	}
	rep.Print(os.Stdout)
	return nil
}
