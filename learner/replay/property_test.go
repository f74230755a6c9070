package replay

import (
	"math"
	"math/rand/v2"
	"testing"
)

// opRunner applies a stream of operations to a buffer and checks the
// invariants after each one. It is shared by the property test (random
// bytes from a seeded source) and the fuzz target (bytes from the fuzzer).
type opRunner struct {
	b     *Buffer[int]
	batch Batch[int]
	added int
}

// newOpRunner configures a small buffer from the first bytes of data and
// returns the runner and the remaining bytes. Small capacities make
// eviction, stratum changes of a slot and the floor frequent.
func newOpRunner(tb testing.TB, data []byte) (*opRunner, []byte) {
	var hdr [4]byte
	copy(hdr[:], data)
	rest := data[min(len(data), len(hdr)):]
	cfg := DefaultConfig()
	cfg.Capacity = 1 + int(hdr[0]%33)
	cfg.CrisisWeight = 0.25 + float64(hdr[1]%40)/4
	cfg.Alpha = float64(hdr[2]%16) / 10
	cfg.Temperature = 0.5 + float64(hdr[2]/16)/4
	cfg.MinCrisisRatio = float64(hdr[3]%8) / 10
	cfg.Uniform = hdr[3]&0x80 != 0
	cfg.Beta0 = float64(hdr[3]>>3&0x7) / 7
	b, err := New[int](cfg, rand.New(rand.NewPCG(uint64(hdr[0]), uint64(hdr[1]))))
	if err != nil {
		tb.Fatalf("New(%+v): %v", cfg, err)
	}
	return &opRunner{b: b}, rest
}

// factorOf maps a byte to a factor in [0, 8), including 0 (clamped to MinFactor).
func factorOf(x byte) float64 { return float64(x) / 32 }

// step applies the operation encoded at the start of data and returns the
// bytes it did not consume. Operations: add crisis / add regular (with a
// factor), update one factor, update a batch of factors, sample, reset
// (rare), set the annealing step.
func (r *opRunner) step(tb testing.TB, data []byte) []byte {
	op := data[0]
	arg := func(k int) byte {
		if k < len(data) {
			return data[k]
		}
		return 0
	}
	b := r.b
	used := 1
	switch op % 8 {
	case 0, 1, 2:
		r.added++
		slot := b.AddWithFactor(r.added, op%8 == 0, factorOf(arg(1)))
		if b.Get(slot) != r.added {
			tb.Fatalf("Add returned slot %d holding %d, want %d", slot, b.Get(slot), r.added)
		}
		used = 2
	case 3:
		if b.Len() > 0 {
			b.UpdateFactors([]int{int(arg(1)) % b.Len()}, []float64{factorOf(arg(2))})
		}
		used = 3
	case 4:
		if b.Len() > 0 {
			n := 1 + int(arg(1)%17)
			if err := b.Sample(&r.batch, n); err != nil {
				tb.Fatalf("Sample(%d): %v", n, err)
			}
			r.checkBatch(tb)
			// Update every sampled slot, as a learner does with |TD error|.
			f := r.batch.Weights // reuse as factors: values in (0, 1]
			b.UpdateFactors(r.batch.Indices, f)
		}
		used = 2
	case 5:
		if arg(1) < 16 {
			b.Reset()
			r.added = 0
		}
		used = 2
	case 6:
		b.SetStep(int64(arg(1)) * 1000)
		used = 2
	case 7:
		r.added++
		b.Add(r.added, arg(1)&1 == 1)
		used = 2
	}
	if err := checkInvariants(b); err != nil {
		tb.Fatalf("after op %d: %v", op%8, err)
	}
	return data[min(used, len(data)):]
}

// checkBatch verifies a batch against the buffer: items, crisis flags,
// probabilities and weights (literal formula over the whole buffer).
func (r *opRunner) checkBatch(tb testing.TB) {
	b := r.b
	probs := refProbs(b.cfg, liveItems(b))
	weights := refWeights(probs, b.Beta())
	for j, i := range r.batch.Indices {
		if i < 0 || i >= b.Len() {
			tb.Fatalf("sampled slot %d out of range [0, %d)", i, b.Len())
		}
		if r.batch.Items[j] != b.Get(i) || r.batch.Crisis[j] != b.IsCrisis(i) {
			tb.Fatalf("sampled slot %d: item/crisis mismatch", i)
		}
		wantW := weights[i]
		if b.cfg.Uniform {
			wantW = 1
		}
		if !relClose(r.batch.Probs[j], probs[i], 1e-12) || !relClose(r.batch.Weights[j], wantW, 1e-9) {
			tb.Fatalf("sampled slot %d: prob %v weight %v, want %v %v", i, r.batch.Probs[j], r.batch.Weights[j], probs[i], wantW)
		}
		if r.batch.Weights[j] > 1 || !(r.batch.Weights[j] > 0) || math.IsNaN(r.batch.Weights[j]) {
			tb.Fatalf("sampled slot %d: weight %v not in (0, 1]", i, r.batch.Weights[j])
		}
	}
}

// run applies every operation in data.
func (r *opRunner) run(tb testing.TB, data []byte) {
	for len(data) > 0 {
		data = r.step(tb, data)
	}
}

// TestTreeOpsProperty applies random interleavings of add (with eviction),
// update, sample, reset and β changes to buffers of random small
// configurations and, after every operation, compares both sum trees and
// min trees node by node, and every P(i), with a brute-force recomputation.
func TestTreeOpsProperty(t *testing.T) {
	rng := rand.New(rand.NewPCG(2024, 5))
	runs := 300
	if testing.Short() {
		runs = 60
	}
	for run := range runs {
		data := make([]byte, 4+rng.IntN(400))
		for k := range data {
			data[k] = byte(rng.Uint32())
		}
		r, ops := newOpRunner(t, data)
		r.run(t, ops)
		_ = run
	}
}

// FuzzTreeOps interprets the input as a buffer configuration (4 bytes) and a
// stream of operations. Invariant: it never panics, and after every
// operation both trees equal a brute-force recomputation node by node,
// every P(i) matches the formula (with the floor) and sums to 1, and every
// sampled weight equals (N·P(i))^(−β)/max_j (N·P(j))^(−β) and lies in (0, 1].
func FuzzTreeOps(f *testing.F) {
	f.Add([]byte{4, 16, 6, 0, 0, 10, 1, 20, 0, 40, 4, 8, 3, 1, 200, 4, 16})
	f.Add([]byte{1, 16, 6, 5, 0, 1, 1, 1, 0, 2, 4, 3, 4, 3})
	f.Add([]byte{32, 1, 10, 4, 1, 0, 1, 0, 0, 3, 2, 9, 4, 5, 6, 100, 4, 16, 5, 0, 0, 3})
	f.Fuzz(func(t *testing.T, data []byte) {
		r, ops := newOpRunner(t, data)
		r.run(t, ops)
	})
}
