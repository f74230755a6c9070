package classify

import (
	"math/rand/v2"
	"testing"
)

// BenchmarkClassify measures Classify on simulator-shaped metadata maps
// (label on 20%, keywords, engagement, urgent searches, campaign, ground
// truth), after warm-up, and the P² update alone as its baseline.
func BenchmarkClassify(b *testing.B) {
	recs := genRecords(rand.New(rand.NewPCG(9, 9)), 4096)
	b.Run("realistic", func(b *testing.B) {
		c := mustNew(b, DefaultConfig())
		for _, r := range recs {
			c.Classify(r.md, r.value)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			r := &recs[i&(len(recs)-1)]
			c.Classify(r.md, r.value)
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
	})
	b.Run("no-label", func(b *testing.B) {
		cfg := DefaultConfig()
		cfg.LabelKey = "absent"
		c := mustNew(b, cfg)
		for _, r := range recs {
			c.Classify(r.md, r.value)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			r := &recs[i&(len(recs)-1)]
			c.Classify(r.md, r.value)
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
	})
	b.Run("p2-observe-baseline", func(b *testing.B) {
		q, _ := NewP2Quantile(0.9)
		b.ReportAllocs()
		for i := range b.N {
			q.Observe(recs[i&(len(recs)-1)].value)
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
	})
}
