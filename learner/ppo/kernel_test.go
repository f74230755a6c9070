package ppo

import (
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
)

// withAsm runs f with useAsm set to on (the assembly kernels, when the
// processor has them) and restores it.
func withAsm(on bool, f func()) {
	old := useAsm
	useAsm = on && old
	defer func() { useAsm = old }()
	f()
}

// kernelPaths are the kernel implementations to test: the assembly ones
// when this processor runs them, and always the pure-Go fallback.
func kernelPaths() []bool {
	if useAsm {
		return []bool{true, false}
	}
	return []bool{false}
}

func pathName(asm bool) string {
	if asm {
		return "asm"
	}
	return "go"
}

// naiveGemm is gemm's definition as the textbook triple loop.
func naiveGemm(m, n, r int, a []float64, ars, arc int, b []float64, ldb int, c []float64, ldc int, init []float64, ist int) {
	for i := range m {
		for j := range n {
			s := init[i*ist+j]
			for q := range r {
				s = math.FMA(a[i*ars+q*arc], b[q*ldb+j], s)
			}
			c[i*ldc+j] = s
		}
	}
}

func randSlice(rng *rand.Rand, n int) []float64 {
	s := make([]float64, n)
	for i := range s {
		s[i] = rng.NormFloat64()
	}
	return s
}

// gemmCase is one random gemm problem; the layouts are those of the MLP
// passes (row-major A, transposed A, bias or accumulating init) with
// padded strides.
type gemmCase struct {
	m, n, r, ars, arc, ldb, ldc, ist int
	a, b, c, init                    []float64
}

func newGemmCase(rng *rand.Rand, m, n, r, layout int) gemmCase {
	g := gemmCase{m: m, n: n, r: r, ldb: n + rng.IntN(3), ldc: n + rng.IntN(3)}
	g.ars, g.arc = r+rng.IntN(3), 1
	if layout%2 == 1 { // Aᵀ, as δᵀ in the weight gradient
		g.ars, g.arc = 1, m+rng.IntN(3)
	}
	switch layout / 2 % 3 {
	case 0:
		g.ist = 0 // a bias row
	case 1:
		g.ist = n + rng.IntN(3)
	default:
		g.ist = -1 // accumulate into C
	}
	g.a = randSlice(rng, (m-1)*g.ars+(r-1)*g.arc+1)
	g.b = randSlice(rng, (r-1)*g.ldb+n)
	g.c = randSlice(rng, (m-1)*g.ldc+n)
	if g.ist >= 0 {
		g.init = randSlice(rng, (m-1)*g.ist+n)
	}
	return g
}

// check runs gemm and naiveGemm on copies of the case and reports the
// first element that differs in its bits.
func (g gemmCase) check(t *testing.T, label string) {
	t.Helper()
	got, want := append([]float64(nil), g.c...), append([]float64(nil), g.c...)
	initGot, initWant, ist := g.init, g.init, g.ist
	if ist < 0 {
		initGot, initWant, ist = got, want, g.ldc
	}
	naiveGemm(g.m, g.n, g.r, g.a, g.ars, g.arc, g.b, g.ldb, want, g.ldc, initWant, ist)
	gemm(g.m, g.n, g.r, g.a, g.ars, g.arc, g.b, g.ldb, got, g.ldc, initGot, ist)
	for i := range want {
		if math.Float64bits(got[i]) != math.Float64bits(want[i]) {
			t.Fatalf("%s %d×%d×%d (strides a %d,%d b %d c %d init %d): c[%d] = %v, want %v bit for bit",
				label, g.m, g.n, g.r, g.ars, g.arc, g.ldb, g.ldc, g.ist, i, got[i], want[i])
		}
	}
}

// TestGemmMatchesNaive checks gemm, on the assembly path and on the pure-Go
// fallback, against its definition (naiveGemm) on random shapes: 1 to 9
// and up to 70 rows, columns and depths (odd sizes, one row, sizes that are
// not multiples of the vector width), transposed A, padded strides, bias,
// per-row and accumulating starts, and exact zeros in the data. Tolerance:
// none, the bits must agree (each element is the same chain of fused
// multiply-adds).
func TestGemmMatchesNaive(t *testing.T) {
	for _, asm := range kernelPaths() {
		withAsm(asm, func() {
			rng := rand.New(rand.NewPCG(1, 2))
			for it := range 3000 {
				m, n, r := 1+rng.IntN(9), 1+rng.IntN(9), 1+rng.IntN(9)
				if it%3 == 0 {
					m, n, r = 1+rng.IntN(70), 1+rng.IntN(70), 1+rng.IntN(70)
				}
				g := newGemmCase(rng, m, n, r, it)
				if it%7 == 0 {
					for i := range g.a {
						if rng.IntN(3) == 0 {
							g.a[i] = 0
						}
					}
				}
				g.check(t, pathName(asm))
			}
			for _, s := range [][3]int{{64, 64, 64}, {64, 64, 16}, {64, 12, 64}, {12, 64, 64}, {1, 64, 64}, {1, 12, 64}, {64, 1, 64}, {1, 64, 1}, {64, 16, 64}} {
				for layout := range 6 {
					newGemmCase(rng, s[0], s[1], s[2], layout).check(t, pathName(asm))
				}
			}
		})
	}
}

// FuzzGemm checks gemm against naiveGemm, bit for bit, on shapes and data
// derived from the fuzzer's input; it never panics on a valid shape.
func FuzzGemm(f *testing.F) {
	f.Add(uint8(64), uint8(64), uint8(64), uint8(0), uint64(1))
	f.Add(uint8(1), uint8(13), uint8(7), uint8(3), uint64(2))
	f.Add(uint8(5), uint8(1), uint8(64), uint8(4), uint64(3))
	f.Fuzz(func(t *testing.T, m, n, r, layout uint8, seed uint64) {
		rng := rand.New(rand.NewPCG(seed, 7))
		for _, asm := range kernelPaths() {
			withAsm(asm, func() {
				newGemmCase(rng, 1+int(m)%80, 1+int(n)%80, 1+int(r)%80, int(layout)).check(t, pathName(asm))
			})
		}
	})
}

// TestGemmPanicsOnShortSlices checks that gemm refuses shapes its slices
// cannot hold (the assembly would read or write out of bounds).
func TestGemmPanicsOnShortSlices(t *testing.T) {
	a, b, c, init := make([]float64, 12), make([]float64, 12), make([]float64, 12), make([]float64, 4)
	for _, tc := range []struct {
		name string
		f    func()
	}{
		{"a", func() { gemm(4, 3, 4, a[:15-4], 4, 1, b, 3, c, 3, init, 0) }},
		{"b", func() { gemm(3, 4, 3, a, 4, 1, b[:11], 4, c, 4, init, 0) }},
		{"c", func() { gemm(3, 4, 3, a, 4, 1, b, 4, c[:11], 4, init, 0) }},
		{"init", func() { gemm(3, 4, 3, a, 4, 1, b, 4, c, 4, init[:3], 0) }},
		{"stride", func() { gemm(3, 4, 3, a, -1, 1, b, 4, c, 4, init, 0) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			tc.f()
		})
	}
}

// tanhInputs returns arguments that cover tanh's branches: normal and
// wide uniform values, tiny ones, table points k/64 and the midpoints
// between them (where k is rounded to even), the saturation bound and the
// special values.
func tanhInputs(rng *rand.Rand, n int) []float64 {
	xs := []float64{0, math.Copysign(0, -1), math.NaN(), math.Inf(1), math.Inf(-1), 20, -20,
		math.Nextafter(20, 0), math.Nextafter(-20, 0), 19.5, -19.5, 1e300, -1e300, 5e-324, -5e-324,
		1.0 / 128, -1.0 / 128, 3.0 / 128, 1 + 1.0/128, -2 - 3.0/128}
	for len(xs) < n {
		switch len(xs) % 5 {
		case 0:
			xs = append(xs, rng.NormFloat64()*3)
		case 1:
			xs = append(xs, (rng.Float64()*2-1)*25)
		case 2:
			xs = append(xs, math.Ldexp(rng.Float64()-0.5, -rng.IntN(60)))
		case 3:
			xs = append(xs, float64(rng.IntN(2*tanhMid+1)-tanhMid)/tanhGrid)
		default:
			xs = append(xs, (float64(rng.IntN(2*tanhMid)-tanhMid)+0.5)/tanhGrid)
		}
	}
	return xs
}

// TestTanhVecMatchesScalar checks tanhInPlace (four lanes at a time in
// assembly, the scalar tail) against the scalar tanh on every element,
// bit for bit, for slices of every length from 0 to 40 and a long one.
func TestTanhVecMatchesScalar(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	xs := tanhInputs(rng, 200_000)
	for _, asm := range kernelPaths() {
		withAsm(asm, func() {
			for n := 0; n <= 40; n++ {
				check := func(src []float64) {
					h := append([]float64(nil), src...)
					tanhInPlace(h)
					for i, x := range src {
						if want := tanh(x); math.Float64bits(h[i]) != math.Float64bits(want) {
							t.Fatalf("%s: tanh(%v) = %v, want %v bit for bit (length %d)", pathName(asm), x, h[i], want, len(src))
						}
					}
				}
				check(xs[n : 2*n])
				if n == 40 {
					check(xs)
				}
			}
		})
	}
}

// exactExp returns e^x to 200 bits: e^(x/2¹⁰) by its Taylor series,
// squared ten times.
func exactExp(x float64) *big.Float {
	const prec = 200
	y := new(big.Float).SetPrec(prec).SetFloat64(math.Ldexp(x, -10))
	sum := new(big.Float).SetPrec(prec).SetInt64(1)
	term := new(big.Float).SetPrec(prec).SetInt64(1)
	for k := int64(1); k < 60; k++ {
		term.Mul(term, y)
		term.Quo(term, new(big.Float).SetPrec(prec).SetInt64(k))
		sum.Add(sum, term)
	}
	for range 10 {
		sum.Mul(sum, sum)
	}
	return sum
}

// expInputs returns arguments of expNonPos: exponential, uniform and tiny
// values, the flush bound and the special values.
func expInputs(rng *rand.Rand, n int) []float64 {
	xs := []float64{0, math.Copysign(0, -1), -5e-324, -1e-300, expFlush, math.Nextafter(expFlush, 0),
		math.Nextafter(expFlush, -1000), -745, -1e308, math.Inf(-1), math.NaN(), -math.Ln2 / 2, -math.Ln2}
	for len(xs) < n {
		switch len(xs) % 3 {
		case 0:
			xs = append(xs, -rng.ExpFloat64()*3)
		case 1:
			xs = append(xs, -rng.Float64()*708)
		default:
			xs = append(xs, -math.Ldexp(rng.Float64(), -rng.IntN(60)))
		}
	}
	return xs
}

// TestExpNonPosAccuracy checks expNonPos against e^x computed to 200 bits:
// within 1 ulp of the exact value on [−708, 0], +0 below −708 and for
// −∞, NaN for NaN.
func TestExpNonPosAccuracy(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	for _, x := range expInputs(rng, 8000) {
		got := expNonPos(x)
		switch {
		case math.IsNaN(x):
			if !math.IsNaN(got) {
				t.Errorf("expNonPos(NaN) = %v", got)
			}
			continue
		case x < expFlush:
			if math.Float64bits(got) != 0 {
				t.Errorf("expNonPos(%v) = %v, want +0 (flushed)", x, got)
			}
			continue
		}
		exact := exactExp(x)
		want, _ := exact.Float64()
		ulp := math.Nextafter(want, math.Inf(1)) - want
		e, _ := new(big.Float).Sub(new(big.Float).SetFloat64(got), exact).Float64()
		if math.Abs(e) > ulp {
			t.Errorf("expNonPos(%v) = %v, exact %v: error %.3f ulp, want ≤ 1", x, got, want, math.Abs(e)/ulp)
		}
	}
}

// TestExpVecMatchesScalar checks expNonPosInPlace (four lanes at a time in
// assembly, the scalar tail) against expNonPos on every element, bit for
// bit (NaN for NaN), for slices of every length from 0 to 40 and a long
// one.
func TestExpVecMatchesScalar(t *testing.T) {
	xs := expInputs(rand.New(rand.NewPCG(11, 12)), 100_000)
	for _, asm := range kernelPaths() {
		withAsm(asm, func() {
			for n := 0; n <= 40; n++ {
				check := func(src []float64) {
					h := append([]float64(nil), src...)
					expNonPosInPlace(h)
					for i, x := range src {
						want := expNonPos(x)
						if math.Float64bits(h[i]) != math.Float64bits(want) && !(math.IsNaN(h[i]) && math.IsNaN(want)) {
							t.Fatalf("%s: exp(%v) = %v, want %v bit for bit (length %d)", pathName(asm), x, h[i], want, len(src))
						}
					}
				}
				check(xs[n : 2*n])
				if n == 40 {
					check(xs)
				}
			}
		})
	}
}

// TestElementwiseKernelsMatchReference checks tanhGradMul, sumSquares and
// adamUpdate, on the assembly path, against their scalar definitions, bit
// for bit, for every length from 0 to 70 and unaligned starts.
func TestElementwiseKernelsMatchReference(t *testing.T) {
	if !useAsm {
		t.Skip("no assembly kernels on this processor: the definitions are the kernels")
	}
	rng := rand.New(rand.NewPCG(5, 6))
	for n := 0; n <= 70; n++ {
		off := rng.IntN(3)
		g := randSlice(rng, n+off)[off:]
		h := randSlice(rng, n+off)[off:]
		for i := range h {
			h[i] = math.Tanh(h[i])
		}

		got := make([]float64, n)
		tanhGradMul(got, g, h)
		for i := range got {
			if want := g[i] * math.FMA(-h[i], h[i], 1); math.Float64bits(got[i]) != math.Float64bits(want) {
				t.Fatalf("tanhGradMul n=%d [%d] = %v, want %v", n, i, got[i], want)
			}
		}

		var gotSS, wantSS float64
		gotSS = sumSquares(g)
		withAsm(false, func() { wantSS = sumSquares(g) })
		if math.Float64bits(gotSS) != math.Float64bits(wantSS) {
			t.Fatalf("sumSquares n=%d = %v, want %v", n, gotSS, wantSS)
		}

		k := newAdamConsts(0.7, 3e-4, 1.3, 1e-5)
		p1, m1, v1 := randSlice(rng, n), randSlice(rng, n), randSlice(rng, n)
		for i := range v1 {
			v1[i] = math.Abs(v1[i])
		}
		p2, m2, v2 := append([]float64(nil), p1...), append([]float64(nil), m1...), append([]float64(nil), v1...)
		adamUpdate(p1, m1, v1, g, &k)
		for i := range p2 {
			adamOne(p2, m2, v2, g, i, &k)
		}
		for i := range p1 {
			if p1[i] != p2[i] || m1[i] != m2[i] || v1[i] != v2[i] {
				t.Fatalf("adamUpdate n=%d [%d]: p, m, v = %v, %v, %v, want %v, %v, %v", n, i, p1[i], m1[i], v1[i], p2[i], m2[i], v2[i])
			}
		}
	}
	// sumSquares's order: sixteen lanes, a fixed tree, then the tail.
	x := randSlice(rng, 37)
	var s [16]float64
	for i := range 32 {
		s[i%16] = math.FMA(x[i], x[i], s[i%16])
	}
	var u [4]float64
	for l := range u {
		u[l] = (s[l] + s[l+4]) + (s[l+8] + s[l+12])
	}
	want := (u[0] + u[2]) + (u[1] + u[3])
	for _, v := range x[32:] {
		want = math.FMA(v, v, want)
	}
	if got := sumSquares(x); got != want {
		t.Errorf("sumSquares = %v, want %v by its documented order", got, want)
	}
}

// mlpCase is a random network with its parameters and transposed weights.
type mlpCase struct {
	net   mlp
	p, wt []float64
}

func newMLPCase(rng *rand.Rand, sizes []int) mlpCase {
	c := mlpCase{net: newMLP(sizes)}
	c.p = randSlice(rng, c.net.n)
	for i := range c.p {
		c.p[i] *= 0.5
	}
	c.wt = make([]float64, c.net.n)
	c.net.transposeWeights(c.p, c.wt)
	return c
}

// TestBatchedPassesMatchPerRow checks the batched forward pass, backward
// deltas and gradient (forwardRows, backwardRows, gradPart) against the
// per-row path's forwardRow and backwardRow on random networks (odd
// widths, one hidden layer or three, 1 to 70 rows, the gradient split in
// 1 to 4 parts). The two orders of summation differ, so the tolerance is
// |batched − per-row| ≤ 1e-13·(1 + |per-row|) for outputs and deltas and
// ≤ 1e-12·max|∂L/∂θ| per gradient component.
func TestBatchedPassesMatchPerRow(t *testing.T) {
	for _, asm := range kernelPaths() {
		withAsm(asm, func() {
			rng := rand.New(rand.NewPCG(7, 8))
			for it := range 60 {
				sizes := []int{1 + rng.IntN(20)}
				for range 1 + rng.IntN(3) {
					sizes = append(sizes, 1+rng.IntN(70))
				}
				sizes = append(sizes, 1+rng.IntN(13))
				c := newMLPCase(rng, sizes)
				m := 1 + rng.IntN(70)
				if it%5 == 0 {
					m = 1
				}
				in, out, L := sizes[0], sizes[len(sizes)-1], c.net.layers()
				x := randSlice(rng, m*in)
				dout := randSlice(rng, m*out)
				nr := newNetRows(&c.net, m, true)
				c.net.forwardRows(c.p, c.wt, x, nr.act, 0, m)
				copy(nr.delta[L-1], dout)
				zeros := make([]float64, 80)
				c.net.backwardRows(c.p, nr.act, nr.delta, 0, m, zeros)
				g := make([]float64, c.net.n)
				parts := 1 + rng.IntN(4)
				for part := range parts {
					c.net.gradPart(g, x, nr.act, nr.delta, m, part, parts, zeros)
				}

				w := c.net.newWork()
				want := make([]float64, c.net.n)
				for i := range m {
					o := c.net.forwardRow(c.p, x[i*in:(i+1)*in], w)
					for j := range out {
						if got := nr.act[L-1][i*out+j]; math.Abs(got-o[j]) > 1e-13*(1+math.Abs(o[j])) {
							t.Fatalf("%s sizes %v row %d: output %d = %.17g, per-row %.17g", pathName(asm), sizes, i, j, got, o[j])
						}
					}
					c.net.backwardRow(c.p, want, x[i*in:(i+1)*in], dout[i*out:(i+1)*out], w)
					for l := range L - 1 {
						for j, d := range w.delta[l] {
							if got := nr.delta[l][i*sizes[l+1]+j]; math.Abs(got-d) > 1e-13*(1+math.Abs(d)) {
								t.Fatalf("%s sizes %v row %d: delta %d[%d] = %.17g, per-row %.17g", pathName(asm), sizes, i, l, j, got, d)
							}
						}
					}
				}
				gmax := 0.0
				for _, v := range want {
					gmax = math.Max(gmax, math.Abs(v))
				}
				for i := range g {
					if math.Abs(g[i]-want[i]) > 1e-12*gmax {
						t.Fatalf("%s sizes %v, %d rows, %d parts: grad[%d] = %.17g, per-row %.17g", pathName(asm), sizes, m, parts, i, g[i], want[i])
					}
				}
			}
		})
	}
}

// TestFallbackBitIdentical trains two agents with equal seeds, one on the
// assembly kernels and one forced onto the pure-Go fallback, with 1 and 3
// workers, and checks that their checkpoints (parameters, Adam moments,
// counters) and statistics are bit-identical: the fallback computes the
// same operations in the same order. Without the assembly kernels both
// agents run the fallback and the test still checks determinism.
func TestFallbackBitIdentical(t *testing.T) {
	train := func(asm bool, workers int) ([]byte, []Stats) {
		var ck []byte
		var sts []Stats
		withAsm(asm, func() {
			cfg := DefaultConfig(16, 12)
			cfg.Epochs, cfg.Minibatches = 2, 4
			cfg.Workers = workers
			a := testAgent(t, cfg, 17)
			defer a.Close()
			rng := rand.New(rand.NewPCG(18, 19))
			for _, n := range []int{256, 7, 256, 61} {
				b := randomBatch(cfg, n, rng)
				a.ObserveObs(b.Obs)
				sts = append(sts, a.Update(b))
			}
			// The checkpoint records Workers; the rest must not depend on it.
			if err := a.SetWorkers(1); err != nil {
				t.Fatal(err)
			}
			var err error
			if ck, err = a.MarshalCheckpoint(); err != nil {
				t.Fatal(err)
			}
		})
		return ck, sts
	}
	wantCk, wantSt := train(true, 1)
	for _, c := range []struct {
		asm     bool
		workers int
	}{{false, 1}, {false, 3}, {true, 3}} {
		ck, st := train(c.asm, c.workers)
		for i := range wantSt {
			if st[i] != wantSt[i] {
				t.Errorf("%s, %d workers: update %d stats %+v, want %+v", pathName(c.asm), c.workers, i, st[i], wantSt[i])
			}
		}
		if string(ck) != string(wantCk) {
			t.Errorf("%s, %d workers: checkpoint differs from the assembly path's with 1 worker", pathName(c.asm), c.workers)
		}
	}
}

// BenchmarkGemm measures gemm on the shapes of an update (m×n×r, rows ×
// columns × depth), on the assembly path, the pure-Go fallback and
// gonum's BLAS (blas64.Dgemm, C = A·B, pure Go), in GFLOP/s.
func BenchmarkGemm(b *testing.B) {
	for _, s := range []struct{ m, n, r int }{{64, 64, 64}, {64, 64, 16}, {64, 12, 64}, {12, 64, 64}, {64, 1, 64}, {1, 64, 64}, {1, 12, 64}} {
		rng := rand.New(rand.NewPCG(1, 2))
		A, B := randSlice(rng, s.m*s.r), randSlice(rng, s.r*s.n)
		C, init := make([]float64, s.m*s.n), make([]float64, s.n)
		flop := 2 * float64(s.m*s.n*s.r)
		for _, impl := range []string{"asm", "go", "blas64"} {
			b.Run(fmt.Sprintf("%dx%dx%d/%s", s.m, s.n, s.r, impl), func(b *testing.B) {
				if impl == "asm" && !useAsm {
					b.Skip("no assembly kernels on this processor")
				}
				withAsm(impl == "asm", func() {
					for b.Loop() {
						if impl == "blas64" {
							blas64.Implementation().Dgemm(blas.NoTrans, blas.NoTrans, s.m, s.n, s.r, 1, A, s.r, B, s.n, 0, C, s.n)
						} else {
							gemm(s.m, s.n, s.r, A, s.r, 1, B, s.n, C, s.n, init, 0)
						}
					}
				})
				b.ReportMetric(flop*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}

// BenchmarkTanh measures tanhInPlace over 4096 values, on the assembly
// path and the pure-Go fallback, and math.Tanh.
func BenchmarkTanh(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	src := make([]float64, 4096)
	for i := range src {
		src[i] = rng.NormFloat64() * 2
	}
	h := make([]float64, len(src))
	for _, impl := range []string{"asm", "go", "math"} {
		b.Run(impl, func(b *testing.B) {
			if impl == "asm" && !useAsm {
				b.Skip("no assembly kernels on this processor")
			}
			withAsm(impl == "asm", func() {
				for b.Loop() {
					copy(h, src)
					if impl == "math" {
						for i, v := range h {
							h[i] = math.Tanh(v)
						}
					} else {
						tanhInPlace(h)
					}
				}
			})
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(h)), "ns/value")
		})
	}
}
