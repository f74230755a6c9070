package kafkax

import (
	"fmt"
	"strconv"
	"time"

	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
)

// ReaderOptions tunes the readers; the zero value gives the defaults.
type ReaderOptions struct {
	// StartOffset applies when the group has no committed offset (or, for a
	// partition reader, always): kafka.FirstOffset (default) or
	// kafka.LastOffset.
	StartOffset int64
	// MaxWait bounds how long a fetch waits for new data. Default 2 s: a
	// fetch returns as soon as one record arrives, and kafka-go asks the
	// broker to wait MaxWait minus its RTT allowance (1 s) while timing the
	// connection out at MaxWait, so a shorter MaxWait leaves too little
	// margin and idle partitions log spurious i/o timeouts.
	MaxWait time.Duration
	// MaxBytes bounds one fetch response. Default 10 MiB.
	MaxBytes int
	// Logger receives the reader's error messages.
	Logger zerolog.Logger
}

func (o *ReaderOptions) setDefaults() {
	if o.StartOffset == 0 {
		o.StartOffset = kafka.FirstOffset
	}
	if o.MaxWait == 0 {
		o.MaxWait = 2 * time.Second
	}
	if o.MaxBytes == 0 {
		o.MaxBytes = 10 << 20
	}
}

// NewGroupReader returns a consumer-group Reader on topic. Offsets are
// committed only by explicit CommitMessages (synchronous, CommitInterval 0):
// use FetchMessage, then commit the last message of every partition once
// its results are acknowledged. The caller closes it; Close leaves the
// group.
func NewGroupReader(cfg Config, topic, group string, opt ReaderOptions) (*kafka.Reader, error) {
	cfg.setDefaults()
	if group == "" {
		return nil, fmt.Errorf("group reader on %s: empty group id", topic)
	}
	d, err := cfg.Dialer()
	if err != nil {
		return nil, err
	}
	opt.setDefaults()
	return kafka.NewReader(kafka.ReaderConfig{
		Brokers:                cfg.Brokers,
		GroupID:                group,
		Topic:                  topic,
		Dialer:                 d,
		QueueCapacity:          1000,
		MinBytes:               1,
		MaxBytes:               opt.MaxBytes,
		MaxWait:                opt.MaxWait,
		ReadBatchTimeout:       opt.MaxWait + 5*time.Second,
		CommitInterval:         0,
		StartOffset:            opt.StartOffset,
		HeartbeatInterval:      time.Second,
		SessionTimeout:         10 * time.Second,
		RebalanceTimeout:       10 * time.Second,
		JoinGroupBackoff:       500 * time.Millisecond,
		WatchPartitionChanges:  true,
		PartitionWatchInterval: 5 * time.Second,
		ReadBackoffMin:         50 * time.Millisecond,
		ReadBackoffMax:         time.Second,
		MaxAttempts:            10,
		ErrorLogger:            kafka.LoggerFunc(func(f string, a ...any) { opt.Logger.Warn().Str("component", "kafka-reader").Msgf(f, a...) }),
	}), nil
}

// NewPartitionReader returns a Reader of one partition starting at offset
// (an absolute offset, or kafka.FirstOffset / kafka.LastOffset). It commits
// nothing.
func NewPartitionReader(cfg Config, topic string, partition int, offset int64, opt ReaderOptions) (*kafka.Reader, error) {
	cfg.setDefaults()
	d, err := cfg.Dialer()
	if err != nil {
		return nil, err
	}
	opt.setDefaults()
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:          cfg.Brokers,
		Topic:            topic,
		Partition:        partition,
		Dialer:           d,
		QueueCapacity:    1000,
		MinBytes:         1,
		MaxBytes:         opt.MaxBytes,
		MaxWait:          opt.MaxWait,
		ReadBatchTimeout: opt.MaxWait + 5*time.Second,
		ReadBackoffMin:   50 * time.Millisecond,
		ReadBackoffMax:   time.Second,
		MaxAttempts:      10,
		ErrorLogger:      kafka.LoggerFunc(func(f string, a ...any) { opt.Logger.Warn().Str("component", "kafka-reader").Msgf(f, a...) }),
	})
	if err := r.SetOffset(offset); err != nil {
		r.Close()
		return nil, fmt.Errorf("reader %s/%d: set offset %d: %w", topic, partition, offset, err)
	}
	return r, nil
}

// Dead-letter headers (DESIGN.md).
const (
	HeaderError           = "aelp.error"
	HeaderSourceTopic     = "aelp.source.topic"
	HeaderSourcePartition = "aelp.source.partition"
	HeaderSourceOffset    = "aelp.source.offset"
)

// DeadLetter returns the message to publish on the dead-letter topic for
// m: the same key, value and headers, unchanged (a null key, value or
// header value stays null and an empty one empty, as long as m came from
// a reader that tells them apart, as Reader does), plus headers saying why
// and where it came from.
func DeadLetter(m kafka.Message, reason string) kafka.Message {
	h := make([]kafka.Header, 0, len(m.Headers)+4)
	h = append(h, m.Headers...)
	h = append(h,
		kafka.Header{Key: HeaderError, Value: []byte(reason)},
		kafka.Header{Key: HeaderSourceTopic, Value: []byte(m.Topic)},
		kafka.Header{Key: HeaderSourcePartition, Value: strconv.AppendInt(nil, int64(m.Partition), 10)},
		kafka.Header{Key: HeaderSourceOffset, Value: strconv.AppendInt(nil, m.Offset, 10)},
	)
	return kafka.Message{Key: m.Key, Value: m.Value, Headers: h, Time: m.Time}
}

// DeadLetterOrigin is what a dead letter's headers say of it.
type DeadLetterOrigin struct {
	// Reason is aelp.error.
	Reason string
	// Topic, Partition and Offset are where the record was read
	// (Partition and Offset -1 when absent).
	Topic     string
	Partition int
	Offset    int64
}

// DeadLetterSource returns the origin a dead letter made by DeadLetter
// carries in its headers (the last ones of each name).
func DeadLetterSource(m kafka.Message) DeadLetterOrigin {
	o := DeadLetterOrigin{Partition: -1, Offset: -1}
	for _, h := range m.Headers {
		switch h.Key {
		case HeaderError:
			o.Reason = string(h.Value)
		case HeaderSourceTopic:
			o.Topic = string(h.Value)
		case HeaderSourcePartition:
			if p, err := strconv.Atoi(string(h.Value)); err == nil {
				o.Partition = p
			}
		case HeaderSourceOffset:
			if off, err := strconv.ParseInt(string(h.Value), 10, 64); err == nil {
				o.Offset = off
			}
		}
	}
	return o
}

// LastPerPartition returns, of msgs, the last message of every partition
// (the highest offset), which is what CommitMessages needs to commit them
// all.
func LastPerPartition(msgs []kafka.Message) []kafka.Message {
	last := map[int]int{}
	for i, m := range msgs {
		if j, ok := last[m.Partition]; !ok || m.Offset > msgs[j].Offset {
			last[m.Partition] = i
		}
	}
	out := make([]kafka.Message, 0, len(last))
	for _, i := range last {
		out = append(out, msgs[i])
	}
	return out
}
