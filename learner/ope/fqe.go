package ope

import (
	"errors"
	"fmt"
	"hash/fnv"
	"math"

	"gonum.org/v1/gonum/mat"
)

// features holds the Q model's inputs, one row of d = dim + 1 values per
// step: x(s) = ((s − m)/σ, 1), with m and σ the mean and standard
// deviation of each state feature over the evaluation set (a feature of
// σ = 0 is 0 throughout). Standardising uses the states only, never an
// outcome, so it does not leak across the cross-fitting folds.
type features struct {
	d int
	x []float64
}

func newFeatures(obs []float32, steps, dim int) features {
	d := dim + 1
	mean := make([]float64, dim)
	m2 := make([]float64, dim)
	for r := range steps {
		row := obs[r*dim : (r+1)*dim]
		for j, v := range row {
			// Welford's update, per column.
			delta := float64(v) - mean[j]
			mean[j] += delta / float64(r+1)
			m2[j] += delta * (float64(v) - mean[j])
		}
	}
	inv := make([]float64, dim)
	for j := range dim {
		if sd := math.Sqrt(m2[j] / float64(max(steps, 1))); sd > 1e-12 {
			inv[j] = 1 / sd
		}
	}
	f := features{d: d, x: make([]float64, steps*d)}
	for r := range steps {
		row, dst := obs[r*dim:(r+1)*dim], f.x[r*d:(r+1)*d]
		for j, v := range row {
			dst[j] = (float64(v) - mean[j]) * inv[j]
		}
		dst[dim] = 1
	}
	return f
}

func (f features) row(r int) []float64 { return f.x[r*f.d : (r+1)*f.d] }

// linearQ is the fitted-Q model
//
//	Q̂(s, a) = clamp(θ_aᵀ x(s), lo, hi)
//
// linear in the features of the state, one weight vector per action (the
// features of the state × a one-hot of the action), clamped to the range
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
