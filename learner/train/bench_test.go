package train

import (
	"testing"
	"time"
)

// BenchmarkInsertUpdate measures the training core at the learn role's
// default schedule (DefaultConfig: buffer 50,000, min buffer 1,000, batch
// 256, one sample per insert with a tolerance of 2,560 samples, PPO 2
// epochs × 4 minibatches on 1 worker): a stream of simulated experiences
// (4,000 users, cycled) inserted one at a time, with an update whenever
// Due, as the learn role trains on a backlog. One op is one experience
// inserted; the updates it paces are included, so experiences/s is the
// core's ceiling on ingest at this schedule and samples/s its training
// rate. The baseline insert-only runs the same inserts without training.
// Warm-up (the buffer filled to steady state, the batches grown) is not
// timed.
//
//	go test -run '^$' -bench . -benchmem ./learner/train
func BenchmarkInsertUpdate(b *testing.B) {
	exps := journeys(b, 4000, 1, time.Unix(1_700_000_000, 0))
	for _, bc := range []struct {
		name            string
		uniform, update bool
	}{
		{"insert-only", false, false},
		{"importance-sampling", false, true},
		{"uniform", true, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			cfg := DefaultConfig()
			cfg.Seed = 1
			cfg.Replay.Uniform = bc.uniform
			tr := mustNew(b, cfg)
			i := 0
			step := func() {
				tr.Insert(&exps[i%len(exps)])
				i++
				for bc.update && tr.Due() {
					if _, err := tr.Update(); err != nil {
						b.Fatal(err)
					}
				}
			}
			for tr.Stats().Updates < 20 && i < 2*cfg.Replay.Capacity {
				step()
			}
			s0 := tr.Stats()
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				step()
			}
			b.StopTimer()
			s := tr.Stats()
			sec := b.Elapsed().Seconds()
			b.ReportMetric(float64(b.N)/sec, "experiences/s")
			b.ReportMetric(float64(s.Sampled-s0.Sampled)/sec, "samples/s")
			b.ReportMetric(float64(s.Updates-s0.Updates)/sec, "updates/s")
		})
	}
}
