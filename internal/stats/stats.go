// Package stats holds the few summary statistics that aelp reports: means,
// standard deviations and standard errors, 95% confidence intervals for
// means (Student's t) and proportions (Wilson), a streaming, mergeable
// accumulator, the confusion matrix of binary decisions against ground
// truth, and a calibration check of logged categorical probabilities
// against the outcomes drawn from them.
//
// It knows nothing of Kafka, experiences or policies; it works on plain
// float64 values and counts.
package stats

import (
	"math"

	"gonum.org/v1/gonum/stat"
	"gonum.org/v1/gonum/stat/distuv"
)

// z975 is the 0.975 quantile of the standard normal distribution, used by the
// Wilson interval.
const z975 = 1.959963984540054

// Mean returns the arithmetic mean (1/n)·Σ xᵢ of xs, or NaN when xs is empty.
func Mean(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	return stat.Mean(xs, nil)
}

// MeanStd returns the mean of xs and its sample standard deviation
// s = √(Σ (xᵢ − x̄)² / (n − 1)).
// For an empty xs both are NaN; for a single value the standard deviation is
// NaN (it is undefined with n − 1 = 0 degrees of freedom).
func MeanStd(xs []float64) (mean, std float64) {
	switch len(xs) {
	case 0:
		return math.NaN(), math.NaN()
	case 1:
		return xs[0], math.NaN()
	}
	return stat.MeanStdDev(xs, nil)
}

// MeanSE returns the mean of xs and its standard error s/√n, with s the
// sample standard deviation of MeanStd (n − 1 in its denominator). For an
// empty xs both are NaN; for a single value the standard error is NaN.
func MeanSE(xs []float64) (mean, se float64) {
	m, s := MeanStd(xs)
	return m, s / math.Sqrt(float64(len(xs)))
}

// CI95 returns the mean of xs and the half-width of its two-sided 95%
// confidence interval from Student's t distribution:
//
//	halfWidth = t₀.₉₇₅(n − 1) · s / √n
//
// where s is the sample standard deviation. With fewer than two values the
// half-width is +Inf (one value) or both results are NaN (no values).
func CI95(xs []float64) (mean, halfWidth float64) {
	switch len(xs) {
	case 0:
		return math.NaN(), math.NaN()
	case 1:
		return xs[0], math.Inf(1)
	}
	m, s := stat.MeanStdDev(xs, nil)
	return m, tHalfWidth(len(xs), s)
}

// tHalfWidth returns t₀.₉₇₅(n − 1)·s/√n for n ≥ 2.
func tHalfWidth(n int, s float64) float64 {
	t := distuv.StudentsT{Mu: 0, Sigma: 1, Nu: float64(n - 1)}.Quantile(0.975)
	return t * s / math.Sqrt(float64(n))
}

// ProportionCI95 returns the observed proportion p̂ = k/n and the Wilson score
// 95% interval [lo, hi] for the true proportion:
//
//	centre = (p̂ + z²/(2n)) / (1 + z²/n)
//	half   = z·√(p̂(1 − p̂)/n + z²/(4n²)) / (1 + z²/n)
//
// with z = 1.95996… . Unlike the normal approximation it stays inside [0, 1]
// and is usable at k = 0 or k = n. For n = 0 all three results are NaN.
// ProportionCI95 panics if k < 0, n < 0 or k > n.
func ProportionCI95(k, n int) (p, lo, hi float64) {
	if k < 0 || n < 0 || k > n {
		panic("stats: ProportionCI95 needs 0 <= k <= n")
	}
	if n == 0 {
		return math.NaN(), math.NaN(), math.NaN()
	}
	fn := float64(n)
	p = float64(k) / fn
	z2 := z975 * z975
	denom := 1 + z2/fn
	centre := (p + z2/(2*fn)) / denom
	half := z975 * math.Sqrt(p*(1-p)/fn+z2/(4*fn*fn)) / denom
	lo, hi = math.Max(0, centre-half), math.Min(1, centre+half)
	return p, lo, hi
}

// Running is a streaming accumulator of count, mean, variance, minimum and
// maximum, the mean and variance by Welford's update:
//
//	n ← n + 1;  δ = x − μ;  μ ← μ + δ/n;  M₂ ← M₂ + δ·(x − μ)
//
// The zero value is an empty accumulator ready for use. Two accumulators
// merge exactly (Chan et al.), so workers can accumulate separately.
type Running struct {
	n        int
	mean     float64
	m2       float64
	min, max float64
}

// Add folds x into the accumulator.
func (r *Running) Add(x float64) {
	r.n++
	d := x - r.mean
	r.mean += d / float64(r.n)
	r.m2 += d * (x - r.mean)
	if r.n == 1 {
		r.min, r.max = x, x
	} else {
		r.min, r.max = math.Min(r.min, x), math.Max(r.max, x)
	}
}

// Merge folds all values seen by o into r, as if they had been added to r:
//
//	n = nₐ + n_b;  δ = μ_b − μₐ;  μ = μₐ + δ·n_b/n;  M₂ = M₂ₐ + M₂_b + δ²·nₐ·n_b/n
func (r *Running) Merge(o Running) {
	if o.n == 0 {
		return
	}
	if r.n == 0 {
		*r = o
		return
	}
	n := r.n + o.n
	d := o.mean - r.mean
	r.mean += d * float64(o.n) / float64(n)
	r.m2 += o.m2 + d*d*float64(r.n)*float64(o.n)/float64(n)
	r.n = n
	r.min, r.max = math.Min(r.min, o.min), math.Max(r.max, o.max)
}

// N returns the number of values added.
func (r *Running) N() int { return r.n }

// Mean returns the mean of the values added, or NaN when there are none.
func (r *Running) Mean() float64 {
	if r.n == 0 {
		return math.NaN()
	}
	return r.mean
}

// Min returns the smallest value added, or NaN when there are none.
func (r *Running) Min() float64 {
	if r.n == 0 {
		return math.NaN()
	}
	return r.min
}

// Max returns the largest value added, or NaN when there are none.
func (r *Running) Max() float64 {
	if r.n == 0 {
		return math.NaN()
	}
	return r.max
}

// Var returns the sample variance M₂/(n − 1), or NaN with fewer than two values.
func (r *Running) Var() float64 {
	if r.n < 2 {
		return math.NaN()
	}
	return r.m2 / float64(r.n-1)
}

// Std returns the sample standard deviation √Var.
func (r *Running) Std() float64 { return math.Sqrt(r.Var()) }

// CI95 returns the mean and the Student's t 95% half-width, as CI95 does for
// the same values.
func (r *Running) CI95() (mean, halfWidth float64) {
	switch r.n {
	case 0:
		return math.NaN(), math.NaN()
	case 1:
		return r.mean, math.Inf(1)
	}
	return r.mean, tHalfWidth(r.n, r.Std())
}
