package ope

import (
	"testing"
	"time"
)

func TestExplore(t *testing.T) {
	m := newToyMDP(1, 3, 4)
	mu := m.randomPolicy(2, 0.1)
	targets := map[string]*tablePolicy{"mu": mu, "rand": m.randomPolicy(3, 0.02), "mix": m.mix(mu, m.randomPolicy(4, 0.0), 0.5)}
	for _, n := range []int{300, 20000} {
		js := m.journeys(mu, n, 5)
		for name, p := range targets {
			seg, all := m.trueValue(p)
			t0 := time.Now()
			rep, err := Evaluate(Target{Name: name, Policy: p}, js, Config{})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("n=%d %s truth all %.4f A %.4f B %.4f (%v) R2 %.3f it %d", n, name, all, seg[0], seg[1], time.Since(t0), rep.Model.R2, rep.Model.Iterations)
			for _, s := range rep.Segments {
				t.Logf("  %-8s n %5d ess %8.1f logged %.4f", s.Name, s.Journeys, s.ESS, s.Logged.Value)
				for _, e := range s.Estimates {
					t.Logf("     %-5s %.4f [%.4f, %.4f] w %.4f", e.Estimator, e.Value, e.Lo, e.Hi, e.Hi-e.Lo)
				}
			}
		}
	}
}
