package replay

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// refItem is one item of a brute-force reference buffer.
type refItem struct {
	crisis bool
	factor float64
}

// refProbs computes P(i) for every item straight from the design's formulas:
// p_i = w(type_i)·f_i, q_i = p_i^(α/T), P(i) = q_i/Σq, and with the floor
// P(i) = ρ_s·q_i/S_s; uniform mode P(i) = 1/N.
func refProbs(cfg Config, items []refItem) []float64 {
	n := len(items)
	out := make([]float64, n)
	if cfg.Uniform {
		for i := range out {
			out[i] = 1 / float64(n)
		}
		return out
	}
	q := make([]float64, n)
	var sc, sr float64
	var nc, nr int
	for i, it := range items {
		w := cfg.RegularWeight
		if it.crisis {
			w = cfg.CrisisWeight
		}
		q[i] = math.Pow(w*math.Max(it.factor, cfg.MinFactor), cfg.Alpha/cfg.Temperature)
		if it.crisis {
			sc += q[i]
			nc++
		} else {
			sr += q[i]
			nr++
		}
	}
	floored := nc > 0 && nr > 0 && sc/(sc+sr) < cfg.MinCrisisRatio
	for i, it := range items {
		switch {
		case !floored:
			out[i] = q[i] / (sc + sr)
		case it.crisis:
			out[i] = cfg.MinCrisisRatio * q[i] / sc
		default:
			out[i] = (1 - cfg.MinCrisisRatio) * q[i] / sr
		}
	}
	return out
}

// refWeights computes w_i = (N·P(i))^(−β) / max_j (N·P(j))^(−β) literally.
func refWeights(probs []float64, beta float64) []float64 {
	n := float64(len(probs))
	maxW := 0.0
	for _, p := range probs {
		maxW = math.Max(maxW, math.Pow(n*p, -beta))
	}
	out := make([]float64, len(probs))
	for i, p := range probs {
		out[i] = math.Pow(n*p, -beta) / maxW
	}
	return out
}

// liveItems returns the reference view of b's live slots.
func liveItems[T any](b *Buffer[T]) []refItem {
	items := make([]refItem, b.Len())
	for i := range items {
		items[i] = refItem{crisis: b.crisis[i], factor: b.factors[i]}
	}
	return items
}

// relClose reports whether got and want agree to a relative tolerance tol.
func relClose(got, want, tol float64) bool {
	if got == want {
		return true
	}
	return math.Abs(got-want) <= tol*math.Max(math.Abs(got), math.Abs(want))
}

// newTestBuffer builds a buffer or fails the test.
func newTestBuffer[T any](tb testing.TB, cfg Config, seed uint64) *Buffer[T] {
	tb.Helper()
	b, err := New[T](cfg, rand.New(rand.NewPCG(seed, seed+1)))
	if err != nil {
		tb.Fatalf("New(%+v): %v", cfg, err)
	}
	return b
}

// checkInvariants compares both trees and every probability of b against a
// brute-force recomputation from the stored types and factors. Tree nodes
// are compared exactly (parents are recomputed from children, so no drift
// is allowed); roots and probabilities against naive sums to 1e-12.
func checkInvariants[T any](b *Buffer[T]) error {
	var counts [2]int
	for s := range 2 {
		t := &b.trees[s]
		leaves := t.sum[t.depth]
		for i := range leaves {
			want, wantMin := 0.0, math.Inf(1)
			if i < b.size && stratum(b.crisis[i]) == s {
				want = math.Pow(b.factors[i], b.exp) // the factor part g_i
				wantMin = want
				counts[s]++
			}
			if leaves[i] != want || t.min[t.depth][i] != wantMin {
				return fmt.Errorf("stratum %d leaf %d = (%v, %v), want (%v, %v)", s, i, leaves[i], t.min[t.depth][i], want, wantMin)
			}
		}
		for d := t.depth - 1; d >= 0; d-- {
			for x := range t.sum[d] {
				want, wantMin := 0.0, math.Inf(1)
				if (x+1)*fanout <= len(t.sum[d+1]) {
					for k := x * fanout; k < (x+1)*fanout; k++ {
						want += t.sum[d+1][k]
						wantMin = math.Min(wantMin, t.min[d+1][k])
					}
				}
				if t.sum[d][x] != want || t.min[d][x] != wantMin {
					return fmt.Errorf("stratum %d level %d node %d = (%v, %v), want (%v, %v)", s, d, x, t.sum[d][x], t.min[d][x], want, wantMin)
				}
			}
		}
		var naive float64
		naiveMin := math.Inf(1)
		for i := range b.size {
			if stratum(b.crisis[i]) == s {
				q := math.Pow(b.factors[i], b.exp)
				naive += q
				naiveMin = math.Min(naiveMin, q)
			}
		}
		if qw := math.Pow(b.weightOf(s), b.exp); !relClose(b.qw[s], qw, 1e-15) {
			return fmt.Errorf("stratum %d weight part %v, want w^(α/T) = %v", s, b.qw[s], qw)
		}
		if !relClose(t.total(), naive, 1e-12) {
			return fmt.Errorf("stratum %d total %v, naive sum %v", s, t.total(), naive)
		}
		if t.minimum() != naiveMin {
			return fmt.Errorf("stratum %d minimum %v, naive %v", s, t.minimum(), naiveMin)
		}
	}
	if counts != b.counts {
		return fmt.Errorf("counts %v, want %v", b.counts, counts)
	}
	if b.size == 0 {
		return nil
	}
	want := refProbs(b.cfg, liveItems(b))
	var sum float64
	for i, p := range want {
		got := b.Prob(i)
		if !relClose(got, p, 1e-12) {
			return fmt.Errorf("P(%d) = %v, want %v", i, got, p)
		}
		sum += got
	}
	if math.Abs(sum-1) > 1e-9 {
		return fmt.Errorf("ΣP = %v, want 1", sum)
	}
	return nil
}

// weightOf returns the configured priority weight of stratum s.
func (b *Buffer[T]) weightOf(s int) float64 {
	if s == crisis {
		return b.cfg.CrisisWeight
	}
	return b.cfg.RegularWeight
}
