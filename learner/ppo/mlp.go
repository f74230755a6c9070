package ppo

import (
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/floats"
	"gonum.org/v1/gonum/mat"
)

// layerSizes returns [in, hidden..., out].
func layerSizes(in int, hidden []int, out int) []int {
	s := make([]int, 0, len(hidden)+2)
	s = append(s, in)
	s = append(s, hidden...)
	return append(s, out)
}

// paramCount returns the number of weights and biases of an MLP with the
// given layer sizes.
func paramCount(sizes []int) int {
	n := 0
	for l := 0; l+1 < len(sizes); l++ {
		n += sizes[l+1]*sizes[l] + sizes[l+1]
	}
	return n
}

// mlp describes a fully connected network with tanh hidden layers and a
// linear output layer. Its parameters live in a flat slice owned by the
// caller: for each layer l, the row-major weight matrix W_l (out×in) and
// then the bias b_l (out). The description itself is immutable.
type mlp struct {
	sizes []int
	woff  []int // offset of W_l
	boff  []int // offset of b_l
	n     int   // number of parameters
}

func newMLP(sizes []int) mlp {
	m := mlp{sizes: append([]int(nil), sizes...)}
	off := 0
	for l := 0; l+1 < len(sizes); l++ {
		m.woff = append(m.woff, off)
		off += sizes[l+1] * sizes[l]
		m.boff = append(m.boff, off)
		off += sizes[l+1]
	}
	m.n = off
	return m
}

func (m *mlp) layers() int { return len(m.sizes) - 1 }
func (m *mlp) in() int     { return m.sizes[0] }
func (m *mlp) out() int    { return m.sizes[len(m.sizes)-1] }

// mlpWork holds the activations of one forward pass and the backpropagated
// deltas; one per goroutine.
type mlpWork struct {
	act   [][]float64 // act[l]: output of layer l (tanh for hidden, linear last)
	delta [][]float64 // delta[l]: ∂L/∂(pre-activation of layer l)
	probs []float64   // softmax of the output (see logSoftmax)
}

func (m *mlp) newWork() *mlpWork {
	w := &mlpWork{}
	for l := 0; l < m.layers(); l++ {
		w.act = append(w.act, make([]float64, m.sizes[l+1]))
		w.delta = append(w.delta, make([]float64, m.sizes[l+1]))
	}
	w.probs = make([]float64, m.out())
	return w
}

// forward computes the network output for input x and returns it (a slice
// of w, valid until the next forward with w):
//
//	h_0 = x,  h_l = tanh(W_l·h_{l−1} + b_l) for hidden layers,
//	out = W_L·h_{L−1} + b_L.
//
// The agent and every Policy run exactly this code, so equal parameters and
// inputs give bit-identical outputs.
func (m *mlp) forward(p, x []float64, w *mlpWork) []float64 {
	in := x
	last := m.layers() - 1
	for l := 0; l <= last; l++ {
		nin, nout := m.sizes[l], m.sizes[l+1]
		wl := p[m.woff[l] : m.woff[l]+nout*nin]
		bl := p[m.boff[l] : m.boff[l]+nout]
		h := w.act[l]
		for j := range nout {
			h[j] = bl[j] + floats.Dot(wl[j*nin:(j+1)*nin], in)
		}
		if l < last {
			tanhInPlace(h)
		}
		in = h
	}
	return in
}

// backward accumulates into g (same layout as p) the gradient of a scalar
// loss whose derivative with respect to the network output is dout, for
// the forward pass last run with x and w:
//
//	∂L/∂W_l += δ_l ⊗ h_{l−1},  ∂L/∂b_l += δ_l,
//	δ_{l−1} = (W_lᵀ·δ_l) ⊙ (1 − h_{l−1}²).
//
// dout may alias w.delta of the last layer.
func (m *mlp) backward(p, g, x, dout []float64, w *mlpWork) {
	last := m.layers() - 1
	if &dout[0] != &w.delta[last][0] {
		copy(w.delta[last], dout)
	}
	for l := last; l >= 0; l-- {
		nin, nout := m.sizes[l], m.sizes[l+1]
		in := x
		if l > 0 {
			in = w.act[l-1]
		}
		d := w.delta[l]
		gw := g[m.woff[l] : m.woff[l]+nout*nin]
		gb := g[m.boff[l] : m.boff[l]+nout]
		for j, dj := range d {
			if dj == 0 {
				continue
			}
			floats.AddScaled(gw[j*nin:(j+1)*nin], dj, in)
			gb[j] += dj
		}
		if l == 0 {
			break
		}
		prev := w.delta[l-1]
		clear(prev)
		wl := p[m.woff[l] : m.woff[l]+nout*nin]
		for j, dj := range d {
			if dj == 0 {
				continue
			}
			floats.AddScaled(prev, dj, wl[j*nin:(j+1)*nin])
		}
		h := w.act[l-1]
		for k := range prev {
			prev[k] *= 1 - h[k]*h[k]
		}
	}
}

// tanh's lookup table: tanhTable[k] = tanh((k − tanhMid)/tanhGrid) over
// [−tanhMax, tanhMax]. Beyond ±tanhMax, tanh rounds to ±1 in float64 (from
// |x| = 19.06).
const (
	tanhGrid = 64
	tanhMax  = 20
	tanhMid  = tanhMax * tanhGrid
)

var tanhTable = func() []float64 {
	t := make([]float64, 2*tanhMid+1)
	for k := range t {
		t[k] = math.Tanh(float64(k-tanhMid) / tanhGrid)
	}
	return t
}()

// tanh returns tanh(x) within 3 ulp of math.Tanh (tests check this) in
// about half its time, which matters because the hidden activations are
// about a third of an update's work: with x = c + d, c = k/64 the nearest
// table point and |d| ≤ 1/128 (d is exact),
//
//	tanh(x) = (tanh c + tanh d)/(1 + tanh c·tanh d),
//
// tanh c from the table and tanh d = d − d³/3 + 2d⁵/15 − 17d⁷/315 +
// 62d⁹/2835 (the next term is below 2⁻⁶⁰·|d|). There is no branch on the
// sign. ±0 gives ±0, NaN NaN, ±Inf ±1.
func tanh(x float64) float64 {
	if !(x > -tanhMax && x < tanhMax) || x == 0 {
		switch {
		case x > 0:
			return 1
		case x < 0:
			return -1
		}
		return x // ±0 or NaN
	}
	// x·64 + tanhMid + ½ is in (½, 2·tanhMid + ½): truncating rounds x·64.
	k := int(x*tanhGrid + (tanhMid + 0.5))
	d := x - float64(k-tanhMid)*(1.0/tanhGrid)
	d2 := d * d
	td := d + d*d2*(-1.0/3+d2*(2.0/15+d2*(-17.0/315+d2*(62.0/2835))))
	tc := tanhTable[k]
	return (tc + td) / (1 + tc*td)
}

// tanhInPlace replaces every h[j] by tanh(h[j]).
func tanhInPlace(h []float64) {
	for j, v := range h {
		h[j] = tanh(v)
	}
}

// initOrthogonal fills p with an orthogonal initialisation: every weight
// matrix is gain·Q with Q having orthonormal rows or columns (whichever are
// fewer), from the QR factorisation of a standard Gaussian matrix with the
// signs of diag(R) folded in (so Q is Haar distributed); gain is √2 for
// hidden layers and outGain for the output layer; biases are 0.
func (m *mlp) initOrthogonal(p []float64, outGain float64, rng *rand.Rand) {
	clear(p[:m.n])
	for l := 0; l < m.layers(); l++ {
		gain := math.Sqrt2
		if l == m.layers()-1 {
			gain = outGain
		}
		nin, nout := m.sizes[l], m.sizes[l+1]
		orthogonal(p[m.woff[l]:m.woff[l]+nout*nin], nout, nin, gain, rng)
	}
}

// orthogonal writes a rows×cols matrix gain·Q into dst (row-major), with
// QᵀQ = I when rows ≥ cols and QQᵀ = I otherwise.
func orthogonal(dst []float64, rows, cols int, gain float64, rng *rand.Rand) {
	tall, short := rows, cols
	if rows < cols {
		tall, short = cols, rows
	}
	g := mat.NewDense(tall, short, nil)
	for i := range tall {
		for j := range short {
			g.Set(i, j, rng.NormFloat64())
		}
	}
	var qr mat.QR
	qr.Factorize(g)
	var q, r mat.Dense
	qr.QTo(&q)
	qr.RTo(&r)
	for i := range tall {
		for j := range short {
			v := q.At(i, j) * gain
			if r.At(j, j) < 0 {
				v = -v
			}
			if rows >= cols {
				dst[i*cols+j] = v
			} else {
				dst[j*cols+i] = v
			}
		}
	}
}

// logSoftmax writes log softmax(z) into dst and softmax(z) into probs and
// returns the entropy H = −Σ_j p_j·log p_j, with e_j = exp(z_j − max z),
// p_j = e_j/Σ_k e_k and log p_j = (z_j − max z) − log Σ_k e_k (one exp per
// action; the shift is subtracted first, so large logits lose no digits).
func logSoftmax(dst, probs, z []float64) (entropy float64) {
	mx := math.Inf(-1)
	for _, v := range z {
		mx = math.Max(mx, v)
	}
	probs = probs[:len(z)]
	s := 0.0
	for j, v := range z {
		e := math.Exp(v - mx)
		probs[j] = e
		s += e
	}
	logS := math.Log(s)
	inv := 1 / s
	for j, v := range z {
		lp := (v - mx) - logS
		dst[j] = lp
		p := probs[j] * inv
		probs[j] = p
		entropy -= p * lp
	}
	return entropy
}

// Observation normalisation constants.
const (
	obsVarEps = 1e-8
	obsClip   = 10
)

// normalizeObs writes clip((x − mean)/√(var + 1e-8), ±10) into dst, or
// copies x when mean is nil (normalisation off).
func normalizeObs(dst, x, mean, variance []float64) {
	if mean == nil {
		copy(dst, x)
		return
	}
	for k, v := range x {
		z := (v - mean[k]) / math.Sqrt(variance[k]+obsVarEps)
		dst[k] = math.Max(-obsClip, math.Min(obsClip, z))
	}
}

// runningNorm tracks the per-dimension mean and (population) variance of
// the observations seen, merged batch by batch with the parallel update of
// Chan et al.:
//
//	n = n_a + n_b, Δ = mean_b − mean_a,
//	mean = mean_a + Δ·n_b/n,
//	var  = (var_a·n_a + var_b·n_b + Δ²·n_a·n_b/n)/n.
//
// Before any observation mean = 0 and var = 1 (the identity transform).
type runningNorm struct {
	mean, variance []float64
	count          float64
	bmean, bvar    []float64 // scratch for one batch
}

func newRunningNorm(d int) runningNorm {
	r := runningNorm{
		mean: make([]float64, d), variance: make([]float64, d),
		bmean: make([]float64, d), bvar: make([]float64, d),
	}
	for k := range r.variance {
		r.variance[k] = 1
	}
	return r
}

// observe merges the rows of obs (row-major, len a multiple of d); rows
// holding a NaN or ±Inf are skipped so they cannot poison the statistics.
func (r *runningNorm) observe(obs []float64) {
	d := len(r.mean)
	clear(r.bmean)
	clear(r.bvar)
	nb := 0
	for i := range len(obs) / d {
		if row := obs[i*d : (i+1)*d]; allFinite(row) {
			floats.Add(r.bmean, row)
			nb++
		}
	}
	if nb == 0 {
		return
	}
	floats.Scale(1/float64(nb), r.bmean)
	for i := range len(obs) / d {
		row := obs[i*d : (i+1)*d]
		if !allFinite(row) {
			continue
		}
		for k, v := range row {
			e := v - r.bmean[k]
			r.bvar[k] += e * e
		}
	}
	floats.Scale(1/float64(nb), r.bvar)
	na, fb := r.count, float64(nb)
	n := na + fb
	for k := range r.mean {
		delta := r.bmean[k] - r.mean[k]
		if na == 0 {
			r.mean[k], r.variance[k] = r.bmean[k], r.bvar[k]
			continue
		}
		r.mean[k] += delta * fb / n
		r.variance[k] = (r.variance[k]*na + r.bvar[k]*fb + delta*delta*na*fb/n) / n
	}
	r.count = n
}
