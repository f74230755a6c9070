package replay

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestSetCrisisWeightExactAfterChange changes the crisis weight between
// batches, through values that do and do not trigger the crisis floor, and
// checks every draw's probability and IS weight against a brute-force
// recomputation from the design's formulas with the weight in force at the
// draw: P(i) from refProbs and w_i = (N·P(i))^(−β) / max_j (N·P(j))^(−β)
// from refWeights, both to 1e-12 relative.
func TestSetCrisisWeightExactAfterChange(t *testing.T) {
	for _, floor := range []float64{0, 0.05, 0.3} {
		t.Run(fmt.Sprintf("floor=%g", floor), func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Capacity = 200
			cfg.MinCrisisRatio = floor
			cfg.Beta0 = 0.4
			cfg.AnnealSteps = 10
			b := newTestBuffer[int](t, cfg, 3)
			rng := rand.New(rand.NewPCG(5, 5))
			for k := range 260 { // wraps: evictions across strata
				b.AddWithFactor(k, rng.IntN(8) == 0, 0.1+3*rng.Float64())
			}
			var bt Batch[int]
			for step, w := range []float64{5, 1, 14.6, 1.3, 0.02, 9, 9, 2} {
				if err := b.SetCrisisWeight(w); err != nil {
					t.Fatal(err)
				}
				b.SetStep(int64(step))
				ref := b.cfg
				ref.CrisisWeight = w
				probs := refProbs(ref, liveItems(b))
				weights := refWeights(probs, b.Beta())
				if err := b.Sample(&bt, 64); err != nil {
					t.Fatal(err)
				}
				for j, i := range bt.Indices {
					if !relClose(bt.Probs[j], probs[i], 1e-12) {
						t.Fatalf("weight %g draw %d slot %d: P = %.17g, brute force %.17g", w, j, i, bt.Probs[j], probs[i])
					}
					if !relClose(bt.Weights[j], weights[i], 1e-12) {
						t.Fatalf("weight %g draw %d slot %d: IS weight = %.17g, brute force %.17g", w, j, i, bt.Weights[j], weights[i])
					}
				}
				for i := range probs {
					if got := b.Weight(i); !relClose(got, weights[i], 1e-12) {
						t.Fatalf("weight %g: Weight(%d) = %.17g, brute force %.17g", w, i, got, weights[i])
					}
				}
				if got := b.Stats().CrisisWeight; got != w {
					t.Fatalf("Stats().CrisisWeight = %v, want %v", got, w)
				}
				if err := checkInvariants(b); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// TestSetCrisisWeightDrawsFollowNewWeight: after a change, 100k draws fit
// the new weight's probabilities (Pearson's χ², p > 1e-3, fixed seed) and
// reject the old weight's (the test has power).
func TestSetCrisisWeightDrawsFollowNewWeight(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Capacity = 60
	b := newTestBuffer[int](t, cfg, 11)
	rng := rand.New(rand.NewPCG(2, 2))
	for k := range cfg.Capacity {
		b.AddWithFactor(k, k%6 == 0, 0.2+2*rng.Float64())
	}
	old := refProbs(cfg, liveItems(b))
	if err := b.SetCrisisWeight(12); err != nil {
		t.Fatal(err)
	}
	ref := cfg
	ref.CrisisWeight = 12
	counts := drawCounts(t, b, 100_000, 32)
	if p := chiSquareP(counts, refProbs(ref, liveItems(b))); p < 1e-3 {
		t.Errorf("χ² p-value %.3g < 1e-3: draws do not follow the new weight", p)
	}
	if p := chiSquareP(counts, old); p > 1e-3 {
		t.Errorf("χ² p-value against the old weight %.3g > 1e-3: test has no power", p)
	}
}

// TestSetCrisisWeightTouchesNoNode: a weight change rewrites no leaf and
// no internal node of either tree, whatever the buffer's size (0 nodes
// touched for N = 100 … 200,000), so it is O(1), not a pass over the
// buffer.
func TestSetCrisisWeightTouchesNoNode(t *testing.T) {
	for _, n := range []int{100, 10_000, 200_000} {
		cfg := DefaultConfig()
		cfg.Capacity = n
		b := newTestBuffer[int](t, cfg, 1)
		rng := rand.New(rand.NewPCG(4, 4))
		for k := range n {
			b.AddWithFactor(k, k%10 == 0, 0.1+rng.Float64())
		}
		before := [2]sumMinTree{cloneTree(b.trees[0]), cloneTree(b.trees[1])}
		factors := slices.Clone(b.factors)
		for _, w := range []float64{1, 7.5, 14.6} {
			if err := b.SetCrisisWeight(w); err != nil {
				t.Fatal(err)
			}
		}
		touched := 0
		for s := range 2 {
			for d := range before[s].sum {
				for x := range before[s].sum[d] {
					if before[s].sum[d][x] != b.trees[s].sum[d][x] || before[s].min[d][x] != b.trees[s].min[d][x] {
						touched++
					}
				}
			}
		}
		if touched != 0 || !slices.Equal(factors, b.factors) {
			t.Errorf("N = %d: a weight change touched %d tree nodes (factors equal: %t), want 0", n, touched, slices.Equal(factors, b.factors))
		}
	}
}

func cloneTree(t sumMinTree) sumMinTree {
	c := t
	c.sum = make([][]float64, len(t.sum))
	c.min = make([][]float64, len(t.min))
	for d := range t.sum {
		c.sum[d] = slices.Clone(t.sum[d])
		c.min[d] = slices.Clone(t.min[d])
	}
	return c
}

func TestSetCrisisWeightRejects(t *testing.T) {
	b := newTestBuffer[int](t, DefaultConfig(), 1)
	for _, w := range []float64{0, -1, math.NaN(), math.Inf(1)} {
		if err := b.SetCrisisWeight(w); err == nil {
			t.Errorf("SetCrisisWeight(%v) = nil, want an error", w)
		}
	}
	if got := b.CrisisWeight(); got != DefaultCrisisWeight {
		t.Errorf("after rejected changes CrisisWeight() = %v, want %v", got, DefaultCrisisWeight)
	}
}
