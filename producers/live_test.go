package producers

import (
	"context"
	"testing"
	"time"

	"github.com/aelp/aelp/internal/kafkatest"
	"github.com/aelp/aelp/internal/kafkax"
	"github.com/aelp/aelp/producers/sim"
	"github.com/aelp/aelp/schemas"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
)

// readLive reads back the decisions and outcomes topics of a live run,
// each record decoded with its partition, and fails unless they hold as
// many as rep says.
func readLive(t *testing.T, cfg kafkax.Config, rep LiveReport) ([]onPartition[schemas.Decision], []onPartition[schemas.Outcome]) {
	t.Helper()
	dm := kafkatest.ReadAll(t, cfg, kafkax.TopicDecisions)
	om := kafkatest.ReadAll(t, cfg, kafkax.TopicOutcomes)
	if int64(len(dm)) != rep.Decisions || int64(len(om)) != rep.Outcomes {
		t.Fatalf("topics hold %d decisions and %d outcomes, report %+v", len(dm), len(om), rep)
	}
	return decodeAll(t, dm, schemas.UnmarshalDecision), decodeAll(t, om, schemas.UnmarshalOutcome)
}

// onPartition is a record read back, with its partition.
type onPartition[T any] struct {
	rec       T
	partition int
}

func decodeAll[T any](t *testing.T, ms []kafka.Message, unmarshal func([]byte, *T) error) []onPartition[T] {
	t.Helper()
	out := make([]onPartition[T], len(ms))
	for i, m := range ms {
		if err := unmarshal(m.Value, &out[i].rec); err != nil {
			t.Fatal(err)
		}
		out[i].partition = m.Partition
	}
	return out
}

// TestLiveSimulatorPublishesItsStream: `simulate --emit decisions --users N`
// publishes one Decision per true transition and every outcome, decisions
// and outcomes of a user on the same partition, each topic in event-time
// order per partition up to the disorder bound.
func TestLiveSimulatorPublishesItsStream(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.Options{})
	cfg := c.Config()
	var truths int
	s, err := NewLiveSimulator(LiveSimulateConfig{
		SimulateConfig: SimulateConfig{Kafka: cfg, ExperimentID: "live-test", Users: 500, Seed: 3, ProgressEvery: -1, Log: zerolog.Nop()},
		Start:          time.UnixMilli(1_700_000_000_000),
		Truth:          func(*sim.TrueTransition) { truths++ },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep, err := s.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Users != 500 || rep.Decisions != int64(truths) || rep.Outcomes == 0 {
		t.Fatalf("report %+v, %d truths", rep, truths)
	}
	part := map[string]int{}
	dm, om := readLive(t, cfg, rep)
	last := map[int]int64{}
	for _, m := range dm {
		d := &m.rec
		part[d.UserID] = m.partition
		if ts := d.Timestamp.UnixMilli(); ts < last[m.partition] {
			t.Fatalf("decisions of partition %d out of order", m.partition)
		} else {
			last[m.partition] = ts
		}
	}
	clear(last)
	for _, m := range om {
		o := &m.rec
		if p, ok := part[o.UserID]; !ok || p != m.partition {
			t.Fatalf("outcome of %s on partition %d, its decisions on %d", o.UserID, m.partition, p)
		}
		ts := o.Timestamp.UnixMilli()
		if ts+sim.DefaultLiveConfig().DisorderMax.Milliseconds() < last[m.partition] {
			t.Fatalf("outcomes of partition %d out of order beyond the disorder bound", m.partition)
		}
		last[m.partition] = max(last[m.partition], ts)
	}
}
