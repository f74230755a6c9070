package bench_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/aelp/aelp/app/bench"
	"github.com/aelp/aelp/internal/kafkatest"
	"github.com/aelp/aelp/internal/kafkax"
	"github.com/aelp/aelp/producers"
	"github.com/aelp/aelp/producers/sim"
	"github.com/rs/zerolog"
)

// simulateUsers is the workload of one benchmark operation: this many users'
// journeys (about 7.6 records each with the default simulator), enough to
// amortise the role's fixed start-up (topic check, writer) of about 0.1 s.
const simulateUsers = 10_000

// freshTopic creates and returns a new 6-partition topic.
func freshTopic(b *testing.B, kcfg kafkax.Config, prefix string) string {
	b.Helper()
	name := fmt.Sprintf("%s.%d", prefix, topicSeq.Add(1))
	if err := kafkax.EnsureTopics(context.Background(), kcfg, kafkax.TopicSpec{Name: name, Partitions: 6}); err != nil {
		b.Fatal(err)
	}
	return name
}

// BenchmarkSimulate compares the simulate role publishing simulateUsers
// journeys (simulation, Avro encoding, the role's writer) with the raw
// kafka-go writer of kafkax.NewWriter sending the same number of
// pre-encoded records of the same sizes from the same number of
// goroutines in slices of the same length. One op is one workload; compare
// the records/s metrics (the aim: simulate ≥ 80% of raw).
//
//	go test -run '^$' -bench Simulate -benchtime 5x ./producers/
func BenchmarkSimulate(b *testing.B) {
	c := kafkatest.Start(b, kafkatest.Options{})
	kcfg := c.Config()
	ctx := context.Background()
	cfg := sim.DefaultConfig()
	const workers = 2
	b.Run("raw-kafka-go-writer", func(b *testing.B) {
		msgs, err := bench.SimRecords(cfg, "bench", simulateUsers, 1, false)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		measureRuns(b, func(int) (bench.Measure, error) {
			b.StopTimer()
			topic := freshTopic(b, kcfg, "bench.rawwriter")
			b.StartTimer()
			return bench.Produce(ctx, kcfg, topic, msgs, workers, 512)
		})
		b.ReportMetric(bench.MeanSize(msgs), "B/record")
	})
	b.Run("simulate-role", func(b *testing.B) {
		b.ReportAllocs()
		measureRuns(b, func(int) (bench.Measure, error) {
			b.StopTimer()
			topic := freshTopic(b, kcfg, "bench.simulate")
			if err := kafkax.EnsureTopics(ctx, kcfg, kafkax.TopicSpec{Name: topic + ".policy", Partitions: 1, Compact: true}); err != nil {
				b.Fatal(err)
			}
			s, err := producers.NewSimulator(producers.SimulateConfig{
				Kafka: kcfg, Topic: topic, PolicyTopic: topic + ".policy", ExperimentID: "bench", Users: simulateUsers,
				Workers: workers, Seed: 1, Sim: cfg, ProgressEvery: -1, Log: zerolog.Nop(),
			})
			if err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			rep, err := s.Run(ctx)
			return bench.Measure{Records: rep.Experiences, Elapsed: rep.Elapsed}, err
		})
	})
}
