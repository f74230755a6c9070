package bench

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/aelp/aelp/consumers/classify"
	"github.com/aelp/aelp/learner"
	"github.com/aelp/aelp/learner/ppo"
	"github.com/aelp/aelp/learner/replay"
	"github.com/aelp/aelp/producers/sim"
	"github.com/aelp/aelp/schemas"
	"github.com/segmentio/kafka-go"
)

// MicroResult is one in-process micro-benchmark.
type MicroResult struct {
	// Name names the benchmark ("codec/decode TaggedExperience", …).
	Name string
	// Unit names what Rate counts (records, steps, items, samples).
	Unit string
	// N is the number of operations of the final run; NsPerOp the time
	// per operation.
	N       int
	NsPerOp float64
	// Rate is Unit per second.
	Rate float64
	// AllocsPerOp and BytesPerOp are the allocations per operation.
	AllocsPerOp, BytesPerOp int64
}

// microBench is one micro-benchmark: f runs b.N operations and returns how
// many Unit items they processed.
type microBench struct {
	name, unit string
	f          func(b *testing.B) int64
}

// MicroNames returns the names of the micro-benchmarks, in run order.
func MicroNames() []string {
	var out []string
	for _, m := range microBenches(sim.DefaultConfig(), nil, nil) {
		out = append(out, m.name)
	}
	return out
}

// Micro runs the micro-benchmarks whose names keep accepts (nil: all) with
// testing.Benchmark (about a second each) and returns their results.
func Micro(cfg sim.Config, keep func(name string) bool) ([]MicroResult, error) {
	raw, err := SimRecords(cfg, "micro", 500, 7, false)
	if err != nil {
		return nil, err
	}
	tagged, err := SimRecords(cfg, "micro", 500, 7, true)
	if err != nil {
		return nil, err
	}
	var out []MicroResult
	for _, m := range microBenches(cfg, values(raw), values(tagged)) {
		if keep != nil && !keep(m.name) {
			continue
		}
		var items int64
		var failed string
		r := testing.Benchmark(func(b *testing.B) {
			b.ReportAllocs()
			items = m.f(b)
			if b.Failed() {
				failed = "failed"
			}
		})
		if failed != "" || r.N == 0 {
			return out, fmt.Errorf("micro-benchmark %s failed", m.name)
		}
		out = append(out, MicroResult{
			Name: m.name, Unit: m.unit, N: r.N, NsPerOp: float64(r.T.Nanoseconds()) / float64(r.N),
			Rate: float64(items) / r.T.Seconds(), AllocsPerOp: r.AllocsPerOp(), BytesPerOp: r.AllocedBytesPerOp(),
		})
	}
	return out, nil
}

// values returns the values of msgs.
func values(msgs []kafka.Message) [][]byte {
	out := make([][]byte, len(msgs))
	for i, m := range msgs {
		out[i] = m.Value
	}
	return out
}

// microBenches lists the micro-benchmarks over the given encoded records.
func microBenches(cfg sim.Config, raw, tagged [][]byte) []microBench {
	nA := cfg.NumActions()
	lim := schemas.Limits{StateDim: cfg.StateDim, NumActions: nA}
	return []microBench{
		{"codec/encode Experience", "records", func(b *testing.B) int64 {
			es := make([]schemas.Experience, len(raw))
			for i, v := range raw {
				if err := schemas.UnmarshalExperience(v, &es[i]); err != nil {
					b.Fatal(err)
				}
			}
			var buf []byte
			b.ResetTimer()
			for i := range b.N {
				var err error
				if buf, err = schemas.MarshalExperience(buf[:0], &es[i%len(es)]); err != nil {
					b.Fatal(err)
				}
			}
			return int64(b.N)
		}},
		{"codec/decode Experience", "records", func(b *testing.B) int64 {
			var e schemas.Experience
			for i := range b.N {
				if err := schemas.UnmarshalExperience(raw[i%len(raw)], &e); err != nil {
					b.Fatal(err)
				}
			}
			return int64(b.N)
		}},
		{"codec/decode+validate TaggedExperience", "records", func(b *testing.B) int64 {
			var te schemas.TaggedExperience
			for i := range b.N {
				if err := schemas.UnmarshalTaggedExperience(tagged[i%len(tagged)], &te); err != nil {
					b.Fatal(err)
				}
				if err := te.Validate(lim); err != nil {
					b.Fatal(err)
				}
			}
			return int64(b.N)
		}},
		{"classify/Classify", "records", func(b *testing.B) int64 {
			es := make([]schemas.Experience, len(raw))
			for i, v := range raw {
				if err := schemas.UnmarshalExperience(v, &es[i]); err != nil {
					b.Fatal(err)
				}
			}
			cls, err := classify.New(classify.DefaultConfig())
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := range b.N {
				e := &es[i%len(es)]
				cls.Classify(e.Metadata, e.Value)
			}
			return int64(b.N)
		}},
		{"sim/episode (uniform policy)", "steps", func(b *testing.B) int64 {
			s, err := sim.New(cfg, 1, 0)
			if err != nil {
				b.Fatal(err)
			}
			p := sim.Uniform{N: nA}
			var steps int64
			for range b.N {
				steps += int64(s.RunEpisode(p, nil).Steps)
			}
			return steps
		}},
		{"replay/add (full buffer of 50,000)", "items", func(b *testing.B) int64 {
			buf := fullBuffer(b, false)
			rng := rand.New(rand.NewPCG(3, 4))
			b.ResetTimer()
			for range b.N {
				buf.Add(struct{}{}, rng.IntN(10) == 0)
			}
			return int64(b.N)
		}},
		{"replay/sample 256 (importance sampling)", "samples", func(b *testing.B) int64 {
			return sampleBench(b, fullBuffer(b, false))
		}},
		{"replay/sample 256 (uniform)", "samples", func(b *testing.B) int64 {
			return sampleBench(b, fullBuffer(b, true))
		}},
		{"ppo/update batch 256 (2 epochs × 4 minibatches)", "samples", func(b *testing.B) int64 {
			pc := learner.DefaultPPO(cfg.StateDim, nA)
			rng := rand.New(rand.NewPCG(5, 6))
			agent, err := ppo.New(pc, rng)
			if err != nil {
				b.Fatal(err)
			}
			batch := simBatch(b, cfg, 256)
			for i := 0; i < batch.N(); i++ {
				agent.ObserveObs(batch.Obs[i*cfg.StateDim : (i+1)*cfg.StateDim])
			}
			agent.Update(batch)
			b.ResetTimer()
			for range b.N {
				agent.Update(batch)
			}
			return int64(b.N) * 256
		}},
	}
}

// fullBuffer returns a default-configured buffer filled to capacity with
// 10% crisis items.
func fullBuffer(b *testing.B, uniform bool) *replay.Buffer[struct{}] {
	rc := replay.DefaultConfig()
	rc.Uniform = uniform
	buf, err := replay.New[struct{}](rc, rand.New(rand.NewPCG(1, 2)))
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for range rc.Capacity {
		buf.Add(struct{}{}, rng.IntN(10) == 0)
	}
	return buf
}

func sampleBench(b *testing.B, buf *replay.Buffer[struct{}]) int64 {
	var batch replay.Batch[struct{}]
	if err := buf.Sample(&batch, 256); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		if err := buf.Sample(&batch, 256); err != nil {
			b.Fatal(err)
		}
	}
	return int64(b.N) * 256
}

// simBatch returns n transitions of the uniform logging policy as a PPO
// batch with weights 1.
func simBatch(b *testing.B, cfg sim.Config, n int) *ppo.Batch {
	s, err := sim.New(cfg, 2, 0)
	if err != nil {
		b.Fatal(err)
	}
	pb := &ppo.Batch{}
	p := sim.Uniform{N: cfg.NumActions()}
	for pb.N() < n {
		s.RunEpisode(p, func(tr *sim.Transition) {
			if pb.N() < n {
				pb.Append(tr.State, tr.NextState, tr.Action, tr.BehaviorLogProb, tr.Reward, 1, tr.Done, -1)
			}
		})
	}
	return pb
}
