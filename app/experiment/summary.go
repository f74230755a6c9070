package experiment

import (
	"math"

	"github.com/aelp/aelp/internal/stats"
)

// Summary is the mean of a figure over seeds with the half-width of its
// Student's t 95% confidence interval:
//
//	Mean = (1/n)·Σ xᵢ,  HalfWidth = t₀.₉₇₅(n − 1)·s/√n
//
// with s the sample standard deviation. HalfWidth is +Inf for one seed and
// both are NaN for none.
type Summary struct {
	// Mean is the mean over seeds.
	Mean float64
	// HalfWidth is the 95% confidence half-width of Mean.
	HalfWidth float64
	// N is the number of seeds.
	N int
}

// Lo returns Mean − HalfWidth.
func (s Summary) Lo() float64 { return s.Mean - s.HalfWidth }

// Hi returns Mean + HalfWidth.
func (s Summary) Hi() float64 { return s.Mean + s.HalfWidth }

// Finite reports whether both Mean and HalfWidth are finite numbers.
func (s Summary) Finite() bool {
	return !math.IsNaN(s.Mean) && !math.IsInf(s.Mean, 0) && !math.IsNaN(s.HalfWidth) && !math.IsInf(s.HalfWidth, 0)
}

// Excludes reports whether the interval [Lo, Hi] lies strictly on one side
// of x (the difference from x is significant at the 5% level).
func (s Summary) Excludes(x float64) bool { return s.Finite() && (s.Lo() > x || s.Hi() < x) }

// Summarize returns the mean and 95% confidence half-width of xs (see
// Summary). xs is not modified.
func Summarize(xs []float64) Summary {
	m, h := stats.CI95(xs)
	return Summary{Mean: m, HalfWidth: h, N: len(xs)}
}

// PairedDiff summarises the per-seed differences aᵢ − bᵢ of two arms run
// on the same seeds. Pairing removes the between-seed variation the arms
// share (the same stream, the same held-out users), so its interval is
// usually much narrower than the two arms' intervals suggest. It panics when
// the lengths differ (a programming error).
func PairedDiff(a, b []float64) Summary {
	if len(a) != len(b) {
		panic("experiment: PairedDiff of slices of different lengths")
	}
	d := make([]float64, len(a))
	for i := range a {
		d[i] = a[i] - b[i]
	}
	return Summarize(d)
}

// column returns f applied to every element of xs.
func column[T any](xs []T, f func(T) float64) []float64 {
	out := make([]float64, len(xs))
	for i, x := range xs {
		out[i] = f(x)
	}
	return out
}
