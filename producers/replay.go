package producers

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"github.com/aelp/aelp/internal/kafkax"
	"github.com/aelp/aelp/schemas"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
)

// ReplayConfig configures Replay.
type ReplayConfig struct {
	// Kafka is the connection.
	Kafka kafkax.Config
	// Topic receives the records. Required.
	Topic string
	// Partitions is the partition count of Topic when Replay creates it.
	// Default: the source topic's count from the recording's metadata,
	// else 6.
	Partitions int
	// Rate, when > 0, caps the records published per second.
	Rate float64
	// BatchRecords is how many records are handed to the writer at once.
	// Default 1000 (fewer under a low Rate, so pacing stays smooth).
	BatchRecords int
	// Progress, when set, is called with the records published so far
	// after each acknowledged batch.
	Progress func(done int64)
	// Log receives retry warnings.
	Log zerolog.Logger
}

// DefaultReplayConfig returns Replay's defaults, which are all zero
// values: as fast as the broker takes the records, the source topic's
// partition count, and BatchRecords derived from Rate (see its field).
func DefaultReplayConfig() ReplayConfig { return ReplayConfig{} }

func (c *ReplayConfig) setDefaults() {
	if c.BatchRecords == 0 {
		c.BatchRecords = 1000
		if c.Rate > 0 {
			// About ten batches a second.
			c.BatchRecords = int(min(1000, max(1, c.Rate/10)))
		}
	}
}

// Validate reports the first invalid field.
func (c ReplayConfig) Validate() error {
	c.setDefaults()
	switch {
	case c.Topic == "":
		return errors.New("no topic")
	case c.Partitions < 0:
		return fmt.Errorf("partitions %d: must not be negative", c.Partitions)
	case c.Rate < 0 || math.IsNaN(c.Rate) || math.IsInf(c.Rate, 0):
		return fmt.Errorf("rate %v: must be a positive number", c.Rate)
	case c.BatchRecords < 1:
		return fmt.Errorf("batch records %d: must be at least 1", c.BatchRecords)
	}
	return c.Kafka.Validate()
}

// ReplayStats summarises a replay.
type ReplayStats struct {
	// Records is the number of records acknowledged by the broker.
	Records int64
	// SourceTopic is the recorded topic ("" when the file does not say).
	SourceTopic string
	// Partitions is the target topic's partition count; Created says
	// whether Replay created it.
	Partitions int
	Created    bool
	// First and Last are the earliest and latest record timestamps.
	First, Last time.Time
	// Elapsed is the run time.
	Elapsed time.Duration
	// Refused are the records the target topic refused for good (larger
	// than it takes, or invalid for it), in file order; the others were
	// written. Replay then returns a *RefusedError.
	Refused []RefusedRecording
}

// RefusedRecording is a record of a recording that the target topic
// refused for good.
type RefusedRecording struct {
	// Partition and Offset are where the record was recorded.
	Partition int
	Offset    int64
	// Err says why (a *kafkax.RecordTooLargeError for a record larger
	// than the topic takes).
	Err error
}

// RefusedError reports the records of a replay the target topic refused
// for good, the others being written.
type RefusedError struct {
	// Topic is the target topic, Source the recorded one.
	Topic, Source string
	// Records are the refused records (ReplayStats.Refused).
	Records []RefusedRecording
}

func (e *RefusedError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s refused %d records of the recording for good (the others were written):", e.Topic, len(e.Records))
	for i, r := range e.Records {
		if i == 10 {
			fmt.Fprintf(&b, "; and %d more", len(e.Records)-i)
			break
		}
		fmt.Fprintf(&b, " %s partition %d offset %d (%v);", cmp.Or(e.Source, "recorded"), r.Partition, r.Offset, r.Err)
	}
	return strings.TrimSuffix(b.String(), ";")
}

// Unwrap returns the refusals' errors.
func (e *RefusedError) Unwrap() []error {
	errs := make([]error, len(e.Records))
	for i, r := range e.Records {
		errs[i] = r.Err
	}
	return errs
}

// Replay republishes the recording read from in (written by
// consumers.Record, see schemas.RecordingReader) to cfg.Topic: keys, values, headers and
// timestamps unchanged, a null key, value or header value null and an
// empty one empty (a recorded tombstone is published as a tombstone; the
// entries of a version-1 recording have no null value), in file order,
// through a key-hash partitioner, so every key's records stay on one
// partition in their recorded order (an empty key is a key like any other;
// a null key is not hashed). The topic is created when missing. Batches
// are sized by the topic's max.message.bytes. Broker errors are retried
// with backoff (kafkax.WriteAll); a record the topic refuses for good
// (larger than it takes) is listed in ReplayStats.Refused and the replay
// goes on: at the end Replay returns a *RefusedError naming where each was
// recorded. Cancelling ctx stops it with ctx's error after the records
// already handed to the writer are flushed or the flush fails.
func Replay(ctx context.Context, cfg ReplayConfig, in io.Reader) (ReplayStats, error) {
	cfg.setDefaults()
	var st ReplayStats
	if err := cfg.Validate(); err != nil {
		return st, fmt.Errorf("replay: %w", err)
	}
	t0 := time.Now()
	rr, err := schemas.NewRecordingReader(in)
	if err != nil {
		return st, fmt.Errorf("replay: %w", err)
	}
	st.SourceTopic = rr.SourceTopic()
	client, err := kafkax.NewClient(cfg.Kafka)
	if err != nil {
		return st, fmt.Errorf("replay: %w", err)
	}
	defer client.Close()
	if st.Partitions, st.Created, err = replayTarget(ctx, cfg, client, rr.SourcePartitions()); err != nil {
		return st, fmt.Errorf("replay: %w", err)
	}
	w, err := client.NewWriter(ctx, cfg.Topic, kafkax.WriterOptions{BatchSize: cfg.BatchRecords, Logger: cfg.Log})
	if err != nil {
		return st, fmt.Errorf("replay: %w", err)
	}
	b := &replayBatch{cfg: &cfg, w: w, st: &st, t0: t0, msgs: make([]kafka.Message, 0, cfg.BatchRecords),
		pos: make([]RefusedRecording, 0, cfg.BatchRecords)}
	var rerr error
	for {
		rm, err := rr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			rerr = err
			break
		}
		t := rm.Time
		if st.First.IsZero() || t.Before(st.First) {
			st.First = t
		}
		if t.After(st.Last) {
			st.Last = t
		}
		b.msgs = append(b.msgs, replayMessage(&rm))
		b.pos = append(b.pos, RefusedRecording{Partition: rm.Partition, Offset: rm.Offset})
		if len(b.msgs) >= cfg.BatchRecords {
			if rerr = b.flush(ctx); rerr != nil {
				break
			}
		}
	}
	if rerr == nil {
		rerr = b.flush(ctx)
	}
	if cerr := w.Close(); cerr != nil && rerr == nil {
		rerr = fmt.Errorf("close writer: %w", cfg.Kafka.Explain(cerr))
	}
	st.Elapsed = time.Since(t0)
	if rerr != nil {
		return st, fmt.Errorf("replay to %s: %w", cfg.Topic, rerr)
	}
	if len(st.Refused) > 0 {
		return st, &RefusedError{Topic: cfg.Topic, Source: st.SourceTopic, Records: st.Refused}
	}
	return st, nil
}

// replayBatch is the batch of records Replay hands the writer next, and
// where each was recorded.
type replayBatch struct {
	cfg  *ReplayConfig
	w    *kafkax.Writer
	st   *ReplayStats
	t0   time.Time
	msgs []kafka.Message
	pos  []RefusedRecording // where msgs[i] was recorded
}

// flush writes the batch, lists the records the topic refused for good
// in ReplayStats.Refused, reports progress and paces the replay.
func (b *replayBatch) flush(ctx context.Context) error {
	if len(b.msgs) == 0 {
		return nil
	}
	cfg, st := b.cfg, b.st
	written := len(b.msgs)
	err := kafkax.WriteAll(ctx, cfg.Kafka, b.w, cfg.Log, b.msgs)
	if re, ok := errors.AsType[*kafkax.RefusedError](err); ok {
		for _, r := range re.Records {
			p := b.pos[r.Index]
			p.Err = r.Err
			st.Refused = append(st.Refused, p)
			cfg.Log.Error().Err(r.Err).Int("partition", p.Partition).Int64("offset", p.Offset).Str("topic", cfg.Topic).
				Msg("the topic refused a recorded record; going on without it")
		}
		written, err = re.Written, nil
	}
	if err != nil {
		return err
	}
	st.Records += int64(written)
	clear(b.msgs)
	b.msgs, b.pos = b.msgs[:0], b.pos[:0]
	if cfg.Progress != nil {
		cfg.Progress(st.Records)
	}
	return paceTo(ctx, b.t0, st.Records, cfg.Rate)
}

// paceTo waits until n records at rate per second (0: no limit) are due
// since t0: the n-th record is due n/rate seconds after t0.
func paceTo(ctx context.Context, t0 time.Time, n int64, rate float64) error {
	if rate <= 0 {
		return nil
	}
	if d := time.Until(t0.Add(time.Duration(float64(n) / rate * float64(time.Second)))); d > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d):
		}
	}
	return nil
}

// replayTarget returns the partition count of the target topic, creating
// it (with cfg.Partitions, else the source's count, else 6) when missing.
func replayTarget(ctx context.Context, cfg ReplayConfig, client *kafkax.Client, sourcePartitions int) (partitions int, created bool, err error) {
	parts, err := client.Partitions(ctx, cfg.Topic)
	switch {
	case err == nil:
		return len(parts), false, nil
	case !errors.Is(err, kafka.UnknownTopicOrPartition):
		return 0, false, err
	}
	n := cfg.Partitions
	if n == 0 {
		n = sourcePartitions
	}
	if n == 0 {
		n = 6
	}
	if err := kafkax.Retry(ctx, cfg.Log, "create topic", func(ctx context.Context) error {
		return client.EnsureTopics(ctx, kafkax.TopicSpec{Name: cfg.Topic, Partitions: n})
	}); err != nil {
		return 0, false, err
	}
	return n, true, nil
}

// replayMessage returns the record to publish for a recording entry: its
// key, value, headers and timestamp (where it was read is left out). Nil
// stays nil and empty stays empty: kafka-go's writer sends a nil key,
// value or header value as null and an empty one as empty.
func replayMessage(e *schemas.RecordedMessage) kafka.Message {
	m := kafka.Message{Key: e.Key, Value: e.Value, Time: e.Time}
	if len(e.Headers) > 0 {
		m.Headers = make([]kafka.Header, len(e.Headers))
		for i, h := range e.Headers {
			m.Headers[i] = kafka.Header{Key: h.Key, Value: h.Value}
		}
	}
	return m
}
