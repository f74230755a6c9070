package kafkax_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aelp/aelp/internal/kafkatest"
	"github.com/aelp/aelp/internal/kafkax"
	"github.com/segmentio/kafka-go"
)

// BenchmarkWriteMessages measures acks=all, lz4, key-hashed produce through
// NewWriter with 200-byte values, one WriteMessages call of `batch` records
// per iteration, against the embedded broker (or real Kafka with
// AELP_TEST_KAFKA=real).
func BenchmarkWriteMessages(b *testing.B) {
	c := kafkatest.Start(b, kafkatest.Options{})
	cfg := c.Config()
	ctx := context.Background()
	for _, batch := range []int{100, 1000, 10000} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			topic := fmt.Sprintf("bench.write.%d", batch)
			if err := kafkax.EnsureTopics(ctx, cfg, kafkax.TopicSpec{Name: topic, Partitions: 6, ReplicationFactor: 1}); err != nil {
				b.Fatal(err)
			}
			w, err := kafkax.NewWriter(cfg, topic, kafkax.WriterOptions{BatchSize: batch})
			if err != nil {
				b.Fatal(err)
			}
			defer w.Close()
			msgs := make([]kafka.Message, batch)
			value := make([]byte, 200)
			for i := range msgs {
				msgs[i] = kafka.Message{Key: fmt.Appendf(nil, "user-%05d", i%5000), Value: value}
			}
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for b.Loop() {
				if err := w.WriteMessages(ctx, msgs...); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*batch)/time.Since(start).Seconds(), "records/s")
		})
	}
}
