package stats

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestCalibrationHandComputed checks Calibration on two rows of
// q = (1/2, 1/4, 1/4) drawing actions 0 and 1: d = (0, 1/2, −1/2),
// v = (1/2, 3/8, 3/8), so z = (0, ±1/√1.5); Σ over the first two actions is
// [[1/2, −1/4], [−1/4, 3/8]] with inverse [[3, 2], [2, 4]], so
// X² = 4·(1/2)² = 1 on 2 df (Pearson's Σ (O − E)²/E = 0 + 1/2 + 1/2
// alike) and p = e^{−1/2}.
func TestCalibrationHandComputed(t *testing.T) {
	c := NewCalibration(3, []float64{0.3, math.Inf(1)})
	q := []float64{0.5, 0.25, 0.25}
	c.Add(q, 0)
	c.Add(q, 1)
	if c.Rows() != 2 || c.DrawnZero() != 0 {
		t.Errorf("rows %d, drawn zero %d; want 2, 0", c.Rows(), c.DrawnZero())
	}
	z1 := 0.5 / math.Sqrt(0.375)
	checkAll(t, "Z", c.Z(), []float64{0, z1, -z1})
	checkAll(t, "Expected", c.Expected(), []float64{1, 0.5, 0.5})
	// cells action-major: action 0 only in bin 1 (q ≥ 0.3), actions 1
	// and 2 only in bin 0; the empty cells fall below minVar
	checkAll(t, "BinZ", c.BinZ(0.1), []float64{0, z1, -z1})
	x2, df, p, err := c.Chi2()
	if err != nil {
		t.Fatal(err)
	}
	if df != 2 || !close(x2, 1, 1e-12) || !close(p, math.Exp(-0.5), 1e-12) {
		t.Errorf("Chi2 = %v on %d df, p %v; want 1 on 2 df, p %v", x2, df, p, math.Exp(-0.5))
	}
}

// TestCalibrationBins checks the binning: q on an edge falls in the upper
// bin. Rows (1/2, 1/2) drawing 0 and (0.2, 0.8) drawing 1, edges (1/2, ∞):
// action 0 has 0.2 in bin 0 (d −0.2, v 0.16) and 1/2 in bin 1 (d +1/2,
// v 1/4); action 1 has both in bin 1 (d −1/2 + 0.2, v 1/4 + 0.16).
func TestCalibrationBins(t *testing.T) {
	c := NewCalibration(2, []float64{0.5, math.Inf(1)})
	c.Add([]float64{0.5, 0.5}, 0)
	c.Add([]float64{0.2, 0.8}, 1)
	checkAll(t, "BinZ", c.BinZ(0.01), []float64{-0.2 / 0.4, 0.5 / 0.5, -0.3 / math.Sqrt(0.41)})
}

func checkAll(t *testing.T, name string, got, want []float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s = %v; want %v", name, got, want)
	}
	for i := range want {
		if !close(got[i], want[i], 1e-12) {
			t.Errorf("%s = %v; want %v", name, got, want)
			return
		}
	}
}

// TestCalibrationDetects draws 20,000 actions from p = (0.5, 0.3, 0, 0.2)
// (seeded): with p logged it is calibrated (X² on 2 df, the zero action
// dropped, not in the tail; every |z| within 4); with (0.45, 0.35, 0, 0.2)
// logged, a 10% error, z of action 0 is about +14 and X²'s p far below
// 1e-6.
func TestCalibrationDetects(t *testing.T) {
	p := []float64{0.5, 0.3, 0, 0.2}
	wrong := []float64{0.45, 0.35, 0, 0.2}
	bins := []float64{0.25, math.Inf(1)}
	good, bad := NewCalibration(4, bins), NewCalibration(4, bins)
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20_000 {
		a, u := 0, rng.Float64()
		for u >= p[a] {
			u -= p[a]
			a++
		}
		good.Add(p, a)
		bad.Add(wrong, a)
	}
	if good.DrawnZero() != 0 {
		t.Errorf("%d draws of the zero action", good.DrawnZero())
	}
	x2, df, pv, err := good.Chi2()
	if err != nil || df != 2 || pv < 1e-3 {
		t.Errorf("calibrated: X² %.2f on %d df, p %.3g, err %v; want 2 df, p ≥ 1e-3", x2, df, pv, err)
	}
	if z := MaxAbs(good.Z()); math.Abs(z) > 4 {
		t.Errorf("calibrated: largest z %+.2f; want within ±4", z)
	}
	x2, df, pv, err = bad.Chi2()
	if err != nil || df != 2 || pv > 1e-6 {
		t.Errorf("10%% off: X² %.2f on %d df, p %.3g, err %v; want p ≤ 1e-6", x2, df, pv, err)
	}
	if z := bad.Z()[0]; z < 10 {
		t.Errorf("10%% off: z of action 0 %+.2f; want about +14", z)
	}
}

func TestCalibrationChi2Degenerate(t *testing.T) {
	c := NewCalibration(2, []float64{math.Inf(1)})
	c.Add([]float64{1, 0}, 0)
	if _, _, _, err := c.Chi2(); err == nil {
		t.Error("Chi2 with one action given probability: no error")
	}
	c = NewCalibration(2, []float64{math.Inf(1)})
	c.Add([]float64{0, 1}, 0)
	if c.DrawnZero() != 1 {
		t.Errorf("drawn zero %d; want 1", c.DrawnZero())
	}
}

func TestMaxAbsFormat(t *testing.T) {
	if got := MaxAbs([]float64{1, -3, 2, 3}); got != -3 {
		t.Errorf("MaxAbs = %v; want -3", got)
	}
	if got := MaxAbs(nil); got != 0 {
		t.Errorf("MaxAbs(nil) = %v; want 0", got)
	}
	if got, want := FormatZ([]float64{-0.554, 1.136, 0}), "-0.55 +1.14 +0.00"; got != want {
		t.Errorf("FormatZ = %q; want %q", got, want)
	}
	if got, want := FormatAll([]float64{127292.6, 3}, "%.0f"), "127293 3"; got != want {
		t.Errorf("FormatAll = %q; want %q", got, want)
	}
}
