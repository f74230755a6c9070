package replay

import "math"

// sumMinTree is a complete binary tree stored as an array heap (the layout of
// gonum's stat/sampleuv.Weighted): node k has children 2k and 2k+1, the root
// is node 1 and leaf i is node size+i, where size is the capacity rounded up
// to a power of two. Each internal node holds the sum and the minimum of the
// leaves below it, so the total mass and the smallest positive leaf are read
// in O(1) and a leaf write or a prefix-sum search costs O(log N).
//
// An empty leaf has sum 0 and min +Inf; leaf values written with set are
// strictly positive. Parents are recomputed from their children on every
// write (never updated by deltas), so the tree never drifts: every internal
// node equals, bit for bit, the sum (min) of its two children.
type sumMinTree struct {
	size int       // number of leaves, a power of two ≥ capacity
	sum  []float64 // len 2·size; sum[0] unused
	min  []float64 // len 2·size; min[0] unused
}

// newSumMinTree returns an empty tree with room for capacity leaves.
func newSumMinTree(capacity int) sumMinTree {
	size := 1
	for size < capacity {
		size <<= 1
	}
	t := sumMinTree{
		size: size,
		sum:  make([]float64, 2*size),
		min:  make([]float64, 2*size),
	}
	t.reset()
	return t
}

// reset empties every leaf.
func (t *sumMinTree) reset() {
	clear(t.sum)
	for k := range t.min {
		t.min[k] = math.Inf(1)
	}
}

// set writes v > 0 into leaf i and recomputes its ancestors.
func (t *sumMinTree) set(i int, v float64) {
	k := t.size + i
	t.sum[k] = v
	t.min[k] = v
	t.fix(k)
}

// clear empties leaf i and recomputes its ancestors.
func (t *sumMinTree) clear(i int) {
	k := t.size + i
	t.sum[k] = 0
	t.min[k] = math.Inf(1)
	t.fix(k)
}

// fix recomputes the ancestors of node k from their children.
func (t *sumMinTree) fix(k int) {
	for k > 1 {
		k >>= 1
		l, r := 2*k, 2*k+1
		t.sum[k] = t.sum[l] + t.sum[r]
		t.min[k] = math.Min(t.min[l], t.min[r])
	}
}

// total returns the sum of all leaves.
func (t *sumMinTree) total() float64 { return t.sum[1] }

// minimum returns the smallest non-empty leaf, or +Inf when the tree is empty.
func (t *sumMinTree) minimum() float64 { return t.min[1] }

// leaf returns the value of leaf i (0 when empty).
func (t *sumMinTree) leaf(i int) float64 { return t.sum[t.size+i] }

// find returns the leaf i whose prefix-sum interval
// [Σ_{j<i} v_j, Σ_{j≤i} v_j) contains target, for 0 ≤ target < total().
// The tree must not be empty. Rounding can push target to or past the
// total; the descent then never enters an empty subtree, so the returned
// leaf is always non-empty.
func (t *sumMinTree) find(target float64) int {
	k := 1
	for k < t.size {
		l := 2 * k
		if target < t.sum[l] || t.sum[l+1] == 0 {
			k = l
		} else {
			target -= t.sum[l]
			k = l + 1
		}
	}
	return k - t.size
}
