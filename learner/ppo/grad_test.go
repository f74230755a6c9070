package ppo

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// gradFixture builds an agent with perturbed (non-degenerate) parameters,
// prepares a random batch with them, then perturbs the parameters again so
// that the ratios r are away from 1 and the clipped branches are exercised.
func gradFixture(t *testing.T, cfg Config, seed uint64, n int) *Agent {
	t.Helper()
	return gradFixtureWith(t, cfg, seed, n, false)
}

// gradFixtureWith is gradFixture on the per-row path when perRow is set.
func gradFixtureWith(t *testing.T, cfg Config, seed uint64, n int, perRow bool) *Agent {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 99))
	a, err := New(cfg, rng)
	if err != nil {
		t.Fatal(err)
	}
	a.perRow = perRow
	for i := range a.params {
		a.params[i] += 0.3 * rng.NormFloat64()
	}
	b := randomBatch(cfg, n, rng)
	for i := range b.BehaviorLogProb {
		b.BehaviorLogProb[i] = math.Log(0.05 + 0.5*rng.Float64())
	}
	a.ObserveObs(b.Obs)
	var st Stats
	a.prepare(b, &st)
	if st.Samples != n {
		t.Fatalf("prepared %d samples, want %d", st.Samples, n)
	}
	for i := range a.params {
		a.params[i] += 0.15 * rng.NormFloat64()
	}
	return a
}

// kinkDistance returns how close the current parameters are to a point
// where the loss is not differentiable (r = 1 ± ε, the value-clip switch),
// over the prepared samples mb.
func kinkDistance(a *Agent, mb []int) float64 {
	d, eps := a.cfg.ObsDim, a.cfg.ClipEps
	dist := math.Inf(1)
	lp, probs := make([]float64, a.cfg.NumActions), make([]float64, a.cfg.NumActions)
	for _, k := range mb {
		x := a.xs[k*d : (k+1)*d]
		logSoftmax(lp, probs, netOut(&a.pol, a.polParams(), x))
		r := math.Exp(lp[a.act[k]] - a.refLogp[k])
		dist = math.Min(dist, math.Min(math.Abs(r-(1-eps)), math.Abs(r-(1+eps))))
		if a.cfg.ClipValue {
			v := netOut(&a.val, a.valParams(), x)[0]
			vo, t := a.vold[k], a.target[k]
			dist = math.Min(dist, math.Abs(math.Abs(v-vo)-eps))
			if math.Abs(v-vo) > eps { // outside, the two branches differ
				vc := vo + math.Max(-eps, math.Min(eps, v-vo))
				dist = math.Min(dist, math.Abs(math.Abs(vc-t)-math.Abs(v-t)))
			}
		}
	}
	return dist
}

// netOut runs the network m with parameters p on one normalised input x
// and returns its output.
func netOut(m *mlp, p, x []float64) []float64 {
	wt := make([]float64, len(p))
	m.transposeWeights(p, wt)
	act := newNetRows(m, 1, false).act
	m.forwardRows(p, wt, x, act, 0, 1)
	return act[len(act)-1]
}

func allIdx(n int) []int {
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	return idx
}

// TestGradientFiniteDifference checks ∂L/∂θ of the full weighted minibatch
// loss against central differences, (L(θ+h) − L(θ−h))/2h with h = 1e-5:
// per component |g − g_fd| ≤ 1e-5·max(|g|, |g_fd|) + 1e-9 (the absolute
// term covers the O(1e-10) truncation and rounding error of the difference
// for components near zero) and ‖g − g_fd‖/‖g‖ < 1e-6.
func TestGradientFiniteDifference(t *testing.T) {
	tests := []struct {
		name      string
		ratio     string
		clipValue bool
		normAdv   bool
		normObs   bool
	}{
		{"proximal", RatioProximal, false, true, true},
		{"proximal clipped value", RatioProximal, true, true, true},
		{"behavior ratio", RatioBehavior, false, true, false},
		{"raw advantages", RatioProximal, false, false, true},
	}
	for _, tc := range tests {
		for _, workers := range []int{1, 2, 3} {
			t.Run(fmt.Sprintf("%s/workers=%d", tc.name, workers), func(t *testing.T) {
				checkGradient(t, tc.ratio, tc.clipValue, tc.normAdv, tc.normObs, workers)
			})
		}
	}
}

// checkGradient runs the finite-difference check of
// TestGradientFiniteDifference for one configuration.
func checkGradient(t *testing.T, ratio string, clipValue, normAdv, normObs bool, workers int) {
	cfg := DefaultConfig(5, 4)
	cfg.Hidden = []int{8, 7}
	cfg.EntropyCoef = 0.05
	cfg.Ratio, cfg.ClipValue = ratio, clipValue
	cfg.NormalizeAdvantage, cfg.NormalizeObs = normAdv, normObs
	cfg.Workers = workers
	const n, h = 24, 1e-5
	var a *Agent
	for seed := uint64(1); ; seed++ {
		a = gradFixture(t, cfg, seed, n)
		if kinkDistance(a, allIdx(n)) > 1e-3 {
			break
		}
		if seed > 50 {
			t.Fatal("no kink-free fixture in 50 seeds")
		}
	}
	mb := allIdx(n)
	res := a.lossAndGrad(mb, false)
	if res.clipFrac == 0 || res.clipFrac == 1 {
		t.Fatalf("clip fraction %v: fixture does not exercise both branches", res.clipFrac)
	}
	g := append([]float64(nil), a.grad...)
	var diff2, norm2 float64
	for i := range a.params {
		p := a.params[i]
		a.params[i] = p + h
		lp := a.lossAndGrad(mb, false).loss
		a.params[i] = p - h
		lm := a.lossAndGrad(mb, false).loss
		a.params[i] = p
		fd := (lp - lm) / (2 * h)
		if tol := 1e-5*math.Max(math.Abs(g[i]), math.Abs(fd)) + 1e-9; math.Abs(g[i]-fd) > tol {
			t.Errorf("param %d: analytic %.10g, finite difference %.10g", i, g[i], fd)
		}
		diff2 += (g[i] - fd) * (g[i] - fd)
		norm2 += g[i] * g[i]
	}
	if rel := math.Sqrt(diff2 / norm2); !(rel < 1e-6) {
		t.Errorf("relative error of the gradient %g, want < 1e-6", rel)
	}
}

// setWeights overwrites the prepared IS weights.
func setWeights(a *Agent, f func(k int) float64) {
	for k := 0; k < a.n; k++ {
		a.w[k] = f(k)
	}
}

// TestWeightsAppliedOnce checks that doubling every IS weight doubles the
// loss and the gradient (relative tolerance 1e-12: the weighted advantage
// normalisation is invariant to the scale), so the weights enter once.
func TestWeightsAppliedOnce(t *testing.T) {
	cfg := DefaultConfig(5, 4)
	cfg.Hidden = []int{8, 7}
	const n = 32
	a := gradFixture(t, cfg, 7, n)
	rng := rand.New(rand.NewPCG(3, 4))
	w := make([]float64, n)
	for k := range w {
		w[k] = 0.1 + rng.Float64()
	}
	mb := allIdx(n)
	setWeights(a, func(k int) float64 { return w[k] })
	r1 := a.lossAndGrad(mb, false)
	g1 := append([]float64(nil), a.grad...)
	setWeights(a, func(k int) float64 { return 2 * w[k] })
	r2 := a.lossAndGrad(mb, false)
	if math.Abs(r2.loss-2*r1.loss) > 1e-12*math.Abs(r1.loss) {
		t.Errorf("loss with doubled weights %v, want 2×%v", r2.loss, r1.loss)
	}
	for i := range g1 {
		if math.Abs(a.grad[i]-2*g1[i]) > 1e-12*math.Abs(g1[i])+1e-300 {
			t.Fatalf("grad[%d] with doubled weights %v, want 2×%v", i, a.grad[i], g1[i])
		}
	}
}

// unitWeightCase prepares a fixed random agent and batch (weights all 1,
// or nil) and returns the agent's minibatch loss and gradient after a
// parameter perturbation, together with a reference PPO loss written out
// independently from the public forward passes (plain means, unweighted
// advantage normalisation).
func unitWeightCase(t *testing.T, nilWeights bool) (loss float64, grad []float64, want float64) {
	t.Helper()
	cfg := DefaultConfig(5, 4)
	cfg.Hidden = []int{8, 7}
	cfg.EntropyCoef = 0.05
	const n = 32
	rng := rand.New(rand.NewPCG(11, 12))
	a, err := New(cfg, rng)
	if err != nil {
		t.Fatal(err)
	}
	for i := range a.params {
		a.params[i] += 0.3 * rng.NormFloat64()
	}
	b := randomBatch(cfg, n, rng)
	a.ObserveObs(b.Obs)
	for i := range b.Weights {
		b.Weights[i] = 1
		b.BehaviorLogProb[i] = math.Log(0.1 + 0.4*rng.Float64())
	}
	if nilWeights {
		b.Weights = nil
	}
	d := cfg.ObsDim
	lp := make([]float64, cfg.NumActions)
	adv := make([]float64, n)
	target := make([]float64, n)
	oldLogp := make([]float64, n)
	for i := range n {
		obs := b.Obs[i*d : (i+1)*d]
		a.LogProbs(obs, lp)
		oldLogp[i] = lp[b.Actions[i]]
		rho := math.Min(1, math.Exp(oldLogp[i]-b.BehaviorLogProb[i]))
		v := a.Value(obs)
		next := 0.0
		if !b.Dones[i] {
			next = a.Value(b.NextObs[i*d : (i+1)*d])
		}
		adv[i] = rho * (b.Rewards[i] + cfg.Gamma*next - v)
		target[i] = v + adv[i]
	}
	var st Stats
	a.prepare(b, &st)
	for i := range a.params {
		a.params[i] += 0.1 * rng.NormFloat64()
	}
	var mu, sd float64
	for _, x := range adv {
		mu += x / n
	}
	for _, x := range adv {
		sd += (x - mu) * (x - mu) / n
	}
	sd = math.Sqrt(sd)
	for i := range n {
		obs := b.Obs[i*d : (i+1)*d]
		a.LogProbs(obs, lp)
		H := 0.0
		for _, l := range lp {
			H -= math.Exp(l) * l
		}
		A := (adv[i] - mu) / (sd + 1e-8)
		r := math.Exp(lp[b.Actions[i]] - oldLogp[i])
		clipped := math.Max(0.8, math.Min(1.2, r))
		v := a.Value(obs)
		want += (-math.Min(r*A, clipped*A) + 0.5*0.5*(v-target[i])*(v-target[i]) - 0.05*H) / n
	}
	res := a.lossAndGrad(allIdx(n), false)
	return res.loss, append([]float64(nil), a.grad...), want
}

// TestUnitWeightsReproduceUnweightedLoss checks that with all weights 1 the
// loss equals the independently written unweighted PPO loss (1e-12
// relative), and that nil Weights give bit-identical loss and gradient.
func TestUnitWeightsReproduceUnweightedLoss(t *testing.T) {
	loss, grad, want := unitWeightCase(t, false)
	if math.Abs(loss-want) > 1e-12*math.Abs(want) {
		t.Errorf("loss with unit weights %.15g, want unweighted %.15g", loss, want)
	}
	loss2, grad2, _ := unitWeightCase(t, true)
	if loss2 != loss {
		t.Errorf("loss with nil weights %v, want %v", loss2, loss)
	}
	for i := range grad {
		if grad2[i] != grad[i] {
			t.Fatalf("grad[%d] with nil weights %v, want %v", i, grad2[i], grad[i])
		}
	}
}
