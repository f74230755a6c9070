package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aelp/aelp/consumers"
	"github.com/aelp/aelp/internal/kafkax"
	"github.com/aelp/aelp/internal/plot"
	"github.com/aelp/aelp/producers"
	"github.com/mattn/go-isatty"
)

// The operator tools: tail, record, replay, plot. Each run* wraps a
// *Cmd function that takes its output writers, so tests can drive it.

func runTail(ctx context.Context, args []string) error {
	return tailCmd(ctx, args, os.Stdout, isatty.IsTerminal(os.Stdout.Fd()))
}

func runRecord(ctx context.Context, args []string) error {
	return recordCmd(ctx, args, os.Stdout, os.Stderr, isatty.IsTerminal(os.Stderr.Fd()))
}

func runReplay(ctx context.Context, args []string) error {
	return replayCmd(ctx, args, os.Stdout)
}

func runPlot(ctx context.Context, args []string) error {
	return plotCmd(ctx, args, os.Stdout)
}

// isolationFlag registers --isolation-level, the isolation level of a
// command's reads.
func isolationFlag(fs *flagSet) *string {
	return fs.String("isolation-level", "read_committed",
		"read_committed (records of aborted transactions are skipped) or read_uncommitted (every record); transaction markers are never shown")
}

// parseIsolation parses --isolation-level (a usage error when invalid).
func parseIsolation(s string) (kafkax.Isolation, error) {
	iso, err := kafkax.ParseIsolation(s)
	if err != nil {
		return iso, usagef("--isolation-level: %v", err)
	}
	return iso, nil
}

// tailCmd is aelp tail; stdoutTTY picks the table for --format auto.
func tailCmd(ctx context.Context, args []string, stdout io.Writer, stdoutTTY bool) error {
	fs := newFlagSet("tail")
	var lf logFlags
	var kf kafkaFlags
	lf.register(fs)
	kf.register(fs, "127.0.0.1:9092")
	topic := fs.String("topic", "aelp.metrics", "topic to follow (any aelp topic, including the dead-letter topic)")
	experiment := fs.String("experiment", "", "only records keyed by this experiment id or carrying it as experiment_id")
	fromBeginning := fs.Bool("from-beginning", false, "start at the first offset of each partition (default: only new records)")
	since := fs.Duration("since", 0, "start at records this old or newer (e.g. 10m)")
	format := fs.String("format", "auto", "output: auto (table on a TTY, JSON lines otherwise), table, json")
	maxRecords := fs.Int64("max", 0, "exit after printing this many records (0: no limit)")
	untilEnd := fs.Bool("until-end", false, "exit at the end offsets seen at start (read_committed: the last stable offsets)")
	isolation := isolationFlag(fs)
	if err := fs.parse(args); err != nil {
		return err
	}
	log, kcfg, err := connect("tail", &lf, &kf)
	if err != nil {
		return err
	}
	iso, err := parseIsolation(*isolation)
	if err != nil {
		return err
	}
	cfg := consumers.TailConfig{Kafka: kcfg, Topic: *topic, Experiment: *experiment, FromBeginning: *fromBeginning,
		Since: *since, Max: *maxRecords, UntilEnd: *untilEnd, Isolation: iso, Out: stdout, Log: log}
	switch *format {
	case "auto":
		cfg.Format = consumers.TailJSON
		if stdoutTTY {
			cfg.Format = consumers.TailTable
		}
	case "table":
		cfg.Format = consumers.TailTable
	case "json":
		cfg.Format = consumers.TailJSON
	default:
		return usagef("invalid --format %q (want auto, table or json)", *format)
	}
	if err := cfg.Validate(); err != nil {
		return usagef("%v", strings.TrimPrefix(err.Error(), "tail: "))
	}
	_, err = consumers.Tail(ctx, cfg)
	return err
}

// recordCmd is aelp record; stderrTTY draws a progress bar on stderr
// instead of periodic log lines.
func recordCmd(ctx context.Context, args []string, stdout, stderr io.Writer, stderrTTY bool) error {
	fs := newFlagSet("record")
	var lf logFlags
	var kf kafkaFlags
	lf.register(fs)
	kf.register(fs, "127.0.0.1:9092")
	topic := fs.String("topic", "", "topic to record (required)")
	from := fs.String("from", "", "start offset or RFC 3339 time in every partition (default: the beginning)")
	to := fs.String("to", "", "stop before this offset or RFC 3339 time (default: the end offsets seen at start)")
	out := fs.String("out", "", "Avro object container file to write (required)")
	codec := fs.String("codec", "deflate", "container block codec: null, deflate, snappy")
	isolation := isolationFlag(fs)
	if err := fs.parse(args); err != nil {
		return err
	}
	log, kcfg, err := connect("record", &lf, &kf)
	if err != nil {
		return err
	}
	if *topic == "" || *out == "" {
		return usagef("--topic and --out are required")
	}
	iso, err := parseIsolation(*isolation)
	if err != nil {
		return err
	}
	cfg := consumers.RecordConfig{Kafka: kcfg, Topic: *topic, Codec: *codec, Isolation: iso, Log: log}
	if cfg.From, err = consumers.ParsePosition(*from); err != nil {
		return usagef("--from: %v", err)
	}
	if cfg.To, err = consumers.ParsePosition(*to); err != nil {
		return usagef("--to: %v", err)
	}
	if err := cfg.Validate(); err != nil {
		return usagef("%v", strings.TrimPrefix(err.Error(), "record: "))
	}
	if stderrTTY {
		cfg.Progress = func(done, total int64) { fmt.Fprintf(stderr, "\r%s", progressBar(done, total, 40)) }
	} else {
		cfg.ProgressEvery = 5 * time.Second
		cfg.Progress = func(done, total int64) {
			log.Info().Int64("records", done).Int64("total", total).Msg("recording")
		}
	}
	// Write beside the target and rename at the end, so a failed or
	// interrupted recording leaves no file that looks complete.
	f, err := os.CreateTemp(filepath.Dir(*out), "."+filepath.Base(*out)+".*")
	if err != nil {
		return fmt.Errorf("record: %w", err)
	}
	defer os.Remove(f.Name())
	st, err := consumers.Record(ctx, cfg, f)
	if stderrTTY {
		fmt.Fprintln(stderr)
	}
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("record: %w", cerr)
	}
	if err != nil {
		return err
	}
	if err := os.Rename(f.Name(), *out); err != nil {
		return fmt.Errorf("record: %w", err)
	}
	size := int64(0)
	if fi, err := os.Stat(*out); err == nil {
		size = fi.Size()
	}
	span := "no records"
	if st.Records > 0 {
		span = st.First.UTC().Format(time.RFC3339) + " .. " + st.Last.UTC().Format(time.RFC3339)
	}
	fmt.Fprintf(stdout, "recorded %d records of %s (%d partitions, %s) to %s: %s %s, %s of keys and values, in %s\n",
		st.Records, *topic, st.Partitions, span, *out, byteSize(size), cfg.Codec, byteSize(st.ValueBytes), st.Elapsed.Round(time.Millisecond))
	if st.Records < st.Expected {
		fmt.Fprintf(stdout, "note: %d offsets in the range held no record (compaction, retention or transaction markers)\n", st.Expected-st.Records)
	}
	return nil
}

// progressBar renders "[#####.....]  50.0%  500/1000 records" for done of
// total (total 0 shows a full bar).
func progressBar(done, total int64, width int) string {
	frac := 1.0
	if total > 0 {
		frac = min(1, max(0, float64(done)/float64(total)))
	}
	n := int(frac * float64(width))
	return fmt.Sprintf("[%s%s] %5.1f%%  %d/%d records", strings.Repeat("#", n), strings.Repeat(".", width-n), 100*frac, done, total)
}

// byteSize formats n bytes with a binary unit.
func byteSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, exp := float64(n)/unit, 0
	for v >= unit && exp < 3 {
		v /= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", v, "KMGT"[exp])
}

// replayCmd is aelp replay.
func replayCmd(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlagSet("replay")
	var lf logFlags
	var kf kafkaFlags
	lf.register(fs)
	kf.register(fs, "127.0.0.1:9092")
	in := fs.String("in", "", "Avro object container file written by aelp record (required)")
	topic := fs.String("topic", "", "topic to publish to (required; created when missing)")
	rate := fs.Float64("rate", 0, "records per second (0: as fast as the broker takes them)")
	partitions := fs.Int("partitions", 0, "partitions of the topic when it is created (default: the source topic's count)")
	if err := fs.parse(args); err != nil {
		return err
	}
	log, kcfg, err := connect("replay", &lf, &kf)
	if err != nil {
		return err
	}
	if *in == "" || *topic == "" {
		return usagef("--in and --topic are required")
	}
	cfg := producers.ReplayConfig{Kafka: kcfg, Topic: *topic, Rate: *rate, Partitions: *partitions, Log: log}
	if err := cfg.Validate(); err != nil {
		return usagef("%v", strings.TrimPrefix(err.Error(), "replay: "))
	}
	f, err := os.Open(*in)
	if err != nil {
		return fmt.Errorf("replay: %w", err)
	}
	defer f.Close()
	st, err := producers.Replay(ctx, cfg, f)
	if err != nil {
		if st.Records > 0 {
			fmt.Fprintf(stdout, "replayed %d records before the error\n", st.Records)
		}
		return err
	}
	how := "existing"
	if st.Created {
		how = "created"
	}
	src := st.SourceTopic
	if src == "" {
		src = "an unknown topic"
	}
	fmt.Fprintf(stdout, "replayed %d records of %s from %s to %s (%s, %d partitions) in %s\n",
		st.Records, src, *in, *topic, how, st.Partitions, st.Elapsed.Round(time.Millisecond))
	return nil
}

// plotCmd is aelp plot.
func plotCmd(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlagSet("plot")
	var lf logFlags
	var kf kafkaFlags
	lf.register(fs)
	kf.register(fs, "127.0.0.1:9092")
	experiment := fs.String("experiment", "", "experiment id whose training curves to draw (required)")
	out := fs.String("out", "", "image to write: .png or .svg (required)")
	topic := fs.String("topic", "aelp.metrics", "topic of TrainingMetrics records")
	isolation := isolationFlag(fs)
	if err := fs.parse(args); err != nil {
		return err
	}
	log, kcfg, err := connect("plot", &lf, &kf)
	if err != nil {
		return err
	}
	if *experiment == "" || *out == "" {
		return usagef("--experiment and --out are required")
	}
	if _, err := plot.FormatOf(*out); err != nil {
		return usagef("%v", strings.TrimPrefix(err.Error(), "plot: "))
	}
	iso, err := parseIsolation(*isolation)
	if err != nil {
		return err
	}
	ms, _, err := consumers.ReadMetrics(ctx, kcfg, *topic, *experiment, kafkax.ReadOptions{Isolation: iso, Logger: log})
	if err != nil {
		return err
	}
	if len(ms) == 0 {
		return fmt.Errorf("no TrainingMetrics records of experiment %q on %s", *experiment, *topic)
	}
	if err := plot.WriteFile(*out, ms, plot.Options{Title: "aelp experiment " + *experiment}); err != nil {
		return err
	}
	lo, hi := ms[0].Update, ms[0].Update
	for _, m := range ms {
		lo, hi = min(lo, m.Update), max(hi, m.Update)
	}
	names := 0
	panels := plot.Panels(ms)
	for _, p := range panels {
		names += len(p.Names())
	}
	fmt.Fprintf(stdout, "wrote %s: %d panels, %d series from %d TrainingMetrics records of experiment %s (updates %d..%d)\n",
		*out, len(panels), names, len(ms), *experiment, lo, hi)
	return nil
}
