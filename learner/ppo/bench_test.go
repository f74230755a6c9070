package ppo

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// randomBatch returns n random samples for cfg, logged by a uniform policy.
func randomBatch(cfg Config, n int, rng *rand.Rand) *Batch {
	b := &Batch{}
	obs := make([]float64, cfg.ObsDim)
	next := make([]float64, cfg.ObsDim)
	for range n {
		for k := range obs {
			obs[k] = rng.NormFloat64()
			next[k] = rng.NormFloat64()
		}
		b.Append(obs, next, rng.IntN(cfg.NumActions), -math.Log(float64(cfg.NumActions)),
			rng.NormFloat64(), 0.2+0.8*rng.Float64(), rng.IntN(10) == 0, -1)
	}
	return b
}

// BenchmarkUpdate measures one update step: minibatch 64, 16 inputs,
// 2×64 hidden, 12 actions, 1 epoch × 1 minibatch.
func BenchmarkUpdate(b *testing.B) {
	for _, mb := range []int{64, 256} {
		b.Run(fmt.Sprintf("mb%d_obs16_h64x64_a12", mb), func(b *testing.B) {
			cfg := DefaultConfig(16, 12)
			cfg.Epochs, cfg.Minibatches = 1, 1
			rng := rand.New(rand.NewPCG(1, 2))
			a, err := New(cfg, rng)
			if err != nil {
				b.Fatal(err)
			}
			batch := randomBatch(cfg, mb, rng)
			a.ObserveObs(batch.Obs)
			a.Update(batch)
			b.ReportAllocs()
			cpu0, cpuOK := processCPUTime()
			for b.Loop() {
				a.Update(batch)
			}
			samples := float64(mb) * float64(b.N)
			b.ReportMetric(samples/b.Elapsed().Seconds(), "samples/s")
			// On a shared machine wall time includes waiting for a core;
			// samples per CPU-second is the single-core throughput.
			if cpu1, ok := processCPUTime(); cpuOK && ok && cpu1 > cpu0 {
				b.ReportMetric(samples/(cpu1-cpu0).Seconds(), "samples/cpu-s")
			}
		})
	}
}
