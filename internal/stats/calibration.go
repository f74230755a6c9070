package stats

import (
	"errors"
	"fmt"
	"math"
	"strings"

	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/gonum/stat/distuv"
)

// Calibration checks that logged categorical probabilities are those the
// outcomes were drawn from. It accumulates, over rows (q, a) with a drawn
// from the distribution q over nA actions, per action k
//
//	d_k = Σ_rows (1{a = k} − q_k)    and its variance    v_k = Σ_rows q_k(1 − q_k),
//
// the covariance Σ = Σ_rows (diag(q) − q qᵀ) of the vector d, the expected
// draws Σ_rows q_k, and d_k and v_k per bin of q_k. Under calibration each
// row's term is zero-mean with exactly that covariance, so d is a sum of
// independent (or martingale) differences: z_k = d_k / √v_k is about
// N(0, 1) and X² = dᵀΣ⁻¹d about χ² (see Z, BinZ and Chi2).
//
// Use NewCalibration; the zero value is not usable.
type Calibration struct {
	nA, rows  int
	bins      []float64
	d, v, e   []float64 // per action: Σ (1{a = k} − q_k), Σ q_k(1 − q_k), Σ q_k
	cov       []float64 // upper triangle of Σ (diag(q) − q qᵀ), nA × nA
	bd, bv    []float64 // per action × bin: d_k and v_k
	drawnZero int       // rows whose drawn action had probability 0
}

// NewCalibration returns an empty Calibration over nA actions whose
// binned sums use the bins of q_k with upper edges bins (increasing; q_k
// falls in the first bin whose edge exceeds it, so the last edge must
// exceed every q_k: above 1, or math.Inf(1)).
func NewCalibration(nA int, bins []float64) *Calibration {
	nb := nA * len(bins)
	return &Calibration{nA: nA, bins: bins,
		d: make([]float64, nA), v: make([]float64, nA), e: make([]float64, nA),
		cov: make([]float64, nA*nA), bd: make([]float64, nb), bv: make([]float64, nb)}
}

// Add folds in one row: the probabilities q (len nA) and the action act
// drawn from them.
func (c *Calibration) Add(q []float64, act int) {
	c.rows++
	if q[act] == 0 {
		c.drawnZero++
	}
	nb := len(c.bins)
	for k, qk := range q {
		x := -qk
		if k == act {
			x++
		}
		c.d[k] += x
		c.v[k] += qk * (1 - qk)
		c.e[k] += qk
		row := c.cov[k*c.nA : (k+1)*c.nA]
		for j, qj := range q[k:] {
			row[k+j] -= qk * qj
		}
		row[k] += qk
		b := 0
		for qk >= c.bins[b] {
			b++
		}
		c.bd[k*nb+b] += x
		c.bv[k*nb+b] += qk * (1 - qk)
	}
}

// Rows returns the number of rows added.
func (c *Calibration) Rows() int { return c.rows }

// DrawnZero returns the number of rows whose drawn action had probability 0
// (never, when the probabilities are those drawn from).
func (c *Calibration) DrawnZero() int { return c.drawnZero }

// Expected returns each action's expected number of draws Σ_rows q_k.
func (c *Calibration) Expected() []float64 { return append([]float64(nil), c.e...) }

// Z returns each action's z_k = d_k / √v_k (0 for an action never given
// probability).
func (c *Calibration) Z() []float64 {
	z := make([]float64, c.nA)
	for k := range z {
		if c.v[k] > 0 {
			z[k] = c.d[k] / math.Sqrt(c.v[k])
		}
	}
	return z
}

// BinZ returns the z = d / √v of every (action, bin) cell, action-major,
// whose variance sum v is at least minVar (at small q_k about that many
// expected draws). An error that depends on the row (probabilities of
// another state than the one acted on) shows in them even where it
// averages out over all rows.
func (c *Calibration) BinZ(minVar float64) []float64 {
	var z []float64
	for i, v := range c.bv {
		if v >= minVar {
			z = append(z, c.bd[i]/math.Sqrt(v))
		}
	}
	return z
}

// Chi2 returns X² = dᵀΣ⁻¹d over the actions given probability (v_k > 0),
// the last of them dropped since d sums to 0; its degrees of freedom df
// (one less than the actions given probability) and its upper tail
// probability p under χ²(df). It returns an error when Σ restricted to
// those actions is not positive definite (too few rows, or fewer than two
// actions given probability).
func (c *Calibration) Chi2() (x2 float64, df int, p float64, err error) {
	var keep []int
	for k := range c.nA {
		if c.v[k] > 0 {
			keep = append(keep, k)
		}
	}
	if len(keep) < 2 {
		return math.NaN(), 0, math.NaN(), errors.New("stats: Calibration.Chi2 needs two actions given probability")
	}
	keep = keep[:len(keep)-1]
	df = len(keep)
	s := mat.NewSymDense(df, nil)
	d := mat.NewVecDense(df, nil)
	for i, a := range keep {
		d.SetVec(i, c.d[a])
		for j, b := range keep[i:] {
			s.SetSym(i, i+j, c.cov[a*c.nA+b])
		}
	}
	var ch mat.Cholesky
	if !ch.Factorize(s) {
		return math.NaN(), df, math.NaN(), errors.New("stats: Calibration.Chi2: covariance not positive definite")
	}
	var y mat.VecDense
	if err := ch.SolveVecTo(&y, d); err != nil {
		return math.NaN(), df, math.NaN(), fmt.Errorf("stats: Calibration.Chi2: %w", err)
	}
	x2 = mat.Dot(d, &y)
	return x2, df, distuv.ChiSquared{K: float64(df)}.Survival(x2), nil
}

// MaxAbs returns the element of xs with the largest absolute value, with
// its sign (the first of equals; 0 for an empty xs).
func MaxAbs(xs []float64) float64 {
	m := 0.0
	for _, x := range xs {
		if math.Abs(x) > math.Abs(m) {
			m = x
		}
	}
	return m
}

// FormatZ formats z scores (or any values) with a sign and two decimals,
// separated by spaces: "-0.55 +1.14".
func FormatZ(xs []float64) string { return FormatAll(xs, "%+.2f") }

// FormatAll formats each of xs with the fmt verb (as "%.0f") and joins
// them with spaces.
func FormatAll(xs []float64, verb string) string {
	var b strings.Builder
	for i, x := range xs {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, verb, x)
	}
	return b.String()
}
