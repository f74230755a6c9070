package train

import (
	"math"
	"testing"
	"time"

	"github.com/aelp/aelp/schemas"
)

// TestSoftPriority: with SoftPriority an item's priority w(tag)·f is
// w_c·p + w_r·(1 − p) of its tag_score p, whatever its hard tag, so two
// items of equal score are drawn equally often even when one is tagged
// crisis; without it the priority is the hard tag's weight.
func TestSoftPriority(t *testing.T) {
	exps := journeys(t, 10, 7, time.Time{})
	for _, soft := range []bool{false, true} {
		cfg := testConfig(7)
		cfg.SoftPriority = soft
		tr := mustNew(t, cfg)
		rc := tr.Config().Replay
		cases := []struct {
			crisis bool
			score  float64
		}{{true, 0.5}, {false, 0.5}, {true, 1}, {false, 0}, {false, 0.9}, {true, 2}, {false, -1}, {true, math.NaN()}}
		for i, c := range cases {
			te := exps[i]
			te.EventType, te.TagScore = schemas.EventRegular, c.score
			if c.crisis {
				te.EventType = schemas.EventCrisis
			}
			tr.Insert(&te)
		}
		for i, c := range cases {
			w := rc.RegularWeight
			if c.crisis {
				w = rc.CrisisWeight
			}
			got := w * tr.buf.Factor(i)
			want := w
			if soft && !math.IsNaN(c.score) {
				p := min(max(c.score, 0), 1)
				want = rc.CrisisWeight*p + rc.RegularWeight*(1-p)
			}
			if math.Abs(got-want) > 1e-12 {
				t.Errorf("soft %v, item %d (crisis %v, score %v): priority %v, want %v", soft, i, c.crisis, c.score, got, want)
			}
		}
		if soft && math.Abs(tr.buf.Prob(0)/tr.buf.Prob(1)-1) > 1e-9 {
			t.Errorf("soft: equal scores drawn with probabilities %v and %v, want equal", tr.buf.Prob(0), tr.buf.Prob(1))
		}
		if !soft && !(tr.buf.Prob(0) > tr.buf.Prob(1)) {
			t.Errorf("hard: a crisis tag drawn with probability %v, not above the regular tag's %v", tr.buf.Prob(0), tr.buf.Prob(1))
		}
	}
}
