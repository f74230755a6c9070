package ppo

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"
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

// BenchmarkUpdate measures Agent.Update with 16 inputs, 2×64 hidden and 12
// actions for Workers = 1 (the baseline: everything on the calling
// goroutine) and Workers = 2: one minibatch of 64 or 256 (1 epoch × 1
// minibatch), and the learner's default schedule (learner.DefaultPPO: a
// batch of 256, 2 epochs × 4 minibatches of 64). samples/s is the batch
// size per wall-clock update time, the rate at which the learner can
// train on (and so, at one sample drawn per insert, ingest) experiences.
func BenchmarkUpdate(b *testing.B) {
	schedules := []struct {
		name               string
		batch, epochs, mbs int
	}{
		{"mb64_obs16_h64x64_a12", 64, 1, 1},
		{"mb256_obs16_h64x64_a12", 256, 1, 1},
		{"batch256_2x4_obs16_h64x64_a12", 256, 2, 4},
	}
	for _, s := range schedules {
		for _, workers := range []int{1, 2} {
			b.Run(fmt.Sprintf("%s/workers=%d", s.name, workers), func(b *testing.B) {
				cfg := DefaultConfig(16, 12)
				cfg.Epochs, cfg.Minibatches = s.epochs, s.mbs
				cfg.Workers = workers
				rng := rand.New(rand.NewPCG(1, 2))
				a, err := New(cfg, rng)
				if err != nil {
					b.Fatal(err)
				}
				batch := randomBatch(cfg, s.batch, rng)
				a.ObserveObs(batch.Obs)
				a.Update(batch)
				b.ReportAllocs()
				cpu0, cpuOK := processCPUTime()
				for b.Loop() {
					a.Update(batch)
				}
				samples := float64(s.batch) * float64(b.N)
				b.ReportMetric(samples/b.Elapsed().Seconds(), "samples/s")
				// CPU seconds summed over all goroutines: with one worker
				// and a busy machine this is the single-core throughput;
				// with two workers it shows the parallel overhead.
				if cpu1, ok := processCPUTime(); cpuOK && ok && cpu1 > cpu0 {
					b.ReportMetric(samples/(cpu1-cpu0).Seconds(), "samples/cpu-s")
				}
			})
		}
	}
}

// BenchmarkPolicyForward compares the forward pass used by the agent (one
// sample at a time, floats.Dot per output unit) with a batched gonum/mat
// version (H = tanh(X·Wᵀ + b) per layer) over a minibatch of 64, 16
// inputs, 2×64 hidden, 12 actions; the batched one is the baseline that
// justifies the per-sample loops.
func BenchmarkPolicyForward(b *testing.B) {
	const m = 64
	cfg := DefaultConfig(16, 12)
	a, err := New(cfg, rand.New(rand.NewPCG(1, 1)))
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(2, 2))
	xs := make([]float64, m*cfg.ObsDim)
	for i := range xs {
		xs[i] = rng.NormFloat64()
	}
	b.Run("rows-floats", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for i := range m {
				a.pol.forward(a.polParams(), xs[i*16:(i+1)*16], a.pw)
			}
		}
		b.ReportMetric(float64(m*b.N)/b.Elapsed().Seconds(), "samples/s")
	})
	b.Run("batched-mat", func(b *testing.B) {
		net, p := &a.pol, a.polParams()
		ws := make([]*mat.Dense, net.layers())
		bs := make([][]float64, net.layers())
		outs := make([]*mat.Dense, net.layers())
		for l := range net.layers() {
			nin, nout := net.sizes[l], net.sizes[l+1]
			ws[l] = mat.NewDense(nout, nin, p[net.woff[l]:net.woff[l]+nout*nin])
			bs[l] = p[net.boff[l] : net.boff[l]+nout]
			outs[l] = mat.NewDense(m, nout, nil)
		}
		x := mat.NewDense(m, 16, xs)
		b.ReportAllocs()
		for b.Loop() {
			var in mat.Matrix = x
			for l := range net.layers() {
				h := outs[l]
				h.Mul(in, ws[l].T())
				raw := h.RawMatrix()
				for i := range m {
					row := raw.Data[i*raw.Stride : i*raw.Stride+raw.Cols]
					for j := range row {
						row[j] += bs[l][j]
						if l < net.layers()-1 {
							row[j] = math.Tanh(row[j])
						}
					}
				}
				in = h
			}
		}
		b.ReportMetric(float64(m*b.N)/b.Elapsed().Seconds(), "samples/s")
	})
}
