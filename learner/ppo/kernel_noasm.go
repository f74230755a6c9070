//go:build !amd64 || purego

package ppo

// useAsm is false without the assembly kernels (other architectures, or
// the purego build tag): every kernel runs its pure-Go reference.
var useAsm = false

func gemmVec(m, n, r int, a []float64, ars, arc int, b []float64, ldb int, c []float64, ldc int, init []float64, ist int) int {
	return 0
}

func tanhVec(h []float64) int                         { return 0 }
func tanhGradVec(dst, g, h []float64) int             { return 0 }
func sumSquaresVec(x []float64, t *float64) bool      { return false }
func adamVec(p, m, v, g []float64, k *adamConsts) int { return 0 }

func expVec(x []float64) int { return 0 }
