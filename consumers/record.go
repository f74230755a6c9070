package consumers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/aelp/aelp/internal/kafkax"
	"github.com/aelp/aelp/producers"
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
	// offsets seen at start.
	To Position
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

func (c *RecordConfig) setDefaults() {
	if c.Codec == "" {
		c.Codec = goavro.CompressionDeflateLabel
	}
	if c.BlockRecords == 0 {
		c.BlockRecords = 1000
	}
	if c.ProgressEvery == 0 {
		c.ProgressEvery = 200 * time.Millisecond
	}
}

// Validate reports the first invalid field.
func (c RecordConfig) Validate() error {
	c.setDefaults()
	switch {
	case c.Topic == "":
		return errors.New("record: no topic")
	case c.Codec != goavro.CompressionNullLabel && c.Codec != goavro.CompressionDeflateLabel && c.Codec != goavro.CompressionSnappyLabel:
		return fmt.Errorf("record: codec %q: want null, deflate or snappy", c.Codec)
	case c.BlockRecords < 1:
		return fmt.Errorf("record: block records %d: must be at least 1", c.BlockRecords)
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
// past the end offsets seen at start) to w as an Avro object container
// file of producers.RecordedMessageSchema entries, partition order kept. The file's
// metadata names the topic and its partition count. Cancelling ctx stops
// it with ctx's error; what was written so far is a valid file up to the
// last flushed block.
func Record(ctx context.Context, cfg RecordConfig, w io.Writer) (RecordStats, error) {
	cfg.setDefaults()
	st := RecordStats{}
	if err := cfg.Validate(); err != nil {
		return st, err
	}
	t0 := time.Now()
	offs, err := kafkax.ListOffsets(ctx, cfg.Kafka, cfg.Topic)
	if err != nil {
		return st, fmt.Errorf("record: %w", err)
	}
	start, err := resolvePosition(ctx, cfg, offs, cfg.From, offs.First)
	if err != nil {
		return st, err
	}
	end, err := resolvePosition(ctx, cfg, offs, cfg.To, offs.End)
	if err != nil {
		return st, err
	}
	for p := range end {
		end[p] = max(end[p], start[p])
		st.Expected += end[p] - start[p]
	}
	st.Partitions, st.Start, st.End = len(offs.End), start, end

	ocf, err := goavro.NewOCFWriter(goavro.OCFConfig{
		W: w, Schema: producers.RecordedMessageSchema, CompressionName: cfg.Codec,
		MetaData: map[string][]byte{
			producers.MetaSourceTopic:      []byte(cfg.Topic),
			producers.MetaSourcePartitions: []byte(strconv.Itoa(len(offs.End))),
		},
	})
	if err != nil {
		return st, fmt.Errorf("record: %w", err)
	}
	block := make([]any, 0, cfg.BlockRecords)
	flush := func() error {
		if len(block) == 0 {
			return nil
		}
		if err := ocf.Append(block); err != nil {
			return fmt.Errorf("record: write block: %w", err)
		}
		st.Records += int64(len(block))
		clear(block)
		block = block[:0]
		return nil
	}
	lastProgress := time.Now()
	err = ReadPartitions(ctx, cfg.Kafka, cfg.Topic, start, end, cfg.Log, func(m kafka.Message) error {
		block = append(block, recordedNative(&m))
		st.ValueBytes += int64(len(m.Key) + len(m.Value))
		if st.First.IsZero() || m.Time.Before(st.First) {
			st.First = m.Time
		}
		if m.Time.After(st.Last) {
			st.Last = m.Time
		}
		if len(block) >= cfg.BlockRecords {
			if err := flush(); err != nil {
				return err
			}
		}
		if cfg.Progress != nil && time.Since(lastProgress) >= cfg.ProgressEvery {
			lastProgress = time.Now()
			cfg.Progress(st.Records+int64(len(block)), st.Expected)
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
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
func resolvePosition(ctx context.Context, cfg RecordConfig, offs kafkax.Offsets, pos Position, def map[int]int64) (map[int]int64, error) {
	out := make(map[int]int64, len(offs.End))
	var atTime map[int]int64
	if pos.Set && pos.IsTime {
		var err error
		if atTime, err = kafkax.OffsetsForTime(ctx, cfg.Kafka, cfg.Topic, pos.Time); err != nil {
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

// recordedNative returns m in the native form of producers.RecordedMessageSchema.
func recordedNative(m *kafka.Message) map[string]any {
	var key any
	if m.Key != nil {
		key = goavro.Union("bytes", m.Key)
	}
	hs := make([]any, len(m.Headers))
	for i, h := range m.Headers {
		v := h.Value
		if v == nil {
			v = []byte{}
		}
		hs[i] = map[string]any{"key": h.Key, "value": v}
	}
	val := m.Value
	if val == nil {
		val = []byte{}
	}
	return map[string]any{
		"topic":     m.Topic,
		"partition": int32(m.Partition),
		"offset":    m.Offset,
		"timestamp": m.Time,
		"key":       key,
		"value":     val,
		"headers":   hs,
	}
}
