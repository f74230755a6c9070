package kafkax

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/compress"
)

// WriterOptions tunes a Writer; the zero value gives the safe defaults.
type WriterOptions struct {
	// BatchSize is the most records sent in one produce request per
	// partition. Default 1000 (fewer on a topic whose limit is below
	// 36 kB: see NewWriter).
	BatchSize int
	// BatchTimeout is how long a partial batch waits for more records.
	// Default 5 ms (kafka-go's own default of 1 s makes a lone write slow).
	BatchTimeout time.Duration
	// Compression codec. Default lz4.
	Compression compress.Compression
	// NoCompression sends records uncompressed (overrides Compression).
	NoCompression bool
	// MaxAttempts is how often a failed produce is retried inside the
	// writer before WriteMessages returns the error. Default 10.
	MaxAttempts int
	// MaxMessageBytes, when > 0, is the topic's record-batch limit to size
	// batches by, instead of the limit the broker reports.
	MaxMessageBytes int
	// Logger receives a warning when the topic's limit cannot be read and
	// Config.MaxMessageBytes is assumed.
	Logger zerolog.Logger
}

// Writer writes records to one topic through kafka-go, in record batches
// that fit the topic's limit (max.message.bytes). Write through WriteAll:
// it keeps records too large for the topic out of the batches and splits
// a batch the broker still refuses. The embedded kafka.Writer is for its
// fields and statistics; records written with its WriteMessages directly
// get none of that.
type Writer struct {
	*kafka.Writer
	limit     TopicLimit
	maxRecord int
	// split is held shared by every write and exclusively while WriteAll
	// isolates the records of a refused batch, so that the batches of that
	// search hold no record of another caller's.
	split  sync.RWMutex
	client *Client
	// ownClient: the writer made its client and closes it.
	ownClient bool
}

// Record-batch sizes (Kafka's v2 record format). A broker compares a
// batch as sent, compressed, with max.message.bytes; kafka-go's writer
// bounds the records of a batch by BatchBytes, counting each as
// 22 bytes plus its key, value and headers (Message.totalSize), where
// the batch takes 61 bytes of header and each record between 6 and 31
// bytes of varints besides its key, value and headers.
const (
	// batchOverhead is a record batch's header.
	batchOverhead = 61
	// recordOver is the most a record takes beyond kafka-go's count of
	// it (31 − 22), recordUnder the most it takes less (22 − 6).
	recordOver, recordUnder = 9, 16
	// minMessageBytes is the smallest limit a writer works with.
	minMessageBytes = 1024
)

// compressionSlack is the most compression adds to a batch of data that
// does not compress (frame and block headers, checksums), generously:
// lz4, snappy, gzip and zstd add well under 0.1 % and a few dozen bytes.
func compressionSlack(limit int) int { return limit/256 + 256 }

// sizeBatches returns the batch size, kafka-go's BatchBytes and the
// largest single record (RecordBatchBytes) for a topic of limit bytes:
// a full batch of batchSize records within batchBytes takes at most
// 61 + batchBytes + 9·batchSize bytes uncompressed, which leaves room for
// compression's slack under limit; a record within maxRecord is within
// batchBytes by kafka-go's count (it counts at most 16 bytes more than
// the record takes beyond the 61-byte header). The batch size shrinks on
// a small limit so the per-record allowance takes at most a quarter of it.
func sizeBatches(limit, batchSize int) (size int, batchBytes int64, maxRecord int) {
	room := limit - batchOverhead - compressionSlack(limit)
	size = min(batchSize, max(1, room/(4*recordOver)))
	bb := room - recordOver*size
	return size, int64(bb), bb + batchOverhead - recordUnder
}

// RecordBatchBytes returns the size of a record batch holding m alone,
// uncompressed (the v2 format: the 61-byte header and the record's
// varints, key, value and headers): what a broker compares with
// max.message.bytes when m is sent on its own without compression.
func RecordBatchBytes(m kafka.Message) int {
	body := 3 // attributes, timestamp delta 0, offset delta 0
	body += bytesLen(m.Key) + bytesLen(m.Value) + varintLen(len(m.Headers))
	for _, h := range m.Headers {
		body += varintLen(len(h.Key)) + len(h.Key) + bytesLen(h.Value)
	}
	return batchOverhead + varintLen(body) + body
}

// bytesLen is the size of a length-prefixed byte field (null: length −1).
func bytesLen(b []byte) int {
	if b == nil {
		return 1
	}
	return varintLen(len(b)) + len(b)
}

// varintLen is the size of n as a zig-zag varint.
func varintLen(n int) int {
	u := uint64(int64(n)<<1 ^ int64(n)>>63)
	l := 1
	for u >= 0x80 {
		u >>= 7
		l++
	}
	return l
}

// NewWriter returns a Writer of topic with the limit the broker reports for
// it (Client.MaxMessageBytes; unless opt.MaxMessageBytes is set) and safe
// defaults: acks=all, cfg.Partitioner's key hash (one key stays on one
// partition), millisecond batching, lz4, synchronous errors, batches sized
// under the limit (sizeBatches). A topic that does not exist is an
// *UnknownTopicError: topics are never auto-created, call EnsureTopics
// first. The caller closes the writer (before the client); Close flushes
// pending records and waits for their acknowledgements.
func (c *Client) NewWriter(ctx context.Context, topic string, opt WriterOptions) (*Writer, error) {
	lim := TopicLimit{Bytes: opt.MaxMessageBytes, Source: LimitFromOption}
	if lim.Bytes <= 0 {
		var err error
		if lim, err = c.MaxMessageBytes(ctx, topic); err != nil {
			return nil, fmt.Errorf("writer %s: %w", topic, err)
		}
		if lim.Source == LimitFromDefault {
			opt.Logger.Warn().Err(lim.Err).Str("topic", topic).Int("max_message_bytes", lim.Bytes).
				Msg("cannot read the topic's max.message.bytes; assuming --max-message-bytes")
		}
	}
	return c.newWriter(topic, lim, opt)
}

func (c *Client) newWriter(topic string, lim TopicLimit, opt WriterOptions) (*Writer, error) {
	if lim.Bytes < minMessageBytes {
		return nil, fmt.Errorf("writer %s: max.message.bytes %d (%s): aelp needs at least %d", topic, lim.Bytes, lim.Source, minMessageBytes)
	}
	if opt.BatchSize == 0 {
		opt.BatchSize = 1000
	}
	if opt.BatchTimeout == 0 {
		opt.BatchTimeout = 5 * time.Millisecond
	}
	if opt.Compression == 0 {
		opt.Compression = compress.Lz4
	}
	if opt.MaxAttempts == 0 {
		opt.MaxAttempts = 10
	}
	size, batchBytes, maxRecord := sizeBatches(lim.Bytes, opt.BatchSize)
	w := &kafka.Writer{
		Addr:            kafka.TCP(c.cfg.Brokers...),
		Topic:           topic,
		Balancer:        c.cfg.Partitioner.Balancer(),
		MaxAttempts:     opt.MaxAttempts,
		WriteBackoffMin: 100 * time.Millisecond,
		WriteBackoffMax: 2 * time.Second,
		BatchSize:       size,
		BatchBytes:      batchBytes,
		BatchTimeout:    opt.BatchTimeout,
		WriteTimeout:    30 * time.Second,
		RequiredAcks:    kafka.RequireAll,
		Compression:     opt.Compression,
		Transport:       c.tr,
	}
	if opt.NoCompression {
		w.Compression = 0
	}
	return &Writer{Writer: w, limit: lim, maxRecord: maxRecord, client: c}, nil
}

// NewWriter returns a Writer of topic on a Client of its own, which its
// Close closes, for one-off writes (tools, tests): it reads no limit from
// the broker but takes opt.MaxMessageBytes, else cfg.MaxMessageBytes. A
// role makes its writers with its Client's NewWriter.
func NewWriter(cfg Config, topic string, opt WriterOptions) (*Writer, error) {
	c, err := NewClient(cfg)
	if err != nil {
		return nil, err
	}
	lim := TopicLimit{Bytes: opt.MaxMessageBytes, Source: LimitFromOption}
	if lim.Bytes <= 0 {
		lim = TopicLimit{Bytes: c.cfg.MaxMessageBytes, Source: LimitFromDefault}
	}
	w, err := c.newWriter(topic, lim, opt)
	if err != nil {
		c.Close()
		return nil, err
	}
	w.ownClient = true
	return w, nil
}

// Limit returns the topic's record-batch limit the writer sizes its
// batches by, and where it came from.
func (w *Writer) Limit() TopicLimit { return w.limit }

// MaxRecordBytes returns the largest record the writer sends, as
// RecordBatchBytes counts it: the topic's limit less the allowances for
// compression and for kafka-go's count of a full batch (sizeBatches).
// WriteAll refuses a larger record with a *RecordTooLargeError.
func (w *Writer) MaxRecordBytes() int { return w.maxRecord }

// Close flushes the pending records, waits for their acknowledgements and,
// when the writer made its own client (NewWriter), closes it.
func (w *Writer) Close() error {
	err := w.Writer.Close()
	if w.ownClient {
		w.client.Close()
	}
	return err
}
