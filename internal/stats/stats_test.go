package stats

import (
	"math"
	"math/rand/v2"
	"testing"
)

func close(got, want, tol float64) bool {
	if math.IsNaN(want) {
		return math.IsNaN(got)
	}
	if math.IsInf(want, 0) {
		return got == want
	}
	return math.Abs(got-want) <= tol
}

func TestMeanStd(t *testing.T) {
	tests := []struct {
		name     string
		xs       []float64
		mean     float64
		std      float64
		meanOnly float64
	}{
		{"empty", nil, math.NaN(), math.NaN(), math.NaN()},
		{"one", []float64{3}, 3, math.NaN(), 3},
		{"textbook", []float64{2, 4, 4, 4, 5, 5, 7, 9}, 5, math.Sqrt(32.0 / 7), 5},
		{"constant", []float64{1.5, 1.5, 1.5}, 1.5, 0, 1.5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, s := MeanStd(tt.xs)
			if !close(m, tt.mean, 1e-12) || !close(s, tt.std, 1e-12) {
				t.Errorf("MeanStd(%v) = %v, %v; want %v, %v", tt.xs, m, s, tt.mean, tt.std)
			}
			if got := Mean(tt.xs); !close(got, tt.meanOnly, 1e-12) {
				t.Errorf("Mean(%v) = %v; want %v", tt.xs, got, tt.meanOnly)
			}
		})
	}
}

func TestMeanSE(t *testing.T) {
	for _, tt := range []struct {
		name     string
		xs       []float64
		mean, se float64
	}{
		{"empty", nil, math.NaN(), math.NaN()},
		{"one", []float64{3}, 3, math.NaN()},
		// s² = 32/7 (n − 1), so se = √(32/7/8) = √(4/7)
		{"textbook", []float64{2, 4, 4, 4, 5, 5, 7, 9}, 5, math.Sqrt(4.0 / 7)},
		{"constant", []float64{1.5, 1.5, 1.5}, 1.5, 0},
	} {
		m, se := MeanSE(tt.xs)
		if !close(m, tt.mean, 1e-12) || !close(se, tt.se, 1e-12) {
			t.Errorf("%s: MeanSE(%v) = %v, %v; want %v, %v", tt.name, tt.xs, m, se, tt.mean, tt.se)
		}
	}
}

func TestCI95(t *testing.T) {
	// t₀.₉₇₅ quantiles from standard tables: ν=1 → 12.7062047361747,
	// ν=4 → 2.7764451051977987, ν=9 → 2.2621571627409915.
	tests := []struct {
		name   string
		xs     []float64
		mean   float64
		halfCI float64
	}{
		{"empty", nil, math.NaN(), math.NaN()},
		{"one", []float64{7}, 7, math.Inf(1)},
		{"two", []float64{0, 2}, 1, 12.7062047361747 * math.Sqrt(2) / math.Sqrt(2)},
		{"five", []float64{1, 2, 3, 4, 5}, 3, 2.7764451051977987 * math.Sqrt(2.5) / math.Sqrt(5)},
		{"ten", []float64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, 4.5, 2.2621571627409915 * math.Sqrt(82.5/9) / math.Sqrt(10)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, h := CI95(tt.xs)
			if !close(m, tt.mean, 1e-12) || !close(h, tt.halfCI, 1e-9) {
				t.Errorf("CI95(%v) = %v ± %v; want %v ± %v", tt.xs, m, h, tt.mean, tt.halfCI)
			}
			var r Running
			for _, x := range tt.xs {
				r.Add(x)
			}
			rm, rh := r.CI95()
			if !close(rm, tt.mean, 1e-12) || !close(rh, tt.halfCI, 1e-9) {
				t.Errorf("Running.CI95 = %v ± %v; want %v ± %v", rm, rh, tt.mean, tt.halfCI)
			}
		})
	}
}

func TestProportionCI95(t *testing.T) {
	// Reference values from the Wilson score formula with z = 1.959964.
	tests := []struct {
		k, n      int
		p, lo, hi float64
	}{
		{5, 10, 0.5, 0.2365931, 0.7634069},
		{0, 10, 0, 0, 0.2775328},
		{10, 10, 1, 0.7224672, 1},
		{1, 100, 0.01, 0.0017674, 0.0544862},
		{500, 1000, 0.5, 0.4690696, 0.5309304},
	}
	for _, tt := range tests {
		p, lo, hi := ProportionCI95(tt.k, tt.n)
		if !close(p, tt.p, 1e-12) || !close(lo, tt.lo, 1e-6) || !close(hi, tt.hi, 1e-6) {
			t.Errorf("ProportionCI95(%d, %d) = %v [%v, %v]; want %v [%v, %v]",
				tt.k, tt.n, p, lo, hi, tt.p, tt.lo, tt.hi)
		}
	}
	if p, lo, hi := ProportionCI95(0, 0); !math.IsNaN(p) || !math.IsNaN(lo) || !math.IsNaN(hi) {
		t.Errorf("ProportionCI95(0, 0) = %v [%v, %v]; want NaN", p, lo, hi)
	}
}

func TestProportionCI95Panics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("ProportionCI95(3, 2) did not panic")
		}
	}()
	ProportionCI95(3, 2)
}

// TestProportionCI95Coverage checks that the Wilson interval covers the true
// proportion in about 95% of repeated experiments (tolerance ±2 pp over
// 4000 experiments, about 5.8 standard errors).
func TestProportionCI95Coverage(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const trials, n, p = 4000, 200, 0.1
	covered := 0
	for range trials {
		k := 0
		for range n {
			if rng.Float64() < p {
				k++
			}
		}
		if _, lo, hi := ProportionCI95(k, n); lo <= p && p <= hi {
			covered++
		}
	}
	if got := float64(covered) / trials; math.Abs(got-0.95) > 0.02 {
		t.Errorf("coverage = %.4f; want 0.95 ± 0.02", got)
	}
}

func TestRunningMatchesBatch(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	xs := make([]float64, 1000)
	for i := range xs {
		xs[i] = 1e6 + rng.NormFloat64()*3 // offset tests numerical stability
	}
	var r Running
	for _, x := range xs {
		r.Add(x)
	}
	m, s := MeanStd(xs)
	lo, hi := xs[0], xs[0]
	for _, x := range xs {
		lo, hi = math.Min(lo, x), math.Max(hi, x)
	}
	if r.Min() != lo || r.Max() != hi {
		t.Errorf("Running min, max = %v, %v; want %v, %v", r.Min(), r.Max(), lo, hi)
	}
	if r.N() != len(xs) {
		t.Errorf("N = %d; want %d", r.N(), len(xs))
	}
	if !close(r.Mean(), m, 1e-7) || !close(r.Std(), s, 1e-9) { // mean tolerance: 1e-13 relative
		t.Errorf("Running mean, std = %v, %v; want %v, %v", r.Mean(), r.Std(), m, s)
	}
}

func TestRunningMerge(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, split := range []int{0, 1, 2, 250, 499, 500} {
		xs := make([]float64, 500)
		for i := range xs {
			xs[i] = rng.ExpFloat64() * 10
		}
		var a, b, all Running
		for i, x := range xs {
			all.Add(x)
			if i < split {
				a.Add(x)
			} else {
				b.Add(x)
			}
		}
		a.Merge(b)
		if a.N() != all.N() || !close(a.Mean(), all.Mean(), 1e-9) || !close(a.Var(), all.Var(), 1e-7) {
			t.Errorf("split %d: merged n, mean, var = %d, %v, %v; want %d, %v, %v",
				split, a.N(), a.Mean(), a.Var(), all.N(), all.Mean(), all.Var())
		}
		if a.Min() != all.Min() || a.Max() != all.Max() {
			t.Errorf("split %d: merged min, max = %v, %v; want %v, %v", split, a.Min(), a.Max(), all.Min(), all.Max())
		}
	}
}

func TestRunningEmpty(t *testing.T) {
	var r Running
	if r.N() != 0 || !math.IsNaN(r.Mean()) || !math.IsNaN(r.Var()) || !math.IsNaN(r.Min()) || !math.IsNaN(r.Max()) {
		t.Errorf("empty Running: n, mean, var, min, max = %d, %v, %v, %v, %v; want 0 and NaNs", r.N(), r.Mean(), r.Var(), r.Min(), r.Max())
	}
	r.Add(-2)
	if r.Mean() != -2 || !math.IsNaN(r.Var()) || r.Min() != -2 || r.Max() != -2 {
		t.Errorf("one value: mean, var, min, max = %v, %v, %v, %v; want -2, NaN, -2, -2", r.Mean(), r.Var(), r.Min(), r.Max())
	}
}

func TestConfusion(t *testing.T) {
	type obs struct {
		n                int
		positive, actual bool
	}
	tests := []struct {
		name                      string
		obs                       []obs
		want                      Confusion
		precision, recall, f1, ac float64
	}{
		{"empty", nil, Confusion{}, 0, 0, 0, 0},
		{"all four cells", []obs{{16, true, true}, {8, true, false}, {4, false, true}, {67, false, false}},
			Confusion{TP: 16, FP: 8, FN: 4, TN: 67}, 16.0 / 24, 16.0 / 20, 32.0 / 44, 83.0 / 95},
		{"no positive decision", []obs{{3, false, true}, {5, false, false}}, Confusion{FN: 3, TN: 5}, 0, 0, 0, 5.0 / 8},
		{"no true positive seen", []obs{{2, true, false}, {6, false, false}}, Confusion{FP: 2, TN: 6}, 0, 0, 0, 6.0 / 8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c Confusion
			for _, o := range tt.obs {
				for range o.n {
					c.Observe(o.positive, o.actual)
				}
			}
			if c != tt.want {
				t.Fatalf("counts = %+v; want %+v", c, tt.want)
			}
			for _, v := range []struct {
				what      string
				got, want float64
			}{{"precision", c.Precision(), tt.precision}, {"recall", c.Recall(), tt.recall},
				{"F1", c.F1(), tt.f1}, {"accuracy", c.Accuracy(), tt.ac}} {
				if !close(v.got, v.want, 1e-12) {
					t.Errorf("%s = %v; want %v", v.what, v.got, v.want)
				}
			}
			if got := c.Add(c); got.Total() != 2*c.Total() || got.TP != 2*c.TP || got.TN != 2*c.TN {
				t.Errorf("c.Add(c) = %+v; want every count doubled", got)
			}
		})
	}
}
