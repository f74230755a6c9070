package sim

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// TestLiveWorkerFollowsTheDecider: the journey takes the served actions,
// its decisions carry the served ids, distributions and versions at
// increasing event times from the arrival, its outcomes name the served
// decisions, and a Decider error abandons the journey.
func TestLiveWorkerFollowsTheDecider(t *testing.T) {
	cfg := DefaultConfig()
	s, err := New(cfg, 3, 0)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var asked []DecisionRequest
	served := map[string]ServedDecision{}
	decide := func(r *DecisionRequest) (ServedDecision, error) {
		asked = append(asked, *r)
		probs := make([]float64, cfg.NumActions())
		for i := range probs {
			probs[i] = float64(i+1) / float64(len(probs)*(len(probs)+1)/2)
		}
		sv := ServedDecision{DecisionID: fmt.Sprintf("d-%d", len(asked)), Action: rng.IntN(len(probs)), Probs: probs, PolicyVersion: 7}
		served[sv.DecisionID] = sv
		return sv, nil
	}
	w, err := NewLiveWorker(s, DefaultLiveConfig(), "exp", 5, decide)
	if err != nil {
		t.Fatal(err)
	}
	arrival := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	j, err := w.Journey(arrival)
	if err != nil {
		t.Fatal(err)
	}
	if j.Decisions != len(asked) || len(j.Steps) != len(asked) || j.Result.Steps != len(asked) {
		t.Fatalf("%d decisions, %d steps, result %d steps, %d asked", j.Decisions, len(j.Steps), j.Result.Steps, len(asked))
	}
	prev := int64(math.MinInt64)
	for i, st := range j.Steps {
		e, r := st.Experience, asked[i]
		sv := served[e.ID]
		if e.ID != fmt.Sprintf("d-%d", i+1) || int(e.Action) != sv.Action || e.PolicyVersion != 7 ||
			e.BehaviorLogProb != math.Log(sv.Probs[sv.Action]) || e.ExperimentID != "exp" {
			t.Errorf("step %d: experience %+v, served %+v", i, e, sv)
		}
		if r.Step != i || !r.Time.Equal(e.Timestamp) || r.UserID != e.UserID || r.Value != e.Value {
			t.Errorf("step %d: asked %+v, logged %+v", i, r, e)
		}
		if ts := e.Timestamp.UnixMilli(); ts <= prev || (i == 0 && ts != arrival) {
			t.Errorf("step %d at %d after %d (arrival %d)", i, ts, prev, arrival)
		}
		prev = e.Timestamp.UnixMilli()
		for _, o := range st.Outcomes {
			if o.DecisionID != e.ID || o.Timestamp.Before(e.Timestamp) {
				t.Errorf("step %d: outcome %+v", i, o)
			}
		}
	}
	if len(j.Outcomes) == 0 {
		t.Error("no outcomes")
	}

	fail := errors.New("503 for ever")
	n := 0
	w2, _ := NewLiveWorker(s, DefaultLiveConfig(), "exp", 6, func(r *DecisionRequest) (ServedDecision, error) {
		if n++; n == 2 {
			return ServedDecision{}, fail
		}
		return decide(r)
	})
	for {
		j, err := w2.Journey(arrival)
		if j.Result.Steps < 2 {
			n = 0
			continue // a journey of one step never asks twice
		}
		if !errors.Is(err, ErrAbandoned) || !errors.Is(err, fail) || j.Decisions != 1 || len(j.Steps) != 1 {
			t.Fatalf("abandoned journey: %d decisions, %d steps, %v", j.Decisions, len(j.Steps), err)
		}
		break
	}
}
