package ppo

import (
	"math"
	"math/rand/v2"
	"testing"
)

// banditData is a logged contextual bandit: context 0 (regular, 90%) pays
// 1 for action 0, context 1 (rare, 10%) pays 9 for action 3, every other
// action pays 0; rewards carry N(0, 0.1²) noise and the observation is the
// one-hot context plus N(0, 0.05²) noise. Actions were logged uniformly,
// so log μ(a|s) = log(1/4).
type banditData struct {
	obs     [][]float64
	actions []int
	rewards []float64
	rare    []bool
}

const (
	banditActions = 4
	banditObsDim  = 3
)

var banditBest = [2]int{0, 3}

func banditObs(ctx int, rng *rand.Rand) []float64 {
	o := make([]float64, banditObsDim)
	o[ctx] = 1
	for k := range o {
		if rng != nil {
			o[k] += 0.05 * rng.NormFloat64()
		}
	}
	return o
}

func newBanditData(n int, rng *rand.Rand) *banditData {
	d := &banditData{}
	for range n {
		ctx := 0
		if rng.Float64() < 0.1 {
			ctx = 1
		}
		act := rng.IntN(banditActions)
		rew := 0.0
		if act == banditBest[ctx] {
			rew = []float64{1, 9}[ctx]
		}
		d.obs = append(d.obs, banditObs(ctx, rng))
		d.actions = append(d.actions, act)
		d.rewards = append(d.rewards, rew+0.1*rng.NormFloat64())
		d.rare = append(d.rare, ctx == 1)
	}
	return d
}

// TestLearnContextualBandit trains from replayed uniform-logging data with
// prioritised sampling: rare items are drawn 2.6× as often as regular ones,
// P(i) = p_i/Σp, and weighted by w_i = (N·P(i))^−1 / max_j (N·P(j))^−1.
// Within 150 updates the policy must put ≥ 95% probability on the best
// action of both contexts.
func TestLearnContextualBandit(t *testing.T) {
	rng := rand.New(rand.NewPCG(2024, 6))
	const N, batchSize, maxUpdates = 4000, 256, 150
	data := newBanditData(N, rng)
	prio := make([]float64, N)
	total := 0.0
	for i := range prio {
		prio[i] = 1
		if data.rare[i] {
			prio[i] = 2.6
		}
		total += prio[i]
	}
	cum := make([]float64, N)
	maxW := 0.0
	w := make([]float64, N)
	for i := range prio {
		total := total
		cum[i] = prio[i] / total
		if i > 0 {
			cum[i] += cum[i-1]
		}
		w[i] = 1 / (N * prio[i] / total)
		maxW = math.Max(maxW, w[i])
	}
	for i := range w {
		w[i] /= maxW
	}

	cfg := DefaultConfig(banditObsDim, banditActions)
	cfg.Hidden = []int{32, 32}
	cfg.LR = 1e-3
	a, err := New(cfg, rand.New(rand.NewPCG(1, 1)))
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range data.obs {
		a.ObserveObs(o)
	}
	blp := math.Log(1.0 / banditActions)
	var b Batch
	probs := make([]float64, banditActions)
	rareInBatch := 0
	for u := 1; u <= maxUpdates; u++ {
		b.Reset()
		for range batchSize {
			x := rng.Float64()
			i := 0
			for lo, hi := 0, N-1; lo < hi; {
				mid := (lo + hi) / 2
				if cum[mid] > x {
					hi = mid
				} else {
					lo = mid + 1
				}
				i = lo
			}
			if data.rare[i] {
				rareInBatch++
			}
			b.Append(data.obs[i], data.obs[i], data.actions[i], blp, data.rewards[i], w[i], true, -1)
		}
		st := a.Update(&b)
		if st.Samples != batchSize || st.Steps == 0 {
			t.Fatalf("update %d: %+v", u, st)
		}
		ok := true
		var got [2]float64
		for ctx := range 2 {
			a.ActionProbs(banditObs(ctx, nil), probs)
			got[ctx] = probs[banditBest[ctx]]
			ok = ok && got[ctx] >= 0.95
		}
		if ok {
			t.Logf("π(best) = %.3f (regular), %.3f (rare) after %d updates; rare share of batches %.3f",
				got[0], got[1], u, float64(rareInBatch)/float64(u*batchSize))
			return
		}
		if u == maxUpdates {
			t.Fatalf("after %d updates π(best) = %.3f (regular), %.3f (rare), want ≥ 0.95 in both", u, got[0], got[1])
		}
	}
}

// TestBehaviorRatioCannotLearnFromReplay documents why RatioProximal is the
// default: clipping π_θ/μ against a uniform logging policy μ = 1/4 stops
// the gradient of each worse action once π(a) < (1 − ε)·μ = 0.2, so π(best)
// plateaus near 1 − 3·0.2 = 0.4 (observed 0.40–0.42) instead of reaching
// 0.95; after 40 updates it must still be below 0.5.
func TestBehaviorRatioCannotLearnFromReplay(t *testing.T) {
	rng := rand.New(rand.NewPCG(2024, 6))
	data := newBanditData(2000, rng)
	cfg := DefaultConfig(banditObsDim, banditActions)
	cfg.Hidden = []int{32, 32}
	cfg.LR = 1e-3
	cfg.Ratio = RatioBehavior
	a, err := New(cfg, rand.New(rand.NewPCG(1, 1)))
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range data.obs {
		a.ObserveObs(o)
	}
	var b Batch
	for range 40 {
		b.Reset()
		for range 128 {
			i := rng.IntN(len(data.obs))
			b.Append(data.obs[i], data.obs[i], data.actions[i], math.Log(0.25), data.rewards[i], 1, true, -1)
		}
		a.Update(&b)
	}
	probs := make([]float64, banditActions)
	a.ActionProbs(banditObs(0, nil), probs)
	if p := probs[banditBest[0]]; p >= 0.5 {
		t.Errorf("π(best|regular) = %.3f with the behaviour ratio, want < 0.5 (the clip confines π near μ = 0.25)", p)
	}
}

// TestLearnChainValues trains on a deterministic 5-state chain
// s0 → s1 → s2 → s3 → s4 → end, mean reward 1 on the last transition and
// 0 elsewhere (plus N(0, 0.2²) noise on every reward), whatever the action,
// γ = 0.9, so V(s_i) = 0.9^(4−i) for every policy. Transitions are replayed uniformly from a uniform logging policy;
// after 100 updates (learning rate decayed linearly to 0) every |V(s_i) − 0.9^(4−i)| must be ≤ 0.05.
func TestLearnChainValues(t *testing.T) {
	const states, gamma = 5, 0.9
	onehot := func(s int) []float64 {
		o := make([]float64, states)
		if s < states {
			o[s] = 1
		}
		return o
	}
	cfg := DefaultConfig(states, 2)
	cfg.Hidden = []int{32, 32}
	cfg.Gamma = gamma
	cfg.LR = 1e-3
	cfg.LRSchedule, cfg.TotalUpdates = ScheduleLinear, 100 // anneal away the reward noise
	a, err := New(cfg, rand.New(rand.NewPCG(5, 5)))
	if err != nil {
		t.Fatal(err)
	}
	for s := range states {
		a.ObserveObs(onehot(s))
	}
	rng := rand.New(rand.NewPCG(7, 7))
	var b Batch
	worst := 0.0
	for range 100 {
		b.Reset()
		for range 100 {
			s := rng.IntN(states)
			rew, done := 0.0, s == states-1
			if done {
				rew = 1
			}
			rew += 0.2 * rng.NormFloat64()
			b.Append(onehot(s), onehot(s+1), rng.IntN(2), math.Log(0.5), rew, 1, done, -1)
		}
		a.Update(&b)
	}
	for s := range states {
		want := math.Pow(gamma, float64(states-1-s))
		got := a.Value(onehot(s))
		worst = math.Max(worst, math.Abs(got-want))
		if math.Abs(got-want) > 0.05 {
			t.Errorf("V(s%d) = %.4f, want %.4f ± 0.05", s, got, want)
		}
	}
	t.Logf("max |V − V*| = %.2g", worst)
}
