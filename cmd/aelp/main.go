// Command aelp is the streaming reinforcement-learning pipeline's single
// binary: one subcommand per role. It only parses flags and wires roles; the
// roles live in the producers, consumers and learner packages, their
// compositions (aelp run, bench, experiment) under app/.
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

	"github.com/aelp/aelp/internal/lifecycle"
	"github.com/mattn/go-isatty"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// action runs a command once its flags are parsed.
type action func(ctx context.Context) error

// command is one subcommand: setup builds its flag set, bound to a fresh
// configuration, and the action that runs on it; a command of subcommands
// (experiment) has subs and help instead.
type command struct {
	summary string
	setup   func() (*flagSet, action)
	subs    map[string]command
	help    string
}

func commands() map[string]command {
	return map[string]command{
		"broker":    {summary: "run the embedded Kafka-protocol broker", setup: brokerSetup},
		"simulate":  {summary: "publish simulated ad experiences (the Monte Carlo simulator)", setup: simulateSetup},
		"aggregate": {summary: "tag crisis parents and republish (consumer group)", setup: aggregateSetup},
		"join":      {summary: "join decisions and delayed outcomes into experiences (consumer group)", setup: joinSetup},
		"learn":     {summary: "train PPO on the importance-weighted replay buffer", setup: learnSetup},
		"run":       {summary: "the whole pipeline in one process on an embedded broker", setup: runSetup},
		"demo":      {summary: "show importance sampling on a replay buffer (no Kafka)", setup: demoSetup},
		"evaluate":  {summary: "evaluate a policy (snapshot, checkpoint, logging, oracle) on held-out journeys", setup: evaluateSetup},
		"bench":     {summary: "end-to-end throughput and latency beside raw Kafka", setup: benchSetup},
		"serve":     {summary: "decisions over HTTP with the current policy, logged with their propensities", setup: serveSetup},
		"bench-serve": {summary: "the decision server's latency at a fixed rate (open loop), /v1/decide beside /healthz",
			setup: benchServeSetup},
		"tagger": {summary: "measure the crisis taggers (rules, learned, Bayes limit) on a simulated stream (no Kafka)", setup: taggerSetup},
		"experiment": {summary: "experiments: 'experiment ab' (importance sampling vs uniform), 'experiment sweep' (crisis weight × α × β grid), 'experiment ope' (off-policy estimates vs truth)",
			subs: map[string]command{
				"ab":    {summary: "importance sampling vs uniform sampling on identical simulated streams, over seeds", setup: abSetup},
				"sweep": {summary: "a grid of crisis weight × α × β schedule against uniform sampling, over seeds", setup: sweepSetup},
				"ope":   {summary: "off-policy estimates of snapshots beside their true held-out value, over seeds", setup: opeSetup},
			},
			help: "Usage: aelp experiment ab|sweep|ope [flags]\n\n  ab     importance sampling vs uniform sampling on identical simulated streams, over seeds\n  sweep  a grid of crisis weight × α × β schedule against uniform sampling, over seeds\n  ope    off-policy estimates of snapshots beside their true held-out value, over seeds\n\n'aelp experiment ab -h', 'aelp experiment sweep -h' and 'aelp experiment ope -h' list the flags."},
		"tail": {summary: "follow a topic and print its records decoded (table on a TTY, JSON lines otherwise)",
			setup: func() (*flagSet, action) { return tailSetup(os.Stdout, isTerminal(os.Stdout)) }},
		"record": {summary: "record a topic to an Avro object container file",
			setup: func() (*flagSet, action) { return recordSetup(os.Stdout, os.Stderr, isTerminal(os.Stderr)) }},
		"replay": {summary: "republish a recorded Avro file to a topic (keys, headers, order per key kept)",
			setup: func() (*flagSet, action) { return replaySetup(os.Stdout) }},
		"plot": {summary: "draw an experiment's training curves from the metrics topic (PNG or SVG)",
			setup: func() (*flagSet, action) { return plotSetup(os.Stdout) }},
	}
}

// usageError is a bad flag or argument: one line on stderr, exit status 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return usageError{fmt.Sprintf(format, a...)} }

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
	ctx, stop := signalContext(stderr)
	defer stop()
	err := runCommand(ctx, args[0], cmd, args[1:], stdout)
	return exitStatus(ctx, args[0], err, stderr)
}

// runCommand parses args into the command's flags and runs it (or
// dispatches to a subcommand).
func runCommand(ctx context.Context, name string, c command, args []string, stdout io.Writer) error {
	if c.subs != nil {
		if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
			fmt.Fprintln(stdout, c.help)
			if len(args) == 0 {
				return usagef("name a subcommand: %s", strings.Join(sortedNames(c.subs), ", "))
			}
			return errHelp
		}
		sub, ok := c.subs[args[0]]
		if !ok {
			return usagef("unknown subcommand %q (want %s)", args[0], strings.Join(sortedNames(c.subs), ", "))
		}
		return runCommand(ctx, name+" "+args[0], sub, args[1:], stdout)
	}
	fs, act := c.setup()
	if err := fs.parse(args); err != nil {
		return err
	}
	return act(ctx)
}

// exitStatus is the process's exit status for a command's result, and
// prints its error:
//
//	0    done, or stopped by SIGINT/SIGTERM with everything in hand
//	     finished in time (flushed, committed, checkpointed)
//	1    an error, including a stop whose work was not finished within
//	     --shutdown-timeout (lifecycle.ErrShutdownTimeout)
//	2    a bad flag, value or argument
//	130  a second signal (signalContext exits at once)
func exitStatus(ctx context.Context, name string, err error, stderr io.Writer) int {
	var ue usageError
	sig, signalled := context.Cause(ctx).(stopSignal)
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "aelp %s: %s\n", name, ue.msg)
		return 2
	case errors.Is(err, errHelp):
		return 0
	case signalled && errors.Is(err, context.Canceled) && !errors.Is(err, lifecycle.ErrShutdownTimeout):
		// A command without a drain of its own (a tool) returns the
		// cancellation: the stop was clean.
		fmt.Fprintf(stderr, "aelp %s: stopped by %s\n", name, sig.String())
		return 0
	default:
		fmt.Fprintf(stderr, "aelp %s: %v\n", name, err)
		return 1
	}
}

func sortedNames(m map[string]command) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func printUsage(w io.Writer, cmds map[string]command) {
	fmt.Fprintf(w, "aelp %s: a streaming reinforcement-learning pipeline on Kafka\n\nUsage: aelp <command> [flags]\n\nCommands:\n", version)
	for _, n := range sortedNames(cmds) {
		fmt.Fprintf(w, "  %-11s %s\n", n, cmds[n].summary)
	}
	fmt.Fprintf(w, "\nEvery flag can also be set with an AELP_* environment variable\n(--log-level → AELP_LOG_LEVEL). 'aelp <command> -h' lists a command's flags.\n")
}

// stopSignal is the cause of the command context's end: the signal
// received.
type stopSignal struct{ sig os.Signal }

func (s stopSignal) Error() string { return "stopped by " + s.String() }

func (s stopSignal) String() string {
	switch s.sig {
	case syscall.SIGINT:
		return "SIGINT"
	case syscall.SIGTERM:
		return "SIGTERM"
	}
	return s.sig.String()
}

// signalContext returns a context cancelled, with a stopSignal cause, on
// the first SIGINT/SIGTERM; a second signal exits at once with status 130.
// How long the command then has is its own business: the long-running
// roles give their drain --shutdown-timeout (lifecycle.Run).
func signalContext(stderr io.Writer) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(context.Background())
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case s := <-ch:
			fmt.Fprintf(stderr, "aelp: %s received, shutting down (again to force)\n", stopSignal{s}.String())
			cancel(stopSignal{s})
		case <-done:
			return
		}
		select {
		case <-ch:
			fmt.Fprintln(stderr, "aelp: forced exit")
			os.Exit(130)
		case <-done:
		}
	}()
	return ctx, func() { signal.Stop(ch); close(done); cancel(nil) }
}

// isTerminal reports whether f is a terminal.
func isTerminal(f *os.File) bool { return isatty.IsTerminal(f.Fd()) }
