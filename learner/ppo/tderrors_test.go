package ppo

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestTDErrorsMatchBeforeUpdateValues: TDErrors after an Update equals
// ρ·(r + γ·V(s′)·(1 − done) − V(s)) recomputed with a copy of the agent
// taken before the update (ρ = min(ρ̄, π/μ) with that copy's policy),
// to 1e-9, and skips the invalid sample.
func TestTDErrorsMatchBeforeUpdateValues(t *testing.T) {
	cfg := DefaultConfig(4, 3)
	cfg.Workers = 1
	a, err := New(cfg, rand.New(rand.NewPCG(1, 2)))
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	var b Batch
	for i := range 40 {
		obs := []float64{rng.NormFloat64(), rng.NormFloat64(), rng.NormFloat64(), rng.NormFloat64()}
		next := []float64{rng.NormFloat64(), rng.NormFloat64(), rng.NormFloat64(), rng.NormFloat64()}
		act := rng.IntN(3)
		if i == 7 {
			act = 5 // invalid: dropped
		}
		b.Append(obs, next, act, math.Log(1.0/3), rng.NormFloat64(), 1, i%5 == 0, -1)
	}
	state, err := a.MarshalCheckpoint()
	if err != nil {
		t.Fatal(err)
	}
	before, err := Restore(state, rand.New(rand.NewPCG(1, 2)))
	if err != nil {
		t.Fatal(err)
	}
	if rows, td := a.TDErrors(); len(rows) != 0 || len(td) != 0 {
		t.Fatalf("before any update: %d rows, %d errors, want none", len(rows), len(td))
	}
	a.Update(&b)
	rows, td := a.TDErrors()
	if len(rows) != 39 || len(td) != 39 {
		t.Fatalf("%d rows, %d errors, want 39 (one invalid sample dropped)", len(rows), len(td))
	}
	lp := make([]float64, 3)
	for k, i := range rows {
		if i == 7 {
			t.Fatalf("invalid row 7 reported")
		}
		obs, next := b.Obs[i*4:(i+1)*4], b.NextObs[i*4:(i+1)*4]
		boot := 0.0
		if !b.Dones[i] {
			boot = cfg.Gamma * before.Value(next)
		}
		before.LogProbs(obs, lp)
		rho := math.Min(cfg.RhoBar, math.Exp(lp[b.Actions[i]]-b.BehaviorLogProb[i]))
		want := rho * (b.Rewards[i] + boot - before.Value(obs))
		if math.Abs(td[k]-want) > 1e-9*math.Max(1, math.Abs(want)) {
			t.Errorf("row %d: TD error %.12g, want %.12g", i, td[k], want)
		}
	}
}
