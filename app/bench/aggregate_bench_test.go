package bench_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/aelp/aelp/app/bench"
	"github.com/aelp/aelp/consumers"
	"github.com/aelp/aelp/internal/kafkatest"
	"github.com/aelp/aelp/internal/kafkax"
	"github.com/aelp/aelp/producers/sim"
	"github.com/aelp/aelp/schemas"
	"github.com/rs/zerolog"
)

// aggregateUsers is the workload of one benchmark operation: this many users'
// journeys (about 7.6 records each with the default simulator).
const aggregateUsers = 2000

var topicSeq atomic.Int64

// filledTopics creates a 6-partition input topic holding the records of
// users simulated journeys, an empty output topic and a dead-letter topic
// (the input's name + ".dlq"), and returns the names and the record count.
func filledTopics(b *testing.B, kcfg kafkax.Config, prefix string, records int) (in, out string, n int64) {
	b.Helper()
	ctx := context.Background()
	seq := topicSeq.Add(1)
	in, out = fmt.Sprintf("%s.%d.in", prefix, seq), fmt.Sprintf("%s.%d.out", prefix, seq)
	if err := kafkax.EnsureTopics(ctx, kcfg, kafkax.TopicSpec{Name: in, Partitions: 6}, kafkax.TopicSpec{Name: out, Partitions: 6},
		kafkax.TopicSpec{Name: in + ".dlq", Partitions: 1}); err != nil {
		b.Fatal(err)
	}
	msgs, err := bench.SimRecords(sim.DefaultConfig(), "bench", records, uint64(seq), false)
	if err != nil {
		b.Fatal(err)
	}
	m, err := bench.Produce(ctx, kcfg, in, msgs, 2, 512)
	if err != nil {
		b.Fatal(err)
	}
	return in, out, m.Records
}

// BenchmarkAggregate compares the aggregator end to end (consume raw,
// decode, classify, encode, publish tagged with acks=all, commit) with a
// pass-through that consumes and produces the same bytes with the same
// reader, writer and batch loop, without decoding. Each op consumes a
// freshly filled topic of aggregateUsers journeys; both are timed from their
// first published batch to their last commit (the group join is left
// out). Compare the records/s metrics (the aim: ≥ 70%).
//
//	go test -run '^$' -bench Aggregate -benchtime 3x ./consumers/
func BenchmarkAggregate(b *testing.B) {
	c := kafkatest.Start(b, kafkatest.Options{})
	kcfg := c.Config()
	ctx := context.Background()
	cfg := sim.DefaultConfig()
	b.Run("raw-pass-through", func(b *testing.B) {
		b.ReportAllocs()
		measureRuns(b, func(i int) (bench.Measure, error) {
			b.StopTimer()
			in, out, n := filledTopics(b, kcfg, "bench.pass", aggregateUsers)
			b.StartTimer()
			return bench.PassThrough(ctx, bench.PassThroughConfig{Kafka: kcfg, In: in, Out: out, Group: fmt.Sprintf("bench-pass-%d", i), Records: n})
		})
	})
	b.Run("aggregator", func(b *testing.B) {
		b.ReportAllocs()
		measureRuns(b, func(i int) (bench.Measure, error) {
			b.StopTimer()
			in, out, n := filledTopics(b, kcfg, "bench.agg", aggregateUsers)
			b.StartTimer()
			m, st, err := bench.MeasureAggregate(ctx, consumers.AggregateConfig{
				Kafka: kcfg, InTopic: in, OutTopic: out, DeadLetterTopic: in + ".dlq", Group: fmt.Sprintf("bench-agg-%d", i),
				Limits: schemas.Limits{StateDim: cfg.StateDim, NumActions: cfg.NumActions()}, ProgressEvery: -1, Log: zerolog.Nop(),
			}, n)
			if err != nil {
				b.Fatal(err)
			}
			if st.DeadLettered != 0 || st.Tagged < n {
				b.Fatalf("aggregator tagged %d of %d records, dead-lettered %d", st.Tagged, n, st.DeadLettered)
			}
			return m, nil
		})
	})
}
