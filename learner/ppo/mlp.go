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

// Batched passes. A pass over m rows keeps, per layer l, the activations
// act[l] (m × sizes[l+1], row-major: tanh for hidden layers, linear for
// the last) and the deltas delta[l] = ∂L/∂(pre-activation of layer l), of
// the same shape; x is the input (m × sizes[0]). The forward pass uses
// the transposed weights wt (Wᵀ_l, in × out, at the offset of W_l in p;
// see transposeWeights), so that every product is a [gemm] whose rows are
// the samples. Each row is computed on its own, by the same operations
// whatever m, the row's position or the split of the rows among workers;
// the gradients sum over the rows in increasing row order.

// transposeWeights writes Wᵀ_l (in × out, row-major) for every layer of m
// into wt at the offsets of W_l; the bias slots of wt are not used.
func (m *mlp) transposeWeights(p, wt []float64) {
	for l := 0; l < m.layers(); l++ {
		nin, nout := m.sizes[l], m.sizes[l+1]
		transpose(wt[m.woff[l]:m.woff[l]+nin*nout], p[m.woff[l]:m.woff[l]+nout*nin], nout, nin)
	}
}

// transpose writes the transpose of the rows×cols matrix src into dst
// (cols×rows), in 4×4 blocks.
func transpose(dst, src []float64, rows, cols int) {
	src, dst = src[:rows*cols], dst[:rows*cols]
	i := 0
	for ; i+4 <= rows; i += 4 {
		r0, r1, r2, r3 := src[i*cols:(i+1)*cols], src[(i+1)*cols:(i+2)*cols], src[(i+2)*cols:(i+3)*cols], src[(i+3)*cols:(i+4)*cols]
		for j := range cols {
			d := dst[j*rows+i : j*rows+i+4]
			d[0], d[1], d[2], d[3] = r0[j], r1[j], r2[j], r3[j]
		}
	}
	for ; i < rows; i++ {
		for j, v := range src[i*cols : (i+1)*cols] {
			dst[j*rows+i] = v
		}
	}
}

// forwardRows runs the rows [lo, hi) of x through the network:
//
//	h_0 = x,  h_l = tanh(h_{l−1}·W_lᵀ + b_l) for hidden layers,
//	out = h_{L−1}·W_Lᵀ + b_L,
//
// each output element a fused multiply-add chain that starts from the
// bias and runs over the inputs in increasing order (see [gemm]). The
// agent and every Policy run exactly this code, so equal parameters and
// inputs give bit-identical outputs.
func (m *mlp) forwardRows(p, wt, x []float64, act [][]float64, lo, hi int) {
	rows := hi - lo
	if rows <= 0 {
		return
	}
	in := x
	last := m.layers() - 1
	for l := 0; l <= last; l++ {
		nin, nout := m.sizes[l], m.sizes[l+1]
		h := act[l][lo*nout : hi*nout]
		gemm(rows, nout, nin, in[lo*nin:], nin, 1, wt[m.woff[l]:m.woff[l]+nin*nout], nout,
			h, nout, p[m.boff[l]:m.boff[l]+nout], 0)
		if l < last {
			tanhInPlace(h)
		}
		in = act[l]
	}
}

// backwardRows propagates the deltas of the last layer, delta[L−1] (set by
// the caller), back through the network for the rows [lo, hi):
//
//	δ_{l−1} = (δ_l·W_l) ⊙ (1 − h_{l−1}²),
//
// each product element a fused multiply-add chain over the outputs of
// layer l in increasing order, then one multiplication by 1 − h² (itself
// rounded once).
func (m *mlp) backwardRows(p []float64, act, delta [][]float64, lo, hi int, zeros []float64) {
	rows := hi - lo
	if rows <= 0 {
		return
	}
	for l := m.layers() - 1; l > 0; l-- {
		nin, nout := m.sizes[l], m.sizes[l+1]
		prev := delta[l-1][lo*nin : hi*nin]
		gemm(rows, nin, nout, delta[l][lo*nout:], nout, 1, p[m.woff[l]:m.woff[l]+nout*nin], nin,
			prev, nin, zeros, 0)
		tanhGradMul(prev, prev, act[l-1][lo*nin:hi*nin])
	}
}

// gradPart writes into g (the layout of p) the gradient of the loss whose
// deltas delta the last backwardRows left, over the rows [0, rows), for
// part c of nparts of every layer's output units (units
// [c·out/nparts, (c+1)·out/nparts) of each layer, weights and biases):
//
//	∂L/∂W_l = δ_lᵀ·h_{l−1},  ∂L/∂b_l = Σ_i δ_l[i],
//
// each element a fused multiply-add chain over the rows in increasing
// order starting from 0 (the bias as a product with 1). The parts are
// disjoint and together cover every parameter, and no element depends on
// the split.
func (m *mlp) gradPart(g, x []float64, act, delta [][]float64, rows, c, nparts int, zeros []float64) {
	in := x
	for l := 0; l < m.layers(); l++ {
		nin, nout := m.sizes[l], m.sizes[l+1]
		j0, j1 := c*nout/nparts, (c+1)*nout/nparts
		if j0 < j1 && rows > 0 {
			d := delta[l][j0:]
			gemm(j1-j0, nin, rows, d, 1, nout, in, nin, g[m.woff[l]+j0*nin:m.woff[l]+j1*nin], nin, zeros, 0)
			gemm(1, j1-j0, rows, one[:], 0, 0, d, nout, g[m.boff[l]+j0:m.boff[l]+j1], 0, zeros, 0)
		} else if j0 < j1 {
			clear(g[m.woff[l]+j0*nin : m.woff[l]+j1*nin])
			clear(g[m.boff[l]+j0 : m.boff[l]+j1])
		}
		in = act[l]
	}
}

// one is the constant factor of the bias gradient's chain.
var one = [1]float64{1}

// tanh's lookup table: tanhTable[k] = tanh((k − tanhMid)/tanhGrid) over
// [−tanhMax, tanhMax] (5 KB, so that it stays in the L1 cache beside a
// layer's weights and activations). Beyond ±tanhMax, tanh rounds to ±1
// in float64 (from |x| = 19.06).
const (
	tanhGrid = 16
	tanhMax  = 20
	tanhMid  = tanhMax * tanhGrid
)

var tanhTable = tanhTableFor(tanhGrid)

func tanhTableFor(grid int) []float64 {
	mid := tanhMax * grid
	t := make([]float64, 2*mid+1)
	for k := range t {
		t[k] = math.Tanh(float64(k-mid) / float64(grid))
	}
	return t
}

// The coefficients of tanh's series, tanh d = d + c3·d³ + c5·d⁵ + ….
const (
	tanhC3  = -1.0 / 3
	tanhC5  = 2.0 / 15
	tanhC7  = -17.0 / 315
	tanhC9  = 62.0 / 2835
	tanhC11 = -1382.0 / 155925
)

// tanh returns tanh(x) within 3 ulp of math.Tanh (tests check this) at a
// fraction of its cost, which matters because the hidden activations are
// a large part of an update's work: with x = c + d, c = k/16 the nearest
// table point (k = x·16 rounded to even) and |d| ≤ 1/32 (d is exact),
//
//	tanh(x) = (tanh c + tanh d)/(1 + tanh c·tanh d),
//
// tanh c from the table and tanh d = d + d³·p(d²),
// p(u) = (c3 + c5·u) + u²·((c7 + c9·u) + u²·c11), the series to d¹¹ (the
// next term is below 2⁻⁶⁸·|d|), with fused multiply-adds in exactly this
// order; tanhAVX computes the same bits four at a time. ±0 gives ±0, NaN
// NaN, ±Inf ±1, and |x| ≥ 20 gives ±1.
func tanh(x float64) float64 {
	if !(x > -tanhMax && x < tanhMax) || x == 0 {
		return tanhEdge(x)
	}
	kf := math.RoundToEven(x * tanhGrid) // x·16 is exact, |kf| ≤ tanhMid
	d := math.FMA(-kf, 1.0/tanhGrid, x)
	u := d * d
	u2 := u * u
	p := math.FMA(u2, math.FMA(u2, tanhC11, math.FMA(u, tanhC9, tanhC7)), math.FMA(u, tanhC5, tanhC3))
	td := math.FMA(d*u, p, d)
	tc := tanhTable[int(kf)+tanhMid]
	return (tc + td) / math.FMA(tc, td, 1)
}

// tanhEdge returns tanh of x = ±0, NaN or |x| ≥ tanhMax: ±1 for the
// saturated and infinite values, x itself for ±0 and NaN.
func tanhEdge(x float64) float64 {
	switch {
	case x > 0:
		return 1
	case x < 0:
		return -1
	}
	return x
}

// The per-row path's tanh table (legacy.go): a grid of 1/64.
const (
	perRowGrid = 64
	perRowMid  = tanhMax * perRowGrid
)

var perRowTable = tanhTableFor(perRowGrid)

// tanhPerRow is tanh as the per-row path computed it (legacy.go): a grid
// of 1/64, k from x·64 + 1280 + ½ truncated, the series to d⁹ by Horner's
// rule without fused multiply-adds; within 3 ulp of math.Tanh too.
func tanhPerRow(x float64) float64 {
	if !(x > -tanhMax && x < tanhMax) || x == 0 {
		return tanhEdge(x)
	}
	// x·64 + perRowMid + ½ is in (½, 2·perRowMid + ½): truncating rounds x·64.
	k := int(x*perRowGrid + (perRowMid + 0.5))
	d := x - float64(k-perRowMid)*(1.0/perRowGrid)
	d2 := d * d
	td := d + d*d2*(-1.0/3+d2*(2.0/15+d2*(-17.0/315+d2*(62.0/2835))))
	tc := perRowTable[k]
	return (tc + td) / (1 + tc*td)
}

// tanhScalar replaces every h[j] by tanhPerRow(h[j]): the per-row path's
// loop (see legacy.go).
func tanhScalar(h []float64) {
	for j, v := range h {
		h[j] = tanhPerRow(v)
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
// returns the entropy H = −Σ_j p_j·log p_j, with e_j = exp(z_j − max z)
// by [expNonPos] (vectorised), p_j = e_j/Σ_k e_k (the sum in increasing
// j) and log p_j = (z_j − max z) − log Σ_k e_k (one exp per action; the
// shift is subtracted first, so large logits lose no digits).
func logSoftmax(dst, probs, z []float64) (entropy float64) {
	mx := z[0] // a NaN in z makes every output NaN through the exps
	for _, v := range z[1:] {
		if v > mx {
			mx = v
		}
	}
	probs = probs[:len(z)]
	for j, v := range z {
		probs[j] = v - mx
	}
	expNonPosInPlace(probs)
	s := 0.0
	for _, e := range probs {
		s += e
	}
	logS := math.Log(s)
	inv := 1 / s
	dst = dst[:len(z)]
	for j, v := range z {
		lp := (v - mx) - logS
		dst[j] = lp
		p := probs[j] * inv
		probs[j] = p
		entropy -= p * lp
	}
	return entropy
}

// The constants of expNonPos: log₂e, ln 2 split in a high part and the
// rest, and the Taylor coefficients 1/k! of e^r.
const (
	expLog2e = 1.4426950408889634
	expLn2Hi = 0.6931471805599453
	expLn2Lo = 2.3190468138462996e-17
	expFlush = -708 // below, e^x < 2^−1021: the result is +0
)

var expCoef = func() (c [14]float64) {
	f := 1.0
	for k := range c {
		if k > 0 {
			f *= float64(k)
		}
		c[k] = 1 / f
	}
	return c
}()

// expNonPos returns e^x for x ≤ 0 within 1 ulp of the exact value (tests
// check this; math.Exp is within 1.6), with no call and no branch but the flush: x < −708 (−∞ included)
// gives +0, NaN gives NaN. With k = x·log₂e rounded to even and
// r = (x − k·ln2hi) − k·ln2lo (two fused multiply-adds, |r| ≤ 0.347),
//
//	e^x = 2^k·e^r,  e^r = 1 + (r + r²·P(r)),  P(r) = Σ_{2 ≤ j ≤ 13} r^(j−2)/j!
//
// (the next term is below 2⁻⁵⁷), P by Estrin's scheme and every step in
// exactly the order written below; expAVX computes the same bits four at
// a time. For x > 0 it is not defined (logSoftmax never asks).
func expNonPos(x float64) float64 {
	if x < expFlush {
		return 0
	}
	k := math.RoundToEven(x * expLog2e)
	r := math.FMA(-k, expLn2Hi, x)
	r = math.FMA(-k, expLn2Lo, r)
	c := &expCoef
	r2 := r * r
	r4 := r2 * r2
	r8 := r4 * r4
	a0 := math.FMA(r, c[3], c[2])
	a1 := math.FMA(r, c[5], c[4])
	a2 := math.FMA(r, c[7], c[6])
	a3 := math.FMA(r, c[9], c[8])
	a4 := math.FMA(r, c[11], c[10])
	a5 := math.FMA(r, c[13], c[12])
	b0 := math.FMA(r2, a1, a0)
	b1 := math.FMA(r2, a3, a2)
	b2 := math.FMA(r2, a5, a4)
	e0 := math.FMA(r4, b1, b0)
	pr := math.FMA(r8, b2, e0)
	p := 1 + math.FMA(r2, pr, r)
	return p * math.Float64frombits(uint64(int64(k)+1023)<<52)
}

// expNonPosInPlace replaces every x[j] ≤ 0 by expNonPos(x[j]) (four at a
// time in assembly).
func expNonPosInPlace(x []float64) {
	for j := expVec(x); j < len(x); j++ {
		x[j] = expNonPos(x[j])
	}
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

// normDen writes √(var + 1e-8) into den, the denominators of
// normalizeDen.
func normDen(den, variance []float64) {
	for k, v := range variance {
		den[k] = math.Sqrt(v + obsVarEps)
	}
}

// normalizeDen is normalizeObs with the square roots computed beforehand
// by normDen: clip((x − mean)/den, ±10), the same bits; it copies x when
// mean is nil.
func normalizeDen(dst, x, mean, den []float64) {
	if mean == nil {
		copy(dst, x)
		return
	}
	x, mean, den = x[:len(dst)], mean[:len(dst)], den[:len(dst)]
	for k, v := range x {
		// math.Max(−10, math.Min(10, z)) without the calls: the same for
		// every z, NaN included.
		z := (v - mean[k]) / den[k]
		if z < -obsClip {
			z = -obsClip
		} else if z > obsClip {
			z = obsClip
		}
		dst[k] = z
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
