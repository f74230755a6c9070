package tagger

import (
	"bytes"
	"math"
	"strings"
	"testing"
)

// urgentPolicy bids high with the urgent creative more often the more the
// observation's engagement and urgency signal look like a crisis parent's.
type urgentPolicy struct{}

func (urgentPolicy) ActionProbs(obs, dst []float64) {
	q := 1 / (1 + math.Exp(-4*(obs[4]+obs[9]-0.8)))
	for a := range dst {
		dst[a] = (1 - q) / float64(len(dst)-1)
	}
	dst[9] = q
}

// TestMeasurePolicyStream: with a policy acting, the Monte Carlo posterior
// is the Bayes limit: calibrated, not beaten by the taggers beyond
// sampling luck, and the report says which stream it measured. The
// figures are deterministic (the posterior's goroutines each own a fixed
// share of the users).
func TestMeasurePolicyStream(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Users, cfg.Policy, cfg.Ghosts = 3000, urgentPolicy{}, 8
	rep, err := Measure(cfg)
	if err != nil {
		t.Fatal(err)
	}
	rules, learned, limit := rep.Unlabelled[0], rep.Unlabelled[1], rep.Unlabelled[2]
	if learned.F1 > limit.F1+0.01 || rules.F1 > limit.F1+0.01 {
		t.Errorf("unlabelled F1 rules %.3f learned %.3f above the Bayes limit %.3f", rules.F1, learned.F1, limit.F1)
	}
	if limit.ECE > 0.02 {
		t.Errorf("Monte Carlo posterior ECE %.4f, want ≤ 0.02", limit.ECE)
	}
	if rep.Ghosts != 8 || !(rep.RecordCrisisShare > 0 && rep.RecordCrisisShare < 0.2) {
		t.Errorf("ghosts %d, record crisis share %v", rep.Ghosts, rep.RecordCrisisShare)
	}
	again, err := Measure(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if again.Unlabelled != rep.Unlabelled {
		t.Errorf("two measures differ: %+v and %+v", rep.Unlabelled, again.Unlabelled)
	}
	var out bytes.Buffer
	if err := rep.Write(&out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "Monte Carlo posterior, 8 ghost journeys") {
		t.Errorf("report does not name the Monte Carlo posterior:\n%s", out.String())
	}
	cfg.Ghosts = 0
	if _, err := Measure(cfg); err == nil {
		t.Error("a policy with 0 ghosts: no error")
	}
}
