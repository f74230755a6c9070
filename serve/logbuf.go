package serve

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/aelp/aelp/internal/kafkax"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
)

// Topics of the log, as logRecord.topic.
const (
	topicDecisions = iota
	topicOutcomes
	numTopics
)

// logRecord is one record for the log; done, when set, receives the
// write's result (nil once acknowledged).
type logRecord struct {
	topic int
	msg   kafka.Message
	done  chan error
}

// ErrBufferFull is returned by logBuffer.offer when the buffer holds
// LogBuffer records.
var ErrBufferFull = errors.New("log buffer full")

// logBuffer is the bounded buffer between the handlers and the broker:
// handlers offer records without blocking (a full buffer is refused, the
// caller answers 503), and one goroutine takes them in batches of up to
// batch records and writes each batch with kafkax.WriteAll, which retries
// what a retry can fix for as long as its context lasts. A record is
// either acknowledged, refused by the broker (counted, its done told), or
// cut off by the end of the drain context (counted as lost): never
// dropped silently.
type logBuffer struct {
	q       chan logRecord
	batch   int
	kafka   kafkax.Config
	writers [numTopics]*kafkax.Writer
	log     zerolog.Logger
	metrics *metrics
	// logged and failures count acknowledged and failed records by topic.
	logged, failures *[numTopics]atomic.Int64
	// fatal receives the first error no retry can fix (at most one).
	fatal chan error
	once  sync.Once
	done  chan struct{}
}

func newLogBuffer(size, batch int, k kafkax.Config, ws [numTopics]*kafkax.Writer, log zerolog.Logger, m *metrics,
	logged, failures *[numTopics]atomic.Int64) *logBuffer {
	return &logBuffer{q: make(chan logRecord, size), batch: batch, kafka: k, writers: ws, log: log, metrics: m,
		logged: logged, failures: failures,
		fatal: make(chan error, 1), done: make(chan struct{})}
}

// offer queues r, or returns ErrBufferFull at once.
func (b *logBuffer) offer(r logRecord) error {
	select {
	case b.q <- r:
		b.metrics.buffered.Inc()
		return nil
	default:
		b.metrics.rejected.WithLabelValues("log_buffer_full").Inc()
		return ErrBufferFull
	}
}

// run writes the queued records until close is called and the queue is
// empty, with ctx (the role's drain context: it outlives the stop by the
// shutdown timeout); it closes b.done when it returns.
func (b *logBuffer) run(ctx context.Context) {
	defer close(b.done)
	batch := make([]logRecord, 0, b.batch)
	for {
		r, ok := <-b.q
		if !ok {
			return
		}
		batch = append(batch[:0], r)
	more:
		for len(batch) < b.batch {
			select {
			case r, ok := <-b.q:
				if !ok {
					break more
				}
				batch = append(batch, r)
			default:
				break more
			}
		}
		b.metrics.buffered.Sub(float64(len(batch)))
		b.write(ctx, batch)
	}
}

// close stops the queue (no offer may follow) and waits until run has
// written or given up on every record queued.
func (b *logBuffer) close() {
	close(b.q)
	<-b.done
}

// write writes one batch, a WriteAll per topic, and tells each record's
// done its result.
func (b *logBuffer) write(ctx context.Context, batch []logRecord) {
	var msgs [numTopics][]kafka.Message
	var idx [numTopics][]int
	for i, r := range batch {
		msgs[r.topic] = append(msgs[r.topic], r.msg)
		idx[r.topic] = append(idx[r.topic], i)
	}
	for t := range numTopics {
		if len(msgs[t]) == 0 {
			continue
		}
		err := kafkax.WriteAll(ctx, b.kafka, b.writers[t], b.log, msgs[t])
		errs := make([]error, len(msgs[t]))
		var refused *kafkax.RefusedError
		switch {
		case err == nil:
		case errors.As(err, &refused):
			for _, rr := range refused.Records {
				errs[rr.Index] = rr.Err
			}
		default:
			for i := range errs {
				errs[i] = err
			}
			if ctx.Err() == nil {
				b.once.Do(func() { b.fatal <- fmt.Errorf("serve: log to %s: %w", b.writers[t].Topic, err) })
			}
		}
		failed := 0
		for j, i := range idx[t] {
			if errs[j] != nil {
				failed++
			}
			if d := batch[i].done; d != nil {
				d <- errs[j]
			}
		}
		b.metrics.logged[t].Add(float64(len(errs) - failed))
		b.logged[t].Add(int64(len(errs) - failed))
		if failed > 0 {
			b.metrics.logFailures[t].Add(float64(failed))
			b.failures[t].Add(int64(failed))
			b.log.Error().Err(err).Str("topic", b.writers[t].Topic).Int("records", failed).
				Msg("records not logged (counted in aelp_serve_log_failures_total)")
		}
	}
}
