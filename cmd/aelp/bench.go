package main

import (
	"context"
	"os"

	"github.com/aelp/aelp/app/bench"
)

// microNote is where aelp bench -h points for the micro-benchmarks, which
// are Go benchmarks of the packages they measure.
const microNote = "The in-process micro-benchmarks (codec, classifier, simulator, replay buffer, PPO update) are Go benchmarks:\n" +
	"  go test -run '^$' -bench . ./schemas ./consumers/classify ./producers/sim ./learner/replay ./learner/ppo"

// benchSetup is `aelp bench`: end-to-end throughput and latency beside raw
// kafka-go passes in the same run.
func benchSetup() (*flagSet, action) {
	fs := newFlagSet("bench")
	fs.note = microNote
	sh := newShared(fs, sharedFlags{kafka: true, embedded: true})
	cfg := newConfig(fs, bench.DefaultConfig)
	simFlags(fs, &cfg.Sim)
	fs.IntVar(&cfg.Users, "users", cfg.Users, "simulated users (journeys) pushed through the throughput stages")
	fs.IntVar(&cfg.Workers, "workers", cfg.Workers, "simulator (and raw producer) goroutines")
	fs.IntVar(&cfg.Partitions, "partitions", cfg.Partitions, "partitions of the topics the run creates")
	fs.Float64Var(&cfg.Rate, "rate", cfg.Rate, "records per second of the latency phase")
	fs.DurationVar(&cfg.LatencyDuration, "latency-duration", cfg.LatencyDuration, "how long the latency phase produces (pipeline, then raw)")
	fs.BoolVar(&cfg.SkipLatency, "skip-latency", cfg.SkipLatency, "skip the latency phase")
	fs.Uint64Var(&cfg.Seed, "seed", cfg.Seed, "random seed")
	return fs, func(ctx context.Context) error {
		log, kcfg, err := sh.benchConnect("bench")
		if err != nil {
			return err
		}
		if err := checkSim(cfg.Sim); err != nil {
			return err
		}
		cfg.Progress, cfg.Log, cfg.Kafka = os.Stderr, log, kcfg
		if err := cfg.Validate(); err != nil {
			return usagef("%v", err)
		}
		rep, err := bench.Run(ctx, *cfg)
		if err != nil {
			return err
		}
		rep.Print(os.Stdout)
		return nil
	}
}
