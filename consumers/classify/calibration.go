package classify

import "math"

// CalibrationBins is the number of equal-width probability bins of the
// expected calibration error.
const CalibrationBins = 10

// Calibration accumulates probabilistic predictions p of "crisis" against
// the truth y ∈ {0, 1} and reports
//
//	Brier = (1/N) Σ (p − y)²
//	ECE   = Σ_b (n_b/N)·|mean_b(p) − mean_b(y)|
//
// over CalibrationBins equal-width bins of p ([0, 0.1), …, [0.9, 1]). A
// perfectly calibrated predictor has ECE → 0 as N grows; Brier also
// rewards sharpness. Its zero value is ready to use; predictions that are
// NaN are ignored and the rest are clamped to [0, 1].
type Calibration struct {
	n          uint64
	sumSq      float64
	binN       [CalibrationBins]uint64
	binP, binY [CalibrationBins]float64
}

// Observe counts the prediction p against the truth.
func (c *Calibration) Observe(p float64, truth bool) {
	if math.IsNaN(p) {
		return
	}
	p = math.Max(0, math.Min(1, p))
	y := 0.0
	if truth {
		y = 1
	}
	c.n++
	c.sumSq += (p - y) * (p - y)
	b := min(int(p*CalibrationBins), CalibrationBins-1)
	c.binN[b]++
	c.binP[b] += p
	c.binY[b] += y
}

// Merge adds o's observations to c.
func (c *Calibration) Merge(o *Calibration) {
	c.n += o.n
	c.sumSq += o.sumSq
	for b := range c.binN {
		c.binN[b] += o.binN[b]
		c.binP[b] += o.binP[b]
		c.binY[b] += o.binY[b]
	}
}

// N returns the number of predictions observed.
func (c *Calibration) N() uint64 { return c.n }

// Brier returns the Brier score, 0 when nothing was observed.
func (c *Calibration) Brier() float64 {
	if c.n == 0 {
		return 0
	}
	return c.sumSq / float64(c.n)
}

// ECE returns the expected calibration error, 0 when nothing was observed.
func (c *Calibration) ECE() float64 {
	if c.n == 0 {
		return 0
	}
	var e float64
	for b, n := range c.binN {
		if n > 0 {
			e += math.Abs(c.binP[b]-c.binY[b]) / float64(c.n)
		}
	}
	return e
}
