package replay

import "math"

// fanout is the number of children of an internal tree node. Eight float64
// children fill one 64-byte cache line, so a descent through a 50,000-leaf
// tree touches 6 lines instead of the 16 of a binary tree; the tree is
// memory-bound, not compute-bound.
const fanout = 8

// sumMinTree is a complete fanout-ary tree over n leaves, stored level by
// level (the array-heap idea of gonum's stat/sampleuv.Weighted, with a wider
// node): level depth holds the leaves, level 0 the root, and the children of
// node x on level d are nodes x·fanout … x·fanout+fanout−1 on level d+1.
// Each internal node holds the sum and the minimum of the leaves below it, so
// the total mass and the smallest non-empty leaf are read in O(1), and a leaf
// write or a prefix-sum search costs O(log N).
//
// An empty leaf has sum 0 and min +Inf; leaf values written with set are
// strictly positive. Parents are recomputed from their children on every
// write (never updated by deltas), so the tree never drifts: every internal
// sum equals, bit for bit, the left-to-right sum of its children, and every
// internal min the minimum of its children.
type sumMinTree struct {
	n     int         // number of leaves
	depth int         // level of the leaves, ≥ 1
	sum   [][]float64 // sum[d] is level d, padded to a multiple of fanout
	min   [][]float64 // min[d] is level d, padded like sum[d]
}

// newSumMinTree returns an empty tree with room for n ≥ 1 leaves.
func newSumMinTree(n int) sumMinTree {
	depth, span := 1, fanout
	for span < n {
		depth++
		span *= fanout
	}
	t := sumMinTree{n: n, depth: depth, sum: make([][]float64, depth+1), min: make([][]float64, depth+1)}
	nodes := n // real nodes on the current level
	for d := depth; d >= 0; d-- {
		padded := (nodes + fanout - 1) / fanout * fanout
		t.sum[d] = make([]float64, padded)
		t.min[d] = make([]float64, padded)
		nodes = (nodes + fanout - 1) / fanout
	}
	t.reset()
	return t
}

// reset empties every leaf.
func (t *sumMinTree) reset() {
	for d := range t.sum {
		clear(t.sum[d])
		for k := range t.min[d] {
			t.min[d][k] = math.Inf(1)
		}
	}
}

// set writes v > 0 into leaf i and recomputes its ancestors.
func (t *sumMinTree) set(i int, v float64) {
	t.sum[t.depth][i] = v
	t.min[t.depth][i] = v
	t.fix(i)
}

// clear empties leaf i and recomputes its ancestors.
func (t *sumMinTree) clear(i int) {
	t.sum[t.depth][i] = 0
	t.min[t.depth][i] = math.Inf(1)
	t.fix(i)
}

// fix recomputes the ancestors of leaf i from their children.
func (t *sumMinTree) fix(i int) {
	x := i
	for d := t.depth - 1; d >= 0; d-- {
		x /= fanout
		lo := x * fanout
		cs := t.sum[d+1][lo : lo+fanout]
		cm := t.min[d+1][lo : lo+fanout]
		s, m := 0.0, math.Inf(1)
		for k := range fanout {
			s += cs[k]
			if cm[k] < m {
				m = cm[k]
			}
		}
		t.sum[d][x] = s
		t.min[d][x] = m
	}
}

// total returns the sum of all leaves.
func (t *sumMinTree) total() float64 { return t.sum[0][0] }

// minimum returns the smallest non-empty leaf, or +Inf when the tree is empty.
func (t *sumMinTree) minimum() float64 { return t.min[0][0] }

// leaf returns the value of leaf i (0 when empty).
func (t *sumMinTree) leaf(i int) float64 { return t.sum[t.depth][i] }

// find returns the leaf i whose prefix-sum interval
// [Σ_{j<i} v_j, Σ_{j≤i} v_j) contains target, for 0 ≤ target < total().
// The tree must not be empty. At each level the child is the number of
// running sums of the children that are ≤ target (computed without
// branches, so the descent does not mispredict); empty children are skipped
// by construction. Rounding can push target to or past a node's sum; the
// descent then takes the node's last non-empty child, so it never enters an
// empty subtree and the returned leaf is always non-empty.
func (t *sumMinTree) find(target float64) int {
	x := 0
	for d := 1; d <= t.depth; d++ {
		lo := x * fanout
		cs := (*[fanout]float64)(t.sum[d][lo : lo+fanout])
		var cum [fanout]float64
		acc, pick := 0.0, 0
		for k := range fanout {
			acc += cs[k]
			cum[k] = acc
			if acc <= target {
				pick++
			}
		}
		if pick == fanout { // rounding: target ≥ the node's sum
			pick = fanout - 1
			for cs[pick] == 0 {
				pick--
			}
		}
		if pick > 0 {
			target -= cum[pick-1]
		}
		x = lo + pick
	}
	return x
}
