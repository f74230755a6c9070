// Command aelp is the streaming reinforcement-learning pipeline's single
// binary: one subcommand per role. It only parses flags and wires roles; the
// roles live in the producers, consumers and learner packages.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// command is one subcommand.
type command struct {
	summary string
	run     func(ctx context.Context, args []string) error
}

func commands() map[string]command {
	return map[string]command{
		"broker":     {"run the embedded Kafka-protocol broker", runBroker},
		"simulate":   {"publish simulated ad experiences (the Monte Carlo simulator)", runSimulate},
		"aggregate":  {"tag crisis parents and republish (consumer group)", runAggregate},
		"learn":      {"train PPO on the importance-weighted replay buffer", runLearn},
		"run":        {"the whole pipeline in one process on an embedded broker", runRun},
		"demo":       {"show importance sampling on a replay buffer (no Kafka)", runDemo},
		"evaluate":   {"evaluate a policy (snapshot, checkpoint, logging, oracle) on held-out journeys", runEvaluate},
		"bench":      {"end-to-end throughput and latency beside raw Kafka, and micro-benchmarks", runBench},
		"experiment": {"A/B experiments: 'experiment ab' (importance sampling vs uniform)", runExperiment},
		"tail":       {"follow a topic and print its records decoded (table on a TTY, JSON lines otherwise)", runTail},
		"record":     {"record a topic to an Avro object container file", runRecord},
		"replay":     {"republish a recorded Avro file to a topic (keys, headers, order per key kept)", runReplay},
		"plot":       {"draw an experiment's training curves from the metrics topic (PNG or SVG)", runPlot},
	}
}

// usageError is a bad flag or argument: one line on stderr, exit status 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return usageError{fmt.Sprintf(format, a...)} }

// errInterrupted is returned by a command stopped by SIGINT/SIGTERM that
// has already said what it did; the process exits with status 130.
var errInterrupted = errors.New("interrupted")

func main() {
	os.Exit(realMain(os.Args[1:], os.Stdout, os.Stderr))
}

func realMain(args []string, stdout, stderr io.Writer) int {
	cmds := commands()
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		printUsage(stdout, cmds)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	if args[0] == "--version" || args[0] == "-version" || args[0] == "version" {
		fmt.Fprintf(stdout, "aelp %s\n", version)
		return 0
	}
	cmd, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "aelp: unknown command %q (run 'aelp help' for the list)\n", args[0])
		return 2
	}
	ctx, stop := signalContext()
	defer stop()
	err := cmd.run(ctx, args[1:])
	var ue usageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "aelp %s: %s\n", args[0], ue.msg)
		return 2
	case errors.Is(err, errHelp):
		return 0
	case errors.Is(err, errInterrupted):
		return 130
	default:
		fmt.Fprintf(stderr, "aelp %s: %v\n", args[0], err)
		return 1
	}
}

func printUsage(w io.Writer, cmds map[string]command) {
	fmt.Fprintf(w, "aelp %s: a streaming reinforcement-learning pipeline on Kafka\n\nUsage: aelp <command> [flags]\n\nCommands:\n", version)
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-11s %s\n", n, cmds[n].summary)
	}
	fmt.Fprintf(w, "\nEvery flag can also be set with an AELP_* environment variable\n(--log-level → AELP_LOG_LEVEL). 'aelp <command> -h' lists a command's flags.\n")
}

// signalContext returns a context cancelled on the first SIGINT/SIGTERM; a
// second signal exits at once.
func signalContext() (context.Context, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		select {
		case s := <-ch:
			fmt.Fprintf(os.Stderr, "aelp: %s received, shutting down (again to force)\n", s)
			cancel()
		case <-ctx.Done():
			return
		}
		select {
		case <-ch:
			fmt.Fprintln(os.Stderr, "aelp: forced exit")
			os.Exit(130)
		case <-time.After(time.Minute):
			fmt.Fprintln(os.Stderr, "aelp: shutdown took over a minute, exiting")
			os.Exit(1)
		}
	}()
	return ctx, func() { signal.Stop(ch); cancel() }
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
