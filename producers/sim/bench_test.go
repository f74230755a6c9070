package sim

import "testing"

// BenchmarkStep measures environment steps per second on one goroutine,
// without Kafka: one b.N iteration is one step, journeys run back to back.
// The uniform logging policy is the baseline; the softmax policy adds a
// 12×16 linear layer and a softmax per step.
func BenchmarkStep(b *testing.B) {
	cfg := DefaultConfig()
	for _, bc := range []struct {
		name string
		p    Policy
	}{
		{"uniform", Uniform{cfg.NumActions()}},
		{"softmax", newSoftmax(cfg.NumActions(), cfg.StateDim)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s := mustNew(b, cfg, 1, 0)
			var sink float64
			emit := func(tr *Transition) { sink += tr.Reward }
			b.ReportAllocs()
			b.ResetTimer()
			steps := 0
			for steps < b.N {
				steps += s.RunEpisode(bc.p, emit).Steps
			}
			b.StopTimer()
			b.ReportMetric(float64(steps)/b.Elapsed().Seconds(), "steps/s")
			_ = sink
		})
	}
}
