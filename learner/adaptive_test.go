package learner

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aelp/aelp/internal/kafkax"
	"github.com/aelp/aelp/producers/sim"
	"github.com/aelp/aelp/schemas"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// gaugeValue reads a gauge's value.
func gaugeValue(t *testing.T, g prometheus.Gauge) float64 {
	t.Helper()
	var m dto.Metric
	if err := g.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetGauge().GetValue()
}

// TestLearnAdaptiveCrisisWeight: with Adaptive on, the learn role's
// updates move the crisis weight within [1, MaxWeight]; the metrics record
// carries the weight the last batch was drawn with, and the gauges the
// weight and the rule's signal.
func TestLearnAdaptiveCrisisWeight(t *testing.T) {
	cfg := testConfig(kafkax.Config{}, "t", "exp", "")
	cfg.MetricsEvery, cfg.SnapshotEvery, cfg.CheckpointEvery = 1<<40, 1<<40, 1<<40 // no publishing: no writers needed
	cfg.Adaptive.Enabled, cfg.Adaptive.MaxWeight, cfg.Adaptive.Smoothing = true, 9, 5
	reg := prometheus.NewRegistry()
	cfg.Registry = reg
	l, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ingestJourneys(t, l, 300, 3)
	moved := false
	for u := range 20 {
		if err := l.update(context.Background(), nil); err != nil {
			t.Fatal(err)
		}
		st := l.tr.Stats()
		if !(st.CrisisWeight >= 1 && st.CrisisWeight <= 9) {
			t.Fatalf("update %d: crisis weight %v outside [1, 9]", u, st.CrisisWeight)
		}
		moved = moved || st.CrisisWeight != cfg.Replay.CrisisWeight
		m := l.trainingMetrics(time.Now())
		if want := l.Stats().Buffer.CrisisWeight; m.CrisisParentWeight != want {
			t.Fatalf("update %d: metrics crisis_parent_weight %v, want the last batch's %v", u, m.CrisisParentWeight, want)
		}
		if g := gaugeValue(t, l.metrics.g["crisis_parent_weight"]); g != m.CrisisParentWeight {
			t.Fatalf("update %d: gauge crisis_parent_weight %v, want %v", u, g, m.CrisisParentWeight)
		}
		if g := gaugeValue(t, l.metrics.adaptiveSignal); g != st.AdaptiveSignal || !(g > 0) {
			t.Fatalf("update %d: gauge adaptive signal %v, want the rule's %v (> 0)", u, g, st.AdaptiveSignal)
		}
	}
	if !moved {
		t.Error("the crisis weight never moved")
	}
}

// ingestJourneys ingests the experiences of users journeys of the uniform
// policy on seed into l, tagged crisis as the simulator says, ids and offsets
// 1, 2, ….
func ingestJourneys(t *testing.T, l *Learner, users int, seed uint64) {
	t.Helper()
	s, err := sim.New(sim.DefaultConfig(), seed, 0)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for range users {
		s.RunEpisode(sim.Uniform{N: 12}, func(tr *sim.Transition) {
			n++
			te := schemas.TaggedExperience{Experience: schemas.Experience{ExperimentID: "exp", EpisodeID: tr.EpisodeID,
				Action: int32(tr.Action), BehaviorLogProb: tr.BehaviorLogProb, PolicyVersion: -1, Reward: tr.Reward, Done: tr.Done}}
			te.ID = fmt.Sprint(n)
			for i := range tr.State {
				te.State = append(te.State, float32(tr.State[i]))
				te.NextState = append(te.NextState, float32(tr.NextState[i]))
			}
			if tr.Crisis {
				te.EventType = schemas.EventCrisis
			}
			l.ingest(&record{offset: int64(n), te: te})
		})
	}
}
