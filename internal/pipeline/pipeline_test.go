package pipeline

import (
	"bytes"
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/aelp/aelp/internal/kafkatest"
	"github.com/aelp/aelp/internal/kafkax"
	"github.com/aelp/aelp/schemas"
	"github.com/rs/zerolog"
)

// TestRunEndToEnd runs the whole loop — simulator, aggregator, learner,
// snapshots back to the simulator — on a short fixed-seed run, and checks
// what `make run` promises: the learned policy's crisis-segment return is
// above the logging policy's on held-out journeys.
func TestRunEndToEnd(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	var progress bytes.Buffer
	sum, err := Run(ctx, Config{Kafka: c.Config(), DataDir: t.TempDir(), ExperimentID: "e2e", Episodes: 8000, Seed: 42,
		EvalEpisodes: 4000, Progress: &progress, Log: zerolog.Nop()})
	if err != nil {
		t.Fatalf("run: %v\nprogress:\n%s", err, progress.String())
	}
	var table bytes.Buffer
	sum.Print(&table)
	t.Logf("%s", table.String())

	if sum.Agg.Tagged != sum.Sim.Experiences || sum.Learn.Ingested != sum.Sim.Experiences {
		t.Errorf("published %d, tagged %d, ingested %d: want all equal", sum.Sim.Experiences, sum.Agg.Tagged, sum.Learn.Ingested)
	}
	if sum.Sim.PolicyVersion < 0 {
		t.Errorf("no policy snapshot reached the simulator")
	}
	var acted int
	for _, m := range kafkatest.ReadAll(t, c.Config(), kafkax.TopicRaw) {
		var e schemas.Experience
		if err := schemas.UnmarshalExperience(m.Value, &e); err != nil {
			t.Fatal(err)
		}
		if e.PolicyVersion >= 0 {
			acted++
		}
	}
	if acted == 0 {
		t.Errorf("no experience carries a learned policy's version")
	}
	metrics := kafkatest.ReadAll(t, c.Config(), kafkax.TopicMetrics)
	if len(metrics) == 0 {
		t.Fatal("no metrics records")
	}
	for _, m := range metrics {
		var tm schemas.TrainingMetrics
		if err := schemas.UnmarshalTrainingMetrics(m.Value, &tm); err != nil {
			t.Fatalf("metrics record %d: %v", m.Offset, err)
		}
	}

	l := sum.Learn
	n := float64(l.StatUpdates)
	meas, exp := l.BatchCrisisSum/n, l.ExpectedCrisisSum/n
	se := math.Sqrt(math.Max(l.BatchCrisisSq/n-meas*meas, 0) / n)
	if math.Abs(meas-exp) > 3*se+1e-12 {
		t.Errorf("mean batch crisis ratio %.5f, expected %.5f: more than 3 s.e. (%.5f) apart", meas, exp, se)
	}
	if exp <= l.Buffer.CrisisFraction {
		t.Errorf("importance sampling did not raise the crisis share: expected batch ratio %.3f, buffer %.3f", exp, l.Buffer.CrisisFraction)
	}

	learned, logging := sum.Learned.Crisis, sum.Logging.Crisis
	if learned.MeanReturn-learned.ReturnCI <= logging.MeanReturn+logging.ReturnCI {
		t.Errorf("learned crisis return %.2f ± %.2f is not above the logging policy's %.2f ± %.2f",
			learned.MeanReturn, learned.ReturnCI, logging.MeanReturn, logging.ReturnCI)
	}
	if !strings.Contains(table.String(), "learned (PPO)") || !strings.Contains(table.String(), "oracle (exact)") {
		t.Errorf("summary table lacks the policy rows:\n%s", table.String())
	}
}
