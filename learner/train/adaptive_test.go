package train

import (
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"
)

func adaptiveConfig(seed uint64) Config {
	c := testConfig(seed)
	c.Adaptive.Enabled = true
	return c.WithDefaults()
}

func TestAdaptiveValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
		want   string // "" for valid
	}{
		{"enabled", func(*Config) {}, ""},
		{"disabled ignores bounds", func(c *Config) { c.Adaptive = Adaptive{MaxWeight: 0.5, Smoothing: 0.5} }, ""},
		{"max below 1", func(c *Config) { c.Adaptive.MaxWeight = 0.5; c.Replay.CrisisWeight = 0.5 }, "max crisis weight"},
		{"max infinite", func(c *Config) { c.Adaptive.MaxWeight = math.Inf(1) }, "max crisis weight"},
		{"start above max", func(c *Config) { c.Adaptive.MaxWeight = 4 }, "crisis weight 5"},
		{"start below 1", func(c *Config) { c.Replay.CrisisWeight = 0.5 }, "crisis weight 0.5"},
		{"smoothing", func(c *Config) { c.Adaptive.Smoothing = 0.5 }, "smoothing"},
		{"uniform", func(c *Config) { c.Replay.Uniform = true }, "importance sampling"},
		{"alpha 0", func(c *Config) { c.Replay.Alpha = 0 }, "α > 0"},
		{"soft priority", func(c *Config) { c.SoftPriority = true }, "soft priority"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			c.Adaptive.Enabled = !strings.HasPrefix(tt.name, "disabled")
			tt.mutate(&c)
			err := c.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Validate() = %v, want nil", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("Validate() = %v, want an error containing %q", err, tt.want)
			}
		})
	}
	if d := DefaultConfig().Adaptive; d.Enabled || d.MaxWeight != 14.6 || d.Smoothing != 100 {
		t.Errorf("default Adaptive = %+v, want off, max 14.6, smoothing 100", d)
	}
}

// TestWeightRuleBounds: whatever the signal (ratios from 1e-12 to 1e12,
// zeros, one stratum missing), the weight is in [1, MaxWeight], and equals
// the formula w_r·(e_c/e_r)^(T/(2α)) wherever that is inside the bounds.
func TestWeightRuleBounds(t *testing.T) {
	c := adaptiveConfig(1)
	c.Adaptive.Smoothing = 1 // the weight follows the last batch: every ratio is reached
	rng := rand.New(rand.NewPCG(1, 1))
	for _, alpha := range []float64{0.3, 0.6, 1} {
		c.Replay.Alpha = alpha
		r := newWeightRule(c)
		inside := 0
		for k := range 5000 {
			m := [2]float64{math.Pow(10, 12*(2*rng.Float64()-1)), math.Pow(10, 12*(2*rng.Float64()-1))}
			has := [2]bool{true, true}
			switch k % 50 {
			case 0:
				m[stratumRegular] = 0
			case 1:
				m[stratumCrisis] = 0
			case 2:
				has[stratumCrisis] = false
			}
			w, ok := r.observe(m, has)
			if !ok {
				continue
			}
			if !(w >= 1 && w <= c.Adaptive.MaxWeight) {
				t.Fatalf("α %g: signal %v gave weight %v, outside [1, %v]", alpha, m, w, c.Adaptive.MaxWeight)
			}
			want := math.Pow(r.ema[stratumCrisis]/r.ema[stratumRegular], 1/(2*alpha))
			if want > 1 && want < c.Adaptive.MaxWeight {
				inside++
				if math.Abs(w-want) > 1e-12*want {
					t.Fatalf("α %g: weight %v, formula %v", alpha, w, want)
				}
			}
		}
		if inside < 100 {
			t.Errorf("α %g: only %d weights inside the bounds: the formula is barely tested", alpha, inside)
		}
	}
}

// TestWeightRuleConstantSignal: a constant signal gives a constant weight
// from the first batch on, √(e_c/e_r) = 2 giving 2^(1/α) at T = 1; a step
// in the signal moves the weight monotonically towards the new target.
func TestWeightRuleConstantSignal(t *testing.T) {
	c := adaptiveConfig(1)
	r := newWeightRule(c)
	if _, ok := r.observe([2]float64{0, 4}, [2]bool{false, true}); ok {
		t.Fatal("a weight from the crisis stratum alone: want none until both strata are seen")
	}
	want := math.Pow(2, 1/c.Replay.Alpha) // P_c/P_r = w^α = √(4/1) = 2
	for k := range 500 {
		w, ok := r.observe([2]float64{1, 4}, [2]bool{true, true})
		if !ok || w != want {
			t.Fatalf("batch %d of a constant signal: weight %v (ok %t), want %v", k, w, ok, want)
		}
	}
	if got := r.signal; math.Abs(got-2) > 1e-15 {
		t.Errorf("signal %v, want √(4/1) = 2", got)
	}
	// The crisis errors double: the weight rises towards 2^(1.5/α), never past it.
	target := math.Pow(math.Sqrt(8), 1/c.Replay.Alpha)
	prev := want
	for k := range 2000 {
		w, _ := r.observe([2]float64{1, 8}, [2]bool{true, true})
		if w < prev || w > target*(1+1e-12) {
			t.Fatalf("batch %d after the step: weight %v after %v, want rising to %v", k, w, prev, target)
		}
		prev = w
	}
	if math.Abs(prev-target) > 1e-6*target {
		t.Errorf("after 2000 batches (τ = 100) weight %v, want %v", prev, target)
	}
}

func TestBatchSignal(t *testing.T) {
	// rows 0, 2, 3 used; row 1 dropped by PPO.
	rows := []int{0, 2, 3}
	td := []float64{1, 3, 2}
	probs := []float64{0.5, 0.1, 0.25, 0.125}
	crisis := []bool{true, true, false, true}
	m, has := batchSignal(rows, td, probs, crisis)
	// crisis draws: rows 0 (δ 1, P 0.5) and 3 (δ 2, P 0.125):
	// (1/0.5 + 4/0.125)/(1/0.5 + 1/0.125) = 34/10.
	if !has[stratumCrisis] || !has[stratumRegular] || math.Abs(m[stratumCrisis]-3.4) > 1e-15 || m[stratumRegular] != 9 {
		t.Errorf("batchSignal = %v %v, want crisis 3.4, regular 9", m, has)
	}
	if _, has := batchSignal(nil, nil, nil, nil); has[0] || has[1] {
		t.Errorf("empty batch has draws %v", has)
	}
}

// TestAdaptiveTrainer trains with the adaptive weight on and checks, after
// every update, that the weight is within bounds, is the one the next
// batch is drawn with, and that that batch's probabilities and IS weights
// are (N·P(i))^(−β) / max_j (N·P(j))^(−β) for the weight in force,
// recomputed by brute force from the buffer's tags.
func TestAdaptiveTrainer(t *testing.T) {
	c := adaptiveConfig(3)
	tr := mustNew(t, c)
	exps := journeys(t, 200, 3, time.Time{})
	for i := range exps {
		tr.Insert(&exps[i])
	}
	changes := 0
	prev := tr.Stats().CrisisWeight
	if prev != c.Replay.CrisisWeight {
		t.Fatalf("initial weight %v, want %v", prev, c.Replay.CrisisWeight)
	}
	for u := range 40 {
		res, err := tr.Update()
		if err != nil {
			t.Fatal(err)
		}
		if res.Buffer.CrisisWeight != prev {
			t.Fatalf("update %d drawn with weight %v, want the weight set after the previous update %v", u, res.Buffer.CrisisWeight, prev)
		}
		checkBatchAgainstBruteForce(t, tr, res.Buffer.CrisisWeight, res.Buffer.Beta)
		s := tr.Stats()
		if !(s.CrisisWeight >= 1 && s.CrisisWeight <= c.Adaptive.MaxWeight) {
			t.Fatalf("update %d: weight %v outside [1, %v]", u, s.CrisisWeight, c.Adaptive.MaxWeight)
		}
		if !(s.AdaptiveSignal > 0) {
			t.Fatalf("update %d: signal %v, want a positive number", u, s.AdaptiveSignal)
		}
		if s.CrisisWeight != prev {
			changes++
		}
		prev = s.CrisisWeight
	}
	if changes == 0 {
		t.Error("the weight never changed: the adaptive path is not exercised")
	}
	if off := mustNew(t, testConfig(3)).Stats(); off.AdaptiveSignal != 0 {
		t.Errorf("signal %v without the adaptive weight, want 0", off.AdaptiveSignal)
	}
}

// checkBatchAgainstBruteForce recomputes P(i) for every live slot from its
// tag alone (all factors 1: q = w^(α/T) for crisis, 1 for regular, then
// the floor) and checks the last batch's Probs and Weights.
func checkBatchAgainstBruteForce(t *testing.T, tr *Trainer, w, beta float64) {
	t.Helper()
	rc := tr.cfg.Replay
	n := tr.buf.Len()
	q := make([]float64, n)
	var sc, sr float64
	for i := range n {
		if tr.buf.IsCrisis(i) {
			q[i] = math.Pow(w, rc.Alpha/rc.Temperature)
			sc += q[i]
		} else {
			q[i] = 1
			sr += q[i]
		}
	}
	p := make([]float64, n)
	for i := range n {
		switch {
		case sc/(sc+sr) >= rc.MinCrisisRatio:
			p[i] = q[i] / (sc + sr)
		case tr.buf.IsCrisis(i):
			p[i] = rc.MinCrisisRatio * q[i] / sc
		default:
			p[i] = (1 - rc.MinCrisisRatio) * q[i] / sr
		}
	}
	maxW := 0.0
	for i := range n {
		maxW = math.Max(maxW, math.Pow(float64(n)*p[i], -beta))
	}
	b := &tr.slots.batch
	for j, i := range b.Indices {
		wantW := math.Pow(float64(n)*p[i], -beta) / maxW
		if math.Abs(b.Probs[j]-p[i]) > 1e-12*p[i] || math.Abs(b.Weights[j]-wantW) > 1e-12 {
			t.Fatalf("draw %d slot %d: P %v w %v, brute force %v %v (crisis weight %v)", j, i, b.Probs[j], b.Weights[j], p[i], wantW, w)
		}
	}
}

// TestWeightRuleRestore: a rule restored from another's state mid-stream
// continues bit-identically to the uninterrupted one on the same batch
// signals, weights and signals alike, whether the state was taken before
// any average started, with one started or with both.
func TestWeightRuleRestore(t *testing.T) {
	c := adaptiveConfig(1)
	c.Adaptive.Smoothing = 7
	rng := rand.New(rand.NewPCG(5, 6))
	const n = 60
	ms, hass := make([][2]float64, n), make([][2]bool, n)
	for i := range n {
		ms[i] = [2]float64{rng.ExpFloat64(), 3 * rng.ExpFloat64()}
		hass[i] = [2]bool{i >= 4 && rng.IntN(5) > 0, i >= 9 && rng.IntN(4) > 0}
	}
	for _, k := range []int{0, 6, 30} {
		a, b := newWeightRule(c), newWeightRule(c)
		w := c.Replay.CrisisWeight
		for i := range n {
			if i == k {
				b = newWeightRule(c)
				st := a.state(w)
				if err := st.Validate(); err != nil {
					t.Fatalf("k %d: state of a live rule invalid: %v", k, err)
				}
				b.restore(st)
				if b.signal != a.signal {
					t.Fatalf("k %d: restored signal %v, want %v", k, b.signal, a.signal)
				}
			}
			wa, oka := a.observe(ms[i], hass[i])
			wb, okb := b.observe(ms[i], hass[i])
			if i >= k && (wa != wb || oka != okb || a.signal != b.signal) {
				t.Fatalf("k %d, batch %d: restored rule gives %v %v signal %v, uninterrupted %v %v signal %v", k, i, wb, okb, b.signal, wa, oka, a.signal)
			}
			if oka {
				w = wa
			}
		}
	}
}

// TestAdaptiveResume: a Trainer's Counters carry the adaptive rule's
// state; a Trainer resumed from them draws its next batch with the weight
// in force and reports the same signal, and its Counters are the same; a
// Trainer with the rule off ignores the state, one without a state starts
// from Replay.CrisisWeight, a lower MaxWeight clamps the restored weight,
// and a state no Trainer writes is refused.
func TestAdaptiveResume(t *testing.T) {
	c := adaptiveConfig(4)
	orig := mustNew(t, c)
	exps := journeys(t, 200, 4, time.Time{})
	for i := range exps {
		orig.Insert(&exps[i])
	}
	for range 15 {
		if _, err := orig.Update(); err != nil {
			t.Fatal(err)
		}
	}
	want := orig.Stats()
	cnt := orig.Counters()
	if cnt.Adaptive == nil || cnt.Adaptive.Weight != want.CrisisWeight || !cnt.Adaptive.RegularStarted || !cnt.Adaptive.CrisisStarted {
		t.Fatalf("counters' adaptive state %+v, want both averages started and weight %v", cnt.Adaptive, want.CrisisWeight)
	}
	if want.CrisisWeight == c.Replay.CrisisWeight {
		t.Fatalf("the weight is still the initial %v: a resume would pass without restoring it", want.CrisisWeight)
	}
	state, err := orig.Agent().MarshalCheckpoint()
	if err != nil {
		t.Fatal(err)
	}
	resume := func(c Config, cnt Counters) *Trainer {
		t.Helper()
		tr, err := Resume(c, state, cnt)
		if err != nil {
			t.Fatal(err)
		}
		for i := range exps {
			tr.Refill(&exps[i])
		}
		return tr
	}
	res := resume(c, cnt)
	if got := res.Stats(); got.CrisisWeight != want.CrisisWeight || got.AdaptiveSignal != want.AdaptiveSignal {
		t.Fatalf("resumed weight %v signal %v, want %v %v", got.CrisisWeight, got.AdaptiveSignal, want.CrisisWeight, want.AdaptiveSignal)
	}
	if got := res.Counters(); !reflect.DeepEqual(got, cnt) {
		t.Fatalf("resumed counters %+v (adaptive %+v), want %+v (adaptive %+v)", got, got.Adaptive, cnt, cnt.Adaptive)
	}
	r, err := res.Update()
	if err != nil {
		t.Fatal(err)
	}
	if r.Buffer.CrisisWeight != want.CrisisWeight {
		t.Fatalf("first batch after the resume drawn with weight %v, want %v", r.Buffer.CrisisWeight, want.CrisisWeight)
	}
	checkBatchAgainstBruteForce(t, res, r.Buffer.CrisisWeight, r.Buffer.Beta)

	off := testConfig(4)
	if got := resume(off, cnt); got.Stats().CrisisWeight != off.WithDefaults().Replay.CrisisWeight || got.Stats().AdaptiveSignal != 0 || got.Counters().Adaptive != nil {
		t.Errorf("rule off: weight %v signal %v state %+v, want the fixed %v, 0 and no state", got.Stats().CrisisWeight, got.Stats().AdaptiveSignal, got.Counters().Adaptive, off.WithDefaults().Replay.CrisisWeight)
	}
	old := cnt
	old.Adaptive = nil
	if got := resume(c, old).Stats(); got.CrisisWeight != c.Replay.CrisisWeight || got.AdaptiveSignal != 0 {
		t.Errorf("no saved state: weight %v signal %v, want the initial %v and 0", got.CrisisWeight, got.AdaptiveSignal, c.Replay.CrisisWeight)
	}
	lower := c
	lower.Adaptive.MaxWeight = max(c.Replay.CrisisWeight, 1+(want.CrisisWeight-1)/2)
	if !(lower.Adaptive.MaxWeight < want.CrisisWeight) {
		t.Fatalf("no max weight below the saved %v above the initial %v to test the clamp with", want.CrisisWeight, c.Replay.CrisisWeight)
	}
	if got := resume(lower, cnt).Stats().CrisisWeight; got != lower.Adaptive.MaxWeight {
		t.Errorf("max weight lowered to %v: restored weight %v, want it clamped there", lower.Adaptive.MaxWeight, got)
	}
	for _, bad := range []AdaptiveState{
		{Weight: 0.5},
		{Weight: math.NaN()},
		{Weight: 2, RegularMSE: math.Inf(1), RegularStarted: true},
		{Weight: 2, CrisisMSE: -1, CrisisStarted: true},
		{Weight: 2, CrisisMSE: 1},
	} {
		b := cnt
		b.Adaptive = &bad
		if _, err := Resume(c, state, b); err == nil || !strings.Contains(err.Error(), "adaptive state") {
			t.Errorf("state %+v: %v, want an adaptive state error", bad, err)
		}
	}
}
