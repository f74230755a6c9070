//go:build amd64 && !purego

package ppo

// useAsm selects the AVX2/FMA assembly kernels of kernel_amd64.s: set when
// the processor has AVX2 and FMA and the operating system saves the YMM
// registers. Tests clear it to run the pure-Go reference kernels.
var useAsm = hasAVX2FMA()

// hasAVX2FMA reports AVX2 and FMA support with the YMM state enabled
// (CPUID leaf 1: FMA, OSXSAVE, AVX; XGETBV(0): XMM and YMM state; CPUID
// leaf 7: AVX2).
func hasAVX2FMA() bool {
	maxLeaf, _, _, _ := cpuid(0, 0)
	if maxLeaf < 7 {
		return false
	}
	_, _, ecx1, _ := cpuid(1, 0)
	const fma, osxsave, avx = 1 << 12, 1 << 27, 1 << 28
	if ecx1&(fma|osxsave|avx) != fma|osxsave|avx {
		return false
	}
	if xcr0, _ := xgetbv0(); xcr0&6 != 6 {
		return false
	}
	_, ebx7, _, _ := cpuid(7, 0)
	const avx2 = 1 << 5
	return ebx7&avx2 != 0
}

func cpuid(eaxArg, ecxArg uint32) (eax, ebx, ecx, edx uint32)
func xgetbv0() (eax, edx uint32)

//go:noescape
func gemmAVX(m, n, r int, a *float64, ars, arc int, b *float64, ldb int, c *float64, ldc int, init *float64, ist int, masks *[4][4]int64)

// laneMasks[c] selects the first c of four lanes (VMASKMOVPD).
var laneMasks = [4][4]int64{{}, {-1}, {-1, -1}, {-1, -1, -1}}

// gemmVec runs gemm in assembly when useAsm is set (the last 1 to 3
// columns under a lane mask, which neither reads nor writes the other
// lanes) and returns how many columns it did: n, or 0.
func gemmVec(m, n, r int, a []float64, ars, arc int, b []float64, ldb int, c []float64, ldc int, init []float64, ist int) int {
	if !useAsm || r <= 0 {
		return 0
	}
	gemmAVX(m, n, r, &a[0], ars, arc, &b[0], ldb, &c[0], ldc, &init[0], ist, &laneMasks)
	return n
}

//go:noescape
func tanhAVX(x *float64, n int, table *float64, k *tanhVecConsts)

//go:noescape
func tanhGradAVX(dst, gr, h *float64, n int)

//go:noescape
func sumSquaresAVX(x *float64, n int) float64

//go:noescape
func adamAVX(p, m, v, gr *float64, n int, k *adamConsts)

// tanhVec applies tanh to h[:len(h)&^3] in assembly when useAsm is set
// and returns how many elements it did.
func tanhVec(h []float64) int {
	n4 := len(h) &^ 3
	if !useAsm || n4 == 0 {
		return 0
	}
	tanhAVX(&h[0], n4, &tanhTable[0], tanhVec4)
	return n4
}

// tanhGradVec runs tanhGradMul over the first len(dst)&^3 elements in
// assembly when useAsm is set (g and h at least as long as dst) and
// returns how many it did.
func tanhGradVec(dst, g, h []float64) int {
	n4 := len(dst) &^ 3
	if !useAsm || n4 == 0 {
		return 0
	}
	_, _ = g[len(dst)-1], h[len(dst)-1]
	tanhGradAVX(&dst[0], &g[0], &h[0], n4)
	return n4
}

// sumSquaresVec stores in *t the sixteen-lane part of sumSquares of x
// (len(x) a positive multiple of 16) and reports whether it ran.
func sumSquaresVec(x []float64, t *float64) bool {
	if !useAsm {
		return false
	}
	*t = sumSquaresAVX(&x[0], len(x))
	return true
}

// adamVec runs adamUpdate over the first len(g)&^3 elements in assembly
// when useAsm is set (p, m, v at least as long as g) and returns how
// many it did.
func adamVec(p, m, v, g []float64, k *adamConsts) int {
	n4 := len(g) &^ 3
	if !useAsm || n4 == 0 {
		return 0
	}
	_, _, _ = p[len(g)-1], m[len(g)-1], v[len(g)-1]
	adamAVX(&p[0], &m[0], &v[0], &g[0], n4, k)
	return n4
}

//go:noescape
func expAVX(x *float64, n int, k *expVecConsts)

// expVec applies expNonPos to x[:len(x)&^3] in assembly when useAsm is
// set and returns how many elements it did.
func expVec(x []float64) int {
	n4 := len(x) &^ 3
	if !useAsm || n4 == 0 {
		return 0
	}
	expAVX(&x[0], n4, expVec4)
	return n4
}
