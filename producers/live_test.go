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
)

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
	dm := kafkatest.ReadAll(t, cfg, kafkax.TopicDecisions)
	om := kafkatest.ReadAll(t, cfg, kafkax.TopicOutcomes)
	if int64(len(dm)) != rep.Decisions || int64(len(om)) != rep.Outcomes {
		t.Fatalf("topics hold %d decisions and %d outcomes, report %+v", len(dm), len(om), rep)
	}
	last := map[int]int64{}
	for _, m := range dm {
		var d schemas.Decision
		if err := schemas.UnmarshalDecision(m.Value, &d); err != nil {
			t.Fatal(err)
		}
		part[d.UserID] = m.Partition
		if ts := d.Timestamp.UnixMilli(); ts < last[m.Partition] {
			t.Fatalf("decisions of partition %d out of order", m.Partition)
		} else {
			last[m.Partition] = ts
		}
	}
	clear(last)
	for _, m := range om {
		var o schemas.Outcome
		if err := schemas.UnmarshalOutcome(m.Value, &o); err != nil {
			t.Fatal(err)
		}
		if p, ok := part[o.UserID]; !ok || p != m.Partition {
			t.Fatalf("outcome of %s on partition %d, its decisions on %d", o.UserID, m.Partition, p)
		}
		ts := o.Timestamp.UnixMilli()
		if ts+sim.DefaultLiveConfig().DisorderMax.Milliseconds() < last[m.Partition] {
			t.Fatalf("outcomes of partition %d out of order beyond the disorder bound", m.Partition)
		}
		last[m.Partition] = max(last[m.Partition], ts)
	}
}
