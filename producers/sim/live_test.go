package sim

import (
	"math"
	"testing"
	"time"

	"github.com/aelp/aelp/schemas"
)

// TestLiveStream: one decision per step with the step's fields and the
// full distribution; truth rewards equal the simulator's rewards; records
// come in delivery order, each delivered at its event time or at most
// DisorderMax later; every record validates; duplicates and disorder appear
// in about their shares; the conversion delays follow the model
// (LateProbability within 4 standard errors at three windows).
func TestLiveStream(t *testing.T) {
	cfg := DefaultConfig()
	s := mustNew(t, cfg, 5, 0)
	lc := DefaultLiveConfig()
	start := time.UnixMilli(1_700_000_000_000)
	l, err := NewLive(s, lc, "exp", start, 7)
	if err != nil {
		t.Fatal(err)
	}
	var events []Event
	var truths []TrueTransition
	var rewards []float64
	policy := Uniform{N: cfg.NumActions()}
	ids := make(map[string]bool)
	for range 3000 {
		l.Journey(policy, -1, func(tt *TrueTransition) { truths = append(truths, *tt) })
		events = l.Ready(events, false)
	}
	events = l.Ready(events, true)
	// The simulator's own rewards for the same journeys (same seed).
	s2 := mustNew(t, cfg, 5, 0)
	for range 3000 {
		s2.RunEpisode(policy, func(tr *Transition) { rewards = append(rewards, tr.Reward) })
	}
	if len(rewards) != len(truths) {
		t.Fatalf("%d truths, %d transitions", len(truths), len(rewards))
	}
	for i, tt := range truths {
		if tt.Experience.Reward != rewards[i] {
			t.Fatalf("step %d: true reward %v, simulator's %v", i, tt.Experience.Reward, rewards[i])
		}
	}
	lim := schemas.Limits{StateDim: cfg.StateDim, NumActions: cfg.NumActions()}
	var decisions, outcomes, disordered, conversions int
	last := int64(math.MinInt64)
	for _, e := range events {
		if e.Deliver < last {
			t.Fatalf("delivery order broken: %d after %d", e.Deliver, last)
		}
		last = e.Deliver
		if d := e.Decision; d != nil {
			decisions++
			if err := d.Validate(lim); err != nil {
				t.Fatalf("decision %s: %v", d.DecisionID, err)
			}
			if e.Deliver != d.Timestamp.UnixMilli() {
				t.Fatal("decision not delivered at its time")
			}
			continue
		}
		o := e.Outcome
		outcomes++
		if err := o.Validate(); err != nil {
			t.Fatal(err)
		}
		ids[o.OutcomeID] = true
		lag := e.Deliver - o.Timestamp.UnixMilli()
		if lag < 0 || lag > lc.DisorderMax.Milliseconds() {
			t.Fatalf("outcome delivered %d ms after its time", lag)
		}
		if lag > 0 {
			disordered++
		}
	}
	distinct := 0
	for _, tt := range truths {
		distinct += len(tt.Outcomes)
		for _, o := range tt.Outcomes {
			if o.Kind == schemas.KindConversion {
				conversions++
			}
		}
	}
	if decisions != len(truths) || len(ids) != distinct {
		t.Fatalf("%d decisions for %d steps, %d outcome ids for %d outcomes", decisions, len(truths), len(ids), distinct)
	}
	dupShare := float64(outcomes-distinct) / float64(distinct)
	if math.Abs(dupShare-lc.DuplicateShare) > 4*math.Sqrt(lc.DuplicateShare/float64(distinct)) {
		t.Errorf("duplicate share %.4f, want %.2f", dupShare, lc.DuplicateShare)
	}
	if disordered == 0 {
		t.Error("no outcome out of order")
	}
	for _, w := range []time.Duration{time.Minute, 2 * time.Minute, 10 * time.Minute} {
		late := 0
		for _, tt := range truths {
			for _, o := range tt.Outcomes {
				if o.Kind == schemas.KindConversion && o.Timestamp.Sub(tt.Experience.Timestamp) > w {
					late++
				}
			}
		}
		p := lc.LateProbability(w)
		se := math.Sqrt(float64(conversions) * p * (1 - p))
		if math.Abs(float64(late)-float64(conversions)*p) > 4*se {
			t.Errorf("window %s: %d of %d conversions late, model %.1f ± %.1f", w, late, conversions, float64(conversions)*p, se)
		}
	}
	if conversions < 200 {
		t.Errorf("only %d conversions", conversions)
	}
}

func TestLiveConfigValidate(t *testing.T) {
	for _, mod := range []func(*LiveConfig){
		func(c *LiveConfig) { c.ArrivalRate = 0 },
		func(c *LiveConfig) { c.StepGapMax = c.StepGapMin - 1 },
		func(c *LiveConfig) { c.ConversionMedian = 0 },
		func(c *LiveConfig) { c.ConversionSigma = math.NaN() },
		func(c *LiveConfig) { c.DuplicateShare = 1.5 },
		func(c *LiveConfig) { c.DisorderMax = -1 },
	} {
		c := DefaultLiveConfig()
		mod(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
	c := DefaultLiveConfig()
	if p := c.LateProbability(c.ConversionMedian); math.Abs(p-0.5) > 1e-12 {
		t.Errorf("P(delay > median) = %v", p)
	}
}
