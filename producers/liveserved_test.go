package producers

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/aelp/aelp/internal/kafkatest"
	"github.com/aelp/aelp/producers/sim"
	"github.com/aelp/aelp/schemas"
	"github.com/aelp/aelp/serve"
	"github.com/rs/zerolog"
)

// startServe runs a decision server (the logging policy, ε = 0.1) on cfg
// and returns its base URL and a stop that waits for its drain.
func startServe(t *testing.T, cfg serve.Config) (string, func() error) {
	t.Helper()
	cfg.Addr, cfg.Log, cfg.AllowLoggingPolicy = "127.0.0.1:0", zerolog.Nop(), true
	srv, err := serve.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	stop := func() error { cancel(); return <-done }
	t.Cleanup(func() { _ = stop })
	for srv.Addr() == "" {
		select {
		case err := <-done:
			t.Fatalf("serve stopped: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	return "http://" + srv.Addr(), stop
}

// TestLiveSimulatorThroughServe: with --decide-url every decision is the
// server's (logged by it with the simulated event time, its propensity as
// behavior_logprob), the outcomes posted name the served decisions and
// share their partitions, and each partition's outcomes are in event-time
// order within the join's grace until the last user's arrival (after it
// the outcomes are the long conversion delays' tail, sparse in event time,
// where even the window of OutcomePosts records reordered spans more).
func TestLiveSimulatorThroughServe(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.Options{})
	scfg := serve.DefaultConfig()
	scfg.Kafka, scfg.ExperimentID, scfg.Epsilon = c.Config(), "served", 0.1
	base, stop := startServe(t, scfg)
	truths := map[string]schemas.Experience{}
	s, err := NewLiveSimulator(LiveSimulateConfig{
		SimulateConfig: SimulateConfig{Kafka: c.Config(), ExperimentID: "served", Users: 300, Seed: 4, ProgressEvery: -1, Log: zerolog.Nop()},
		Start:          time.UnixMilli(1_700_000_000_000),
		Truth:          func(tr *sim.TrueTransition) { truths[tr.Experience.ID] = tr.Experience },
		DecideURL:      base, DecideWorkers: 8, OutcomePosts: 4,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	rep, err := s.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if rep.Users != 300 || rep.Decisions != int64(len(truths)) || rep.Outcomes == 0 {
		t.Fatalf("report %+v, %d truths", rep, len(truths))
	}
	dm, om := readLive(t, c.Config(), rep)
	part := map[string]int{}
	for _, m := range dm {
		d := &m.rec
		part[d.DecisionID] = m.partition
		e, ok := truths[d.DecisionID]
		switch {
		case !ok:
			t.Fatalf("logged decision %s is not one the simulator was served", d.DecisionID)
		case d.Action != e.Action || d.BehaviorLogProb != e.BehaviorLogProb || !d.Timestamp.Equal(e.Timestamp) ||
			d.PolicyVersion != e.PolicyVersion || d.Step != e.Step || d.UserID != e.UserID || d.Value != e.Value:
			t.Fatalf("logged %+v, simulated %+v", d, e)
		case d.BehaviorLogProb != math.Log(d.ActionProbs[d.Action]) || math.Abs(d.ActionProbs[d.Action]-(0.9/12+0.1/12)) > 1e-12:
			t.Fatalf("decision %s: behavior_logprob %v, probs %v", d.DecisionID, d.BehaviorLogProb, d.ActionProbs)
		}
		for i, x := range d.State {
			if x != e.State[i] {
				t.Fatalf("decision %s state %v, simulated %v", d.DecisionID, d.State, e.State)
			}
		}
	}
	lastArrival := int64(0)
	for _, e := range truths {
		if e.Step == 0 {
			lastArrival = max(lastArrival, e.Timestamp.UnixMilli())
		}
	}
	last := map[int]int64{}
	grace := int64(5000) // join.DefaultGrace
	for _, m := range om {
		o := &m.rec
		if p, ok := part[o.DecisionID]; !ok || p != m.partition {
			t.Fatalf("outcome of %s on partition %d, its decision on %d (logged: %v)", o.DecisionID, m.partition, p, ok)
		}
		ts := o.Timestamp.UnixMilli()
		if ts+grace < last[m.partition] && ts < lastArrival {
			t.Fatalf("outcomes of partition %d out of order beyond the join's grace: %d after %d (%s)", m.partition, ts, last[m.partition], o.Kind)
		}
		last[m.partition] = max(last[m.partition], ts)
	}
}

// TestLiveSimulatorServeBadRequest: a 400 stops the run with the
// server's message.
func TestLiveSimulatorServeBadRequest(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.Options{})
	scfg := serve.DefaultConfig()
	scfg.Kafka, scfg.ExperimentID, scfg.StateDim = c.Config(), "bad", 17
	base, _ := startServe(t, scfg)
	s, err := NewLiveSimulator(LiveSimulateConfig{
		SimulateConfig: SimulateConfig{Kafka: c.Config(), ExperimentID: "bad", Users: 10, Seed: 4, ProgressEvery: -1, Log: zerolog.Nop()},
		DecideURL:      base,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	_, err = s.Run(ctx)
	if err == nil || !strings.Contains(err.Error(), "bad request") || !strings.Contains(err.Error(), "16 elements, want 17") {
		t.Fatalf("run: %v, want the 400 naming the state", err)
	}
}
