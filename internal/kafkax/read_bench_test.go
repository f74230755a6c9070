package kafkax_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aelp/aelp/internal/kafkatest"
	"github.com/aelp/aelp/internal/kafkax"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
	"golang.org/x/sync/errgroup"
)

// BenchmarkRead reads a 6-partition topic of 60,000 lz4-compressed records
// (300-byte values, keyed, one header) from the first to the end offsets:
// with one Reader for every partition, with a Reader per partition in
// parallel (as the learn role reads), and, as the baseline, with kafka-go
// partition readers in parallel (the readers of before, closing not timed).
// One op is one pass over the topic; compare the records/s metrics.
//
//	go test -run '^$' -bench Read -benchtime 5x ./internal/kafkax/
func BenchmarkRead(b *testing.B) {
	c := kafkatest.Start(b, kafkatest.Options{})
	cfg := c.Config()
	ctx := context.Background()
	const topic, n = "bench.read", 60000
	if err := kafkax.EnsureTopics(ctx, cfg, kafkax.TopicSpec{Name: topic, Partitions: 6, ReplicationFactor: 1}); err != nil {
		b.Fatal(err)
	}
	w, err := kafkax.NewWriter(cfg, topic, kafkax.WriterOptions{})
	if err != nil {
		b.Fatal(err)
	}
	msgs := make([]kafka.Message, n)
	for i := range msgs {
		msgs[i] = kafka.Message{Key: fmt.Appendf(nil, "user-%05d", i%5000), Value: make([]byte, 300),
			Headers: []kafka.Header{{Key: "source", Value: []byte("bench")}}}
	}
	if err := kafkax.WriteAll(ctx, cfg, w, zerolog.Nop(), msgs); err != nil {
		b.Fatal(err)
	}
	w.Close()
	offs, err := kafkax.ListOffsets(ctx, cfg, topic)
	if err != nil {
		b.Fatal(err)
	}
	run := func(b *testing.B, pass func() (int64, time.Duration)) {
		b.ReportAllocs()
		var records int64
		var elapsed time.Duration
		for b.Loop() {
			k, d := pass()
			if k != n {
				b.Fatalf("read %d records, want %d", k, n)
			}
			records += k
			elapsed += d
		}
		b.ReportMetric(float64(records)/elapsed.Seconds(), "records/s")
	}
	b.Run("kgo-reader", func(b *testing.B) {
		r, err := kafkax.NewReader(cfg, topic, kafkax.ReadOptions{})
		if err != nil {
			b.Fatal(err)
		}
		defer r.Close()
		run(b, func() (int64, time.Duration) {
			var k int64
			start := time.Now()
			if err := r.Read(ctx, offs.First, offs.End, func(bt *kafkax.Batch) error {
				k += int64(len(bt.Messages))
				return nil
			}); err != nil {
				b.Fatal(err)
			}
			return k, time.Since(start)
		})
	})
	// parallel reads every partition on a goroutine of its own with read
	// and times the pass up to the last record's arrival.
	parallel := func(read func(p int, first, end int64) (int64, error)) (int64, time.Duration) {
		var mu sync.Mutex
		var total int64
		var last time.Time
		start := time.Now()
		var g errgroup.Group
		for p, end := range offs.End {
			g.Go(func() error {
				k, err := read(p, offs.First[p], end)
				mu.Lock()
				defer mu.Unlock()
				total += k
				last = time.Now()
				return err
			})
		}
		if err := g.Wait(); err != nil {
			b.Fatal(err)
		}
		return total, last.Sub(start)
	}
	b.Run("kgo-reader-per-partition", func(b *testing.B) {
		run(b, func() (int64, time.Duration) {
			return parallel(func(p int, first, end int64) (int64, error) {
				r, err := kafkax.NewReader(cfg, topic, kafkax.ReadOptions{})
				if err != nil {
					return 0, err
				}
				defer r.Close()
				var k int64
				err = r.Read(ctx, map[int]int64{p: first}, map[int]int64{p: end}, func(bt *kafkax.Batch) error {
					k += int64(len(bt.Messages))
					return nil
				})
				return k, err
			})
		})
	})
	b.Run("kafka-go-partition-readers", func(b *testing.B) {
		var readers []*kafka.Reader
		var mu sync.Mutex
		run(b, func() (int64, time.Duration) {
			return parallel(func(p int, first, end int64) (int64, error) {
				r, err := kafkaGoReader(cfg, topic, p, first)
				if err != nil {
					return 0, err
				}
				mu.Lock()
				readers = append(readers, r)
				mu.Unlock()
				var k int64
				for {
					m, err := r.FetchMessage(ctx)
					if err != nil {
						return k, err
					}
					k++
					if m.Offset+1 >= end {
						return k, nil
					}
				}
			})
		})
		b.StopTimer()
		for _, r := range readers {
			go r.Close()
		}
	})
}

// kafkaGoReader is the partition reader aelp had on kafka-go (kafkax's
// NewPartitionReader, since removed), the baseline of BenchmarkRead.
func kafkaGoReader(cfg kafkax.Config, topic string, partition int, offset int64) (*kafka.Reader, error) {
	d, err := cfg.Dialer()
	if err != nil {
		return nil, err
	}
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: cfg.Brokers, Topic: topic, Partition: partition, Dialer: d,
		QueueCapacity: 1000, MinBytes: 1, MaxBytes: 10 << 20, MaxWait: 2 * time.Second, ReadBatchTimeout: 7 * time.Second,
		ReadBackoffMin: 50 * time.Millisecond, ReadBackoffMax: time.Second, MaxAttempts: 10})
	if err := r.SetOffset(offset); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}
