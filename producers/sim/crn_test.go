package sim

import (
	"math"
	"testing"
)

// greedy always plays one action.
type greedy struct{ a, n int }

func (g greedy) ActionProbs(_ []float64, dst []float64) {
	for i := range dst {
		dst[i] = 0
	}
	dst[g.a] = 1
}

// TestSamePopulationWhateverThePolicy: the k-th journey of a (seed,
// stream) is the same user — segment, metadata, first observation — under
// any policy (common random numbers), so policies evaluated on one seed are
// compared on the same population.
func TestSamePopulationWhateverThePolicy(t *testing.T) {
	cfg := DefaultConfig()
	a, _ := New(cfg, 99, 0)
	b, _ := New(cfg, 99, 0)
	for k := range 2000 {
		var firstA, firstB []float64
		var mdA, mdB map[string]string
		ra := a.RunEpisode(Uniform{N: cfg.NumActions()}, func(tr *Transition) {
			if tr.Step == 0 {
				firstA = append([]float64(nil), tr.State...)
				mdA = tr.Metadata
			}
		})
		rb := b.RunEpisode(greedy{a: 9, n: cfg.NumActions()}, func(tr *Transition) {
			if tr.Step == 0 {
				firstB = append([]float64(nil), tr.State...)
				mdB = tr.Metadata
			}
		})
		if ra.Crisis != rb.Crisis {
			t.Fatalf("journey %d: segment differs between policies", k)
		}
		for i := range firstA {
			if math.Float64bits(firstA[i]) != math.Float64bits(firstB[i]) {
				t.Fatalf("journey %d: first observation differs at %d", k, i)
			}
		}
		for key, v := range mdA {
			if mdB[key] != v {
				t.Fatalf("journey %d: metadata %s = %q vs %q", k, key, v, mdB[key])
			}
		}
	}
	ea, err := Evaluate(cfg, Uniform{N: cfg.NumActions()}, 3000, 5)
	if err != nil {
		t.Fatal(err)
	}
	eb, err := Evaluate(cfg, greedy{a: 9, n: cfg.NumActions()}, 3000, 5)
	if err != nil {
		t.Fatal(err)
	}
	if ea.Crisis.Episodes != eb.Crisis.Episodes {
		t.Fatalf("evaluations on one seed saw %d and %d crisis users", ea.Crisis.Episodes, eb.Crisis.Episodes)
	}
}
