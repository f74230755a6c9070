package pipeline

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/aelp/aelp/consumers/join"
	"github.com/aelp/aelp/internal/kafkatest"
	"github.com/aelp/aelp/internal/kafkax"
	"github.com/aelp/aelp/schemas"
)

// TestRunLiveServe runs the live loop over HTTP in one process — simulate
// → serve → decisions/outcomes → join → aggregate → learn → policy →
// serve — and checks that every decision the server answered was logged
// and joined into exactly one experience whose behaviour log-probability
// is the log of the served propensity (the logged distribution's entry
// for the action) with the serving version, and that the server swapped
// to a snapshot the learner published during the run (decisions of a
// version > 0). The learner's rate limiter paces the simulator (MaxAhead
// small), so snapshots come while journeys are still being simulated.
func TestRunLiveServe(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	c := kafkatest.Start(t, kafkatest.Options{})
	cfg := DefaultConfig()
	cfg.Kafka = c.Config()
	cfg.DataDir, cfg.Episodes, cfg.EvalEpisodes, cfg.Live, cfg.Serve = t.TempDir(), 400, 200, true, true
	cfg.ExperimentID, cfg.MaxAhead, cfg.DecideWorkers = "live-serve", 200, 8
	cfg.Learner.MinBuffer, cfg.Learner.BatchSize, cfg.Learner.SnapshotEvery = 128, 64, 5
	cfg.Join.Windows = join.Windows{Default: 3 * time.Second}
	sum, err := Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	v, j := sum.Serve, sum.Join
	if v == nil || j == nil {
		t.Fatalf("serve %v, join %v figures", v, j)
	}
	if v.Decisions != sum.Sim.Experiences || v.LoggedDecisions != v.Decisions || v.LogFailures != 0 ||
		j.Read[0] != v.Decisions || j.Written != v.Decisions || v.LoggedOutcomes != j.Read[1] {
		t.Fatalf("simulated %d decisions; served %+v; join read %v, wrote %d", sum.Sim.Experiences, *v, j.Read, j.Written)
	}
	decisions := map[string]*schemas.Decision{}
	versions := map[int64]int{}
	for _, m := range kafkatest.ReadAll(t, cfg.Kafka, kafkax.TopicDecisions) {
		d := new(schemas.Decision)
		if err := schemas.UnmarshalDecision(m.Value, d); err != nil {
			t.Fatal(err)
		}
		decisions[d.DecisionID] = d
		versions[d.PolicyVersion]++
	}
	exps := kafkatest.ReadAll(t, cfg.Kafka, kafkax.TopicRaw)
	if len(exps) != len(decisions) || int64(len(decisions)) != v.Decisions {
		t.Fatalf("%d experiences, %d distinct decisions logged, %d served", len(exps), len(decisions), v.Decisions)
	}
	for _, m := range exps {
		var e schemas.Experience
		if err := schemas.UnmarshalExperience(m.Value, &e); err != nil {
			t.Fatal(err)
		}
		d := decisions[e.ID]
		if d == nil {
			t.Fatalf("experience %s of no logged decision", e.ID)
		}
		if p := d.ActionProbs[d.Action]; e.Action != d.Action || e.BehaviorLogProb != math.Log(p) || e.PolicyVersion != d.PolicyVersion {
			t.Fatalf("experience %s: action %d, behavior_logprob %v, version %d; served action %d, propensity %v (log %v), version %d",
				e.ID, e.Action, e.BehaviorLogProb, e.PolicyVersion, d.Action, p, math.Log(p), d.PolicyVersion)
		}
	}
	later := 0
	for ver, n := range versions {
		if ver > 0 {
			later += n
		}
	}
	if later == 0 {
		t.Fatalf("no decision served by a learned snapshot: decisions by version %v", versions)
	}
	t.Logf("decisions by policy version: %v", versions)
	var out strings.Builder
	sum.Print(&out)
	if !strings.Contains(out.String(), "serve (decisions over HTTP)") {
		t.Errorf("summary without the serve section:\n%s", out.String())
	}
}
