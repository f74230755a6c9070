package ppo

import (
	"math"
	"math/rand/v2"
	"testing"
)

// oneSampleAgent returns an agent (policy loss only: c_v = c_e = 0, raw
// advantages) with one prepared sample.
func oneSampleAgent(t *testing.T) *Agent {
	t.Helper()
	cfg := DefaultConfig(3, 3)
	cfg.Hidden = []int{6}
	cfg.ValueCoef, cfg.EntropyCoef = 0, 0
	cfg.NormalizeAdvantage = false
	rng := rand.New(rand.NewPCG(1, 2))
	a, err := New(cfg, rng)
	if err != nil {
		t.Fatal(err)
	}
	for i := range a.params {
		a.params[i] += 0.3 * rng.NormFloat64()
	}
	var b Batch
	b.Append([]float64{0.3, -1, 2}, []float64{0, 0, 0}, 1, math.Log(1.0/3), 1, 1, true, -1)
	var st Stats
	a.prepare(&b, &st)
	return a
}

func norm2(xs []float64) float64 {
	s := 0.0
	for _, x := range xs {
		s += x * x
	}
	return math.Sqrt(s)
}

// TestClipEdges sets r = exp(log π − refLogp) just inside and just outside
// 1 ± ε (by 1e-6) for positive and negative advantages. When the constant
// clipped term is the min the policy gradient must be exactly 0; otherwise
// it must equal r times the gradient at r = 1 (∂(−r·A)/∂θ = −A·r·∇log π),
// to 1e-9 relative.
func TestClipEdges(t *testing.T) {
	const eps, tiny = 0.2, 1e-6
	tests := []struct {
		name     string
		adv, r   float64
		wantZero bool
	}{
		{"A>0 below 1+ε", 1, 1 + eps - tiny, false},
		{"A>0 above 1+ε clipped", 1, 1 + eps + tiny, true},
		{"A>0 below 1−ε unclipped min", 1, 1 - eps - tiny, false},
		{"A<0 above 1−ε", -1, 1 - eps + tiny, false},
		{"A<0 below 1−ε clipped", -1, 1 - eps - tiny, true},
		{"A<0 above 1+ε unclipped min", -1, 1 + eps + tiny, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := oneSampleAgent(t)
			lp := a.refLogp[0] // proximal: log π_θold(a|s) at the current θ
			a.adv[0] = tc.adv
			a.refLogp[0] = lp
			a.lossAndGrad([]int{0}, false)
			base := append([]float64(nil), a.polGrad()...)
			a.refLogp[0] = lp - math.Log(tc.r)
			res := a.lossAndGrad([]int{0}, false)
			g := a.polGrad()
			if got := res.clipFrac; got != 1 && math.Abs(tc.r-1) > eps {
				t.Errorf("clip fraction %v, want 1", got)
			}
			if tc.wantZero {
				if n := norm2(g); n != 0 {
					t.Errorf("policy gradient norm %g, want 0 (clipped term is the min)", n)
				}
				if want := -math.Max(1-eps, math.Min(1+eps, tc.r)) * tc.adv; math.Abs(res.policyLoss-want) > 1e-12 {
					t.Errorf("policy loss %v, want the clipped %v", res.policyLoss, want)
				}
				return
			}
			for i := range g {
				if math.Abs(g[i]-tc.r*base[i]) > 1e-9*math.Abs(tc.r*base[i])+1e-15 {
					t.Fatalf("grad[%d] = %v, want r·%v = %v", i, g[i], base[i], tc.r*base[i])
				}
			}
			if norm2(g) == 0 {
				t.Error("policy gradient is 0, want non-zero (unclipped term is the min)")
			}
		})
	}
}

// TestRhoTruncation prepares samples whose behaviour ratio
// r₀ = π_θold(a|s)/μ(a|s) is just below, just above and far from ρ̄ = 1 and
// checks Â = min(1, r₀)·δ and V_target = V(s) + Â with
// δ = reward + γ(1 − done)·V(s′) − V(s) from the public forward passes,
// to 1e-12 relative.
func TestRhoTruncation(t *testing.T) {
	cfg := DefaultConfig(3, 3)
	cfg.Hidden = []int{6}
	rng := rand.New(rand.NewPCG(3, 4))
	a, err := New(cfg, rng)
	if err != nil {
		t.Fatal(err)
	}
	for i := range a.params {
		a.params[i] += 0.3 * rng.NormFloat64()
	}
	ratios := []float64{0.5, 1 - 1e-6, 1, 1 + 1e-6, 3}
	var b Batch
	lp := make([]float64, 3)
	for i, r0 := range ratios {
		obs := []float64{rng.NormFloat64(), rng.NormFloat64(), rng.NormFloat64()}
		next := []float64{rng.NormFloat64(), rng.NormFloat64(), rng.NormFloat64()}
		act := i % 3
		a.LogProbs(obs, lp)
		b.Append(obs, next, act, lp[act]-math.Log(r0), rng.NormFloat64(), 1, i == 2, -1)
	}
	var st Stats
	a.prepare(&b, &st)
	for i, r0 := range ratios {
		obs, next := b.Obs[3*i:3*i+3], b.NextObs[3*i:3*i+3]
		boot := 0.0
		if !b.Dones[i] {
			boot = cfg.Gamma * a.Value(next)
		}
		v := a.Value(obs)
		delta := b.Rewards[i] + boot - v
		rho := math.Min(1, r0)
		if r0 > 1 && rho != 1 {
			t.Fatalf("ρ = %v for r₀ = %v, want 1", rho, r0)
		}
		if want := rho * delta; math.Abs(a.adv[i]-want) > 1e-12*math.Abs(want) {
			t.Errorf("r₀ = %v: Â = %v, want ρ·δ = %v", r0, a.adv[i], want)
		}
		if want := v + rho*delta; math.Abs(a.target[i]-want) > 1e-12*math.Abs(want) {
			t.Errorf("r₀ = %v: V_target = %v, want %v", r0, a.target[i], want)
		}
	}
	// Above ρ̄ the truncation is active: Â/δ = ρ = 1 exactly.
	for _, i := range []int{3, 4} {
		v := a.Value(b.Obs[3*i : 3*i+3])
		delta := b.Rewards[i] + cfg.Gamma*a.Value(b.NextObs[3*i:3*i+3]) - v
		if got := a.adv[i] / delta; math.Abs(got-1) > 1e-12 {
			t.Errorf("sample %d: Â/δ = %v, want ρ = 1", i, got)
		}
	}
}
