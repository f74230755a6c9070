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

// updateFLOPs returns the floating-point operations of the matrix
// products of one Update over b with cfg's schedule (without early stop):
// 2 per multiply-add of the pre-update forward passes (policy and value
// on s, value on s′ where not done) and, per minibatch, of the forward
// passes (except the first minibatch's, kept from the pre-update pass),
// the backward deltas and the weight gradients. Both paths execute the
// same products; tanh, softmax, Adam and the rest are not counted.
func updateFLOPs(cfg Config, b *Batch) float64 {
	macs := func(m *mlp, from int) float64 {
		s := 0
		for l := from; l < m.layers(); l++ {
			s += m.sizes[l] * m.sizes[l+1]
		}
		return float64(s)
	}
	pol := newMLP(layerSizes(cfg.ObsDim, cfg.Hidden, cfg.NumActions))
	val := newMLP(layerSizes(cfg.ObsDim, cfg.Hidden, 1))
	n, next := float64(b.N()), 0.0
	for _, d := range b.Dones {
		if !d {
			next++
		}
	}
	fwd, bwd := macs(&pol, 0)+macs(&val, 0), macs(&pol, 1)+macs(&val, 1)
	first := float64(b.N() / cfg.Minibatches)
	pre := n*fwd + next*macs(&val, 0)
	train := float64(cfg.Epochs)*n*(fwd+bwd+fwd) - first*fwd
	return 2 * (pre + train)
}

// BenchmarkUpdate measures Agent.Update with 16 inputs, 2×64 hidden and 12
// actions for Workers = 1 (everything on the calling goroutine) and
// Workers = 2: one minibatch of 64 or 256 (1 epoch × 1 minibatch), and
// the learner's default schedule (learner.DefaultPPO: a batch of 256, 2
// epochs × 4 minibatches of 64). path=batched is the agent's code;
// path=rows is the per-row path of legacy.go (the implementation before
// the batched kernels), the baseline. samples/s is the batch size per
// wall-clock update time, the rate at which the learner can train on
// (and so, at one sample drawn per insert, ingest) experiences;
// samples/cpu-s divides by the process's CPU time instead; GFLOP/s counts
// the matrix products' operations (see updateFLOPs) per wall-clock
// second.
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
			for _, path := range []string{"batched", "rows"} {
				b.Run(fmt.Sprintf("%s/workers=%d/path=%s", s.name, workers, path), func(b *testing.B) {
					cfg := DefaultConfig(16, 12)
					cfg.Epochs, cfg.Minibatches = s.epochs, s.mbs
					cfg.Workers = workers
					rng := rand.New(rand.NewPCG(1, 2))
					a, err := New(cfg, rng)
					if err != nil {
						b.Fatal(err)
					}
					defer a.Close()
					a.perRow = path == "rows"
					batch := randomBatch(cfg, s.batch, rng)
					a.ObserveObs(batch.Obs)
					a.Update(batch)
					flops := updateFLOPs(cfg, batch)
					b.ReportAllocs()
					cpu0, cpuOK := processCPUTime()
					for b.Loop() {
						a.Update(batch)
					}
					samples := float64(s.batch) * float64(b.N)
					b.ReportMetric(samples/b.Elapsed().Seconds(), "samples/s")
					b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
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
}

// BenchmarkPolicyForward compares forward passes of the policy network
// (16 inputs, 2×64 hidden, 12 actions) over 64 samples: rows-floats, the
// per-row path's (one sample at a time, floats.Dot per output unit);
// batched-mat, gonum/mat's Dense.Mul (its pure-Go BLAS, Dgemm) per layer
// with math.Tanh; batched-gemm, the agent's batched pass over the 64 rows
// at once; rows-gemm, the same code one row at a time (what a Policy
// runs per decision); policy, Policy.LogProbs per sample (with the
// normalisation and the softmax); and policy-rows, the same on the
// per-row path (what Policy.LogProbs computed before).
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
	a.ObserveObs(xs)
	net, p := &a.pol, a.polParams()
	wt := make([]float64, len(p))
	net.transposeWeights(p, wt)
	b.Run("rows-floats", func(b *testing.B) {
		w := net.newWork()
		b.ReportAllocs()
		for b.Loop() {
			for i := range m {
				net.forwardRow(p, xs[i*16:(i+1)*16], w)
			}
		}
		b.ReportMetric(float64(m*b.N)/b.Elapsed().Seconds(), "samples/s")
	})
	b.Run("batched-mat", func(b *testing.B) {
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
	b.Run("batched-gemm", func(b *testing.B) {
		act := newNetRows(net, m, false).act
		b.ReportAllocs()
		for b.Loop() {
			net.forwardRows(p, wt, xs, act, 0, m)
		}
		b.ReportMetric(float64(m*b.N)/b.Elapsed().Seconds(), "samples/s")
	})
	b.Run("rows-gemm", func(b *testing.B) {
		act := newNetRows(net, 1, false).act
		b.ReportAllocs()
		for b.Loop() {
			for i := range m {
				net.forwardRows(p, wt, xs[i*16:(i+1)*16], act, 0, 1)
			}
		}
		b.ReportMetric(float64(m*b.N)/b.Elapsed().Seconds(), "samples/s")
	})
	b.Run("policy-rows", func(b *testing.B) {
		// What Policy.LogProbs ran before the batched kernels: the
		// per-row forward pass with its normalisation and softmax.
		w := net.newWork()
		x, dst := make([]float64, cfg.ObsDim), make([]float64, cfg.NumActions)
		b.ReportAllocs()
		for b.Loop() {
			for i := range m {
				normalizeObs(x, xs[i*16:(i+1)*16], a.norm.mean, a.norm.variance)
				logSoftmaxPerRow(dst, w.probs, net.forwardRow(p, x, w))
			}
		}
		b.ReportMetric(float64(m*b.N)/b.Elapsed().Seconds(), "samples/s")
	})
	b.Run("policy", func(b *testing.B) {
		pol := a.Snapshot()
		dst := make([]float64, cfg.NumActions)
		b.ReportAllocs()
		for b.Loop() {
			for i := range m {
				pol.LogProbs(xs[i*16:(i+1)*16], dst)
			}
		}
		b.ReportMetric(float64(m*b.N)/b.Elapsed().Seconds(), "samples/s")
	})
}
