package bench_test

import (
	"context"
	"testing"

	"github.com/aelp/aelp/app/bench"
	"github.com/aelp/aelp/internal/kafkatest"
	"github.com/aelp/aelp/internal/kafkax"
	"github.com/aelp/aelp/learner"
	"github.com/aelp/aelp/producers/sim"
	"github.com/aelp/aelp/schemas"
	"github.com/rs/zerolog"
)

// learnUsers is the workload of one benchmark operation: the tagged
// records of this many users' journeys (about 7.6 records each).
const learnUsers = 4000

// BenchmarkIngest measures experiences ingested per second by a bounded
// learner at the default schedule (learner.New with defaults: 1 sample per
// insert, batch 256, min buffer 1,000, so ingest is paced by PPO updates)
// and at 1/64 sample per insert (ingest limited by the read path), over a
// pre-filled tagged topic (timed from Run until every record is ingested),
// beside the raw consume of that topic by
// partition readers and the raw decode rate (schemas.UnmarshalTaggedExperience
// plus Validate) of the same records on one goroutine. One op is one pass
// over the topic; compare the records/s metrics (the aim:
// ≥ 50k/s).
//
//	go test -run '^$' -bench Ingest -benchtime 2x ./learner/
func BenchmarkIngest(b *testing.B) {
	c := kafkatest.Start(b, kafkatest.Options{})
	kcfg := c.Config()
	ctx := context.Background()
	cfg := sim.DefaultConfig()
	lim := schemas.Limits{StateDim: cfg.StateDim, NumActions: cfg.NumActions()}
	const topic = "bench.tagged"
	if err := kafkax.EnsureTopics(ctx, kcfg, kafkax.TopicSpec{Name: topic, Partitions: 6},
		kafkax.TopicSpec{Name: "bench.metrics", Partitions: 1}, kafkax.TopicSpec{Name: "bench.policy", Partitions: 1, Compact: true},
		kafkax.TopicSpec{Name: "bench.dlq", Partitions: 1}); err != nil {
		b.Fatal(err)
	}
	msgs, err := bench.SimRecords(cfg, "bench", learnUsers, 1, true)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := bench.Produce(ctx, kcfg, topic, msgs, 2, 512); err != nil {
		b.Fatal(err)
	}
	values := make([][]byte, len(msgs))
	for i, m := range msgs {
		values[i] = m.Value
	}
	b.Run("raw-decode", func(b *testing.B) {
		b.ReportAllocs()
		measureRuns(b, func(int) (bench.Measure, error) { return bench.DecodeTagged(values, lim) })
	})
	b.Run("raw-consume", func(b *testing.B) {
		b.ReportAllocs()
		measureRuns(b, func(int) (bench.Measure, error) {
			_, m, err := bench.ConsumeAll(ctx, kcfg, topic)
			return m, err
		})
	})
	for _, sc := range []struct {
		name string
		spi  float64
	}{{"learn-default-schedule", 0}, {"learn-1/64-sample-per-insert", 1.0 / 64}} {
		b.Run(sc.name, func(b *testing.B) {
			b.ReportAllocs()
			var updates bench.Measure
			measureRuns(b, func(int) (bench.Measure, error) {
				m, ups, _, err := bench.MeasureLearn(ctx, learner.Config{
					Kafka: kcfg, TaggedTopic: topic, MetricsTopic: "bench.metrics", PolicyTopic: "bench.policy",
					DeadLetterTopic: "bench.dlq", ExperimentID: "bench", Fresh: true, Bounded: true, Seed: 1,
					SamplesPerInsert: sc.spi, ProgressEvery: -1, Log: zerolog.Nop(),
				}, int64(len(msgs)))
				if err != nil {
					b.Fatal(err)
				}
				if m.Records != int64(len(msgs)) {
					b.Fatalf("ingested %d of %d records", m.Records, len(msgs))
				}
				updates.Records += ups.Records
				updates.Elapsed += ups.Elapsed
				return m, nil
			})
			b.ReportMetric(updates.Rate(), "updates/s")
		})
	}
}
