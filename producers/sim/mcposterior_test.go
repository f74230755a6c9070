package sim

import (
	"math"
	"testing"
)

// softPolicy is a softmax over the actions of a linear function of the
// observation features in, with a fixed weight per action, so the actions
// depend on whatever those features carry (the segment, through them).
type softPolicy struct {
	in []int
}

func (p softPolicy) ActionProbs(obs, dst []float64) {
	var sum float64
	for a := range dst {
		var z float64
		for k, i := range p.in {
			z += obs[i] * math.Sin(float64(1+a)*float64(1+k))
		}
		dst[a] = math.Exp(1.5 * z)
		sum += dst[a]
	}
	for a := range dst {
		dst[a] /= sum
	}
}

// targetingPolicy bids high with the urgent creative (action 9) when the
// observation's engagement and urgency signal look like a crisis parent's,
// and low with the family creative (action 1) otherwise: its actions, and
// so the values, depend strongly on the segment.
type targetingPolicy struct{}

func (targetingPolicy) ActionProbs(obs, dst []float64) {
	q := 1 / (1 + math.Exp(-6*(obs[4]+obs[9]-0.8)))
	for a := range dst {
		dst[a] = 0.01
	}
	rest := 1 - 0.01*float64(len(dst)-2)
	dst[9], dst[1] = 0.01+(rest-0.02)*q, 0.01+(rest-0.02)*(1-q)
}

// TestPolicyPosteriorUniform: under the uniform policy the Monte Carlo
// posterior converges to the exact one (only the journey lengths are
// estimated).
func TestPolicyPosteriorUniform(t *testing.T) {
	cfg := DefaultConfig()
	post, err := NewPosterior(cfg)
	if err != nil {
		t.Fatal(err)
	}
	pp, err := NewPolicyPosterior(cfg, Uniform{N: cfg.NumActions()}, 2000, 5, 1)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(cfg, 5, 0)
	if err != nil {
		t.Fatal(err)
	}
	var ev UserEvidence
	for range 5 {
		var checked bool
		s.RunEpisode(Uniform{N: cfg.NumActions()}, func(tr *Transition) {
			if !checked {
				if err := pp.User(tr.Metadata, &ev); err != nil {
					t.Fatal(err)
				}
				checked = true
			}
			got, want := ev.LogOdds(tr.Value), post.LogOdds(tr.Metadata, tr.Value)
			if math.Abs(got-want) > 0.05 {
				t.Errorf("log-odds %v, exact %v", got, want)
			}
		})
	}
}

// TestPolicyPosteriorVisits: for a policy that reads only traits no record
// carries (hour, device, recent engagement, the urgency signal, the
// previous step), the ghosts' expected visits N_s(a) match the visits of
// real journeys of segment s, so the ghosts draw those traits as the
// simulator does.
func TestPolicyPosteriorVisits(t *testing.T) {
	cfg := DefaultConfig()
	pol := softPolicy{in: []int{0, 1, 2, 3, 8, 9, 13}}
	const users = 20_000
	s, err := New(cfg, 9, 0)
	if err != nil {
		t.Fatal(err)
	}
	var visits, sq [2][]float64
	var count [2]float64
	for seg := range 2 {
		visits[seg] = make([]float64, cfg.NumActions())
		sq[seg] = make([]float64, cfg.NumActions())
	}
	per := make([]float64, cfg.NumActions())
	for range users {
		clear(per)
		seg := 0
		s.RunEpisode(pol, func(tr *Transition) {
			per[tr.Action]++
			if tr.Crisis {
				seg = 1
			}
		})
		count[seg]++
		for a, v := range per {
			visits[seg][a] += v
			sq[seg][a] += v * v
		}
	}
	pp, err := NewPolicyPosterior(cfg, pol, 4000, 9, 1)
	if err != nil {
		t.Fatal(err)
	}
	md := map[string]string{KeyCrisisContentEngagement: "0.400", KeyUrgentSearchCount: "1", KeyProfileKeywords: "toddler", KeyCampaignID: "family_deals"}
	var ev UserEvidence
	if err := pp.User(md, &ev); err != nil {
		t.Fatal(err)
	}
	for seg := range 2 {
		for a := range cfg.NumActions() {
			n := count[seg]
			mean := visits[seg][a] / n
			se := math.Sqrt((sq[seg][a]/n-mean*mean)/n + mean*mean/4000) // both estimates' noise, roughly
			got := math.Exp(ev.logN[seg][a])
			if math.Abs(got-mean) > 4*se+1e-3 {
				t.Errorf("segment %d action %d: ghosts %.4f visits, real journeys %.4f ± %.4f", seg, a, got, mean, se)
			}
		}
	}
}

// TestPolicyPosteriorIsCalibrated: on the stream of a policy whose
// actions depend on the segment (targetingPolicy), the Monte Carlo posterior is calibrated
// (ECE ≤ 0.015) and has a lower log loss than the uniform-policy
// posterior, which ignores the policy (the metadata carry most of the
// evidence, so the margin is small: 0.0312 against 0.0322 when written).
func TestPolicyPosteriorIsCalibrated(t *testing.T) {
	cfg := DefaultConfig()
	var pol targetingPolicy
	post, err := NewPosterior(cfg)
	if err != nil {
		t.Fatal(err)
	}
	pp, err := NewPolicyPosterior(cfg, pol, 48, 11, 1)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(cfg, 11, 0)
	if err != nil {
		t.Fatal(err)
	}
	var mc, uni calib
	var ev UserEvidence
	for range 4000 {
		first := true
		s.RunEpisode(pol, func(tr *Transition) {
			if first {
				if err := pp.User(tr.Metadata, &ev); err != nil {
					t.Fatal(err)
				}
				first = false
			}
			mc.add(1/(1+math.Exp(-ev.LogOdds(tr.Value))), tr.Crisis)
			uni.add(1/(1+math.Exp(-post.LogOdds(tr.Metadata, tr.Value))), tr.Crisis)
		})
	}
	if e := mc.ece(); e > 0.015 {
		t.Errorf("Monte Carlo posterior ECE %.4f, want ≤ 0.015", e)
	}
	if m, u := mc.loss/mc.total, uni.loss/uni.total; !(m < u) {
		t.Errorf("log loss %.4f of the Monte Carlo posterior, not below the uniform-policy posterior's %.4f", m, u)
	}
	if _, err := NewPolicyPosterior(cfg, pol, 0, 1, 1); err == nil {
		t.Error("0 ghosts: no error")
	}
	if err := pp.User(map[string]string{}, &ev); err == nil {
		t.Error("User of empty metadata: no error")
	}
}

type calib struct {
	n, p, y [10]float64
	loss    float64 // Σ log loss
	total   float64
}

func (c *calib) add(p float64, crisis bool) {
	c.total++
	if crisis {
		c.loss -= math.Log(p)
	} else {
		c.loss -= math.Log1p(-p)
	}
	b := min(int(p*10), 9)
	c.n[b]++
	c.p[b] += p
	c.y[b] += b2f(crisis)
}

func (c *calib) ece() float64 {
	var tot, e float64
	for b := range c.n {
		tot += c.n[b]
		e += math.Abs(c.p[b] - c.y[b])
	}
	return e / tot
}
