package tagger

import (
	"bytes"
	"strings"
	"testing"
)

// TestMeasureSmallStream runs a tenth of aelp run's stream and checks the
// relations that must hold: the Bayes limit is not beaten (beyond sampling
// luck, 0.01), the learned tagger beats the rules, labels are exact, and
// the two members' models are close.
func TestMeasureSmallStream(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Users = 6000
	rep, err := Measure(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Records < 5*cfg.Users || rep.Labelled == 0 || rep.Labelled > rep.Records/3 {
		t.Fatalf("records %d, labelled %d for %d users", rep.Records, rep.Labelled, cfg.Users)
	}
	rules, learned, limit := rep.Unlabelled[0], rep.Unlabelled[1], rep.Unlabelled[2]
	if learned.F1 > limit.F1+0.01 || rules.F1 > limit.F1+0.01 {
		t.Errorf("unlabelled F1 rules %.3f learned %.3f above the Bayes limit %.3f", rules.F1, learned.F1, limit.F1)
	}
	if !(learned.F1 > rules.F1+0.1) {
		t.Errorf("unlabelled F1 learned %.3f, rules %.3f: want learned ahead by > 0.1", learned.F1, rules.F1)
	}
	if rep.All[2].F1 < limit.F1 {
		t.Errorf("Bayes limit on all records %.3f below the unlabelled one %.3f (labels are exact)", rep.All[2].F1, limit.F1)
	}
	if rep.HeldOutECE > 0.05 || limit.ECE > 0.02 {
		t.Errorf("held-out ECE %.4f (want ≤ 0.05), exact posterior ECE %.4f (want ≤ 0.02)", rep.HeldOutECE, limit.ECE)
	}
	if m := rep.Members; m.MeanAbsDiff > 0.06 || m.Disagree > 0.06 { // ~5,500 labelled records each; on aelp run's stream both are < 0.005
		t.Errorf("members: mean |Δp| %.4f, disagree %.4f; want both ≤ 0.06", m.MeanAbsDiff, m.Disagree)
	}
	var out bytes.Buffer
	if err := rep.Write(&out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Bayes limit on the unlabelled records: F1", "learned - Bayes limit", "two group members", "weights: bias"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}

func TestValidate(t *testing.T) {
	for name, mod := range map[string]func(*Config){
		"no users":    func(c *Config) { c.Users = 0 },
		"no workers":  func(c *Config) { c.Workers = 0 },
		"bad sim":     func(c *Config) { c.Sim.CrisisFraction = 2 },
		"bad tagger":  func(c *Config) { c.Classifier.Tagger = "neural" },
		"bad warm-up": func(c *Config) { c.Classifier.TaggerWarmUp = -1 },
	} {
		cfg := DefaultConfig()
		mod(&cfg)
		if _, err := Measure(cfg); err == nil {
			t.Errorf("%s: Measure succeeded", name)
		}
	}
	cfg := DefaultConfig()
	cfg.Users = 50
	if _, err := Measure(cfg); err == nil || !strings.Contains(err.Error(), "warm-up") {
		t.Errorf("stream shorter than the warm-up: %v, want a warm-up error", err)
	}
}
