package classify

import (
	"errors"
	"fmt"
	"math"
)

// P2Quantile is a streaming estimate of one quantile by the P² algorithm of
// Jain & Chlamtac (1985): five markers whose heights q₀…q₄ track the minimum,
// the p/2, p and (1+p)/2 quantiles and the maximum, in O(1) memory and time
// per observation.
//
// After n ≥ 5 observations marker i sits at actual position nᵢ (1-based rank)
// and wants to be at the desired position
//
//	n′ᵢ = 1 + (n − 1)·fᵢ,  f = (0, p/2, p, (1+p)/2, 1).
//
// When |n′ᵢ − nᵢ| ≥ 1 and the neighbour is more than one position away, the
// marker moves one position d = ±1 and its height is updated by the piecewise
// parabolic (P²) formula
//
//	qᵢ ← qᵢ + d/(nᵢ₊₁ − nᵢ₋₁) · [ (nᵢ − nᵢ₋₁ + d)(qᵢ₊₁ − qᵢ)/(nᵢ₊₁ − nᵢ)
//	                             + (nᵢ₊₁ − nᵢ − d)(qᵢ − qᵢ₋₁)/(nᵢ − nᵢ₋₁) ]
//
// or, when that would leave (qᵢ₋₁, qᵢ₊₁), by linear interpolation towards the
// neighbour qᵢ₊d. Heights therefore stay ordered and inside [min, max] of the
// data. The first four observations are kept exactly.
//
// Non-finite observations (NaN, ±Inf) are ignored. The zero value is not
// usable; build one with NewP2Quantile. A P2Quantile is not safe for
// concurrent use.
type P2Quantile struct {
	p     float64
	n     int64
	q     [5]float64 // marker heights; while n < 5, the sorted observations
	pos   [5]float64 // actual marker positions (1-based ranks)
	fracs [5]float64 // fᵢ of the desired positions
}

// ErrQuantileRange reports a quantile outside the open interval (0, 1).
var ErrQuantileRange = errors.New("quantile must be in (0, 1)")

// NewP2Quantile returns an empty estimator of the p-quantile, 0 < p < 1.
func NewP2Quantile(p float64) (*P2Quantile, error) {
	if !(p > 0 && p < 1) {
		return nil, fmt.Errorf("new p2 quantile %v: %w", p, ErrQuantileRange)
	}
	return &P2Quantile{p: p, fracs: [5]float64{0, p / 2, p, (1 + p) / 2, 1}}, nil
}

// P returns the quantile being estimated, in (0, 1).
func (e *P2Quantile) P() float64 { return e.p }

// Count returns the number of finite values observed.
func (e *P2Quantile) Count() int64 { return e.n }

// Min returns the smallest value observed, or 0 when nothing was observed.
func (e *P2Quantile) Min() float64 {
	if e.n == 0 {
		return 0
	}
	return e.q[0]
}

// Max returns the largest value observed, or 0 when nothing was observed.
func (e *P2Quantile) Max() float64 {
	switch {
	case e.n == 0:
		return 0
	case e.n < 5:
		return e.q[e.n-1]
	}
	return e.q[4]
}

// Reset forgets every observation and keeps the quantile.
func (e *P2Quantile) Reset() {
	e.n = 0
	e.q = [5]float64{}
	e.pos = [5]float64{}
}

// Observe adds x to the estimate. NaN and ±Inf are ignored.
func (e *P2Quantile) Observe(x float64) {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return
	}
	if e.n < 5 {
		// Insertion into the sorted prefix q[:n].
		i := int(e.n)
		for i > 0 && e.q[i-1] > x {
			e.q[i] = e.q[i-1]
			i--
		}
		e.q[i] = x
		e.n++
		if e.n == 5 {
			e.pos = [5]float64{1, 2, 3, 4, 5}
		}
		return
	}

	// Find the cell k with q[k] ≤ x < q[k+1], extending the extremes.
	var k int
	switch {
	case x < e.q[0]:
		e.q[0] = x
		k = 0
	case x < e.q[1]:
		k = 0
	case x < e.q[2]:
		k = 1
	case x < e.q[3]:
		k = 2
	case x <= e.q[4]:
		k = 3
	default:
		e.q[4] = x
		k = 3
	}
	for i := k + 1; i < 5; i++ {
		e.pos[i]++
	}
	e.n++

	last := float64(e.n - 1)
	for i := 1; i <= 3; i++ {
		want := 1 + last*e.fracs[i]
		d := want - e.pos[i]
		var s float64
		switch {
		case d >= 1 && e.pos[i+1]-e.pos[i] > 1:
			s = 1
		case d <= -1 && e.pos[i-1]-e.pos[i] < -1:
			s = -1
		default:
			continue
		}
		qp := e.parabolic(i, s)
		lo, hi := e.q[i-1], e.q[i+1]
		if !(lo < qp && qp < hi) {
			qp = e.linear(i, s)
			// Rounding (or overflow of a difference of huge heights) must
			// never push a marker past its neighbours.
			if !(qp >= lo) {
				qp = lo
			}
			if !(qp <= hi) {
				qp = hi
			}
		}
		e.q[i] = qp
		e.pos[i] += s
	}
}

// parabolic returns the P² height of marker i moved by s = ±1.
func (e *P2Quantile) parabolic(i int, s float64) float64 {
	q, n := &e.q, &e.pos
	return q[i] + s/(n[i+1]-n[i-1])*((n[i]-n[i-1]+s)*(q[i+1]-q[i])/(n[i+1]-n[i])+
		(n[i+1]-n[i]-s)*(q[i]-q[i-1])/(n[i]-n[i-1]))
}

// linear returns the height of marker i moved by s = ±1 towards its
// neighbour, written as the convex combination (1−t)·qᵢ + t·qᵢ₊ₛ with
// t = 1/|nᵢ₊ₛ − nᵢ| so that it cannot overflow.
func (e *P2Quantile) linear(i int, s float64) float64 {
	j := i + int(s)
	t := 1 / math.Abs(e.pos[j]-e.pos[i])
	if j < i {
		return lerp(e.q[j], e.q[i], 1-t)
	}
	return lerp(e.q[i], e.q[j], t)
}

// Quantile returns the current estimate of the p-quantile: the middle marker
// height once 5 values were seen; before that, the linear interpolation of
// the sorted observations at rank 1 + (n − 1)·p. It returns 0 when nothing was
// observed.
func (e *P2Quantile) Quantile() float64 {
	switch {
	case e.n == 0:
		return 0
	case e.n >= 5:
		return e.q[2]
	}
	r := float64(e.n-1) * e.p // 0-based fractional rank
	i := int(r)
	if i+1 >= int(e.n) {
		return e.q[i]
	}
	return lerp(e.q[i], e.q[i+1], r-float64(i))
}

// lerp returns (1−t)·a + t·b for a ≤ b and t in [0, 1], clamped to [a, b]
// against rounding; the convex form cannot overflow.
func lerp(a, b, t float64) float64 {
	return math.Min(b, math.Max(a, (1-t)*a+t*b))
}

// Rank returns the estimated fraction of observations at or below x, in
// [0, 1]: 0 below the minimum, 1 at or above the maximum, and between them the
// marker positions interpolated linearly in height,
//
//	rank(x) = (nᵢ + (x − qᵢ)/(qᵢ₊₁ − qᵢ)·(nᵢ₊₁ − nᵢ) − 1)/(n − 1)  for qᵢ ≤ x < qᵢ₊₁.
//
// Before 5 observations the sorted observations at ranks 1…n serve as the
// markers. It returns 0 when nothing was observed or x is NaN.
func (e *P2Quantile) Rank(x float64) float64 {
	m := int(e.n)
	if m > 5 {
		m = 5
	}
	if m == 0 || !(x >= e.q[0]) {
		return 0
	}
	if x >= e.q[m-1] {
		return 1
	}
	for i := 0; i+1 < m; i++ {
		if x < e.q[i+1] {
			ni, nj := float64(i+1), float64(i+2)
			if e.n >= 5 {
				ni, nj = e.pos[i], e.pos[i+1]
			}
			t := (x - e.q[i]) / (e.q[i+1] - e.q[i])
			if !(t >= 0) { // NaN when a difference of huge heights overflows
				t = 0
			}
			r := (ni + math.Min(t, 1)*(nj-ni) - 1) / float64(e.n-1)
			return math.Min(1, math.Max(0, r))
		}
	}
	return 1
}
