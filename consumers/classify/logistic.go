package classify

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// Logistic is an online logistic regression with L2 regularisation,
// trained by stochastic gradient descent with AdaGrad step sizes:
//
//	p      = σ(w·x) = 1/(1 + e^(−w·x))
//	g_j    = (p − y)·x_j + λ·w_j          (λ = 0 for the bias, j = 0)
//	G_j   += g_j²
//	w_j   −= η·g_j / √(G_j + 10⁻⁸)
//
// which minimises the mean log-loss plus ½λ‖w‖² per example. AdaGrad's
// per-coordinate step η/√G_j shrinks like 1/√t, so the weights converge on a
// stationary stream without a tuned schedule, and rare features (a clamped
// engagement, a missing signal) keep larger steps than common ones. The
// log-loss is a proper scoring rule, so the fitted p is calibrated when the
// model can represent the true log-odds. Its zero value is not usable: use
// NewLogistic.
type Logistic struct {
	w, g2 [NumFeatures]float64
	n     uint64
	lr    float64
	l2    float64
}

// NewLogistic returns a model with learning rate lr (> 0), L2 strength l2
// (≥ 0) and the bias started at logit(prior) (prior in (0, 1)), so that the
// first predictions are the prior rather than ½.
func NewLogistic(lr, l2, prior float64) (*Logistic, error) {
	if !(lr > 0) || math.IsInf(lr, 0) {
		return nil, fmt.Errorf("%w: learning rate %v is not a finite number > 0", ErrInvalidConfig, lr)
	}
	if !(l2 >= 0) || math.IsInf(l2, 0) {
		return nil, fmt.Errorf("%w: L2 strength %v is not a finite number ≥ 0", ErrInvalidConfig, l2)
	}
	if !(prior > 0 && prior < 1) {
		return nil, fmt.Errorf("%w: prior %v not in (0, 1)", ErrInvalidConfig, prior)
	}
	m := &Logistic{lr: lr, l2: l2}
	m.w[featBias] = math.Log(prior / (1 - prior))
	return m, nil
}

// maxLogit bounds |w·x| before the sigmoid, so that p stays in
// [σ(−30), σ(30)] ≈ [10⁻¹³, 1 − 10⁻¹³]: never exactly 0 or 1, whose log-loss
// would be infinite.
const maxLogit = 30

// Logit returns w·x, clamped to ±30.
func (m *Logistic) Logit(x *[NumFeatures]float64) float64 {
	var z float64
	for j, xj := range x {
		z += m.w[j] * xj
	}
	if math.IsNaN(z) {
		return 0
	}
	return math.Max(-maxLogit, math.Min(maxLogit, z))
}

// Prob returns σ(w·x).
func (m *Logistic) Prob(x *[NumFeatures]float64) float64 { return sigmoid(m.Logit(x)) }

func sigmoid(z float64) float64 {
	if z >= 0 {
		return 1 / (1 + math.Exp(-z))
	}
	e := math.Exp(z)
	return e / (1 + e)
}

// Update takes one AdaGrad step on the example (x, y) and returns the
// prediction p made before the step. A non-finite x (which Features never
// writes) is ignored.
func (m *Logistic) Update(x *[NumFeatures]float64, y bool) float64 {
	p := m.Prob(x)
	r := p
	if y {
		r = p - 1
	}
	var g [NumFeatures]float64
	for j, xj := range x {
		if math.IsNaN(xj) || math.IsInf(xj, 0) {
			return p
		}
		g[j] = r * xj
		if j != featBias {
			g[j] += m.l2 * m.w[j]
		}
	}
	for j, gj := range g {
		if gj == 0 {
			continue
		}
		m.g2[j] += gj * gj
		m.w[j] -= m.lr * gj / math.Sqrt(m.g2[j]+1e-8)
	}
	m.n++
	return p
}

// Weights returns the weights, in the order of FeatureNames.
func (m *Logistic) Weights() [NumFeatures]float64 { return m.w }

// Updates returns the number of examples trained on.
func (m *Logistic) Updates() uint64 { return m.n }

// ErrBadState is wrapped by every error decoding a model state returns.
var ErrBadState = errors.New("bad tagger state")

// logisticMagic starts an encoded Logistic: "AELPLR", then the format
// version 1, then the feature count.
var logisticMagic = [8]byte{'A', 'E', 'L', 'P', 'L', 'R', 1, NumFeatures}

// logisticSize is the encoded size: magic, n, lr, l2, w, g2.
const logisticSize = 8 + 8 + 8 + 8 + 2*8*NumFeatures

// AppendBinary appends m's state (weights, AdaGrad accumulators, update
// count, learning rate and L2 strength) to b, little-endian.
func (m *Logistic) AppendBinary(b []byte) []byte {
	b = append(b, logisticMagic[:]...)
	b = binary.LittleEndian.AppendUint64(b, m.n)
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(m.lr))
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(m.l2))
	for _, v := range m.w {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
	}
	for _, v := range m.g2 {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
	}
	return b
}

// decodeLogistic decodes a state written by AppendBinary from the start of
// b and returns the rest of b.
func decodeLogistic(b []byte) (*Logistic, []byte, error) {
	if len(b) < logisticSize {
		return nil, nil, fmt.Errorf("%w: model: %d bytes, want %d", ErrBadState, len(b), logisticSize)
	}
	if [8]byte(b[:8]) != logisticMagic {
		return nil, nil, fmt.Errorf("%w: model: not a version-1 model of %d features", ErrBadState, NumFeatures)
	}
	m := &Logistic{}
	rd := b[8:]
	next := func() float64 {
		v := math.Float64frombits(binary.LittleEndian.Uint64(rd))
		rd = rd[8:]
		return v
	}
	m.n = binary.LittleEndian.Uint64(rd)
	rd = rd[8:]
	m.lr, m.l2 = next(), next()
	for j := range m.w {
		m.w[j] = next()
	}
	for j := range m.g2 {
		m.g2[j] = next()
	}
	if !(m.lr > 0) || math.IsInf(m.lr, 0) || !(m.l2 >= 0) || math.IsInf(m.l2, 0) {
		return nil, nil, fmt.Errorf("%w: model: learning rate %v or L2 %v out of range", ErrBadState, m.lr, m.l2)
	}
	for j := range m.w {
		if math.IsNaN(m.w[j]) || math.IsInf(m.w[j], 0) || !(m.g2[j] >= 0) || math.IsInf(m.g2[j], 0) {
			return nil, nil, fmt.Errorf("%w: model: weight %d not finite", ErrBadState, j)
		}
	}
	return m, rd, nil
}
