package ppo

import (
	"fmt"
	"math"
)

// The numerical kernels of the batched forward and backward passes and of
// the optimizer step. Each has a pure-Go definition (the *Go functions
// below, which are the reference) and, on amd64 with AVX2 and FMA, an
// assembly version (kernel_amd64.s) that computes the very same floating-
// point operations in the same order, so the two give bit-identical
// results; TestKernelsMatchReference and the fallback tests check it.
// useAsm selects the assembly versions; tests clear it to force the
// fallback.

// gemm computes, for i < m and j < n,
//
//	C[i·ldc + j] = s_r,  s_0 = init[i·ist + j],
//	s_{q+1} = fma(A[i·ars + q·arc], B[q·ldb + j], s_q)   for q = 0 … r−1,
//
// one fused multiply-add chain per element, in increasing q, whatever the
// shape or the position of the element in the matrix: a row of C depends
// only on the same row of A (and on B), never on how many rows are
// computed at once. ist = 0 starts every row from the same vector (a
// bias), init = C (ist = ldc) accumulates into C; strides are in
// elements and non-negative; C must not overlap A, B or init unless
// init = C. It panics when a slice is too short for the shape.
//
// The matrix products of an MLP are all of this form, with H the
// activations (m×k, row-major), W a layer's weights (n×k), Wᵀ its
// transpose (k×n), δ the deltas (m×n):
//
//	forward   Z = H·Wᵀ + b     A = H (k, 1), B = Wᵀ (n), init = b (0)
//	backward  ∂H = δ·W         A = δ (n, 1), B = W (k), init = 0
//	gradient  ∂W = δᵀ·H        A = δᵀ (1, n), B = H (k), init = 0
func gemm(m, n, r int, a []float64, ars, arc int, b []float64, ldb int, c []float64, ldc int, init []float64, ist int) {
	if m <= 0 || n <= 0 {
		return
	}
	if r < 0 || ars < 0 || arc < 0 || ldb < 0 || ldc < 0 || ist < 0 ||
		(r > 0 && len(a) <= (m-1)*ars+(r-1)*arc) || (r > 0 && len(b) < (r-1)*ldb+n) ||
		len(c) < (m-1)*ldc+n || len(init) < (m-1)*ist+n {
		panic(fmt.Sprintf("ppo: gemm %d×%d×%d: lengths a %d (strides %d, %d), b %d (%d), c %d (%d), init %d (%d)",
			m, n, r, len(a), ars, arc, len(b), ldb, len(c), ldc, len(init), ist))
	}
	if n4 := gemmVec(m, n, r, a, ars, arc, b, ldb, c, ldc, init, ist); n4 < n {
		var bt []float64
		if r > 0 {
			bt = b[n4:]
		}
		gemmGo(m, n-n4, r, a, ars, arc, bt, ldb, c[n4:], ldc, init[n4:], ist)
	}
}

// gemmGo is the pure-Go gemm (no bounds checks of its own beyond Go's):
// tiles of 4 rows × 2 columns whose eight chains stay in registers and
// overlap in the processor, then the remaining rows and columns one
// element at a time; each element's chain is the definition's.
func gemmGo(m, n, r int, a []float64, ars, arc int, b []float64, ldb int, c []float64, ldc int, init []float64, ist int) {
	i := 0
	for ; i+4 <= m; i += 4 {
		a0, a1, a2, a3 := i*ars, (i+1)*ars, (i+2)*ars, (i+3)*ars
		j := 0
		for ; j+2 <= n; j += 2 {
			i0, i1, i2, i3 := i*ist+j, (i+1)*ist+j, (i+2)*ist+j, (i+3)*ist+j
			s00, s01 := init[i0], init[i0+1]
			s10, s11 := init[i1], init[i1+1]
			s20, s21 := init[i2], init[i2+1]
			s30, s31 := init[i3], init[i3+1]
			for q := range r {
				bq := b[q*ldb+j : q*ldb+j+2]
				b0, b1 := bq[0], bq[1]
				o := q * arc
				x0, x1, x2, x3 := a[a0+o], a[a1+o], a[a2+o], a[a3+o]
				s00, s01 = math.FMA(x0, b0, s00), math.FMA(x0, b1, s01)
				s10, s11 = math.FMA(x1, b0, s10), math.FMA(x1, b1, s11)
				s20, s21 = math.FMA(x2, b0, s20), math.FMA(x2, b1, s21)
				s30, s31 = math.FMA(x3, b0, s30), math.FMA(x3, b1, s31)
			}
			c[i*ldc+j], c[i*ldc+j+1] = s00, s01
			c[(i+1)*ldc+j], c[(i+1)*ldc+j+1] = s10, s11
			c[(i+2)*ldc+j], c[(i+2)*ldc+j+1] = s20, s21
			c[(i+3)*ldc+j], c[(i+3)*ldc+j+1] = s30, s31
		}
		for ; j < n; j++ {
			s0, s1, s2, s3 := init[i*ist+j], init[(i+1)*ist+j], init[(i+2)*ist+j], init[(i+3)*ist+j]
			for q := range r {
				bq := b[q*ldb+j]
				o := q * arc
				s0 = math.FMA(a[a0+o], bq, s0)
				s1 = math.FMA(a[a1+o], bq, s1)
				s2 = math.FMA(a[a2+o], bq, s2)
				s3 = math.FMA(a[a3+o], bq, s3)
			}
			c[i*ldc+j], c[(i+1)*ldc+j], c[(i+2)*ldc+j], c[(i+3)*ldc+j] = s0, s1, s2, s3
		}
	}
	for ; i < m; i++ {
		ai := i * ars
		for j := range n {
			s := init[i*ist+j]
			for q := range r {
				s = math.FMA(a[ai+q*arc], b[q*ldb+j], s)
			}
			c[i*ldc+j] = s
		}
	}
}

// tanhVecConsts are the constants of tanhAVX, each repeated in four
// lanes: the sign bit, 1, tanhMax, tanhGrid, 1/tanhGrid, c5, c9, c7,
// tanhMid (as four int32 and padding), c3, c11.
type tanhVecConsts [44]float64

var tanhVec4 = func() *tanhVecConsts {
	var k tanhVecConsts
	for i, v := range []float64{math.Copysign(0, -1), 1, tanhMax, tanhGrid, 1.0 / tanhGrid, tanhC5, tanhC9, tanhC7, 0, tanhC3, tanhC11} {
		for l := range 4 {
			k[4*i+l] = v
		}
	}
	// tanhMid as four int32 in the first 16 bytes of slot 8.
	mid := math.Float64frombits(uint64(tanhMid) | uint64(tanhMid)<<32)
	k[32], k[33] = mid, mid
	return &k
}()

// expVecConsts are the constants of expAVX, each repeated in four lanes:
// log₂e, ln2hi, ln2lo, the flush bound, c0 … c13 (1/j!), and 1023 as four
// int64.
type expVecConsts [76]float64

var expVec4 = func() *expVecConsts {
	var k expVecConsts
	vals := append([]float64{expLog2e, expLn2Hi, expLn2Lo, expFlush}, expCoef[:]...)
	for i, v := range vals {
		for l := range 4 {
			k[4*i+l] = v
		}
	}
	for l := range 4 {
		k[72+l] = math.Float64frombits(1023)
	}
	return &k
}()

// tanhInPlace replaces every h[j] by tanh(h[j]), bit for bit the scalar
// [tanh] (four at a time in assembly).
func tanhInPlace(h []float64) {
	for j := tanhVec(h); j < len(h); j++ {
		h[j] = tanh(h[j])
	}
}

// tanhGradMul sets dst[i] = g[i]·(1 − h[i]²) with 1 − h² rounded once,
// fma(−h, h, 1): the backward step through a tanh whose output is h.
// dst may be g.
func tanhGradMul(dst, g, h []float64) {
	n := len(dst)
	g, h = g[:n], h[:n]
	for i := tanhGradVec(dst, g, h); i < n; i++ {
		dst[i] = g[i] * math.FMA(-h[i], h[i], 1)
	}
}

// sumSquares returns Σ x_i² in a fixed order: sixteen partial sums
// s_l = Σ_{i ≡ l mod 16} x_i² over the first 16⌊n/16⌋ elements (fused
// multiply-add chains in increasing i), combined as
// t_l = (s_l + s_{l+4}) + (s_{l+8} + s_{l+12}) for l < 4 and
// (t_0 + t_2) + (t_1 + t_3), then the remaining elements added by
// fused multiply-adds in increasing i.
func sumSquares(x []float64) float64 {
	n16 := len(x) &^ 15
	var t float64
	if n16 > 0 {
		if !sumSquaresVec(x[:n16], &t) {
			var s [16]float64
			for i := 0; i < n16; i += 16 {
				for l := range s {
					s[l] = math.FMA(x[i+l], x[i+l], s[l])
				}
			}
			var u [4]float64
			for l := range u {
				u[l] = (s[l] + s[l+4]) + (s[l+8] + s[l+12])
			}
			t = (u[0] + u[2]) + (u[1] + u[3])
		}
	}
	for _, v := range x[n16:] {
		t = math.FMA(v, v, t)
	}
	return t
}

// adamConsts are the constants of one Adam step, in the order adamVec
// loads them: the gradient scale (clipping), the step size lr/(1 − β1ᵗ),
// 1/√(1 − β2ᵗ), ε, β1, 1 − β1, β2, 1 − β2.
type adamConsts [8]float64

func newAdamConsts(scale, stepSize, invSqrtBC2, eps float64) adamConsts {
	return adamConsts{scale, stepSize, invSqrtBC2, eps, adamBeta1, 1 - adamBeta1, adamBeta2, 1 - adamBeta2}
}

// adamUpdate applies one Adam step to the parameters p with moments m, v
// and gradient g (all of one length), each element on its own:
//
//	g′ = scale·g,  m = β1·m + (1 − β1)·g′,  v = β2·v + (1 − β2)·g′·g′,
//	p = p − (stepSize·m)/(√v·invSqrtBC2 + ε),
//
// every product and sum rounded on its own (no fused multiply-add).
func adamUpdate(p, m, v, g []float64, k *adamConsts) {
	n := len(g)
	p, m, v = p[:n], m[:n], v[:n]
	for i := adamVec(p, m, v, g, k); i < n; i++ {
		adamOne(p, m, v, g, i, k)
	}
}

func adamOne(p, m, v, g []float64, i int, k *adamConsts) {
	gi := g[i] * k[0]
	mi := float64(k[4]*m[i]) + float64(k[5]*gi)
	vi := float64(k[6]*v[i]) + float64(float64(k[7]*gi)*gi)
	m[i], v[i] = mi, vi
	p[i] -= float64(k[1]*mi) / (float64(math.Sqrt(vi)*k[2]) + k[3])
}
