package ppo

import (
	"errors"
	"math"
	"math/rand/v2"
	"sync"
	"testing"
)

func testAgent(t testing.TB, cfg Config, seed uint64) *Agent {
	t.Helper()
	a, err := New(cfg, rand.New(rand.NewPCG(seed, seed+1)))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func smallConfig() Config {
	cfg := DefaultConfig(6, 5)
	cfg.Hidden = []int{16, 16}
	return cfg
}

func TestConfigValidate(t *testing.T) {
	mod := func(f func(*Config)) Config { c := DefaultConfig(4, 3); f(&c); return c }
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"default", DefaultConfig(4, 3), true},
		{"linear schedule", mod(func(c *Config) { c.LRSchedule, c.TotalUpdates = ScheduleLinear, 10 }), true},
		{"zero obs dim", mod(func(c *Config) { c.ObsDim = 0 }), false},
		{"one action", mod(func(c *Config) { c.NumActions = 1 }), false},
		{"no hidden", mod(func(c *Config) { c.Hidden = nil }), false},
		{"zero width", mod(func(c *Config) { c.Hidden = []int{4, 0} }), false},
		{"too many params", mod(func(c *Config) { c.Hidden = []int{60000, 60000} }), false},
		{"nan lr", mod(func(c *Config) { c.LR = math.NaN() }), false},
		{"unknown schedule", mod(func(c *Config) { c.LRSchedule = "cosine" }), false},
		{"linear without total", mod(func(c *Config) { c.LRSchedule = ScheduleLinear }), false},
		{"gamma > 1", mod(func(c *Config) { c.Gamma = 1.5 }), false},
		{"zero clip", mod(func(c *Config) { c.ClipEps = 0 }), false},
		{"zero rho bar", mod(func(c *Config) { c.RhoBar = 0 }), false},
		{"negative entropy coef", mod(func(c *Config) { c.EntropyCoef = -1 }), false},
		{"inf grad norm", mod(func(c *Config) { c.MaxGradNorm = math.Inf(1) }), false},
		{"zero adam eps", mod(func(c *Config) { c.AdamEps = 0 }), false},
		{"zero epochs", mod(func(c *Config) { c.Epochs = 0 }), false},
		{"zero minibatches", mod(func(c *Config) { c.Minibatches = 0 }), false},
		{"negative staleness", mod(func(c *Config) { c.MaxStaleness = -1 }), false},
		{"unknown ratio", mod(func(c *Config) { c.Ratio = "mu" }), false},
		{"max workers", mod(func(c *Config) { c.Workers = MaxWorkers }), true},
		{"negative workers", mod(func(c *Config) { c.Workers = -1 }), false},
		{"too many workers", mod(func(c *Config) { c.Workers = MaxWorkers + 1 }), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if got := err == nil; got != tc.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("error %v does not wrap ErrInvalidConfig", err)
			}
		})
	}
	if _, err := New(DefaultConfig(0, 3), rand.New(rand.NewPCG(1, 1))); err == nil {
		t.Error("New accepted an invalid config")
	}
}

// TestOrthogonalInit checks W·Wᵀ = g²·I (or Wᵀ·W, whichever is smaller) to
// 1e-12 for every layer, with g = √2 hidden, 0.01 policy head, 1 value
// head, and zero biases.
func TestOrthogonalInit(t *testing.T) {
	cfg := DefaultConfig(10, 3)
	cfg.Hidden = []int{16, 8}
	a := testAgent(t, cfg, 9)
	check := func(name string, m *mlp, p []float64, headGain float64) {
		for l := 0; l < m.layers(); l++ {
			nin, nout := m.sizes[l], m.sizes[l+1]
			w := p[m.woff[l] : m.woff[l]+nin*nout]
			g := math.Sqrt2
			if l == m.layers()-1 {
				g = headGain
			}
			small := min(nin, nout)
			for i := range small {
				for j := range small {
					s := 0.0
					if nout <= nin { // rows orthonormal
						for k := range nin {
							s += w[i*nin+k] * w[j*nin+k]
						}
					} else {
						for k := range nout {
							s += w[k*nin+i] * w[k*nin+j]
						}
					}
					want := 0.0
					if i == j {
						want = g * g
					}
					if math.Abs(s-want) > 1e-12 {
						t.Fatalf("%s layer %d: (WWᵀ)[%d,%d] = %v, want %v", name, l, i, j, s, want)
					}
				}
			}
			for j, bj := range p[m.boff[l] : m.boff[l]+nout] {
				if bj != 0 {
					t.Fatalf("%s layer %d: bias[%d] = %v, want 0", name, l, j, bj)
				}
			}
		}
	}
	check("policy", &a.pol, a.polParams(), 0.01)
	check("value", &a.val, a.valParams(), 1)
}

// TestRunningNorm feeds observations in chunks of uneven sizes and checks
// the merged mean and population variance against a two-pass computation
// (1e-12 relative), and the clip at ±10.
func TestRunningNorm(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	const d, n = 3, 1000
	obs := make([]float64, n*d)
	for i := range obs {
		obs[i] = 5 + 3*rng.NormFloat64() + float64(i%d)
	}
	r := newRunningNorm(d)
	for lo := 0; lo < n; {
		hi := min(n, lo+1+rng.IntN(50))
		r.observe(obs[lo*d : hi*d])
		lo = hi
	}
	for k := range d {
		var m, v float64
		for i := range n {
			m += obs[i*d+k] / n
		}
		for i := range n {
			v += (obs[i*d+k] - m) * (obs[i*d+k] - m) / n
		}
		if math.Abs(r.mean[k]-m) > 1e-12*math.Abs(m) || math.Abs(r.variance[k]-v) > 1e-12*v {
			t.Errorf("dim %d: mean/var %v/%v, want %v/%v", k, r.mean[k], r.variance[k], m, v)
		}
	}
	if r.count != n {
		t.Errorf("count %v, want %d", r.count, n)
	}
	r.observe([]float64{math.NaN(), 0, 0, 1, 2, math.Inf(-1)}) // both rows skipped
	if r.count != n || !allFinite(r.mean) || !allFinite(r.variance) {
		t.Errorf("non-finite rows changed the statistics: count %v, mean %v, var %v", r.count, r.mean, r.variance)
	}
	dst := make([]float64, d)
	normalizeObs(dst, []float64{1e6, -1e6, r.mean[2]}, r.mean, r.variance)
	if dst[0] != 10 || dst[1] != -10 || dst[2] != 0 {
		t.Errorf("normalised %v, want [10 -10 0]", dst)
	}
}

// TestSnapshotBitIdentical checks that a Policy from Snapshot and from
// MarshalPolicy → LoadPolicy gives log-probabilities bit-identical to the
// agent's, and that behaviour log-probs sampled from the snapshot make the
// agent's pre-update ratio exactly 1 (approx_kl = 0, no clipping with the
// behaviour-ratio reference).
func TestSnapshotBitIdentical(t *testing.T) {
	for _, normObs := range []bool{true, false} {
		cfg := smallConfig()
		cfg.NormalizeObs = normObs
		cfg.Ratio = RatioBehavior
		a := testAgent(t, cfg, 21)
		rng := rand.New(rand.NewPCG(8, 9))
		train := randomBatch(cfg, 64, rng)
		a.ObserveObs(train.Obs)
		for range 3 {
			a.Update(train)
		}
		arch, params, mean, variance, count, err := a.MarshalPolicy()
		if err != nil {
			t.Fatal(err)
		}
		loaded, err := LoadPolicy(arch, params, mean, variance, count)
		if err != nil {
			t.Fatal(err)
		}
		snap := a.Snapshot()
		if loaded.ObsDim() != cfg.ObsDim || loaded.NumActions() != cfg.NumActions {
			t.Fatalf("loaded dims %d/%d", loaded.ObsDim(), loaded.NumActions())
		}
		want, got1, got2 := make([]float64, 5), make([]float64, 5), make([]float64, 5)
		var b Batch
		for i := range 50 {
			obs := make([]float64, cfg.ObsDim)
			for k := range obs {
				obs[k] = 3 * rng.NormFloat64()
			}
			a.LogProbs(obs, want)
			snap.LogProbs(obs, got1)
			loaded.LogProbs(obs, got2)
			for j := range want {
				if got1[j] != want[j] || got2[j] != want[j] {
					t.Fatalf("obs %d action %d: snapshot %v, loaded %v, agent %v", i, j, got1[j], got2[j], want[j])
				}
			}
			act, lp := loaded.Sample(obs, rng)
			if lp != want[act] {
				t.Fatalf("Sample log-prob %v, want %v", lp, want[act])
			}
			b.Append(obs, obs, act, lp, rng.NormFloat64(), 1, false, a.Version())
		}
		var st Stats
		a.prepare(&b, &st)
		res := a.lossAndGrad(a.perm[:a.n], false)
		if res.approxKL != 0 || res.clipFrac != 0 {
			t.Errorf("normObs=%v: approx_kl %v, clip frac %v at the snapshot's parameters, want exactly 0", normObs, res.approxKL, res.clipFrac)
		}
	}
}

// TestPolicyConcurrent runs ActionProbs from many goroutines (under -race)
// and checks every result against the single-threaded one.
func TestPolicyConcurrent(t *testing.T) {
	a := testAgent(t, smallConfig(), 4)
	p := a.Snapshot()
	obs := []float64{1, -2, 0.5, 0, 3, -1}
	want := make([]float64, 5)
	p.ActionProbs(obs, want)
	s := 0.0
	for _, v := range want {
		s += v
	}
	if math.Abs(s-1) > 1e-12 {
		t.Fatalf("probabilities sum to %v", s)
	}
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for range 8 {
		wg.Go(func() {
			got := make([]float64, 5)
			for range 200 {
				p.ActionProbs(obs, got)
				for j := range got {
					if got[j] != want[j] {
						errs <- "concurrent ActionProbs differs"
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
}

// TestUpdateNoAllocs checks that Update allocates nothing after warm-up,
// and neither do Policy.ActionProbs and Agent.LogProbs.
func TestUpdateNoAllocs(t *testing.T) {
	cfg := DefaultConfig(16, 12)
	cfg.TargetKL = 10
	a := testAgent(t, cfg, 1)
	b := randomBatch(cfg, 128, rand.New(rand.NewPCG(1, 1)))
	a.ObserveObs(b.Obs)
	a.Update(b)
	if n := testing.AllocsPerRun(3, func() { a.Update(b) }); n != 0 {
		t.Errorf("Update allocates %v times per run, want 0", n)
	}
	p := a.Snapshot()
	dst := make([]float64, 12)
	obs := b.Obs[:16]
	p.ActionProbs(obs, dst)
	// Under -race sync.Pool drops pooled workspaces at random by design.
	if n := testing.AllocsPerRun(100, func() { p.ActionProbs(obs, dst) }); n != 0 && !raceEnabled {
		t.Errorf("Policy.ActionProbs allocates %v times per run, want 0", n)
	}
	if n := testing.AllocsPerRun(100, func() { a.LogProbs(obs, dst) }); n != 0 {
		t.Errorf("Agent.LogProbs allocates %v times per run, want 0", n)
	}
}

// TestCachedFirstMinibatch checks that the first minibatch evaluated from
// the activations kept by prepare gives bit-identical loss and gradient to
// a fresh forward pass, on one goroutine and split over several workers.
func TestCachedFirstMinibatch(t *testing.T) {
	for _, workers := range []int{0, 3} {
		cfg := smallConfig()
		cfg.Workers = workers
		a := testAgent(t, cfg, 2)
		b := randomBatch(cfg, 40, rand.New(rand.NewPCG(2, 2)))
		var st Stats
		a.prepare(b, &st)
		mb := a.perm[:a.n/cfg.Minibatches]
		r1 := a.lossAndGrad(mb, true)
		g1 := append([]float64(nil), a.grad...)
		r2 := a.lossAndGrad(mb, false)
		if r1 != r2 {
			t.Errorf("workers %d: cached %+v, fresh %+v", workers, r1, r2)
		}
		for i := range g1 {
			if g1[i] != a.grad[i] {
				t.Fatalf("workers %d: grad[%d]: cached %v, fresh %v", workers, i, g1[i], a.grad[i])
			}
		}
	}
}

func TestUpdateStatsAndCounters(t *testing.T) {
	cfg := smallConfig()
	cfg.LRSchedule, cfg.TotalUpdates = ScheduleLinear, 4
	a := testAgent(t, cfg, 3)
	rng := rand.New(rand.NewPCG(3, 3))
	b := randomBatch(cfg, 100, rng)
	for u := range 5 {
		st := a.Update(b)
		if want := cfg.LR * math.Max(0, 1-float64(u)/4); math.Abs(st.LearningRate-want) > 1e-18 {
			t.Errorf("update %d: learning rate %v, want %v", u, st.LearningRate, want)
		}
		if st.Samples != 100 || st.EpochsRun != 4 || st.Steps != 16 || st.EarlyStopped {
			t.Errorf("update %d: %+v, want 100 samples, 4 epochs, 16 steps", u, st)
		}
		if st.GradNorm <= 0 || st.Entropy <= 0 || st.Entropy > math.Log(5)+1e-12 || st.ApproxKL < 0 {
			t.Errorf("update %d: implausible stats %+v", u, st)
		}
		if a.Version() != int64(u+1) || a.Updates() != int64(u+1) {
			t.Errorf("after %d updates: version %d, updates %d", u+1, a.Version(), a.Updates())
		}
	}
	// Empty batch: nothing changes.
	st := a.Update(&Batch{})
	if st.Samples != 0 || a.Updates() != 5 || a.Version() != 5 {
		t.Errorf("empty update: %+v, version %d, updates %d", st, a.Version(), a.Updates())
	}
}

// TestEarlyStop: with the behaviour ratio against a far-off μ, the first
// minibatch's approx_kl exceeds TargetKL so no step is taken and the
// version stays; with the proximal ratio the first step is always taken
// (r = 1 at θ_old) and a tiny TargetKL stops the update after it.
func TestEarlyStop(t *testing.T) {
	cfg := smallConfig()
	cfg.TargetKL = 0.01
	cfg.Ratio = RatioBehavior
	a := testAgent(t, cfg, 4)
	b := randomBatch(cfg, 64, rand.New(rand.NewPCG(4, 4)))
	for i := range b.BehaviorLogProb {
		b.BehaviorLogProb[i] = math.Log(0.9) // π ≈ 0.2, so r ≈ 0.22
	}
	st := a.Update(b)
	if !st.EarlyStopped || st.Steps != 0 || a.Version() != 0 || a.Updates() != 1 || st.ApproxKL <= cfg.TargetKL {
		t.Errorf("behaviour ratio: %+v, version %d, updates %d; want an early stop before any step", st, a.Version(), a.Updates())
	}

	cfg.Ratio = RatioProximal
	cfg.TargetKL = 1e-12
	cfg.LR = 1e-2
	a = testAgent(t, cfg, 4)
	st = a.Update(b)
	if !st.EarlyStopped || st.Steps != 1 || a.Version() != 1 {
		t.Errorf("proximal ratio: %+v, version %d; want exactly one step then a stop", st, a.Version())
	}
}

func TestDropStaleAndInvalid(t *testing.T) {
	cfg := smallConfig()
	cfg.MaxStaleness = 2
	a := testAgent(t, cfg, 6)
	rng := rand.New(rand.NewPCG(6, 6))
	warm := randomBatch(cfg, 32, rng)
	for range 5 {
		a.Update(warm)
	}
	b := randomBatch(cfg, 10, rng)
	copy(b.PolicyVersion, []int64{5, 4, 3, 2, 1, -1, 5, 5, 5, 5}) // lags 0,1,2,3,4,logging
	b.Actions[6] = cfg.NumActions                                 // out of range
	b.Rewards[7] = math.NaN()
	b.Weights[8] = -1
	b.Obs[9*cfg.ObsDim] = math.Inf(1)
	st := a.Update(b)
	if st.Dropped != 2 || st.Invalid != 4 || st.Samples != 4 {
		t.Errorf("dropped %d, invalid %d, samples %d; want 2, 4, 4", st.Dropped, st.Invalid, st.Samples)
	}
	for _, v := range a.params {
		if !finite(v) {
			t.Fatal("non-finite parameter after an update with invalid samples")
		}
	}
}

func TestBatchShapePanics(t *testing.T) {
	a := testAgent(t, smallConfig(), 7)
	b := randomBatch(smallConfig(), 4, rand.New(rand.NewPCG(7, 7)))
	b.Rewards = b.Rewards[:3]
	defer func() {
		if recover() == nil {
			t.Error("Update accepted a batch with inconsistent lengths")
		}
	}()
	a.Update(b)
}

func TestBatchResetKeepsCapacity(t *testing.T) {
	b := randomBatch(smallConfig(), 8, rand.New(rand.NewPCG(8, 8)))
	c := cap(b.Obs)
	b.Reset()
	if b.N() != 0 || len(b.Obs) != 0 || cap(b.Obs) != c {
		t.Errorf("after Reset: N %d, len %d, cap %d (want 0, 0, %d)", b.N(), len(b.Obs), cap(b.Obs), c)
	}
}
