package bench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aelp/aelp/internal/kafkax"
	"github.com/aelp/aelp/schemas"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
	"golang.org/x/sync/errgroup"
)

// Measure is a number of records over a measured interval.
type Measure struct {
	// Records is the number of records counted.
	Records int64
	// Elapsed is the measured interval.
	Elapsed time.Duration
}

// Rate returns Records/Elapsed in records per second (0 for an empty
// interval).
func (m Measure) Rate() float64 {
	if m.Elapsed <= 0 {
		return 0
	}
	return float64(m.Records) / m.Elapsed.Seconds()
}

// cloneMessages copies msgs' headers (kafka-go may write to the
// messages it is given), so a set of records can be sent more than once.
func cloneMessages(msgs []kafka.Message) []kafka.Message {
	out := make([]kafka.Message, len(msgs))
	for i, m := range msgs {
		out[i] = kafka.Message{Key: m.Key, Value: m.Value, Headers: m.Headers, Time: m.Time}
	}
	return out
}

// Produce writes msgs to topic with kafkax.NewWriter's defaults (the
// writer of the simulate role: acks=all, key hash, 5 ms batches, lz4) from
// workers goroutines that hand the writer slices of batch records, as the
// simulate role's workers do, and measures from the first write to the
// last acknowledgement. It is the raw kafka-go baseline of the simulate
// stage. The topic must exist.
func Produce(ctx context.Context, kcfg kafkax.Config, topic string, msgs []kafka.Message, workers, batch int) (Measure, error) {
	if workers < 1 || batch < 1 {
		return Measure{}, fmt.Errorf("produce: workers %d and batch %d must be at least 1", workers, batch)
	}
	w, err := kafkax.NewWriter(kcfg, topic, kafkax.WriterOptions{})
	if err != nil {
		return Measure{}, fmt.Errorf("produce: %w", err)
	}
	msgs = cloneMessages(msgs)
	start := time.Now()
	g, gctx := errgroup.WithContext(ctx)
	nb := (len(msgs) + batch - 1) / batch
	for i := range workers {
		g.Go(func() error {
			for b := i; b < nb; b += workers {
				part := msgs[b*batch : min((b+1)*batch, len(msgs))]
				if err := kafkax.WriteAll(gctx, kcfg, w, zerolog.Nop(), part); err != nil {
					return err
				}
			}
			return nil
		})
	}
	err = g.Wait()
	elapsed := time.Since(start)
	if cerr := w.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return Measure{}, fmt.Errorf("produce to %s: %w", topic, kcfg.Explain(err))
	}
	return Measure{Records: int64(len(msgs)), Elapsed: elapsed}, nil
}

// PassThroughConfig configures PassThrough.
type PassThroughConfig struct {
	// Kafka is the connection.
	Kafka kafkax.Config
	// In, and More when set, are consumed by Group; Out receives the same
	// records.
	In, Out, Group string
	More           []string
	// Records is the number of records to pass through before returning.
	Records int64
	// BatchMax and BatchWait shape batches as the aggregator's do.
	// Defaults 2000 and 20 ms (the aggregator's defaults).
	BatchMax  int
	BatchWait time.Duration
}

// startPass runs the pass-through loop of cfg until the returned stop
// function is called; stop waits for the loop and closes its clients.
func startPass(ctx context.Context, cfg PassThroughConfig) (stop func() error, err error) {
	cfg.setDefaults()
	r, err := kafkax.NewGroupConsumer(cfg.Kafka, cfg.Group, append([]string{cfg.In}, cfg.More...), kafkax.GroupOptions{})
	if err != nil {
		return nil, fmt.Errorf("pass through: %w", err)
	}
	w, err := kafkax.NewWriter(cfg.Kafka, cfg.Out, kafkax.WriterOptions{})
	if err != nil {
		r.Close(ctx)
		return nil, fmt.Errorf("pass through: %w", err)
	}
	var in, committed atomic.Int64
	loopCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- passLoop(loopCtx, cfg, r, w, &in, &committed) }()
	return func() error {
		cancel()
		err := <-done
		if cerr := w.Close(); err == nil && cerr != nil {
			err = cerr
		}
		if cerr := r.Close(context.WithoutCancel(ctx)); err == nil && cerr != nil {
			err = cerr
		}
		return err
	}, nil
}

func (c *PassThroughConfig) setDefaults() {
	if c.BatchMax == 0 {
		c.BatchMax = 2000
	}
	if c.BatchWait == 0 {
		c.BatchWait = 20 * time.Millisecond
	}
}

// PassThrough is the aggregator's raw baseline: the same consumer-group
// reader and writer settings and the same batch loop (fetch, gather for
// BatchWait, publish, commit the last offset of every partition), but the
// bytes go out unchanged, without decoding. It runs until cfg.Records
// records are committed and measures them as the aggregator is measured
// (see measureStage).
func PassThrough(ctx context.Context, cfg PassThroughConfig) (Measure, error) {
	cfg.setDefaults()
	r, err := kafkax.NewGroupConsumer(cfg.Kafka, cfg.Group, append([]string{cfg.In}, cfg.More...), kafkax.GroupOptions{})
	if err != nil {
		return Measure{}, fmt.Errorf("pass through: %w", err)
	}
	w, err := kafkax.NewWriter(cfg.Kafka, cfg.Out, kafkax.WriterOptions{})
	if err != nil {
		r.Close(ctx)
		return Measure{}, fmt.Errorf("pass through: %w", err)
	}
	var in, committed atomic.Int64
	loopCtx, stop := context.WithCancel(ctx)
	defer stop()
	loopErr := make(chan error, 1)
	go func() {
		loopErr <- passLoop(loopCtx, cfg, r, w, &in, &committed)
	}()
	m, err := measureStage(ctx, cfg.Records, in.Load, committed.Load, loopErr)
	stop()
	if lerr := <-loopErr; err == nil && lerr != nil {
		err = lerr
	}
	if cerr := w.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("pass through: close writer: %w", cerr)
	}
	if cerr := r.Close(context.WithoutCancel(ctx)); err == nil && cerr != nil {
		err = fmt.Errorf("pass through: close reader: %w", cerr)
	}
	return m, err
}

func passLoop(ctx context.Context, cfg PassThroughConfig, r *kafkax.GroupConsumer, w *kafkax.Writer, in, committed *atomic.Int64) error {
	b := kafkax.GroupBatch{Messages: make([]kafka.Message, 0, cfg.BatchMax)}
	out := make([]kafka.Message, 0, cfg.BatchMax)
	for {
		b.Reset()
		out = out[:0]
		if err := r.Gather(ctx, &b, cfg.BatchMax, cfg.BatchWait); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("pass through: poll: %w", err)
		}
		for i := range b.Messages {
			out = append(out, kafka.Message{Key: b.Messages[i].Key, Value: b.Messages[i].Value, Headers: b.Messages[i].Headers, Time: b.Messages[i].Time})
		}
		if err := kafkax.WriteAll(ctx, cfg.Kafka, w, zerolog.Nop(), out); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("pass through: publish: %w", err)
		}
		in.Add(int64(b.Len()))
		err := r.Commit(ctx, &b)
		r.AllowRebalance()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("pass through: commit: %w", err)
		}
		committed.Add(int64(b.Len()))
	}
}

// pollEvery is how often measureStage samples a stage's counters.
const pollEvery = time.Millisecond

// measureStage waits until committed() reaches n and measures the stage's
// steady state: the clock starts when the first batch has been published
// (in() > 0 — which excludes the consumer-group join and the first fetch,
// identical for a role and its baseline) and the records of that first
// batch are not counted. It returns early with the stage's error from
// done, or with ctx's.
func measureStage(ctx context.Context, n int64, in, committed func() int64, done <-chan error) (Measure, error) {
	t := time.NewTicker(pollEvery)
	defer t.Stop()
	var start time.Time
	var first int64
	for {
		if start.IsZero() {
			if v := in(); v > 0 {
				start, first = time.Now(), v
			}
		}
		if c := committed(); c >= n && !start.IsZero() {
			return Measure{Records: c - first, Elapsed: time.Since(start)}, nil
		}
		select {
		case <-ctx.Done():
			return Measure{}, ctx.Err()
		case err := <-done:
			if err == nil {
				err = errors.New("stage stopped before committing every record")
			}
			return Measure{}, err
		case <-t.C:
		}
	}
}

// ConsumeAll reads every record of topic up to the end offsets seen at the
// call, one kafkax.Reader per partition in parallel (as the learn role
// reads), and returns the values and the time from the call to the arrival
// of the last record. It is the raw baseline of the learner's ingest.
// Closing the readers is not timed.
func ConsumeAll(ctx context.Context, kcfg kafkax.Config, topic string) ([][]byte, Measure, error) {
	start := time.Now()
	offs, err := kafkax.ListOffsets(ctx, kcfg, topic)
	if err != nil {
		return nil, Measure{}, fmt.Errorf("consume %s: %w", topic, err)
	}
	var mu sync.Mutex
	var values [][]byte
	var last time.Time
	var readers []*kafkax.Reader
	defer func() {
		for _, r := range readers {
			r.Close()
		}
	}()
	g, gctx := errgroup.WithContext(ctx)
	for p, end := range offs.End {
		first := offs.First[p]
		if end <= first {
			continue
		}
		r, err := kafkax.NewReader(kcfg, topic, kafkax.ReadOptions{})
		if err != nil {
			return nil, Measure{}, err
		}
		readers = append(readers, r)
		g.Go(func() error {
			local := make([][]byte, 0, end-first)
			err := r.Read(gctx, map[int]int64{p: first}, map[int]int64{p: end}, func(b *kafkax.Batch) error {
				for i := range b.Messages {
					local = append(local, b.Messages[i].Value)
				}
				return nil
			})
			if err != nil {
				return fmt.Errorf("consume %s/%d: %w", topic, p, err)
			}
			now := time.Now()
			mu.Lock()
			values = append(values, local...)
			if now.After(last) {
				last = now
			}
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, Measure{}, err
	}
	if last.IsZero() {
		last = time.Now()
	}
	return values, Measure{Records: int64(len(values)), Elapsed: last.Sub(start)}, nil
}

// DecodeTagged decodes and validates every value as a TaggedExperience,
// as the learn role's readers do, on one goroutine, and measures the rate.
// It fails on the first record that does not decode.
func DecodeTagged(values [][]byte, lim schemas.Limits) (Measure, error) {
	var te schemas.TaggedExperience
	start := time.Now()
	for i, v := range values {
		if err := schemas.UnmarshalTaggedExperience(v, &te); err != nil {
			return Measure{}, fmt.Errorf("decode record %d: %w", i, err)
		}
		if err := te.Validate(lim); err != nil {
			return Measure{}, fmt.Errorf("validate record %d: %w", i, err)
		}
	}
	return Measure{Records: int64(len(values)), Elapsed: time.Since(start)}, nil
}

// Quantile returns the q-quantile (0 ≤ q ≤ 1) of sorted by linear
// interpolation between closest ranks (Hyndman & Fan type 7, the default
// of R and NumPy): h = (n − 1)·q, x_⌊h⌋ + (h − ⌊h⌋)·(x_⌊h⌋+1 − x_⌊h⌋).
// It returns NaN for an empty slice and panics if sorted is not sorted
// or q is outside [0, 1] (programming errors).
func Quantile(sorted []float64, q float64) float64 {
	if !(q >= 0 && q <= 1) {
		panic("bench: quantile outside [0, 1]")
	}
	if !sort.Float64sAreSorted(sorted) {
		panic("bench: Quantile of unsorted values")
	}
	n := len(sorted)
	if n == 0 {
		return math.NaN()
	}
	h := float64(n-1) * q
	lo := int(h)
	if lo >= n-1 {
		return sorted[n-1]
	}
	return sorted[lo] + (h-float64(lo))*(sorted[lo+1]-sorted[lo])
}
