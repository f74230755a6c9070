package ppo

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestTanhAccuracy checks the table-based tanh (and the per-row path's
// tanhPerRow) against math.Tanh: within 3 ulp (relative) over normal, wide
// uniform and tiny arguments, exact at the signed zeros and beyond the
// saturation point, NaN for NaN.
func TestTanhAccuracy(t *testing.T) {
	for _, f := range []struct {
		name string
		tanh func(float64) float64
	}{{"tanh", tanh}, {"tanhPerRow", tanhPerRow}} {
		t.Run(f.name, func(t *testing.T) { checkTanhAccuracy(t, f.tanh) })
	}
}

func checkTanhAccuracy(t *testing.T, tanh func(float64) float64) {
	rng := rand.New(rand.NewPCG(1, 2))
	worst, at := 0.0, 0.0
	for i := range 3_000_000 {
		var x float64
		switch i % 3 {
		case 0:
			x = rng.NormFloat64() * 3
		case 1:
			x = (rng.Float64()*2 - 1) * 25
		default:
			x = math.Ldexp(rng.Float64()-0.5, -rng.IntN(60))
		}
		want, got := math.Tanh(x), tanh(x)
		if want == 0 {
			if got != want || math.Signbit(got) != math.Signbit(want) {
				t.Fatalf("tanh(%g) = %g, want %g", x, got, want)
			}
			continue
		}
		if e := math.Abs(got-want) / math.Abs(want) / 0x1p-52; e > worst {
			worst, at = e, x
		}
	}
	if worst > 3 {
		t.Errorf("worst error %.2f ulp at x = %.17g, want ≤ 3", worst, at)
	}
	for _, c := range []struct{ x, want float64 }{
		{0, 0}, {19.5, 1}, {-19.5, -1}, {20, 1}, {-1e300, -1}, {math.Inf(1), 1}, {math.Inf(-1), -1},
		{float64(tanhMax) - 1e-12, 1}, {1.0 / 128, math.Tanh(1.0 / 128)},
	} {
		if got := tanh(c.x); got != c.want && math.Abs(got-c.want) > 3*0x1p-52*math.Abs(c.want) {
			t.Errorf("tanh(%g) = %.17g, want %.17g", c.x, got, c.want)
		}
	}
	if got := tanh(math.Copysign(0, -1)); got != 0 || !math.Signbit(got) {
		t.Errorf("tanh(-0) = %g, want -0", got)
	}
	if got := tanh(math.NaN()); !math.IsNaN(got) {
		t.Errorf("tanh(NaN) = %g, want NaN", got)
	}
}

// TestLogSoftmax checks logSoftmax against the textbook formulas on
// logits that overflow a naive exp: probabilities sum to 1 and equal
// exp(log p), and the entropy is −Σ p·log p.
func TestLogSoftmax(t *testing.T) {
	z := []float64{1000, 999, 990, -5, 0}
	lp, p := make([]float64, len(z)), make([]float64, len(z))
	h := logSoftmax(lp, p, z)
	sum, want := 0.0, 0.0
	for j := range z {
		sum += p[j]
		if math.Abs(p[j]-math.Exp(lp[j])) > 4e-16*p[j] {
			t.Errorf("p[%d] = %g, exp(log p) = %g", j, p[j], math.Exp(lp[j]))
		}
		if p[j] > 0 {
			want -= p[j] * lp[j]
		}
	}
	if math.Abs(sum-1) > 1e-15 {
		t.Errorf("probabilities sum to %.17g", sum)
	}
	if math.Abs(h-want) > 1e-15 {
		t.Errorf("entropy %.17g, want %.17g", h, want)
	}
}
