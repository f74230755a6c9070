package bench

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/aelp/aelp/internal/kafkax"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
	"golang.org/x/sync/errgroup"
)

// Latency summarises per-record latencies.
type Latency struct {
	// Records is the number of latencies measured.
	Records int64
	// P50 and P99 are the median and the 99th percentile.
	P50, P99 time.Duration
}

func latencyOf(seconds []float64) Latency {
	sort.Float64s(seconds)
	sec := func(q float64) time.Duration {
		return time.Duration(Quantile(seconds, q) * float64(time.Second))
	}
	if len(seconds) == 0 {
		return Latency{}
	}
	return Latency{Records: int64(len(seconds)), P50: sec(0.5), P99: sec(0.99)}
}

// probe reads every partition of a topic from its first offset and
// records, per record, the time from the record's timestamp (set by the
// producer of the first hop, millisecond resolution) to its arrival here.
type probe struct {
	cancel context.CancelFunc
	g      *errgroup.Group
	mu     sync.Mutex
	lat    []float64 // seconds
}

// startProbe starts a reader (kafkax.Reader, read_committed) of every
// partition of topic from its first offset; it runs until finish.
func startProbe(ctx context.Context, kcfg kafkax.Config, topic string) (*probe, error) {
	return startProbeFunc(ctx, kcfg, topic, func(m *kafka.Message, now time.Time) (float64, bool, error) {
		return now.Sub(m.Time).Seconds(), true, nil
	})
}

// startProbeFunc is startProbe recording, per record, what measure
// returns for it at its arrival time now (nothing when ok is false; an
// error ends the probe).
func startProbeFunc(ctx context.Context, kcfg kafkax.Config, topic string,
	measure func(m *kafka.Message, now time.Time) (seconds float64, ok bool, err error)) (*probe, error) {
	r, err := kafkax.NewReader(kcfg, topic, kafkax.ReadOptions{})
	if err != nil {
		return nil, fmt.Errorf("latency probe: %w", err)
	}
	offs, err := r.ListOffsets(ctx)
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("latency probe: %w", err)
	}
	pctx, cancel := context.WithCancel(ctx)
	p := &probe{cancel: cancel}
	p.g, pctx = errgroup.WithContext(pctx)
	p.g.Go(func() error {
		defer r.Close()
		err := r.Read(pctx, offs.First, nil, func(b *kafkax.Batch) error {
			now := time.Now()
			p.mu.Lock()
			defer p.mu.Unlock()
			for i := range b.Messages {
				sec, ok, err := measure(&b.Messages[i], now)
				if err != nil {
					return err
				}
				if ok {
					p.lat = append(p.lat, sec)
				}
			}
			return nil
		})
		if pctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("latency probe %s: %w", topic, err)
	})
	return p, nil
}

// count returns the number of records seen so far.
func (p *probe) count() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return int64(len(p.lat))
}

// waitFor blocks until n records were seen, ctx ends or timeout passes.
func (p *probe) waitFor(ctx context.Context, n int64, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for p.count() < n {
		if time.Now().After(deadline) {
			return fmt.Errorf("latency probe: saw %d of %d records within %s", p.count(), n, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	return nil
}

// finish stops the readers and returns the latencies.
func (p *probe) finish() (Latency, error) {
	p.cancel()
	err := p.g.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	return latencyOf(p.lat), err
}

// RawLatencyConfig configures RawLatency.
type RawLatencyConfig struct {
	// Kafka is the connection; Topic must exist and be empty.
	Kafka kafkax.Config
	Topic string
	// PassTo, when set, adds a second hop: a pass-through (consumer group
	// Group, the aggregator's reader, writer and batch loop, no decoding)
	// copies Topic to PassTo, and latency is measured on PassTo. PassTo
	// must exist and be empty.
	PassTo, Group string
	// Records are sent cyclically (values and keys; Time is set at send).
	Records []kafka.Message
	// Rate is the total records per second; Duration how long to send.
	Rate     float64
	Duration time.Duration
	// Workers and Batch pace the sends as the simulate role does: each
	// worker hands the writer Batch records, then sleeps until its share
	// of Rate allows the next batch. Defaults 2 and 512.
	Workers, Batch int
}

// RawLatency is the raw produce→consume pass: it sends records at a fixed
// rate with kafkax.NewWriter and measures, with a kafkax.Reader on the same
// topic (or on PassTo after a pass-through hop), the
// time from each record's timestamp to its arrival. It returns the
// latencies and the produce rate achieved.
func RawLatency(ctx context.Context, cfg RawLatencyConfig) (Latency, Measure, error) {
	if cfg.Workers == 0 {
		cfg.Workers = 2
	}
	if cfg.Batch == 0 {
		cfg.Batch = 512
	}
	if len(cfg.Records) == 0 || !(cfg.Rate > 0) || cfg.Duration <= 0 {
		return Latency{}, Measure{}, fmt.Errorf("raw latency: need records, a positive rate and a duration")
	}
	probeTopic := cfg.Topic
	if cfg.PassTo != "" {
		probeTopic = cfg.PassTo
	}
	p, err := startProbe(ctx, cfg.Kafka, probeTopic)
	if err != nil {
		return Latency{}, Measure{}, err
	}
	if cfg.PassTo != "" {
		stopPass, err := startPass(ctx, PassThroughConfig{Kafka: cfg.Kafka, In: cfg.Topic, Out: cfg.PassTo, Group: cfg.Group})
		if err != nil {
			p.finish()
			return Latency{}, Measure{}, err
		}
		defer stopPass()
	}
	w, err := kafkax.NewWriter(cfg.Kafka, cfg.Topic, kafkax.WriterOptions{})
	if err != nil {
		p.finish()
		return Latency{}, Measure{}, err
	}
	start := time.Now()
	total, werr := sendAtRate(ctx, cfg, w, start)
	elapsed := time.Since(start)
	if cerr := w.Close(); werr == nil && cerr != nil {
		werr = cerr
	}
	if werr == nil {
		werr = p.waitFor(ctx, total, time.Minute)
	}
	lat, perr := p.finish()
	if werr == nil {
		werr = perr
	}
	if werr != nil {
		return Latency{}, Measure{}, fmt.Errorf("raw latency: %w", cfg.Kafka.Explain(werr))
	}
	return lat, Measure{Records: total, Elapsed: elapsed}, nil
}

// sendAtRate sends cfg.Records cyclically with w for cfg.Duration from
// start, each of cfg.Workers goroutines handing the writer cfg.Batch
// records with the current time, then sleeping until its share of
// cfg.Rate allows the next batch. It returns the records acknowledged.
func sendAtRate(ctx context.Context, cfg RawLatencyConfig, w *kafkax.Writer, start time.Time) (int64, error) {
	perWorker := cfg.Rate / float64(cfg.Workers)
	sent := make([]int64, cfg.Workers)
	g, gctx := errgroup.WithContext(ctx)
	for i := range cfg.Workers {
		g.Go(func() error {
			batch := make([]kafka.Message, cfg.Batch)
			next := i * cfg.Batch
			for time.Since(start) < cfg.Duration {
				now := time.Now()
				for j := range batch {
					src := cfg.Records[next%len(cfg.Records)]
					next++
					batch[j] = kafka.Message{Key: src.Key, Value: src.Value, Time: now}
				}
				if err := kafkax.WriteAll(gctx, cfg.Kafka, w, zerolog.Nop(), batch); err != nil {
					return err
				}
				sent[i] += int64(len(batch))
				due := start.Add(time.Duration(float64(sent[i]) / perWorker * float64(time.Second)))
				if d := time.Until(due); d > 0 {
					select {
					case <-gctx.Done():
						return gctx.Err()
					case <-time.After(d):
					}
				}
			}
			return nil
		})
	}
	err := g.Wait()
	var total int64
	for _, s := range sent {
		total += s
	}
	return total, err
}
