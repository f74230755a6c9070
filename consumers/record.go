package consumers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/aelp/aelp/internal/kafkax"
	"github.com/aelp/aelp/schemas"
	"github.com/linkedin/goavro/v2"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
)

// Position is a place in every partition of a topic: an offset (the same
// number in each partition) or a time (the first record at or after it).
// The zero value means "not set".
type Position struct {
	// Offset applies when IsTime is false and Set is true.
	Offset int64
	// Time applies when IsTime is true.
	Time time.Time
	// IsTime selects Time over Offset.
	IsTime bool
	// Set is false for the zero value.
	Set bool
}

// ParsePosition parses a non-negative offset ("1200") or an RFC 3339 time
// ("2026-05-01T10:00:00Z"); "" gives the zero Position.
func ParsePosition(s string) (Position, error) {
	if s == "" {
		return Position{}, nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n < 0 {
			return Position{}, fmt.Errorf("offset %d: must not be negative", n)
		}
		return Position{Offset: n, Set: true}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return Position{}, fmt.Errorf("position %q: want an offset or an RFC 3339 time", s)
	}
	return Position{Time: t, IsTime: true, Set: true}, nil
}

// String returns the offset or the RFC 3339 time ("" when unset).
func (p Position) String() string {
	switch {
	case !p.Set:
		return ""
	case p.IsTime:
		return p.Time.Format(time.RFC3339Nano)
	}
	return strconv.FormatInt(p.Offset, 10)
}

// RecordConfig configures Record.
type RecordConfig struct {
	// Kafka is the connection.
	Kafka kafkax.Config
	// Topic is recorded, every partition. Required.
	Topic string
	// From is where recording starts in each partition (inclusive).
	// Default: the first offset kept.
	From Position
	// To is where it stops (exclusive: records at offsets below it, or
	// with timestamps before it). Default, and never later than: the end
	// offsets seen at start (under ReadCommitted the last stable offsets).
	To Position
	// Isolation is kafkax.ReadCommitted (the default: records of aborted
	// transactions are not recorded) or kafkax.ReadUncommitted.
	// Transaction markers are never recorded.
	Isolation kafkax.Isolation
	// Codec is the container file's block codec: "null", "deflate" or
	// "snappy". Default deflate.
	Codec string
	// BlockRecords is the number of entries per container block. Default
	// 1000.
	BlockRecords int
	// Progress, when set, is called on Record's goroutine with the records
	// written so far and the total expected, at most every ProgressEvery
	// and once at the end.
	Progress func(done, total int64)
	// ProgressEvery throttles Progress. Default 200 ms.
	ProgressEvery time.Duration
	// Log receives reader warnings.
	Log zerolog.Logger
}

// DefaultRecordConfig returns Record's defaults: read_committed, from the
// first offset kept to the end offsets seen at start, deflate blocks of
// 1,000 entries, progress every 200 ms; every zero field of a
// RecordConfig takes the value given here.
func DefaultRecordConfig() RecordConfig {
	return RecordConfig{Isolation: kafkax.ReadCommitted, Codec: goavro.CompressionDeflateLabel, BlockRecords: 1000,
		ProgressEvery: 200 * time.Millisecond}
}

func (c *RecordConfig) setDefaults() {
	d := DefaultRecordConfig()
	if c.Codec == "" {
		c.Codec = d.Codec
	}
	if c.BlockRecords == 0 {
		c.BlockRecords = d.BlockRecords
	}
	if c.ProgressEvery == 0 {
		c.ProgressEvery = d.ProgressEvery
	}
}

// Validate reports the first invalid field.
func (c RecordConfig) Validate() error {
	c.setDefaults()
	switch {
	case c.Topic == "":
		return errors.New("no topic")
	case c.Codec != goavro.CompressionNullLabel && c.Codec != goavro.CompressionDeflateLabel && c.Codec != goavro.CompressionSnappyLabel:
		return fmt.Errorf("codec %q: want null, deflate or snappy", c.Codec)
	case c.BlockRecords < 1:
		return fmt.Errorf("block records %d: must be at least 1", c.BlockRecords)
	}
	return c.Kafka.Validate()
}

// RecordStats summarises a recording.
type RecordStats struct {
	// Records is the number of entries written; Expected the number the
	// offsets promised (higher when compaction or retention removed some).
	Records, Expected int64
	// Partitions is the topic's partition count.
	Partitions int
	// ValueBytes sums the keys' and values' sizes.
	ValueBytes int64
	// First and Last are the earliest and latest record timestamps.
	First, Last time.Time
	// Start and End are the offset range recorded per partition.
	Start, End map[int]int64
	// Elapsed is the run time.
	Elapsed time.Duration
}

// Record writes the records of cfg.Topic between From and To (and never
// past the end offsets seen at start) to w as a recording (an Avro object
// container file of schemas.RecordedMessage entries), partition order kept:
// keys, values and header values as they were, a null one null and an
// empty one empty (a tombstone stays a tombstone). The file's metadata
// names the topic and its partition count. Cancelling
// ctx stops it with ctx's error; what was written so far is a valid file up
// to the last flushed block.
func Record(ctx context.Context, cfg RecordConfig, w io.Writer) (RecordStats, error) {
	cfg.setDefaults()
	st := RecordStats{}
	if err := cfg.Validate(); err != nil {
		return st, fmt.Errorf("record: %w", err)
	}
	t0 := time.Now()
	r, err := kafkax.NewReader(cfg.Kafka, cfg.Topic, kafkax.ReadOptions{Isolation: cfg.Isolation, Logger: cfg.Log})
	if err != nil {
		return st, fmt.Errorf("record: %w", err)
	}
	defer r.Close()
	offs, err := r.ListOffsets(ctx)
	if err != nil {
		return st, fmt.Errorf("record: %w", err)
	}
	start, err := resolvePosition(ctx, r, offs, cfg.From, offs.First)
	if err != nil {
		return st, err
	}
	end, err := resolvePosition(ctx, r, offs, cfg.To, offs.End)
	if err != nil {
		return st, err
	}
	for p := range end {
		end[p] = max(end[p], start[p])
		st.Expected += end[p] - start[p]
	}
	st.Partitions, st.Start, st.End = len(offs.End), start, end

	rw, err := schemas.NewRecordingWriter(w, schemas.RecordingOptions{Codec: cfg.Codec, BlockRecords: cfg.BlockRecords,
		SourceTopic: cfg.Topic, SourcePartitions: len(offs.End)})
	if err != nil {
		return st, fmt.Errorf("record: %w", err)
	}
	lastProgress := time.Now()
	var entry schemas.RecordedMessage
	err = r.ReadMessages(ctx, start, end, func(m *kafka.Message) error {
		recordedMessage(&entry, m)
		if err := rw.Write(&entry); err != nil {
			return err
		}
		st.ValueBytes += int64(len(m.Key) + len(m.Value))
		if st.First.IsZero() || m.Time.Before(st.First) {
			st.First = m.Time
		}
		if m.Time.After(st.Last) {
			st.Last = m.Time
		}
		if cfg.Progress != nil && time.Since(lastProgress) >= cfg.ProgressEvery {
			lastProgress = time.Now()
			cfg.Progress(rw.Written()+int64(rw.Buffered()), st.Expected)
		}
		return nil
	})
	if err == nil {
		err = rw.Flush()
	}
	st.Records = rw.Written()
	st.Elapsed = time.Since(t0)
	if cfg.Progress != nil {
		cfg.Progress(st.Records, st.Expected)
	}
	if err != nil {
		return st, fmt.Errorf("record %s: %w", cfg.Topic, err)
	}
	return st, nil
}

// resolvePosition turns pos into per-partition offsets clamped to the
// log's [First, End]; an unset pos gives def.
func resolvePosition(ctx context.Context, r *kafkax.Reader, offs kafkax.Offsets, pos Position, def map[int]int64) (map[int]int64, error) {
	out := make(map[int]int64, len(offs.End))
	var atTime map[int]int64
	if pos.Set && pos.IsTime {
		var err error
		if atTime, err = r.OffsetsForTime(ctx, pos.Time); err != nil {
			return nil, fmt.Errorf("record: %w", err)
		}
	}
	for p, e := range offs.End {
		o := def[p]
		switch {
		case pos.Set && pos.IsTime:
			o = atTime[p]
		case pos.Set:
			o = pos.Offset
		}
		out[p] = min(max(o, offs.First[p]), e)
	}
	return out, nil
}

// recordedMessage sets e to m as a recording entry (e's header slice is
// reused). Nil and empty keys, values and header values are kept apart:
// kafkax.Reader's messages tell them apart.
func recordedMessage(e *schemas.RecordedMessage, m *kafka.Message) {
	hs := e.Headers[:0]
	for _, h := range m.Headers {
		hs = append(hs, schemas.RecordedHeader{Key: h.Key, Value: h.Value})
	}
	*e = schemas.RecordedMessage{Topic: m.Topic, Partition: m.Partition, Offset: m.Offset, Time: m.Time,
		Key: m.Key, Value: m.Value, Headers: hs}
}
