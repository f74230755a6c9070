package main

import (
	"context"
	"errors"
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
)

// The operator tools: tail, record, replay, plot. Each *Setup takes its
// output writers, and each *Cmd runs it on arguments, so tests can drive
// them.

func tailCmd(ctx context.Context, args []string, stdout io.Writer, stdoutTTY bool) error {
	return runArgs(ctx, args, func() (*flagSet, action) { return tailSetup(stdout, stdoutTTY) })
}

func recordCmd(ctx context.Context, args []string, stdout, stderr io.Writer, stderrTTY bool) error {
	return runArgs(ctx, args, func() (*flagSet, action) { return recordSetup(stdout, stderr, stderrTTY) })
}

func replayCmd(ctx context.Context, args []string, stdout io.Writer) error {
	return runArgs(ctx, args, func() (*flagSet, action) { return replaySetup(stdout) })
}

func plotCmd(ctx context.Context, args []string, stdout io.Writer) error {
	return runArgs(ctx, args, func() (*flagSet, action) { return plotSetup(stdout) })
}

// runArgs parses args into setup's flags and runs its action.
func runArgs(ctx context.Context, args []string, setup func() (*flagSet, action)) error {
	fs, act := setup()
	if err := fs.parse(args); err != nil {
		return err
	}
	return act(ctx)
}

// tailOptions are aelp tail's options besides consumers.TailConfig.
type tailOptions struct {
	// Format is auto (table on a TTY, JSON lines otherwise), table or json.
	Format string
}

// tailSetup is aelp tail; stdoutTTY picks the table for --format auto.
func tailSetup(stdout io.Writer, stdoutTTY bool) (*flagSet, action) {
	fs := newFlagSet("tail")
	sh := newShared(fs, sharedFlags{kafka: true})
	cfg := newConfig(fs, consumers.DefaultTailConfig)
	opt := newConfig(fs, func() tailOptions { return tailOptions{Format: "auto"} })
	fs.StringVar(&cfg.Topic, "topic", cfg.Topic, "topic to follow (any aelp topic, including the dead-letter topic)")
	fs.StringVar(&cfg.Experiment, "experiment", cfg.Experiment, "only records keyed by this experiment id or carrying it as experiment_id")
	fs.BoolVar(&cfg.FromBeginning, "from-beginning", cfg.FromBeginning, "start at the first offset of each partition (default: only new records)")
	fs.DurationVar(&cfg.Since, "since", cfg.Since, "start at records this old or newer (e.g. 10m)")
	fs.StringVar(&opt.Format, "format", opt.Format, "output: auto (table on a TTY, JSON lines otherwise), table, json")
	fs.Int64Var(&cfg.Max, "max", cfg.Max, "exit after printing this many records (0: no limit)")
	fs.BoolVar(&cfg.UntilEnd, "until-end", cfg.UntilEnd, "exit at the end offsets seen at start (read_committed: the last stable offsets)")
	isolationFlag(fs, &cfg.Isolation)
	return fs, func(ctx context.Context) error {
		log, kcfg, err := sh.connect("tail")
		if err != nil {
			return err
		}
		cfg.Kafka, cfg.Out, cfg.Log = kcfg, stdout, log
		switch opt.Format {
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
			return usagef("invalid --format %q (want auto, table or json)", opt.Format)
		}
		if err := cfg.Validate(); err != nil {
			return configError(err)
		}
		_, err = consumers.Tail(ctx, *cfg)
		return err
	}
}

// recordOptions are aelp record's options besides consumers.RecordConfig.
type recordOptions struct {
	// Out is the container file written.
	Out string
}

// recordSetup is aelp record; stderrTTY draws a progress bar on stderr
// instead of periodic log lines.
func recordSetup(stdout, stderr io.Writer, stderrTTY bool) (*flagSet, action) {
	fs := newFlagSet("record")
	sh := newShared(fs, sharedFlags{kafka: true})
	cfg := newConfig(fs, consumers.DefaultRecordConfig)
	opt := newConfig(fs, func() recordOptions { return recordOptions{} })
	fs.StringVar(&cfg.Topic, "topic", cfg.Topic, "topic to record (required)")
	fs.Var(positionValue{&cfg.From}, "from", "start `position`: an offset or RFC 3339 time in every partition (default: the beginning)")
	fs.Var(positionValue{&cfg.To}, "to", "stop `position`: before this offset or RFC 3339 time (default: the end offsets seen at start)")
	fs.StringVar(&opt.Out, "out", opt.Out, "Avro object container file to write (required)")
	fs.StringVar(&cfg.Codec, "codec", cfg.Codec, "container block codec: null, deflate, snappy")
	isolationFlag(fs, &cfg.Isolation)
	return fs, func(ctx context.Context) error {
		log, kcfg, err := sh.connect("record")
		if err != nil {
			return err
		}
		if cfg.Topic == "" || opt.Out == "" {
			return usagef("--topic and --out are required")
		}
		cfg.Kafka, cfg.Log = kcfg, log
		if err := cfg.Validate(); err != nil {
			return configError(err)
		}
		if stderrTTY {
			cfg.Progress = func(done, total int64) { fmt.Fprintf(stderr, "\r%s", progressBar(done, total, 40)) }
		} else {
			cfg.ProgressEvery = 5 * time.Second
			cfg.Progress = func(done, total int64) {
				log.Info().Int64("records", done).Int64("total", total).Msg("recording")
			}
		}
		st, err := recordFile(ctx, *cfg, opt.Out, stderr, stderrTTY)
		if err != nil {
			return err
		}
		printRecorded(stdout, st, *cfg, opt.Out)
		return nil
	}
}

// recordFile records into a file beside out and renames it at the end, so
// a failed or interrupted recording leaves no file that looks complete.
func recordFile(ctx context.Context, cfg consumers.RecordConfig, out string, stderr io.Writer, stderrTTY bool) (consumers.RecordStats, error) {
	f, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".*")
	if err != nil {
		return consumers.RecordStats{}, fmt.Errorf("record: %w", err)
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
		return st, err
	}
	if err := os.Rename(f.Name(), out); err != nil {
		return st, fmt.Errorf("record: %w", err)
	}
	return st, nil
}

// printRecorded prints what a recording wrote.
func printRecorded(stdout io.Writer, st consumers.RecordStats, cfg consumers.RecordConfig, out string) {
	size := int64(0)
	if fi, err := os.Stat(out); err == nil {
		size = fi.Size()
	}
	span := "no records"
	if st.Records > 0 {
		span = st.First.UTC().Format(time.RFC3339) + " .. " + st.Last.UTC().Format(time.RFC3339)
	}
	fmt.Fprintf(stdout, "recorded %d records of %s (%d partitions, %s) to %s: %s %s, %s of keys and values, in %s\n",
		st.Records, cfg.Topic, st.Partitions, span, out, byteSize(size), cfg.Codec, byteSize(st.ValueBytes), st.Elapsed.Round(time.Millisecond))
	if st.Records < st.Expected {
		fmt.Fprintf(stdout, "note: %d offsets in the range held no record (compaction, retention or transaction markers)\n", st.Expected-st.Records)
	}
}

// positionValue is --from and --to of aelp record.
type positionValue struct{ p *consumers.Position }

func (v positionValue) String() string {
	if v.p == nil {
		return ""
	}
	return v.p.String()
}

func (v positionValue) Set(s string) error {
	pos, err := consumers.ParsePosition(s)
	if err != nil {
		return err
	}
	*v.p = pos
	return nil
}
func (v positionValue) target() any { return v.p }

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

// replayOptions are aelp replay's options besides producers.ReplayConfig.
type replayOptions struct {
	// In is the container file read.
	In string
}

// replaySetup is aelp replay.
func replaySetup(stdout io.Writer) (*flagSet, action) {
	fs := newFlagSet("replay")
	sh := newShared(fs, sharedFlags{kafka: true, writes: true})
	cfg := newConfig(fs, producers.DefaultReplayConfig)
	opt := newConfig(fs, func() replayOptions { return replayOptions{} })
	fs.StringVar(&opt.In, "in", opt.In, "Avro object container file written by aelp record (required)")
	fs.StringVar(&cfg.Topic, "topic", cfg.Topic, "topic to publish to (required; created when missing)")
	fs.Float64Var(&cfg.Rate, "rate", cfg.Rate, "records per second (0: as fast as the broker takes them)")
	fs.IntVar(&cfg.Partitions, "partitions", cfg.Partitions, "partitions of the topic when it is created (default: the source topic's count)")
	return fs, func(ctx context.Context) error {
		log, kcfg, err := sh.connect("replay")
		if err != nil {
			return err
		}
		if opt.In == "" || cfg.Topic == "" {
			return usagef("--in and --topic are required")
		}
		cfg.Kafka, cfg.Log = kcfg, log
		if err := cfg.Validate(); err != nil {
			return configError(err)
		}
		f, err := os.Open(opt.In)
		if err != nil {
			return fmt.Errorf("replay: %w", err)
		}
		defer f.Close()
		st, err := producers.Replay(ctx, *cfg, f)
		refused := errors.As(err, new(*producers.RefusedError))
		if err != nil && !refused {
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
			st.Records, src, opt.In, cfg.Topic, how, st.Partitions, st.Elapsed.Round(time.Millisecond))
		if refused {
			fmt.Fprintf(stdout, "%d records not replayed: %s refused them for good\n", len(st.Refused), cfg.Topic)
		}
		return err // a *producers.RefusedError naming them: exit status 1
	}
}

// plotConfig is what aelp plot draws.
type plotConfig struct {
	// Experiment's TrainingMetrics records on Topic, read at Isolation,
	// drawn to Out.
	Experiment, Out, Topic string
	Isolation              kafkax.Isolation
}

func defaultPlotConfig() plotConfig {
	return plotConfig{Topic: kafkax.TopicMetrics, Isolation: kafkax.ReadCommitted}
}

// plotSetup is aelp plot.
func plotSetup(stdout io.Writer) (*flagSet, action) {
	fs := newFlagSet("plot")
	sh := newShared(fs, sharedFlags{kafka: true})
	cfg := newConfig(fs, defaultPlotConfig)
	fs.StringVar(&cfg.Experiment, "experiment", cfg.Experiment, "experiment id whose training curves to draw (required)")
	fs.StringVar(&cfg.Out, "out", cfg.Out, "image to write: .png or .svg (required)")
	fs.StringVar(&cfg.Topic, "topic", cfg.Topic, "topic of TrainingMetrics records")
	isolationFlag(fs, &cfg.Isolation)
	return fs, func(ctx context.Context) error {
		log, kcfg, err := sh.connect("plot")
		if err != nil {
			return err
		}
		if cfg.Experiment == "" || cfg.Out == "" {
			return usagef("--experiment and --out are required")
		}
		if _, err := plot.FormatOf(cfg.Out); err != nil {
			return usagef("%v", err)
		}
		ms, _, err := consumers.ReadMetrics(ctx, kcfg, cfg.Topic, cfg.Experiment, kafkax.ReadOptions{Isolation: cfg.Isolation, Logger: log})
		if err != nil {
			return err
		}
		if len(ms) == 0 {
			return fmt.Errorf("no TrainingMetrics records of experiment %q on %s", cfg.Experiment, cfg.Topic)
		}
		if err := plot.WriteFile(cfg.Out, ms, plot.Options{Title: "aelp experiment " + cfg.Experiment}); err != nil {
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
			cfg.Out, len(panels), names, len(ms), cfg.Experiment, lo, hi)
		return nil
	}
}
