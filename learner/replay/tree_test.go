package replay

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestTreeFind checks the prefix-sum search leaf by leaf: points near the
// start, at the middle and near the end of leaf i's interval
// [Σ_{j<i} v_j, Σ_{j≤i} v_j) find i (exact boundaries depend on the
// summation order and are left out), empty
// leaves are never found, and a target at or past the total (rounding)
// finds the last non-empty leaf.
func TestTreeFind(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, capacity := range []int{1, 2, 3, 7, 8, 33, 100} {
		tr := newSumMinTree(capacity)
		vals := make([]float64, capacity)
		last := -1
		for i := range vals {
			if rng.IntN(4) == 0 {
				continue // leave empty
			}
			vals[i] = 0.1 + rng.Float64()*3
			tr.set(i, vals[i])
			last = i
		}
		if last < 0 {
			continue
		}
		var prefix float64
		for i, v := range vals {
			if v == 0 {
				continue
			}
			for _, target := range []float64{prefix + v*1e-9, prefix + v/2, prefix + v*(1-1e-9)} {
				if got := tr.find(target); got != i {
					t.Errorf("capacity %d: find(%v) = %d, want %d (leaf interval [%v, %v))", capacity, target, got, i, prefix, prefix+v)
				}
			}
			prefix += v
		}
		for _, target := range []float64{tr.total(), tr.total() * (1 + 1e-15), math.Nextafter(tr.total(), 0)} {
			if got := tr.find(target); got != last {
				t.Errorf("capacity %d: find(%v) with total %v = %d, want last non-empty leaf %d", capacity, target, tr.total(), got, last)
			}
		}
	}
}

// TestTreeSetClear checks sums and minima through set and clear.
func TestTreeSetClear(t *testing.T) {
	tr := newSumMinTree(5)
	if tr.total() != 0 || !math.IsInf(tr.minimum(), 1) {
		t.Fatalf("empty tree: total %v min %v, want 0 +Inf", tr.total(), tr.minimum())
	}
	tr.set(0, 2)
	tr.set(4, 0.5)
	tr.set(2, 1)
	if tr.total() != 3.5 || tr.minimum() != 0.5 {
		t.Fatalf("total %v min %v, want 3.5 0.5", tr.total(), tr.minimum())
	}
	tr.clear(4)
	if tr.total() != 3 || tr.minimum() != 1 || tr.leaf(4) != 0 {
		t.Fatalf("after clear: total %v min %v leaf %v, want 3 1 0", tr.total(), tr.minimum(), tr.leaf(4))
	}
	tr.set(0, 4)
	if tr.total() != 5 || tr.minimum() != 1 {
		t.Fatalf("after overwrite: total %v min %v, want 5 1", tr.total(), tr.minimum())
	}
	tr.reset()
	if tr.total() != 0 || !math.IsInf(tr.minimum(), 1) {
		t.Fatalf("after reset: total %v min %v, want 0 +Inf", tr.total(), tr.minimum())
	}
}
