package replay

import (
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"gonum.org/v1/gonum/stat/distuv"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*Config)
		want   string // substring of the error; "" means valid
	}{
		{"default", func(*Config) {}, ""},
		{"uniform", func(c *Config) { c.Uniform = true }, ""},
		{"no floor", func(c *Config) { c.MinCrisisRatio = 0 }, ""},
		{"alpha zero", func(c *Config) { c.Alpha = 0 }, ""},
		{"capacity", func(c *Config) { c.Capacity = 0 }, "capacity"},
		{"crisis weight", func(c *Config) { c.CrisisWeight = 0 }, "crisis weight"},
		{"crisis weight nan", func(c *Config) { c.CrisisWeight = math.NaN() }, "crisis weight"},
		{"regular weight", func(c *Config) { c.RegularWeight = -1 }, "regular weight"},
		{"alpha", func(c *Config) { c.Alpha = -0.1 }, "alpha"},
		{"alpha inf", func(c *Config) { c.Alpha = math.Inf(1) }, "alpha"},
		{"temperature", func(c *Config) { c.Temperature = 0 }, "temperature"},
		{"beta0 high", func(c *Config) { c.Beta0 = 1.1 }, "beta0"},
		{"beta0 nan", func(c *Config) { c.Beta0 = math.NaN() }, "beta0"},
		{"anneal", func(c *Config) { c.AnnealSteps = 0 }, "anneal"},
		{"floor one", func(c *Config) { c.MinCrisisRatio = 1 }, "min crisis ratio"},
		{"floor negative", func(c *Config) { c.MinCrisisRatio = -0.1 }, "min crisis ratio"},
		{"min factor", func(c *Config) { c.MinFactor = 0 }, "min factor"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.modify(&c)
			err := c.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Validate() = %v, want nil", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("Validate() = %v, want an error mentioning %q", err, tt.want)
			}
			if _, nerr := New[int](c, rand.New(rand.NewPCG(1, 1))); (nerr == nil) != (tt.want == "") {
				t.Fatalf("New error = %v, want error: %t", nerr, tt.want != "")
			}
		})
	}
	if _, err := New[int](DefaultConfig(), nil); err == nil {
		t.Fatal("New with a nil rng: got nil error")
	}
}

func TestDefaultConfig(t *testing.T) {
	c := DefaultConfig()
	if c.Capacity != 50_000 || c.CrisisWeight != 5 || c.RegularWeight != 1 || c.Alpha != 0.6 ||
		c.Temperature != 1 || c.Beta0 != 0.4 || c.MinCrisisRatio != 0.05 || c.Uniform {
		t.Fatalf("DefaultConfig() = %+v, differs from the design", c)
	}
}

// smallCase is a buffer configuration plus its contents.
type smallCase struct {
	name  string
	cfg   func(*Config)
	items []refItem
}

// smallCases are small buffers covering the formula's branches.
func smallCases() []smallCase {
	mixed := []refItem{{true, 1}, {false, 1}, {false, 2}, {true, 0.5}, {false, 0.25}, {false, 1}, {false, 3}}
	return []smallCase{
		{"default weights", func(*Config) {}, mixed},
		{"alpha 1", func(c *Config) { c.Alpha = 1 }, mixed},
		{"temperature 2", func(c *Config) { c.Temperature = 2 }, mixed},
		{"weight 14.6", func(c *Config) { c.CrisisWeight = 14.6 }, mixed},
		{"alpha 0", func(c *Config) { c.Alpha = 0 }, mixed},
		{"all crisis", func(*Config) {}, []refItem{{true, 1}, {true, 2}, {true, 4}}},
		{"all regular", func(*Config) {}, []refItem{{false, 1}, {false, 2}, {false, 4}}},
		{"single", func(*Config) {}, []refItem{{true, 3}}},
		{"zero factor clamped", func(*Config) {}, []refItem{{true, 0}, {false, 1}, {false, 1}}},
		{"floored", func(c *Config) { c.CrisisWeight = 1; c.MinCrisisRatio = 0.3 },
			[]refItem{{true, 1}, {false, 1}, {false, 2}, {false, 1}, {false, 1}, {false, 3}, {false, 1}}},
		{"floored small crisis factor", func(c *Config) { c.MinCrisisRatio = 0.5 },
			[]refItem{{true, 0.01}, {true, 0.1}, {false, 1}, {false, 1}, {false, 5}}},
		{"uniform", func(c *Config) { c.Uniform = true }, mixed},
	}
}

// build returns a buffer holding the case's items, added with AddWithFactor.
func (c smallCase) build(t testing.TB, seed uint64) (*Buffer[int], Config) {
	cfg := DefaultConfig()
	cfg.Capacity = len(c.items)
	c.cfg(&cfg)
	b := newTestBuffer[int](t, cfg, seed)
	for k, it := range c.items {
		if got := b.AddWithFactor(k, it.crisis, it.factor); got != k {
			t.Fatalf("AddWithFactor #%d returned slot %d, want %d", k, got, k)
		}
	}
	return b, cfg
}

func TestProbFormula(t *testing.T) {
	for _, tc := range smallCases() {
		t.Run(tc.name, func(t *testing.T) {
			b, cfg := tc.build(t, 1)
			want := refProbs(cfg, tc.items)
			for i := range want {
				if got := b.Prob(i); !relClose(got, want[i], 1e-12) {
					t.Errorf("P(%d) = %.15g, want %.15g", i, got, want[i])
				}
			}
			if err := checkInvariants(b); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestPriorityExponentAppliedOnce guards against TorchRL's bug of raising
// new priorities to α twice: an item's q = w(s)^(α/T)·f^(α/T) = (w·f)^(α/T),
// fresh or updated, and the crisis/regular probability ratio is w^(α/T).
func TestPriorityExponentAppliedOnce(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Capacity = 4
	cfg.Temperature = 1.5
	b := newTestBuffer[int](t, cfg, 1)
	c := b.Add(0, true)
	r := b.Add(1, false)
	e := cfg.Alpha / cfg.Temperature
	q := func(s, i int) float64 { return b.qw[s] * b.trees[s].leaf(i) }
	if got, want := q(crisis, c), math.Pow(5, e); !relClose(got, want, 1e-15) {
		t.Fatalf("crisis q = %v, want 5^(α/T) = %v", got, want)
	}
	if got, want := b.Prob(c)/b.Prob(r), math.Pow(5, e); !relClose(got, want, 1e-12) {
		t.Fatalf("P(crisis)/P(regular) = %v, want %v (α twice would give %v)", got, want, math.Pow(5, e*e))
	}
	b.UpdateFactors([]int{c, r}, []float64{3, 0.5})
	if got, want := q(crisis, c), math.Pow(15, e); !relClose(got, want, 1e-15) {
		t.Fatalf("updated crisis q = %v, want 15^(α/T) = %v", got, want)
	}
	if got, want := q(regular, r), math.Pow(0.5, e); !relClose(got, want, 1e-15) {
		t.Fatalf("updated regular q = %v, want 0.5^(α/T) = %v", got, want)
	}
}

// chiSquareP returns the p-value of Pearson's χ² test of counts against
// probabilities probs (all positive), with len(probs)−1 degrees of freedom.
func chiSquareP(counts []int, probs []float64) float64 {
	total := 0
	for _, c := range counts {
		total += c
	}
	var stat float64
	for i, p := range probs {
		e := p * float64(total)
		d := float64(counts[i]) - e
		stat += d * d / e
	}
	return distuv.ChiSquared{K: float64(len(probs) - 1)}.Survival(stat)
}

// drawCounts draws total items in batches of n and counts draws per slot.
func drawCounts(t *testing.T, b *Buffer[int], total, n int) []int {
	t.Helper()
	counts := make([]int, b.Len())
	var batch Batch[int]
	for done := 0; done < total; done += n {
		if err := b.Sample(&batch, n); err != nil {
			t.Fatal(err)
		}
		for j, i := range batch.Indices {
			counts[i]++
			if batch.Items[j] != b.Get(i) || batch.Crisis[j] != b.IsCrisis(i) || batch.Probs[j] != b.Prob(i) {
				t.Fatalf("draw %d: slot %d item/crisis/prob inconsistent with the buffer", j, i)
			}
		}
	}
	return counts
}

// TestChiSquareGoodnessOfFit draws 100k items from small buffers in several
// settings and tests the counts against P with Pearson's χ² (p > 1e-3, fixed
// seeds). It also checks the test has power: the same counts reject the
// distribution of α applied twice.
func TestChiSquareGoodnessOfFit(t *testing.T) {
	const draws = 100_000
	settings := []struct {
		name                string
		frac, w, alpha, tmp float64
		floor               float64
		batch               int
	}{
		{"f0.1 w5 a0.6 T1 batch1", 0.1, 5, 0.6, 1, 0.05, 1},
		{"f0.1 w5 a0.6 T1 batch64", 0.1, 5, 0.6, 1, 0.05, 64},
		{"f0.3 w2 a1 T1", 0.3, 2, 1, 1, 0.05, 32},
		{"f0.1 w14.6 a0.6 T2", 0.1, 14.6, 0.6, 2, 0.05, 32},
		{"f0.05 w10 a0.8 T0.5", 0.05, 10, 0.8, 0.5, 0.05, 7},
		{"floored f0.05 w1", 0.05, 1, 0.6, 1, 0.25, 32},
	}
	for si, s := range settings {
		t.Run(s.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Capacity = 60
			cfg.CrisisWeight, cfg.Alpha, cfg.Temperature, cfg.MinCrisisRatio = s.w, s.alpha, s.tmp, s.floor
			b := newTestBuffer[int](t, cfg, uint64(100+si))
			rng := rand.New(rand.NewPCG(uint64(si), 7))
			nc := int(math.Round(s.frac * float64(cfg.Capacity)))
			for k := range cfg.Capacity {
				b.AddWithFactor(k, k < nc, 0.2+2*rng.Float64())
			}
			want := refProbs(cfg, liveItems(b))
			counts := drawCounts(t, b, draws, s.batch)
			if p := chiSquareP(counts, want); p < 1e-3 {
				t.Errorf("χ² p-value %.3g < 1e-3: draws do not follow P", p)
			}
			// Power: α applied twice is rejected by the same counts.
			twice := cfg
			twice.Alpha = cfg.Alpha * cfg.Alpha / cfg.Temperature
			if p := chiSquareP(counts, refProbs(twice, liveItems(b))); p > 1e-3 && s.alpha != 1 {
				t.Errorf("χ² p-value against α applied twice %.3g > 1e-3: test has no power", p)
			}
		})
	}
}

// TestCrisisShareMatchesFormula checks the measured crisis share of 100k
// draws from a 10,000-item buffer against ExpectedCrisisShare, within 3
// binomial standard errors (stratification only lowers the variance).
func TestCrisisShareMatchesFormula(t *testing.T) {
	const (
		size  = 10_000
		draws = 100_000
		batch = 32
	)
	settings := []struct{ f, w, alpha, temp float64 }{
		{0.1, 5, 0.6, 1},
		{0.1, 14.6, 0.6, 1},
		{0.1, 5, 1, 1},
		{0.2, 3, 0.6, 2},
		{0.02, 10, 0.7, 1},
	}
	for si, s := range settings {
		cfg := DefaultConfig()
		cfg.Capacity = size
		cfg.CrisisWeight, cfg.Alpha, cfg.Temperature = s.w, s.alpha, s.temp
		b := newTestBuffer[int](t, cfg, uint64(si))
		every := int(math.Round(1 / s.f))
		for k := range size {
			b.Add(k, k%every == 0)
		}
		want := ExpectedCrisisShare(s.f, s.w, s.alpha, s.temp)
		if got := b.Stats().ExpectedBatchCrisisRatio; !relClose(got, want, 1e-9) {
			t.Errorf("%+v: ExpectedBatchCrisisRatio = %v, want %v", s, got, want)
		}
		var bt Batch[int]
		nc := 0
		for range draws / batch {
			if err := b.Sample(&bt, batch); err != nil {
				t.Fatal(err)
			}
			for _, c := range bt.Crisis {
				if c {
					nc++
				}
			}
		}
		n := float64(draws / batch * batch)
		got := float64(nc) / n
		se := math.Sqrt(want * (1 - want) / n)
		if math.Abs(got-want) > 3*se {
			t.Errorf("%+v: crisis share %.4f, want %.4f ± %.4f (3 SE)", s, got, want, 3*se)
		}
	}
	if got := ExpectedCrisisShare(0.1, 5, 0.6, 1); math.Abs(got-0.2259) > 5e-4 {
		t.Errorf("ExpectedCrisisShare(0.1, 5, 0.6, 1) = %v, want 22.6%%", got)
	}
	if got := ExpectedCrisisShare(0.1, math.Pow(5, 1/0.6), 0.6, 1); math.Abs(got-5.0/14) > 1e-12 {
		t.Errorf("ExpectedCrisisShare at w = 5^(1/α) = %v, want 5/14 = 35.7%%", got)
	}
}

// TestWeightsClosedForm checks every sampled weight, and Weight(i) for every
// slot, against w_i = (N·P(i))^(−β) / max_j (N·P(j))^(−β) computed literally
// from the reference probabilities, for several β including the floor case.
func TestWeightsClosedForm(t *testing.T) {
	for _, tc := range smallCases() {
		for _, step := range []int64{0, 50_000, 200_000} {
			b, cfg := tc.build(t, 3)
			b.SetStep(step)
			probs := refProbs(cfg, tc.items)
			want := refWeights(probs, b.Beta())
			if cfg.Uniform {
				for i := range want {
					want[i] = 1
				}
			}
			for i := range want {
				if got := b.Weight(i); !relClose(got, want[i], 1e-12) {
					t.Errorf("%s step %d: Weight(%d) = %.15g, want %.15g", tc.name, step, i, got, want[i])
				}
			}
			var bt Batch[int]
			if err := b.Sample(&bt, 50); err != nil {
				t.Fatal(err)
			}
			for j, i := range bt.Indices {
				if got := bt.Weights[j]; !relClose(got, want[i], 1e-12) || got > 1 {
					t.Errorf("%s step %d: batch weight of slot %d = %.15g, want %.15g", tc.name, step, i, got, want[i])
				}
				if got := bt.Probs[j]; !relClose(got, probs[i], 1e-12) {
					t.Errorf("%s step %d: batch prob of slot %d = %.15g, want %.15g", tc.name, step, i, got, probs[i])
				}
			}
		}
	}
}

// TestUnbiasedAtBetaOne checks that with β = 1 the IS-weighted sample mean
// of a per-item statistic estimates its uniform mean without bias (within 3
// standard errors), while the unweighted sample mean is far off. With the
// buffer-wide normalisation w_i = P_min/P(i), the unbiased estimator is
// mean_j(w_j·x_j) / (N·P_min).
func TestUnbiasedAtBetaOne(t *testing.T) {
	for _, floor := range []float64{0.05, 0.5} {
		cfg := DefaultConfig()
		cfg.Capacity = 5000
		cfg.Beta0 = 1
		cfg.MinCrisisRatio = floor
		b := newTestBuffer[int](t, cfg, 11)
		rng := rand.New(rand.NewPCG(5, 5))
		x := make([]float64, cfg.Capacity)
		var mu float64
		for k := range cfg.Capacity {
			c := k%10 == 0
			x[k] = rng.NormFloat64() + 1
			if c {
				x[k] += 4 // crisis items carry more value
			}
			mu += x[k]
			b.AddWithFactor(k, c, 0.5+rng.Float64())
		}
		mu /= float64(cfg.Capacity)
		probs := refProbs(cfg, liveItems(b))
		pmin := math.Inf(1)
		for _, p := range probs {
			pmin = math.Min(pmin, p)
		}
		norm := float64(cfg.Capacity) * pmin

		const draws = 100_000
		var bt Batch[int]
		var s, ss, raw, rawSS float64
		for range draws / 50 {
			if err := b.Sample(&bt, 50); err != nil {
				t.Fatal(err)
			}
			for j, item := range bt.Items {
				v := bt.Weights[j] * x[item] / norm
				s += v
				ss += v * v
				raw += x[item]
				rawSS += x[item] * x[item]
			}
		}
		est := s / draws
		se := math.Sqrt((ss/draws - est*est) / draws)
		if math.Abs(est-mu) > 3*se {
			t.Errorf("floor %v: IS-weighted mean %.4f, uniform mean %.4f ± %.4f (3 SE)", floor, est, mu, 3*se)
		}
		rawMean := raw / draws
		rawSE := math.Sqrt((rawSS/draws - rawMean*rawMean) / draws)
		if math.Abs(rawMean-mu) < 10*rawSE {
			t.Errorf("floor %v: unweighted mean %.4f is within 10 SE of %.4f: the test cannot tell", floor, rawMean, mu)
		}
	}
}

// TestCrisisFloor checks that the floor gives the crisis stratum exactly
// MinCrisisRatio of the mass, that the measured share honours it, and that
// weights use the floored probabilities.
func TestCrisisFloor(t *testing.T) {
	const size, ncrisis = 2000, 20 // 1% crisis, w = 1: natural share 1%
	cfg := DefaultConfig()
	cfg.Capacity = size
	cfg.CrisisWeight = 1
	cfg.Beta0 = 0.7
	b := newTestBuffer[int](t, cfg, 9)
	for k := range size {
		b.Add(k, k%(size/ncrisis) == 0)
	}
	st := b.Stats()
	if !st.FloorActive || st.ExpectedBatchCrisisRatio != cfg.MinCrisisRatio {
		t.Fatalf("Stats() floor %t expected ratio %v, want true %v", st.FloorActive, st.ExpectedBatchCrisisRatio, cfg.MinCrisisRatio)
	}
	var crisisMass float64
	for i := range size {
		if b.IsCrisis(i) {
			crisisMass += b.Prob(i)
		}
	}
	if !relClose(crisisMass, cfg.MinCrisisRatio, 1e-12) {
		t.Fatalf("crisis mass %v, want %v", crisisMass, cfg.MinCrisisRatio)
	}
	pc, pr := cfg.MinCrisisRatio/ncrisis, (1-cfg.MinCrisisRatio)/(size-ncrisis)
	wantCrisisW := math.Pow(pr/pc, cfg.Beta0) // regular items hold P_min
	counts := [2]int{}
	var bt Batch[int]
	const draws = 100_000
	for range draws / 64 {
		if err := b.Sample(&bt, 64); err != nil {
			t.Fatal(err)
		}
		for j, c := range bt.Crisis {
			counts[stratum(c)]++
			want, wantP := 1.0, pr
			if c {
				want, wantP = wantCrisisW, pc
			}
			if !relClose(bt.Weights[j], want, 1e-12) || !relClose(bt.Probs[j], wantP, 1e-12) {
				t.Fatalf("crisis %t: weight %v prob %v, want %v %v", c, bt.Weights[j], bt.Probs[j], want, wantP)
			}
		}
	}
	n := float64(counts[0] + counts[1])
	got := float64(counts[crisis]) / n
	se := math.Sqrt(cfg.MinCrisisRatio * (1 - cfg.MinCrisisRatio) / n)
	if math.Abs(got-cfg.MinCrisisRatio) > 3*se {
		t.Errorf("floored crisis share %.4f, want %.4f ± %.4f", got, cfg.MinCrisisRatio, 3*se)
	}

	// The floor releases when the crisis mass rises above it.
	idx := make([]int, 0, ncrisis)
	f := make([]float64, 0, ncrisis)
	for i := range size {
		if b.IsCrisis(i) {
			idx = append(idx, i)
			f = append(f, 100)
		}
	}
	b.UpdateFactors(idx, f)
	if st := b.Stats(); st.FloorActive || st.ExpectedBatchCrisisRatio <= cfg.MinCrisisRatio {
		t.Errorf("after raising crisis factors: floor %t ratio %v, want inactive above %v", st.FloorActive, st.ExpectedBatchCrisisRatio, cfg.MinCrisisRatio)
	}

	// No crisis items: no floor, no crisis draws.
	b.Reset()
	for k := range 10 {
		b.Add(k, false)
	}
	if st := b.Stats(); st.FloorActive || st.ExpectedBatchCrisisRatio != 0 {
		t.Errorf("all regular: floor %t ratio %v, want false 0", st.FloorActive, st.ExpectedBatchCrisisRatio)
	}
	// Floor 0 disables it.
	cfg.MinCrisisRatio = 0
	b0 := newTestBuffer[int](t, cfg, 9)
	for k := range size {
		b0.Add(k, k%(size/ncrisis) == 0)
	}
	if st := b0.Stats(); st.FloorActive || !relClose(st.ExpectedBatchCrisisRatio, float64(ncrisis)/size, 1e-12) {
		t.Errorf("floor 0: floor %t ratio %v, want false %v", st.FloorActive, st.ExpectedBatchCrisisRatio, float64(ncrisis)/size)
	}
}

func TestBetaAnnealing(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Capacity = 8
	cfg.AnnealSteps = 1000
	b := newTestBuffer[int](t, cfg, 1)
	tests := []struct {
		step int64
		want float64
	}{
		{-5, 0.4}, {0, 0.4}, {250, 0.55}, {500, 0.7}, {1000, 1}, {1001, 1}, {1 << 40, 1},
	}
	for _, tt := range tests {
		b.SetStep(tt.step)
		if got := b.Beta(); math.Abs(got-tt.want) > 1e-12 || got > 1 {
			t.Errorf("SetStep(%d): Beta() = %v, want %v", tt.step, got, tt.want)
		}
		if got := b.Stats().Beta; got != b.Beta() {
			t.Errorf("SetStep(%d): Stats().Beta = %v, want %v", tt.step, got, b.Beta())
		}
	}
	// Past the schedule the weights are exactly P_min/P(i).
	b.Add(0, true)
	b.Add(1, false)
	b.SetStep(5000)
	if got, want := b.Weight(0), b.Prob(1)/b.Prob(0); !relClose(got, want, 1e-12) {
		t.Errorf("β clamped: crisis weight %v, want %v", got, want)
	}
}

func TestUniformMode(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Capacity = 40
	cfg.Uniform = true
	cfg.CrisisWeight = 50
	b := newTestBuffer[int](t, cfg, 4)
	for k := range cfg.Capacity {
		b.AddWithFactor(k, k%4 == 0, float64(k+1))
	}
	want := make([]float64, cfg.Capacity)
	for i := range want {
		want[i] = 1 / float64(cfg.Capacity)
		if got := b.Prob(i); got != want[i] {
			t.Fatalf("uniform P(%d) = %v, want %v", i, got, want[i])
		}
	}
	var bt Batch[int]
	counts := make([]int, cfg.Capacity)
	for range 100_000 / 32 {
		if err := b.Sample(&bt, 32); err != nil {
			t.Fatal(err)
		}
		for j, i := range bt.Indices {
			counts[i]++
			if bt.Weights[j] != 1 || bt.Probs[j] != want[i] {
				t.Fatalf("uniform draw: weight %v prob %v, want 1 %v", bt.Weights[j], bt.Probs[j], want[i])
			}
		}
	}
	if p := chiSquareP(counts, want); p < 1e-3 {
		t.Errorf("uniform χ² p-value %.3g < 1e-3", p)
	}
	st := b.Stats()
	if st.ExpectedBatchCrisisRatio != 0.25 || st.WeightMean != 1 || st.WeightStd != 0 || st.WeightMin != 1 || st.WeightMax != 1 {
		t.Errorf("uniform Stats() = %+v, want expected ratio 0.25 and all weights 1", st)
	}
}

func TestRingEviction(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Capacity = 4
	b := newTestBuffer[string](t, cfg, 1)
	adds := []struct {
		item     string
		crisis   bool
		wantSlot int
	}{
		{"a", true, 0}, {"b", false, 1}, {"c", true, 2}, {"d", false, 3},
		{"e", false, 0}, {"f", true, 1}, {"g", false, 2},
	}
	for _, a := range adds {
		if got := b.Add(a.item, a.crisis); got != a.wantSlot {
			t.Fatalf("Add(%q) = slot %d, want %d", a.item, got, a.wantSlot)
		}
		if err := checkInvariants(b); err != nil {
			t.Fatalf("after Add(%q): %v", a.item, err)
		}
	}
	want := []string{"e", "f", "g", "d"}
	for i, w := range want {
		if got := b.Get(i); got != w {
			t.Errorf("Get(%d) = %q, want %q", i, got, w)
		}
	}
	if st := b.Stats(); st.Size != 4 || st.Capacity != 4 || st.CrisisCount != 1 || st.CrisisFraction != 0.25 {
		t.Errorf("Stats() = %+v, want size 4, 1 crisis", st)
	}
	b.Reset()
	if b.Len() != 0 || b.Stats().CrisisCount != 0 {
		t.Fatalf("after Reset: Len %d crisis %d, want 0 0", b.Len(), b.Stats().CrisisCount)
	}
	var bt Batch[string]
	if err := b.Sample(&bt, 3); !errors.Is(err, ErrEmpty) {
		t.Fatalf("Sample on empty buffer: %v, want ErrEmpty", err)
	}
	if got := b.Add("h", true); got != 0 || b.Get(0) != "h" {
		t.Fatalf("Add after Reset = slot %d item %q, want 0 \"h\"", got, b.Get(0))
	}
	if err := checkInvariants(b); err != nil {
		t.Fatal(err)
	}
}

func TestPanics(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Capacity = 4
	b := newTestBuffer[int](t, cfg, 1)
	b.Add(1, true)
	b.Add(2, false)
	tests := []struct {
		name string
		f    func()
	}{
		{"Get past Len", func() { b.Get(2) }},
		{"Get negative", func() { b.Get(-1) }},
		{"Prob past Len", func() { b.Prob(3) }},
		{"UpdateFactors length", func() { b.UpdateFactors([]int{0}, []float64{1, 2}) }},
		{"UpdateFactors index", func() { b.UpdateFactors([]int{2}, []float64{1}) }},
		{"UpdateFactors NaN", func() { b.UpdateFactors([]int{0}, []float64{math.NaN()}) }},
		{"UpdateFactors negative", func() { b.UpdateFactors([]int{0}, []float64{-1}) }},
		{"UpdateFactors Inf", func() { b.UpdateFactors([]int{0}, []float64{math.Inf(1)}) }},
		{"AddWithFactor negative", func() { b.AddWithFactor(3, true, -2) }},
		{"Sample zero", func() { _ = b.Sample(&Batch[int]{}, 0) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Errorf("%s did not panic", tt.name)
				}
			}()
			tt.f()
		})
	}
	if err := checkInvariants(b); err != nil {
		t.Fatalf("after panics: %v", err)
	}
}

func TestMinFactorClamp(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Capacity = 3
	b := newTestBuffer[int](t, cfg, 1)
	b.Add(0, false)
	b.Add(1, true)
	b.UpdateFactors([]int{0, 1}, []float64{0, 1e-9})
	for i := range 2 {
		if got := b.Factor(i); got != cfg.MinFactor {
			t.Errorf("Factor(%d) = %v, want MinFactor %v", i, got, cfg.MinFactor)
		}
		if w := b.Weight(i); math.IsInf(w, 0) || math.IsNaN(w) || w <= 0 {
			t.Errorf("Weight(%d) = %v, want finite positive", i, w)
		}
	}
}

// TestStratifiedBatches checks the stratification: every batch's crisis
// count is within one of n·ρ_c (independent draws would spread binomially),
// with and without the floor.
func TestStratifiedBatches(t *testing.T) {
	for _, floor := range []float64{0.05, 0.4} {
		cfg := DefaultConfig()
		cfg.Capacity = 3000
		cfg.MinCrisisRatio = floor
		b := newTestBuffer[int](t, cfg, 8)
		for k := range cfg.Capacity {
			b.AddWithFactor(k, k%10 == 0, 0.5+float64(k%5))
		}
		rho := b.Stats().ExpectedBatchCrisisRatio
		var bt Batch[int]
		for _, n := range []int{1, 7, 32, 256} {
			for range 200 {
				if err := b.Sample(&bt, n); err != nil {
					t.Fatal(err)
				}
				k := 0
				for _, c := range bt.Crisis {
					if c {
						k++
					}
				}
				if want := rho * float64(n); math.Abs(float64(k)-want) >= 1 {
					t.Fatalf("floor %v batch %d: %d crisis draws, want within 1 of %.3f", floor, n, k, want)
				}
			}
		}
	}
}

func TestBatchStatsAndShuffle(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Capacity = 1000
	b := newTestBuffer[int](t, cfg, 2)
	for k := range cfg.Capacity {
		b.AddWithFactor(k, k%10 == 0, 0.5+float64(k%7))
	}
	var bt Batch[int]
	firstCrisis := 0
	const rounds = 2000
	for range rounds {
		if err := b.Sample(&bt, 16); err != nil {
			t.Fatal(err)
		}
		if bt.Crisis[0] {
			firstCrisis++
		}
	}
	// Stratified draws come out crisis-first; the shuffle must make
	// position 0 crisis with probability ρ_c, not ~1.
	rho := b.Stats().ExpectedBatchCrisisRatio
	if got, se := float64(firstCrisis)/rounds, math.Sqrt(rho*(1-rho)/rounds); math.Abs(got-rho) > 4*se {
		t.Errorf("position 0 is crisis in %.3f of batches, want %.3f ± %.3f", got, rho, 4*se)
	}
	st := b.Stats()
	var sum, nc float64
	lo, hi := math.Inf(1), math.Inf(-1)
	for j, w := range bt.Weights {
		sum += w
		lo, hi = math.Min(lo, w), math.Max(hi, w)
		if bt.Crisis[j] {
			nc++
		}
	}
	mean := sum / 16
	var ss float64
	for _, w := range bt.Weights {
		ss += (w - mean) * (w - mean)
	}
	want := Stats{
		Size: 1000, Capacity: 1000, CrisisCount: 100, CrisisFraction: 0.1, LastBatchSize: 16,
		LastBatchCrisisRatio: nc / 16, ExpectedBatchCrisisRatio: rho,
		WeightMean: mean, WeightStd: math.Sqrt(ss / 16), WeightMin: lo, WeightMax: hi, Beta: 0.4, CrisisWeight: 5,
	}
	if !relClose(st.WeightMean, want.WeightMean, 1e-12) || !relClose(st.WeightStd, want.WeightStd, 1e-9) {
		t.Errorf("Stats() weight mean/std %v %v, want %v %v", st.WeightMean, st.WeightStd, want.WeightMean, want.WeightStd)
	}
	st.WeightMean, st.WeightStd = want.WeightMean, want.WeightStd
	if st != want {
		t.Errorf("Stats() = %+v, want %+v", st, want)
	}
}

func TestSampleDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector")
	}
	for _, uniform := range []bool{false, true} {
		cfg := DefaultConfig()
		cfg.Capacity = 1000
		cfg.Uniform = uniform
		b := newTestBuffer[[4]float64](t, cfg, 1)
		for k := range cfg.Capacity {
			b.Add([4]float64{float64(k)}, k%10 == 0)
		}
		var bt Batch[[4]float64]
		if err := b.Sample(&bt, 64); err != nil {
			t.Fatal(err)
		}
		allocs := testing.AllocsPerRun(100, func() {
			if err := b.Sample(&bt, 64); err != nil {
				t.Fatal(err)
			}
			b.UpdateFactors(bt.Indices, bt.Weights)
			b.Add([4]float64{1}, true)
		})
		if allocs != 0 {
			t.Errorf("uniform %t: Sample+UpdateFactors+Add allocate %v times per run, want 0", uniform, allocs)
		}
	}
}
