package producers

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/aelp/aelp/internal/kafkatest"
	"github.com/aelp/aelp/internal/kafkax"
	"github.com/aelp/aelp/learner/policy/policytest"
	"github.com/aelp/aelp/learner/ppo"
	"github.com/aelp/aelp/producers/sim"
	"github.com/aelp/aelp/schemas"
	"github.com/rs/zerolog"
)

func TestSimulateValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  SimulateConfig
	}{
		{"no experiment", SimulateConfig{Users: 1}},
		{"neither users nor rate", SimulateConfig{ExperimentID: "x"}},
		{"negative users", SimulateConfig{ExperimentID: "x", Users: -1}},
		{"NaN rate", SimulateConfig{ExperimentID: "x", Rate: math.NaN()}},
		{"zero workers", SimulateConfig{ExperimentID: "x", Users: 1, Workers: -1}},
	} {
		if _, err := NewSimulator(tc.cfg); err == nil {
			t.Errorf("%s: NewSimulator accepted %+v", tc.name, tc.cfg)
		}
	}
}

// TestSimulateBoundedPublishesWhatItReports: `simulate --users N` publishes
// exactly the records it reports, every id once, each user on one
// partition, with valid records.
func TestSimulateBoundedPublishesWhatItReports(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.Options{})
	cfg := c.Config()
	s, err := NewSimulator(SimulateConfig{Kafka: cfg, ExperimentID: "sim-test", Users: 2000, Workers: 3, Seed: 3,
		ProgressEvery: -1, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep, err := s.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Users != 2000 || rep.Crisis.Episodes+rep.Regular.Episodes != 2000 {
		t.Fatalf("report: %d users, %d+%d episodes; want 2000", rep.Users, rep.Crisis.Episodes, rep.Regular.Episodes)
	}
	msgs := kafkatest.ReadAll(t, cfg, kafkax.TopicRaw)
	if int64(len(msgs)) != rep.Experiences {
		t.Fatalf("topic holds %d records, the simulator reported %d", len(msgs), rep.Experiences)
	}
	ids := map[string]bool{}
	users := map[string]int{}
	lim := schemas.Limits{StateDim: 16, NumActions: 12}
	for _, m := range msgs {
		var e schemas.Experience
		if err := schemas.UnmarshalExperience(m.Value, &e); err != nil {
			t.Fatalf("record %d/%d: %v", m.Partition, m.Offset, err)
		}
		if err := e.Validate(lim); err != nil {
			t.Fatalf("record %s: %v", e.ID, err)
		}
		if ids[e.ID] {
			t.Fatalf("id %s published twice", e.ID)
		}
		ids[e.ID] = true
		if string(m.Key) != e.UserID {
			t.Fatalf("key %q, user %q", m.Key, e.UserID)
		}
		if p, ok := users[e.UserID]; ok && p != m.Partition {
			t.Fatalf("user %s on partitions %d and %d", e.UserID, p, m.Partition)
		}
		users[e.UserID] = m.Partition
		if e.PolicyVersion != -1 || math.Abs(e.BehaviorLogProb-math.Log(1.0/12)) > 1e-12 {
			t.Fatalf("logging-policy record has version %d, log prob %v", e.PolicyVersion, e.BehaviorLogProb)
		}
	}
	if len(users) != 2000 {
		t.Fatalf("%d distinct users, want 2000", len(users))
	}
}

// TestSimulateActsWithPublishedSnapshot: a policy snapshot published
// mid-run raises policy_version in later records, and their
// behavior_logprob is the snapshot policy's exact log-probability.
func TestSimulateActsWithPublishedSnapshot(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.Options{})
	cfg := c.Config()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := NewSimulator(SimulateConfig{Kafka: cfg, ExperimentID: "snap-test", Rate: 2000, Workers: 2, Seed: 5,
		FollowPolicy: true, BatchRecords: 64, ProgressEvery: -1, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	runCtx, stop := context.WithCancel(ctx)
	go func() { _, err := s.Run(runCtx); done <- err }()

	// waitFor polls cond until it holds; the test's context bounds it, and
	// a simulator that stopped fails it at once.
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for !cond() {
			select {
			case err := <-done:
				t.Fatalf("waiting for %s: the simulator stopped: %v", what, err)
			case <-ctx.Done():
				t.Fatalf("waiting for %s: %v (stats %+v)", what, ctx.Err(), s.Stats())
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	// Wait for logging-policy records, then publish a snapshot.
	waitFor("500 experiences", func() bool { return s.Stats().Experiences >= 500 })
	const version = 7
	published := policytest.SnapshotMessage(t, "snap-test", version, 1)
	w, err := kafkax.NewWriter(cfg, kafkax.TopicPolicy, kafkax.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteMessages(ctx, policytest.SnapshotMessage(t, "another-experiment", 99, 1),
		published); err != nil {
		t.Fatal(err)
	}
	w.Close()
	waitFor(fmt.Sprintf("acting with version %d", version), func() bool { return s.Stats().PolicyVersion == version })
	seen := s.Stats().Experiences
	waitFor("500 experiences under the snapshot", func() bool { return s.Stats().Experiences >= seen+500 })
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	var snap schemas.PolicySnapshot
	if err := schemas.UnmarshalPolicySnapshot(published.Value, &snap); err != nil {
		t.Fatal(err)
	}
	pol, err := ppo.LoadPolicy(snap.Architecture, snap.Params, snap.ObsMean, snap.ObsVar, snap.ObsCount)
	if err != nil {
		t.Fatal(err)
	}
	probs := make([]float64, 12)
	state := make([]float64, 16)
	var before, after int
	for _, m := range kafkatest.ReadAll(t, cfg, kafkax.TopicRaw) {
		var e schemas.Experience
		if err := schemas.UnmarshalExperience(m.Value, &e); err != nil {
			t.Fatal(err)
		}
		switch e.PolicyVersion {
		case -1:
			before++
		case version:
			after++
			for i, v := range e.State {
				state[i] = float64(v)
			}
			pol.ActionProbs(state, probs)
			if want := math.Log(probs[e.Action]); math.Abs(e.BehaviorLogProb-want) > 1e-12 {
				t.Fatalf("record %s: behavior_logprob %v, snapshot policy gives %v", e.ID, e.BehaviorLogProb, want)
			}
		default:
			t.Fatalf("record %s acted with version %d (another experiment's snapshot?)", e.ID, e.PolicyVersion)
		}
	}
	if before == 0 || after == 0 {
		t.Fatalf("%d records before the snapshot, %d after; want both", before, after)
	}
}

// TestSimOutputMatchesSchemaLimits guards the contract between the model
// and the wire: default simulator states fit the Experience limits.
func TestSimOutputMatchesSchemaLimits(t *testing.T) {
	cfg := sim.DefaultConfig()
	if cfg.StateDim != 16 || cfg.NumActions() != 12 {
		t.Fatalf("default simulator is %d×%d; the CLI defaults assume 16×12", cfg.StateDim, cfg.NumActions())
	}
}
