package replay

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// benchItem stands in for an experience: a small value type.
type benchItem struct {
	state  [8]float32
	action int32
	reward float64
}

// fullBuffer returns a buffer of the given capacity filled with 10% crisis
// items, with factor 1 (the design's p_i = w(type_i)) or, if factors is
// set, random factors in [0.1, 1.1) (as after |TD error| updates).
func fullBuffer(b testing.TB, capacity int, uniform, factors bool) *Buffer[benchItem] {
	cfg := DefaultConfig()
	cfg.Capacity = capacity
	cfg.Uniform = uniform
	buf := newTestBuffer[benchItem](b, cfg, 1)
	rng := rand.New(rand.NewPCG(9, 9))
	for k := range capacity {
		f := 1.0
		if factors {
			f = 0.1 + rng.Float64()
		}
		buf.AddWithFactor(benchItem{action: int32(k)}, k%10 == 0, f)
	}
	return buf
}

// BenchmarkAdd measures Add into a full buffer (every add evicts).
func BenchmarkAdd(b *testing.B) {
	for _, capacity := range []int{1000, DefaultCapacity} {
		b.Run(fmt.Sprintf("cap=%d", capacity), func(b *testing.B) {
			buf := fullBuffer(b, capacity, false, false)
			b.ReportAllocs()
			k := 0
			for b.Loop() {
				buf.Add(benchItem{action: int32(k)}, k%10 == 0)
				k++
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "adds/s")
		})
	}
}

// BenchmarkSample measures drawing a batch of 64 or 256 with weights from a full
// 50,000-item buffer, with default factors (two leaf values) and with
// random factors (every leaf distinct); uniform mode is the baseline.
func BenchmarkSample(b *testing.B) {
	for _, mode := range []struct {
		name             string
		uniform, factors bool
	}{{"prioritized", false, false}, {"prioritized-factors", false, true}, {"uniform", true, false}} {
		for _, n := range []int{64, 256} { // 256: the learner's default batch
			b.Run(fmt.Sprintf("%s/cap=%d/batch=%d", mode.name, DefaultCapacity, n), func(b *testing.B) {
				buf := fullBuffer(b, DefaultCapacity, mode.uniform, mode.factors)
				var bt Batch[benchItem]
				b.ReportAllocs()
				for b.Loop() {
					if err := buf.Sample(&bt, n); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "samples/s")
			})
		}
	}
}

// BenchmarkUpdateFactors measures updating the factors of 64 sampled slots
// in a full 50,000-item buffer.
func BenchmarkUpdateFactors(b *testing.B) {
	buf := fullBuffer(b, DefaultCapacity, false, true)
	var bt Batch[benchItem]
	if err := buf.Sample(&bt, 64); err != nil {
		b.Fatal(err)
	}
	factors := make([]float64, 64)
	rng := rand.New(rand.NewPCG(3, 3))
	for j := range factors {
		factors[j] = rng.Float64() * 2
	}
	b.ReportAllocs()
	for b.Loop() {
		buf.UpdateFactors(bt.Indices, factors)
	}
	b.ReportMetric(float64(b.N*64)/b.Elapsed().Seconds(), "updates/s")
}

// BenchmarkSetCrisisWeight measures a change of the crisis weight in full
// buffers of growing size: its cost does not grow with N (no tree node is
// rewritten; see TestSetCrisisWeightTouchesNoNode).
func BenchmarkSetCrisisWeight(b *testing.B) {
	for _, capacity := range []int{1000, DefaultCapacity, 500_000} {
		b.Run(fmt.Sprintf("cap=%d", capacity), func(b *testing.B) {
			buf := fullBuffer(b, capacity, false, true)
			ws := [2]float64{3, 7}
			b.ReportAllocs()
			k := 0
			for b.Loop() {
				if err := buf.SetCrisisWeight(ws[k&1]); err != nil {
					b.Fatal(err)
				}
				k++
			}
		})
	}
}
