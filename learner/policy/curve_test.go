package policy

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aelp/aelp/internal/kafkatest"
	"github.com/aelp/aelp/internal/kafkax"
	"github.com/aelp/aelp/learner/policy/policytest"
	"github.com/aelp/aelp/producers/sim"
)

// TestEvaluateSnapshots publishes snapshots of two experiments out of
// version order and checks that the curve has exactly the asked
// experiment's, in version order, each evaluated on the asked journeys.
func TestEvaluateSnapshots(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.Options{})
	cfg := c.Config()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	topic := fmt.Sprintf("curve-policy-%d", time.Now().UnixNano())
	if err := kafkax.EnsureTopics(ctx, cfg, kafkax.TopicSpec{Name: topic, Partitions: 1, Compact: true}); err != nil {
		t.Fatal(err)
	}
	w, err := kafkax.NewWriter(cfg, topic, kafkax.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteMessages(ctx, policytest.SnapshotMessage(t, "curve", 300, 1), policytest.SnapshotMessage(t, "other", 200, 2), policytest.SnapshotMessage(t, "curve", 100, 3)); err != nil {
		t.Fatal(err)
	}
	w.Close()

	pts, err := EvaluateSnapshots(ctx, Source{Kafka: cfg, Topic: topic, ExperimentID: "curve"}, sim.DefaultConfig(), 300, 9)
	if err != nil {
		t.Fatal(err)
	}
	if len(pts) != 2 || pts[0].Version != 100 || pts[1].Version != 300 {
		t.Fatalf("curve versions %v, want [100 300]", pts)
	}
	for _, p := range pts {
		if p.Eval.Episodes != 300 || p.Eval.Crisis.Episodes+p.Eval.Regular.Episodes != 300 {
			t.Errorf("v%d: %d journeys (%d crisis, %d regular), want 300", p.Version, p.Eval.Episodes,
				p.Eval.Crisis.Episodes, p.Eval.Regular.Episodes)
		}
	}
	var out bytes.Buffer
	if err := WriteCurve(&out, pts); err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSpace(out.String()), "\n"); len(lines) != 3 || !strings.HasPrefix(lines[1], "v100 ") {
		t.Errorf("curve table:\n%s", out.String())
	}

	none, err := EvaluateSnapshots(ctx, Source{Kafka: cfg, Topic: topic, ExperimentID: "no-such-experiment"}, sim.DefaultConfig(), 300, 9)
	if err != nil || len(none) != 0 {
		t.Errorf("experiment without snapshots: %v, %v; want an empty curve", none, err)
	}
}
