package kafkax

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Isolation selects what a reader sees of the records of transactional
// producers (Kafka's isolation.level).
type Isolation int8

const (
	// ReadCommitted, the default, returns every non-transactional record
	// and the records of committed transactions; a bounded read ends at the
	// last stable offset (LSO), below which every transaction is decided.
	ReadCommitted Isolation = iota
	// ReadUncommitted returns every record, those of aborted and still open
	// transactions included; a bounded read ends at the high-water mark.
	ReadUncommitted
)

// ParseIsolation parses Kafka's names of the isolation levels,
// read_committed and read_uncommitted ("-" for "_" and any case accepted).
func ParseIsolation(s string) (Isolation, error) {
	switch strings.ReplaceAll(strings.ToLower(strings.TrimSpace(s)), "-", "_") {
	case "read_committed":
		return ReadCommitted, nil
	case "read_uncommitted":
		return ReadUncommitted, nil
	}
	return ReadCommitted, fmt.Errorf("isolation level %q: want read_committed or read_uncommitted", s)
}

// String returns Kafka's name of the level.
func (i Isolation) String() string {
	if i == ReadUncommitted {
		return "read_uncommitted"
	}
	return "read_committed"
}

func (i Isolation) kgo() kgo.IsolationLevel {
	if i == ReadUncommitted {
		return kgo.ReadUncommitted()
	}
	return kgo.ReadCommitted()
}

// level is the IsolationLevel field of fetch and list-offsets requests.
func (i Isolation) level() int8 {
	if i == ReadUncommitted {
		return 0
	}
	return 1
}

// ReadOptions tunes a Reader; the zero value gives the defaults.
type ReadOptions struct {
	// Isolation is ReadCommitted (the default) or ReadUncommitted.
	Isolation Isolation
	// MaxWait bounds how long a fetch waits at the end of the log for new
	// records (a fetch returns as soon as there is one). Default 500 ms.
	MaxWait time.Duration
	// MaxBytes bounds one fetch response, all partitions of one broker
	// together. Default 32 MiB.
	MaxBytes int32
	// PartitionMaxBytes bounds one partition's share of a fetch response
	// (a first record batch larger than that still comes whole). Default
	// 8 MiB.
	PartitionMaxBytes int32
	// LookupTimeout bounds every metadata and offset look-up. Default 15 s.
	LookupTimeout time.Duration
	// Logger receives a warning for each failed fetch that is retried.
	Logger zerolog.Logger
}

func (o *ReadOptions) setDefaults() {
	if o.MaxWait == 0 {
		o.MaxWait = 500 * time.Millisecond
	}
	if o.MaxBytes == 0 {
		o.MaxBytes = 32 << 20
	}
	if o.PartitionMaxBytes == 0 {
		o.PartitionMaxBytes = 8 << 20
	}
	if o.LookupTimeout == 0 {
		o.LookupTimeout = 15 * time.Second
	}
}

// Batch is what one fetch returned of one partition.
type Batch struct {
	// Partition is the partition read.
	Partition int
	// Messages are the records returned, in offset order, with Topic,
	// Partition, Offset, HighWaterMark, Key, Value, Headers and Time set.
	// A null key, value (a tombstone) or header value is nil and an empty
	// one is non-nil and empty (kafka-go's own readers return nil for
	// both). They never include a control record
	// (a transaction's commit or abort marker) and, under ReadCommitted,
	// never a record of an aborted transaction. Messages may be empty, and
	// the caller may keep them.
	Messages []kafka.Message
	// Next is the offset the partition is read from next: past every
	// offset the fetch covered, those of records not returned (control
	// records, aborted transactions, compacted gaps) included. A reader
	// that tracks its position uses Next, not the last message's offset.
	Next int64
	// HighWaterMark, LastStableOffset and LogStartOffset are the broker's
	// as of the fetch.
	HighWaterMark, LastStableOffset, LogStartOffset int64
}

// UnknownTopicError reports a topic that does not exist.
type UnknownTopicError struct {
	// Topic is the topic asked for.
	Topic string
}

func (e *UnknownTopicError) Error() string { return fmt.Sprintf("topic %q does not exist", e.Topic) }

// Is matches the UNKNOWN_TOPIC_OR_PARTITION error of kafka-go and of kgo.
func (e *UnknownTopicError) Is(target error) bool {
	return target == error(kafka.UnknownTopicOrPartition) || target == error(kerr.UnknownTopicOrPartition)
}

// Reader reads partitions of one topic from given offsets, on franz-go's
// kgo client, with the isolation level of its options (read_committed by
// default): control records are never returned, nor under read_committed
// the records of aborted transactions. It holds one client (one connection
// per broker and kind of request) for its lifetime. Its methods may be
// called from several goroutines; each Read fetches on its own.
type Reader struct {
	cfg     Config
	topic   string
	opt     ReadOptions
	log     zerolog.Logger
	cl      *kgo.Client
	decomp  kgo.Decompressor
	records recordPool
	sasl    *saslWatch // nil without SASL
}

// NewReader returns a Reader of topic. It connects lazily: the first
// look-up or Read dials the brokers. The caller closes it.
func NewReader(cfg Config, topic string, opt ReadOptions) (*Reader, error) {
	cfg.setDefaults()
	if topic == "" {
		return nil, errors.New("reader: no topic")
	}
	opt.setDefaults()
	kopts, err := cfg.KgoOptions(opt.Logger)
	if err != nil {
		return nil, err
	}
	r := &Reader{cfg: cfg, topic: topic, opt: opt, log: opt.Logger, decomp: newDecompressor()}
	if cfg.SASL.Mechanism != "" {
		r.sasl = newSASLWatch(cfg)
		kopts = append(kopts, kgo.WithHooks(r.sasl))
	}
	if r.cl, err = kgo.NewClient(kopts...); err != nil {
		return nil, fmt.Errorf("reader %s: %w", topic, err)
	}
	return r, nil
}

// Topic returns the topic read.
func (r *Reader) Topic() string { return r.topic }

// Isolation returns the reader's isolation level.
func (r *Reader) Isolation() Isolation { return r.opt.Isolation }

// Close closes the client's connections. Call it after every Read has
// returned.
func (r *Reader) Close() { r.cl.Close() }

// lookupCtx bounds one look-up by LookupTimeout and ends it when the
// credential is refused; done releases it and turns its own deadline into
// an error that says so, and a refusal into the *AuthError.
func (r *Reader) lookupCtx(ctx context.Context) (context.Context, func(error) error) {
	lctx, cancel := context.WithTimeout(ctx, r.opt.LookupTimeout)
	stop := func() bool { return false }
	if r.sasl != nil {
		stop = context.AfterFunc(r.sasl.ctx, cancel)
	}
	return lctx, func(err error) error {
		defer cancel()
		defer stop()
		if err == nil {
			return nil
		}
		if aerr := r.sasl.refused(); aerr != nil {
			return aerr
		}
		if ctx.Err() == nil && lctx.Err() != nil {
			return fmt.Errorf("no answer within %s: %w", r.opt.LookupTimeout, err)
		}
		return err
	}
}

// refused returns the *AuthError once the reader's credential was refused.
func (r *Reader) refused() <-chan struct{} {
	if r.sasl == nil {
		return nil
	}
	return r.sasl.ctx.Done()
}

// topicMeta is the metadata of the topic: its id and each partition's
// leader (-1 when it has none).
type topicMeta struct {
	id      [16]byte
	leaders map[int32]int32
}

// metadata asks for the topic's metadata, within LookupTimeout. A topic
// that does not exist is an *UnknownTopicError at once.
func (r *Reader) metadata(ctx context.Context) (topicMeta, error) {
	lctx, done := r.lookupCtx(ctx)
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(r.topic)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(lctx, r.cl)
	if err = done(err); err != nil {
		return topicMeta{}, fmt.Errorf("metadata %s: %w", r.topic, r.cfg.explainKgo(err))
	}
	for _, t := range resp.Topics {
		if t.Topic == nil || *t.Topic != r.topic {
			continue
		}
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil {
			if errors.Is(err, kerr.UnknownTopicOrPartition) {
				return topicMeta{}, &UnknownTopicError{Topic: r.topic}
			}
			return topicMeta{}, fmt.Errorf("metadata %s: %w", r.topic, r.cfg.explainKgo(err))
		}
		md := topicMeta{id: t.TopicID, leaders: make(map[int32]int32, len(t.Partitions))}
		for _, p := range t.Partitions {
			md.leaders[p.Partition] = p.Leader
			if p.ErrorCode != 0 {
				md.leaders[p.Partition] = -1
			}
		}
		return md, nil
	}
	return topicMeta{}, &UnknownTopicError{Topic: r.topic}
}

// Partitions returns the topic's partition ids, sorted.
func (r *Reader) Partitions(ctx context.Context) ([]int, error) {
	md, err := r.metadata(ctx)
	if err != nil {
		return nil, err
	}
	return sortedPartitions(md.leaders), nil
}

func sortedPartitions(leaders map[int32]int32) []int {
	out := make([]int, 0, len(leaders))
	for p := range leaders {
		out = append(out, int(p))
	}
	slices.Sort(out)
	return out
}

// ListOffsets returns the first and end offsets of every partition: End is
// the last stable offset under ReadCommitted (where a bounded read of
// committed records ends), the high-water mark under ReadUncommitted. A
// topic that does not exist fails at once with an *UnknownTopicError; every
// request is bounded by LookupTimeout.
func (r *Reader) ListOffsets(ctx context.Context) (Offsets, error) {
	md, err := r.metadata(ctx)
	if err != nil {
		return Offsets{}, err
	}
	parts := sortedPartitions(md.leaders)
	first, err := r.listOffsets(ctx, parts, -2)
	if err != nil {
		return Offsets{}, err
	}
	end, err := r.listOffsets(ctx, parts, -1)
	if err != nil {
		return Offsets{}, err
	}
	return Offsets{First: first, End: end}, nil
}

// OffsetsForTime returns, per partition, the first offset whose timestamp
// is at or after t (the end offset when there is none).
func (r *Reader) OffsetsForTime(ctx context.Context, t time.Time) (map[int]int64, error) {
	offs, err := r.ListOffsets(ctx)
	if err != nil {
		return nil, err
	}
	parts := make([]int, 0, len(offs.End))
	for p := range offs.End {
		parts = append(parts, p)
	}
	slices.Sort(parts)
	at, err := r.listOffsets(ctx, parts, t.UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("%w (at %s)", err, t.Format(time.RFC3339))
	}
	for p, o := range at {
		if o < 0 || o > offs.End[p] {
			at[p] = offs.End[p]
		}
	}
	return at, nil
}

// listOffsets asks for the offset of ts (-2 earliest, -1 end, else a time
// in Unix milliseconds) in each partition. Partition errors a retry can fix
// (a leader moving or loading) are retried with backoff within
// LookupTimeout.
func (r *Reader) listOffsets(ctx context.Context, parts []int, ts int64) (map[int]int64, error) {
	lctx, done := r.lookupCtx(ctx)
	out := make(map[int]int64, len(parts))
	pending := parts
	var b Backoff
	for {
		req := kmsg.NewPtrListOffsetsRequest()
		req.IsolationLevel = r.opt.Isolation.level()
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = r.topic
		for _, p := range pending {
			rp := kmsg.NewListOffsetsRequestTopicPartition()
			rp.Partition = int32(p)
			rp.Timestamp = ts
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(lctx, r.cl)
		if err != nil {
			return nil, fmt.Errorf("list offsets %s: %w", r.topic, r.cfg.explainKgo(done(err)))
		}
		var lastErr error
		for _, t := range resp.Topics {
			if t.Topic != r.topic {
				continue
			}
			for _, p := range t.Partitions {
				err := kerr.ErrorForCode(p.ErrorCode)
				switch {
				case err == nil:
					out[int(p.Partition)] = p.Offset
				case kerr.IsRetriable(err):
					lastErr = fmt.Errorf("list offsets %s/%d: %w", r.topic, p.Partition, err)
				default:
					done(nil)
					return nil, fmt.Errorf("list offsets %s/%d: %w", r.topic, p.Partition, r.cfg.explainKgo(err))
				}
			}
		}
		pending = pending[:0:0]
		for _, p := range parts {
			if _, ok := out[p]; !ok {
				pending = append(pending, p)
			}
		}
		if len(pending) == 0 {
			done(nil)
			return out, nil
		}
		if lastErr == nil {
			lastErr = fmt.Errorf("list offsets %s: no answer for partitions %v", r.topic, pending)
		}
		select {
		case <-lctx.Done():
			return nil, done(fmt.Errorf("%w (%v)", lastErr, lctx.Err()))
		case <-time.After(b.Next()):
		}
	}
}

// Read reads every partition p of start from offset start[p] and calls fn,
// on the calling goroutine, with each batch of records fetched: in offset
// order within a partition, partitions interleaved. With end non-nil, a
// partition is read up to end[p] (exclusive; partitions absent from end are
// not read) and Read returns nil once each has been read that far; end
// offsets must not lie past the log's end (take them from ListOffsets).
// A partition counts as read to its end when its fetch position (Batch.Next)
// reaches it, so the read ends even when the last offsets before the end
// hold records it does not return (control records, aborted transactions).
// With end nil, Read follows the topic until ctx ends.
//
// Broker failures (a broker down, a leader moving) are retried with
// backoff and a warning each, so an outage stalls Read instead of ending
// it. Read returns ctx's error when ctx ends, fn's error when fn fails, an
// *AuthError when the credential is refused, and other errors that a retry
// cannot fix (a topic that does not exist when Read starts, records that do
// not decode). Every goroutine it started has exited when it returns.
func (r *Reader) Read(ctx context.Context, start, end map[int]int64, fn func(*Batch) error) error {
	rd, err := r.newRead(start, end)
	if err != nil || len(rd.parts) == 0 {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer func() {
		cancel()
		rd.wg.Wait()
	}()
	return rd.run(ctx, fn)
}

// ReadMessages is Read calling fn once per message.
func (r *Reader) ReadMessages(ctx context.Context, start, end map[int]int64, fn func(*kafka.Message) error) error {
	return r.Read(ctx, start, end, func(b *Batch) error {
		for i := range b.Messages {
			if err := fn(&b.Messages[i]); err != nil {
				return err
			}
		}
		return nil
	})
}

// Offsets holds the first and end (next-to-be-written) offset of each
// partition of a topic.
type Offsets struct {
	// First is the earliest offset still in the log, per partition.
	First map[int]int64
	// End is the offset the next record will get, per partition.
	End map[int]int64
}

// Total returns the number of records between First and End over all
// partitions.
func (o Offsets) Total() int64 {
	var n int64
	for p, e := range o.End {
		n += e - o.First[p]
	}
	return n
}

// ListOffsets returns the first and end offsets of every partition of topic
// under read_committed (End is the last stable offset). See
// Reader.ListOffsets.
func ListOffsets(ctx context.Context, cfg Config, topic string) (Offsets, error) {
	r, err := NewReader(cfg, topic, ReadOptions{})
	if err != nil {
		return Offsets{}, err
	}
	defer r.Close()
	return r.ListOffsets(ctx)
}

// OffsetsForTime returns, per partition of topic, the first offset whose
// timestamp is at or after t (the end offset when there is none).
func OffsetsForTime(ctx context.Context, cfg Config, topic string, t time.Time) (map[int]int64, error) {
	r, err := NewReader(cfg, topic, ReadOptions{})
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return r.OffsetsForTime(ctx, t)
}
