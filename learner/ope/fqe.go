package ope

import (
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/mat"
)

// features holds the Q model's inputs, one row of d values per step, the
// last a constant 1: ModelLinear's x(s) = ((s − m)/σ, 1), with m and σ the
// mean and standard deviation of each state feature over the evaluation
// set (a feature of σ = 0 is 0 throughout), or ModelFQE's (see
// historyFeatures). They are computed from the states only, never an
// outcome, so they do not leak across the cross-fitting folds.
type features struct {
	d int
	x []float64
}

// stateFeatures returns ModelLinear's features of the rows × dim states.
func stateFeatures(obs []float32, steps, dim int) features {
	f := features{d: dim + 1, x: make([]float64, steps*(dim+1))}
	for r := range steps {
		dst := f.x[r*f.d : (r+1)*f.d]
		for j, v := range obs[r*dim : (r+1)*dim] {
			dst[j] = float64(v)
		}
		dst[dim] = 1
	}
	standardise(f.x, steps, f.d, 0, dim)
	return f
}

// randomFeatures is the number K of random ReLU features of ModelFQE.
const randomFeatures = 64

// historyFeatures returns ModelFQE's inputs, per row r = step t of journey
// i (the rows off[i] … off[i+1]−1 in step order): z_t = (s_t, s̄_t)
// standardised, with s̄_t = (1/(t+1)) Σ_{k≤t} s_k the mean of the
// journey's states so far, then K random ReLU features max(0, u_kᵀ(z_t, 1))
// with u_k ~ N(0, I/(2·dim)) drawn from PCG(1, 2) — fixed, never fitted to
// the data — standardised too, and a constant 1:
//
//	x(h_t) = (z_t, standardise(max(0, U (z_t, 1))), 1).
//
// A function of the history up to s_t, before the action a_t, so DR
// stays unbiased with it. The mean of the states averages out the noise of
// the features redrawn at every step (a user's latent traits show through
// it, where one step's state shows them blurred); the random features
// (Rahimi & Recht 2007) let a linear regression on x bend where the value
// of an action depends on a product of features — a user likely to be of
// one segment, and the action's value to that segment — which θ_aᵀ s
// cannot represent.
func historyFeatures(obs []float32, off []int, dim int) features {
	const K = randomFeatures
	w, rows := 2*dim, off[len(off)-1]
	f := features{d: w + K + 1, x: make([]float64, rows*(w+K+1))}
	historyRaw(obs, off, dim, f.x, f.d)
	standardise(f.x, rows, f.d, 0, w)
	rng := rand.New(rand.NewPCG(1, 2))
	U := make([]float64, K*(w+1))
	for k := range U {
		U[k] = rng.NormFloat64() / math.Sqrt(float64(w))
	}
	for r := range rows {
		x := f.row(r)
		x[w] = 1 // the constant, moved to the end below
		for k := range K {
			u := U[k*(w+1) : (k+1)*(w+1)]
			h := 0.0
			for j, v := range x[:w+1] { // z_t and the constant 1
				h += u[j] * v
			}
			x[w+1+k] = max(h, 0)
		}
	}
	// (z_t, 1, h) → (z_t, h, 1)
	for r := range rows {
		x := f.row(r)
		copy(x[w:], x[w+1:])
		x[f.d-1] = 1
	}
	standardise(f.x, rows, f.d, w, w+K)
	return f
}

// historyRaw writes per row r, unstandardised, (s_t, s̄_t) — the state
// and the mean of its journey's states up to it — into dst[r·stride:].
func historyRaw(obs []float32, off []int, dim int, dst []float64, stride int) {
	sum := make([]float64, dim)
	for i := range len(off) - 1 {
		clear(sum)
		for r := off[i]; r < off[i+1]; r++ {
			row := dst[r*stride : r*stride+2*dim]
			n := float64(r - off[i] + 1)
			for j, v := range obs[r*dim : (r+1)*dim] {
				sum[j] += float64(v)
				row[j] = float64(v)
				row[dim+j] = sum[j] / n
			}
		}
	}
}

// standardise replaces, in the rows × stride values x, each column j of
// [lo, hi) by (v − m_j)/σ_j, with m_j and σ_j its mean and standard
// deviation (0 throughout for a column of σ = 0).
func standardise(x []float64, rows, stride, lo, hi int) {
	mean := make([]float64, hi-lo)
	m2 := make([]float64, hi-lo)
	for r := range rows {
		for j, v := range x[r*stride+lo : r*stride+hi] {
			// Welford's update, per column.
			delta := v - mean[j]
			mean[j] += delta / float64(r+1)
			m2[j] += delta * (v - mean[j])
		}
	}
	inv := make([]float64, hi-lo)
	for j := range inv {
		if sd := math.Sqrt(m2[j] / float64(max(rows, 1))); sd > 1e-12 {
			inv[j] = 1 / sd
		}
	}
	for r := range rows {
		row := x[r*stride+lo : r*stride+hi]
		for j, v := range row {
			row[j] = (v - mean[j]) * inv[j]
		}
	}
}

func (f features) row(r int) []float64 { return f.x[r*f.d : (r+1)*f.d] }

// linearQ is the fitted-Q model
//
//	Q̂(h, a) = clamp(θ_aᵀ x(h), lo, hi)
//
// linear in the features x of the history h (ModelFQE) or of the state
// alone (ModelLinear), one weight vector per action (the features × a
// one-hot of the action), clamped to the range
// [lo, hi] of the logged returns-to-go so that no prediction leaves the
// values the data can show (the guard against model blow-ups).
type linearQ struct {
	nA, d  int
	theta  []float64 // nA × d
	lo, hi float64
}

// all writes Q̂(s, a) for every action a of the features x into dst.
func (q *linearQ) all(x, dst []float64) {
	for a := range q.nA {
		th := q.theta[a*q.d : (a+1)*q.d]
		s := 0.0
		for j, v := range x {
			s += th[j] * v
		}
		dst[a] = min(max(s, q.lo), q.hi)
	}
}

// value returns V̂(s) = Σ_a π(a|s) Q̂(s, a) for probabilities pi, with q
// a scratch slice of nA.
func (q *linearQ) value(x, pi, scratch []float64) float64 {
	q.all(x, scratch)
	v := 0.0
	for a, p := range pi {
		if p != 0 {
			v += p * scratch[a]
		}
	}
	return v
}

// fqeInput is what fitted-Q evaluation reads of the evaluation set.
type fqeInput struct {
	f      features
	nA     int
	act    []int
	rew    []float64
	last   []bool    // the row is its journey's last step
	pi     []float64 // π(·|s) of the target, steps × nA
	gamma  float64
	ridge  float64
	iters  int
	lo, hi float64
}

// errNotPD reports a singular ridge system (impossible with ridge > 0
// unless the features overflow).
var errNotPD = errors.New("fitted-Q: ridge system not positive definite")

// fitFQE fits the target policy's Q function by fitted-Q evaluation on the
// rows train: θ⁽⁰⁾ = 0 and, for k = 0 … iters−1,
//
//	y⁽ᵏ⁾ = r + γ·(1 − last)·Σ_a′ π(a′|s′) Q̂⁽ᵏ⁾(s′, a′)       (s′ the next step's state)
//	θ_a⁽ᵏ⁺¹⁾ = argmin_θ Σ_{rows of action a} (θᵀx − y⁽ᵏ⁾)² + λ·n_a·‖θ‖²
//	         = (X_aᵀX_a + λ n_a I)⁻¹ X_aᵀ y⁽ᵏ⁾
//
// stopping early when no weight moves by more than 1e-10·(1 + max |θ|).
// An episode of H steps needs H iterations for its first step's target to
// see its last reward. The Gram matrices are block-diagonal by action and
// factorised once (Cholesky), so an iteration costs one pass over the rows.
func fitFQE(in *fqeInput, train []int) (*linearQ, int, error) {
	d, nA := in.f.d, in.nA
	q := &linearQ{nA: nA, d: d, theta: make([]float64, nA*d), lo: in.lo, hi: in.hi}
	chol, err := ridgeFactors(in, train)
	if err != nil {
		return nil, 0, err
	}
	b := make([]float64, nA*d)
	next := make([]float64, nA*d)
	scratch := make([]float64, nA)
	it := 0
	for it < in.iters {
		it++
		clear(b)
		for _, r := range train {
			y := in.rew[r]
			if !in.last[r] {
				y += in.gamma * q.value(in.f.row(r+1), in.pi[(r+1)*nA:(r+2)*nA], scratch)
			}
			ba := b[in.act[r]*d : (in.act[r]+1)*d]
			for j, v := range in.f.row(r) {
				ba[j] += v * y
			}
		}
		if err := solveBlocks(chol, b, next, d); err != nil {
			return nil, it, err
		}
		moved, scale := 0.0, 0.0
		for j, v := range next {
			moved = max(moved, math.Abs(v-q.theta[j]))
			scale = max(scale, math.Abs(v))
		}
		copy(q.theta, next)
		if moved <= 1e-10*(1+scale) {
			break
		}
	}
	return q, it, nil
}

// ridgeFactors returns the Cholesky factor of X_aᵀX_a + λ·max(n_a, 1)·I of
// every action a over the rows train (nil for an action never taken:
// its θ_a stays 0).
func ridgeFactors(in *fqeInput, train []int) ([]*mat.Cholesky, error) {
	d, nA := in.f.d, in.nA
	gram := make([]float64, nA*d*d)
	count := make([]int, nA)
	for _, r := range train {
		a := in.act[r]
		count[a]++
		g := gram[a*d*d : (a+1)*d*d]
		x := in.f.row(r)
		for i, xi := range x {
			if xi == 0 {
				continue
			}
			gi := g[i*d : (i+1)*d]
			for j := i; j < d; j++ {
				gi[j] += xi * x[j]
			}
		}
	}
	out := make([]*mat.Cholesky, nA)
	for a := range nA {
		if count[a] == 0 {
			continue
		}
		g := gram[a*d*d : (a+1)*d*d]
		sym := mat.NewSymDense(d, nil)
		for i := range d {
			for j := i; j < d; j++ {
				v := g[i*d+j]
				if i == j {
					v += in.ridge * float64(count[a])
				}
				sym.SetSym(i, j, v)
			}
		}
		var c mat.Cholesky
		if !c.Factorize(sym) {
			return nil, fmt.Errorf("%w (action %d)", errNotPD, a)
		}
		out[a] = &c
	}
	return out, nil
}

// solveBlocks solves each action's system for the right-hand side b into
// theta (0 for an action without a factor).
func solveBlocks(chol []*mat.Cholesky, b, theta []float64, d int) error {
	for a, c := range chol {
		dst := theta[a*d : (a+1)*d]
		if c == nil {
			clear(dst)
			continue
		}
		var x mat.VecDense
		if err := c.SolveVecTo(&x, mat.NewVecDense(d, b[a*d:(a+1)*d])); err != nil {
			return fmt.Errorf("fitted-Q: solve action %d: %w", a, err)
		}
		for j := range d {
			dst[j] = x.AtVec(j)
		}
	}
	return nil
}

// foldOf returns journey i's cross-fitting fold among k: a hash of its id
// (so a journey keeps its fold as a window slides), or i mod k for a
// journey without one.
func foldOf(id string, i, k int) int {
	if id == "" {
		return i % k
	}
	h := fnv.New32a()
	h.Write([]byte(id))
	return int(h.Sum32() % uint32(k))
}
