package sim

import (
	"errors"
	"math"
	"testing"
)

// FuzzNew feeds arbitrary configurations to New. Invariant: New never
// panics; it either returns an ErrInvalidConfig error or a simulator whose
// journeys respect the configured widths and limits, whose exact oracle is
// finite with AdaptiveReturn ≥ BestReturn, and whose calibration hits the
// configured crisis share of conversions exactly.
func FuzzNew(f *testing.F) {
	d := DefaultConfig()
	f.Add(d.CrisisFraction, d.BidLevels, d.Creatives, d.StateDim, d.MaxSteps, d.BudgetUnits, d.CrisisRate, d.CrisisConversionShare, uint64(1))
	f.Add(0.3, 2, 2, 15, 1, 1, 1.0, 0.9, uint64(2))
	f.Add(0.05, 6, 5, 20, 12, 40, 0.05, 0.2, uint64(3))
	f.Add(0.5, 3, 4, 16, 3, 2, 0.5, 0.01, uint64(4))
	f.Fuzz(func(t *testing.T, frac float64, bids, creatives, dim, steps, budget int, rate, share float64, seed uint64) {
		cfg := DefaultConfig()
		cfg.CrisisFraction, cfg.CrisisRate, cfg.CrisisConversionShare = frac, rate, share
		// Keep sizes small so one input runs in microseconds.
		cfg.BidLevels, cfg.Creatives = bids%8, creatives%8
		cfg.StateDim, cfg.MaxSteps, cfg.BudgetUnits = dim%40, steps%20, budget%64
		s, err := New(cfg, seed, seed>>3)
		if err != nil {
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("New error %v does not wrap ErrInvalidConfig", err)
			}
			return
		}
		for range 5 {
			n := 0
			res := s.RunEpisode(Uniform{cfg.NumActions()}, func(tr *Transition) {
				n++
				if len(tr.State) != cfg.StateDim || tr.Action < 0 || tr.Action >= cfg.NumActions() {
					t.Fatalf("bad transition: width %d action %d", len(tr.State), tr.Action)
				}
				if math.IsNaN(tr.Reward) || math.IsNaN(tr.Value) || math.IsInf(tr.BehaviorLogProb, 0) {
					t.Fatalf("non-finite reward %v value %v logprob %v", tr.Reward, tr.Value, tr.BehaviorLogProb)
				}
			})
			if res.Steps != n || n < 1 || n > cfg.MaxSteps {
				t.Fatalf("steps %d emitted %d max %d", res.Steps, n, cfg.MaxSteps)
			}
		}
		or, err := Oracle(cfg)
		if err != nil {
			t.Fatalf("Oracle after a successful New: %v", err)
		}
		for _, o := range []SegmentOracle{or.Crisis, or.Regular} {
			if math.IsNaN(o.BestReturn) || o.AdaptiveReturn < o.BestReturn-1e-9 {
				t.Fatalf("oracle best %v adaptive %v", o.BestReturn, o.AdaptiveReturn)
			}
		}
		if math.Abs(or.UniformCrisisConversionShare-share) > 1e-6 {
			t.Fatalf("calibrated share %v; want %v", or.UniformCrisisConversionShare, share)
		}
	})
}
