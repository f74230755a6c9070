package consumers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/aelp/aelp/internal/kafkax"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
)

// TailFormat selects how Tail prints records.
type TailFormat int

// Tail output formats.
const (
	// TailJSON prints one JSON object per record and line (for jq).
	TailJSON TailFormat = iota + 1
	// TailTable prints one compact, aligned row per TrainingMetrics record
	// and one summary line per record of another schema.
	TailTable
)

// TailConfig configures Tail.
type TailConfig struct {
	// Kafka is the connection.
	Kafka kafkax.Config
	// Topic is followed on every partition. Default aelp.metrics.
	Topic string
	// Experiment, when set, keeps only records whose key equals it or whose
	// decoded value carries it as experiment_id (top level or in a nested
	// experience), so it works on the metrics topic (keyed by experiment)
	// and on the experience topics (keyed by user) alike.
	Experiment string
	// FromBeginning starts at the first offset of each partition. Without
	// it and without Since, Tail starts at the end: only new records.
	FromBeginning bool
	// Since starts at the first record of each partition whose timestamp is
	// at or after Now() − Since.
	Since time.Duration
	// Max, when > 0, stops Tail after printing that many records.
	Max int64
	// UntilEnd stops Tail at the end offsets seen at start (under
	// ReadCommitted the last stable offsets).
	UntilEnd bool
	// Isolation is kafkax.ReadCommitted (the default: records of aborted
	// transactions are not shown) or kafkax.ReadUncommitted. Transaction
	// markers are never shown.
	Isolation kafkax.Isolation
	// Format is TailJSON (default) or TailTable.
	Format TailFormat
	// Out receives the output. Required.
	Out io.Writer
	// Now returns the current time (for Since). Default time.Now.
	Now func() time.Time
	// Log receives reader warnings.
	Log zerolog.Logger
}

// DefaultTailConfig returns Tail's defaults: the metrics topic, JSON
// lines, read_committed, from the end; every zero field of a TailConfig
// takes the value given here.
func DefaultTailConfig() TailConfig {
	return TailConfig{Topic: kafkax.TopicMetrics, Isolation: kafkax.ReadCommitted, Format: TailJSON}
}

func (c *TailConfig) setDefaults() {
	d := DefaultTailConfig()
	if c.Topic == "" {
		c.Topic = d.Topic
	}
	if c.Format == 0 {
		c.Format = d.Format
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// ErrStartTwice is returned by TailConfig.Validate when both
// FromBeginning and Since say where to start.
var ErrStartTwice = errors.New("both from the beginning and since a time")

// Validate reports the first invalid field.
func (c TailConfig) Validate() error {
	c.setDefaults()
	switch {
	case c.Out == nil:
		return errors.New("no output writer")
	case c.FromBeginning && c.Since != 0:
		return ErrStartTwice
	case c.Since < 0:
		return fmt.Errorf("since %s: must not be negative", c.Since)
	case c.Max < 0:
		return fmt.Errorf("max %d: must not be negative", c.Max)
	case c.Format != TailJSON && c.Format != TailTable:
		return fmt.Errorf("unknown format %d", c.Format)
	}
	return c.Kafka.Validate()
}

// TailStats counts what Tail did.
type TailStats struct {
	// Printed is the number of records written to Out; Filtered those
	// read but dropped by the Experiment filter; Undecodable the printed
	// records whose value did not decode.
	Printed, Filtered, Undecodable int64
}

// errStop ends a scan early without an error.
var errStop = errors.New("stop")

// Tail follows every partition of cfg.Topic and prints each record,
// decoded with schemas.DecodeNative (undecodable values are shown as
// base64 with the error). It returns when ctx ends (a clean stop, nil
// error), after Max records, or with UntilEnd at the end offsets seen at
// start. Output is flushed record by record.
func Tail(ctx context.Context, cfg TailConfig) (TailStats, error) {
	cfg.setDefaults()
	var st TailStats
	if err := cfg.Validate(); err != nil {
		return st, fmt.Errorf("tail: %w", err)
	}
	r, err := kafkax.NewReader(cfg.Kafka, cfg.Topic, kafkax.ReadOptions{Isolation: cfg.Isolation, Logger: cfg.Log})
	if err != nil {
		return st, fmt.Errorf("tail: %w", err)
	}
	defer r.Close()
	start, end, err := tailRange(ctx, r, cfg)
	if err != nil {
		return st, fmt.Errorf("tail: %w", err)
	}
	table := &TableWriter{W: cfg.Out}
	var line []byte
	err = r.ReadMessages(ctx, start, end, func(m *kafka.Message) error {
		e := DecodeEntry(*m)
		if cfg.Experiment != "" && !e.Matches(cfg.Experiment) {
			st.Filtered++
			return nil
		}
		if e.Err != nil {
			st.Undecodable++
		}
		var werr error
		if cfg.Format == TailTable {
			werr = table.Write(&e)
		} else {
			line, werr = AppendJSON(line[:0], &e)
			if werr == nil {
				line = append(line, '\n')
				_, werr = cfg.Out.Write(line)
			}
		}
		if werr != nil {
			return fmt.Errorf("tail: write: %w", werr)
		}
		st.Printed++
		if cfg.Max > 0 && st.Printed >= cfg.Max {
			return errStop
		}
		return nil
	})
	switch {
	case errors.Is(err, errStop):
		return st, nil
	case err != nil && ctx.Err() != nil && errors.Is(err, ctx.Err()):
		return st, nil // stopped by the caller
	case err != nil:
		return st, fmt.Errorf("tail %s: %w", cfg.Topic, err)
	}
	return st, nil
}

// tailRange returns where Tail starts in each partition (the beginning,
// the offsets at Now() − Since, or the end) and, with UntilEnd, where it
// stops (nil: it follows the topic).
func tailRange(ctx context.Context, r *kafkax.Reader, cfg TailConfig) (start, end map[int]int64, err error) {
	offs, err := r.ListOffsets(ctx)
	if err != nil {
		return nil, nil, err
	}
	switch {
	case cfg.FromBeginning:
		start = offs.First
	case cfg.Since > 0:
		if start, err = r.OffsetsForTime(ctx, cfg.Now().Add(-cfg.Since)); err != nil {
			return nil, nil, err
		}
	default:
		start = offs.End
	}
	if cfg.UntilEnd {
		end = offs.End
	}
	return start, end, nil
}
