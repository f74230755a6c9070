package main

import (
	"context"
	"fmt"
	"os"
	"runtime/trace"
	"strconv"
	"strings"

	"github.com/aelp/aelp/app/bench"
)

// benchServeTrace is bench-serve's --trace: the execution trace's file.
type benchServeTrace struct{ File string }

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
	fs.StringVar(&cfg.Pacer, "pacer", cfg.Pacer, "how the generator waits for each request's time: nanosleep (some 70 µs late at the median) or timer (time.Sleep: woken in whole milliseconds, requests leave in bursts; cheaper in CPU)")
	fs.BoolVar(&cfg.InProcess, "in-process", cfg.InProcess, "run the server in the load generator's process (default: a child process, aelp bench-serve --hold, so that they share no Go runtime)")
	fs.BoolVar(&cfg.Hold, "hold", cfg.Hold, "start the in-process server, print its URL and serve until interrupted instead of loading it (for an outside load generator: scripts/loadtest/serve.sh)")
	prof := newConfig(fs, defaultProfileConfig)
	fs.StringVar(&prof.CPUProfile, "cpuprofile", prof.CPUProfile, "write a CPU profile of the server's process to this `file` (go tool pprof; with --in-process the generator's too)")
	fs.StringVar(&prof.MemProfile, "memprofile", prof.MemProfile, "write a heap profile (allocations included) of the server's process to this `file` at the end")
	tr := newConfig(fs, func() benchServeTrace { return benchServeTrace{} })
	fs.StringVar(&tr.File, "trace", tr.File, "write a runtime/trace execution trace of the server's process to this `file` (go tool trace: scheduler latency, GC)")
	return fs, func(ctx context.Context) error {
		log, kcfg, err := sh.benchConnect("bench-serve")
		if err != nil {
			return err
		}
		cfg.Progress, cfg.Log, cfg.Kafka = os.Stderr, log, kcfg
		if err := cfg.Validate(); err != nil {
			return usagef("%v", err)
		}
		if cfg.URL == "" && !cfg.Hold && !cfg.InProcess {
			if cfg.ServerCommand, err = serverCommand(cfg, sh.kafka.Brokers); err != nil {
				return err
			}
		}
		if len(cfg.ServerCommand) > 0 { // the profiles are the server's, in its process
			for _, f := range [][2]string{{"--cpuprofile", prof.CPUProfile}, {"--memprofile", prof.MemProfile}, {"--trace", tr.File}} {
				if f[1] != "" {
					cfg.ServerCommand = append(cfg.ServerCommand, f[0], f[1])
				}
			}
		} else {
			stop, err := profileHere(prof, tr.File)
			if err != nil {
				return err
			}
			defer stop()
		}
		rep, err := bench.RunServe(ctx, *cfg)
		if cfg.Hold && rep.Server != nil {
			s := rep.Server
			fmt.Printf("served until interrupted: %d decisions answered, %d logged, %d answered 503, %d log failures\n",
				s.Decisions, s.LoggedDecisions, s.Rejected, s.LogFailures)
		}
		if err != nil {
			if cfg.Hold && ctx.Err() != nil && rep.Server != nil {
				return nil // interrupted, as --hold is meant to end
			}
			return err
		}
		if !cfg.Hold {
			rep.Print(os.Stdout)
		}
		return nil
	}
}

// serverCommand is the child process bench-serve loads by default: this
// binary's bench-serve --hold with cfg's server settings and brokers (only
// the brokers: for TLS or SASL use --in-process).
func serverCommand(cfg *bench.ServeConfig, brokers []string) ([]string, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := []string{exe, "bench-serve", "--hold", "--log-sync=" + strconv.FormatBool(cfg.LogSync),
		"--epsilon", strconv.FormatFloat(cfg.Epsilon, 'g', -1, 64), "--seed", strconv.FormatUint(cfg.Seed, 10)}
	if len(brokers) > 0 {
		cmd = append(cmd, "--brokers", strings.Join(brokers, ","))
	}
	return cmd, nil
}

// profileHere starts the CPU and heap profiles and the execution trace of
// this process (the server runs in it); stop ends them, saying on stderr
// what failed.
func profileHere(prof *profileConfig, traceFile string) (stop func(), err error) {
	stopProfile, err := prof.start()
	if err != nil {
		return nil, err
	}
	stopTrace := func() {}
	if traceFile != "" {
		f, err := os.Create(traceFile)
		if err == nil {
			if err = trace.Start(f); err != nil {
				f.Close()
			}
		}
		if err != nil {
			_ = stopProfile()
			return nil, fmt.Errorf("trace: %w", err)
		}
		stopTrace = func() {
			trace.Stop()
			if err := f.Close(); err != nil {
				fmt.Fprintln(os.Stderr, "aelp bench-serve: trace:", err)
			}
		}
	}
	return func() {
		stopTrace()
		if err := stopProfile(); err != nil {
			fmt.Fprintln(os.Stderr, "aelp bench-serve:", err)
		}
	}, nil
}
