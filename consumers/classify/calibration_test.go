package classify

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestCalibrationKnownValues(t *testing.T) {
	var c Calibration
	if c.Brier() != 0 || c.ECE() != 0 || c.N() != 0 {
		t.Fatalf("zero value: Brier %v ECE %v N %d, want 0", c.Brier(), c.ECE(), c.N())
	}
	// p = 0.9 on four records, one of them crisis: Brier (0.01 + 3·0.81)/4,
	// ECE |0.9 − 0.25| = 0.65 (one bin).
	c.Observe(0.9, true)
	for range 3 {
		c.Observe(0.9, false)
	}
	if got, want := c.Brier(), (0.01+3*0.81)/4; math.Abs(got-want) > 1e-12 {
		t.Errorf("Brier %v, want %v", got, want)
	}
	if got := c.ECE(); math.Abs(got-0.65) > 1e-12 {
		t.Errorf("ECE %v, want 0.65", got)
	}
	// A second bin: p = 0.05 on four regular records adds |0.05 − 0| with
	// weight ½: ECE = ½·0.65 + ½·0.05.
	var d Calibration
	for range 4 {
		d.Observe(0.05, false)
	}
	c.Merge(&d)
	if got := c.ECE(); math.Abs(got-(0.65+0.05)/2) > 1e-12 || c.N() != 8 {
		t.Errorf("merged ECE %v over %d, want 0.35 over 8", got, c.N())
	}
	// NaN is ignored, out-of-range predictions clamped, p = 1 lands in the
	// top bin.
	c.Observe(math.NaN(), true)
	c.Observe(2, true)
	c.Observe(-1, false)
	if c.N() != 10 || math.IsNaN(c.Brier()) {
		t.Errorf("after NaN and clamped: N %d Brier %v, want 10 and finite", c.N(), c.Brier())
	}
}

// TestCalibrationOfCalibratedPredictor: predictions drawn uniformly with
// outcomes y ~ Bernoulli(p) have ECE near 0 (a few times 1/√N) and Brier
// E[p(1−p)] = 1/6; the same predictions against outcomes of probability
// ½ have ECE E|p − ½| = ¼.
func TestCalibrationOfCalibratedPredictor(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	var good, bad Calibration
	const n = 200_000
	for range n {
		p := rng.Float64()
		good.Observe(p, rng.Float64() < p)
		bad.Observe(p, rng.Float64() < 0.5)
	}
	if e := good.ECE(); e > 0.01 {
		t.Errorf("calibrated predictor ECE %v, want ≤ 0.01", e)
	}
	if b := good.Brier(); math.Abs(b-1.0/6) > 0.005 {
		t.Errorf("calibrated predictor Brier %v, want 1/6 ± 0.005", b)
	}
	if e := bad.ECE(); math.Abs(e-0.25) > 0.01 {
		t.Errorf("uninformative outcomes ECE %v, want 0.25 ± 0.01", e)
	}
}

func TestObjectiveParse(t *testing.T) {
	good := []struct {
		in   string
		want Objective
	}{
		{"f1", Objective{Kind: ObjectiveF1}},
		{" f1 ", Objective{Kind: ObjectiveF1}},
		{"precision=0.9", Objective{Kind: ObjectivePrecision, Target: 0.9}},
		{"cost=4", Objective{Kind: ObjectiveCost, Target: 4}},
	}
	for _, tt := range good {
		got, err := ParseObjective(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseObjective(%q) = %+v, %v, want %+v", tt.in, got, err, tt.want)
		}
		if again, err := ParseObjective(got.String()); err != nil || again != got {
			t.Errorf("round trip of %q: %+v, %v", tt.in, again, err)
		}
	}
	for _, in := range []string{"", "F1", "precision", "precision=1", "precision=0", "precision=x", "cost=0", "cost=-1", "cost=Inf", "recall=0.9"} {
		if _, err := ParseObjective(in); err == nil {
			t.Errorf("ParseObjective(%q) succeeded, want error", in)
		}
	}
}

// TestThresholdForObjectives fills the histogram with the expected counts
// of a calibrated predictor whose p = u³, u uniform (mostly small, like
// crisis posteriors), and checks each objective's threshold: cost=R is
// 1/(1+R); precision=P reaches P on the histogram and is the lowest that
// does; f1's threshold beats its neighbours and is the theory's F1*/2 (for
// a calibrated score the F1-optimal threshold is half the optimal F1)
// within a bin or two.
func TestThresholdForObjectives(t *testing.T) {
	var th thresholder
	for b := range thresholdBins {
		p := (float64(b) + 0.5) / thresholdBins
		// density of p = u³ is ⅓p^(−⅔)
		mass := 1e6 * math.Pow(p, -2.0/3) / 3 / thresholdBins
		th.pos[b], th.neg[b] = mass*p, mass*(1-p)
	}
	if got := th.threshold(Objective{Kind: ObjectiveCost, Target: 4}); got != 0.2 {
		t.Errorf("cost=4 threshold %v, want 0.2", got)
	}
	f1At := func(thr float64) (f1, prec float64) {
		var tp, fp, pos float64
		for b := range thresholdBins {
			pos += th.pos[b]
			if float64(b)/thresholdBins >= thr-1e-12 {
				tp += th.pos[b]
				fp += th.neg[b]
			}
		}
		return 2 * tp / (tp + fp + pos), tp / (tp + fp)
	}
	thr := th.threshold(Objective{Kind: ObjectiveF1})
	best, _ := f1At(thr)
	for _, d := range []float64{-0.05, -0.01, 0.01, 0.05} {
		if f, _ := f1At(thr + d); f > best+1e-12 {
			t.Errorf("f1 threshold %v: F1 %v, but %v gives %v", thr, best, thr+d, f)
		}
	}
	if math.Abs(thr-best/2) > 0.002 {
		t.Errorf("f1 threshold %v, want F1*/2 = %v ± 0.002", thr, best/2)
	}
	pthr := th.threshold(Objective{Kind: ObjectivePrecision, Target: 0.9})
	if _, prec := f1At(pthr); prec < 0.9 {
		t.Errorf("precision=0.9 threshold %v has precision %v", pthr, prec)
	}
	if _, prec := f1At(pthr - 0.002); prec >= 0.9 && pthr > 0.002 {
		t.Errorf("precision=0.9 threshold %v is not the lowest reaching 0.9 (%v at %v)", pthr, prec, pthr-0.002)
	}
	var empty thresholder
	if got := empty.threshold(Objective{Kind: ObjectiveF1}); got != 0.5 {
		t.Errorf("empty histogram threshold %v, want 0.5", got)
	}
}
