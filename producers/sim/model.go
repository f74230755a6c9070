package sim

import (
	"fmt"
	"math"
)

// Segment indices used by the model's tables.
const (
	segRegular = 0
	segCrisis  = 1
)

// model holds the response tables derived from a Config. It is immutable
// after newModel and shared by the simulator, the oracle and Evaluate.
//
// With m_b = b/(BidLevels−1) ∈ [0,1] (bid level) and
// u_c = 1 − c/(Creatives−1) ∈ [0,1] (urgency of creative c, 1 = urgent help):
//
//	win(b)        = 0.25 + 0.70·m_b                       auction win probability
//	cost(b)       = b + 1 units                           charged on a win
//	p_crisis(b,c) = CrisisRate · e^(−2.5(1−u_c)) · (0.40 + 0.60·m_b)
//	p_regular(b,c)= R_reg · e^(−((u_c−0.4)/0.45)²) · (0.85 + 0.15·m_b)
//
// p is the conversion probability given a won impression. Crisis parents
// convert on urgent creatives and gain much from a better (higher) bid;
// regular parents prefer the mid-urgency creative ("family deals") and barely
// respond to the bid, so for them high bids mostly waste money. R_reg is
// solved so that crisis parents produce CrisisConversionShare of all
// conversions under the uniform logging policy.
type model struct {
	cfg     Config
	nA      int
	win     []float64    // per bid level
	cost    []int        // per bid level, in units
	conv    [2][]float64 // per segment, per action
	value   [2]float64   // conversion value per segment
	regRate float64      // solved R_reg
}

func newModel(cfg Config) (*model, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m := &model{cfg: cfg, nA: cfg.NumActions()}
	m.win = make([]float64, cfg.BidLevels)
	m.cost = make([]int, cfg.BidLevels)
	for b := range cfg.BidLevels {
		mb := float64(b) / float64(cfg.BidLevels-1)
		m.win[b] = 0.25 + 0.70*mb
		m.cost[b] = b + 1
	}
	m.value = [2]float64{segRegular: cfg.RegularValue, segCrisis: cfg.CrisisValue}
	m.conv[segCrisis] = make([]float64, m.nA)
	m.conv[segRegular] = make([]float64, m.nA)
	m.fillCrisis()
	if err := m.calibrate(); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *model) bidFrac(b int) float64 { return float64(b) / float64(m.cfg.BidLevels-1) }

func (m *model) urgency(c int) float64 { return 1 - float64(c)/float64(m.cfg.Creatives-1) }

func (m *model) fillCrisis() {
	for a := range m.nA {
		b, c := m.cfg.Decode(a)
		m.conv[segCrisis][a] = m.cfg.CrisisRate * math.Exp(-2.5*(1-m.urgency(c))) * (0.40 + 0.60*m.bidFrac(b))
	}
}

func (m *model) fillRegular(rate float64) {
	m.regRate = rate
	for a := range m.nA {
		b, c := m.cfg.Decode(a)
		d := (m.urgency(c) - 0.4) / 0.45
		m.conv[segRegular][a] = rate * math.Exp(-d*d) * (0.85 + 0.15*m.bidFrac(b))
	}
}

// calibrate solves R_reg by bisection so that, under the uniform policy,
//
//	f·C_crisis / (f·C_crisis + (1−f)·C_regular(R_reg)) = CrisisConversionShare
//
// where C_s is a segment's exact conversion probability per journey and f the
// crisis fraction. C_regular increases with R_reg, and every p_regular ≤ R_reg,
// so R_reg ∈ (0, 1].
func (m *model) calibrate() error {
	f, s := m.cfg.CrisisFraction, m.cfg.CrisisConversionShare
	uni := uniformProbs(m.nA)
	cc := m.evaluate(segCrisis, uni).Conversion
	// Required regular conversion probability per journey.
	need := f * cc * (1 - s) / (s * (1 - f))
	lo, hi := 0.0, 1.0
	m.fillRegular(hi)
	if m.evaluate(segRegular, uni).Conversion < need {
		return fmt.Errorf("%w: crisis conversion share %v unreachable (regular parents would need a conversion rate above 1)",
			ErrInvalidConfig, s)
	}
	for range 100 {
		mid := (lo + hi) / 2
		m.fillRegular(mid)
		if m.evaluate(segRegular, uni).Conversion < need {
			lo = mid
		} else {
			hi = mid
		}
	}
	m.fillRegular((lo + hi) / 2)
	return nil
}

func uniformProbs(n int) []float64 {
	p := make([]float64, n)
	for i := range p {
		p[i] = 1 / float64(n)
	}
	return p
}

// outcome is the exact expectation of one segment's journey under a policy.
type outcome struct {
	Return     float64 // E[Σ rewards]
	Conversion float64 // P(converted)
	Spend      float64 // E[money spent]
	Steps      float64 // E[number of steps]
}

// evaluate computes the exact expected outcome of a journey of segment seg
// when every step draws its action from probs, by backward recursion over
// (steps taken t, remaining budget r):
//
//	J(t, r) = Σ_a π(a) [ w_b·( −s·UnitCost + p_a·V + (1−p_a)·J(t+1, r−s) ) + (1−w_b)·J(t+1, r) ]
//
// with s = min(cost_b, r), J(MaxSteps, ·) = J(·, 0) = 0. Conversion,
// spend and step counts follow the same recursion with other per-step terms.
func (m *model) evaluate(seg int, probs []float64) outcome {
	return m.solve(seg, func(int, int) []float64 { return probs }, false)
}

// optimal computes the expected outcome of the Bellman-optimal segment-aware
// policy that may depend on the step and the remaining budget (both are in
// the observation): J(t, r) = max_a [ … ] with the same terms as evaluate.
func (m *model) optimal(seg int) outcome {
	return m.solve(seg, nil, true)
}

func (m *model) solve(seg int, policy func(t, r int) []float64, maximise bool) outcome {
	T, B := m.cfg.MaxSteps, m.cfg.BudgetUnits
	// next[r] holds the outcome from step t+1 with r units left.
	next := make([]outcome, B+1)
	cur := make([]outcome, B+1)
	V, uc := m.value[seg], m.cfg.UnitCost
	step := func(a int, r int) outcome {
		b, _ := m.cfg.Decode(a)
		w, p := m.win[b], m.conv[seg][a]
		s := min(m.cost[b], r)
		won, lost := next[r-s], next[r]
		if r-s == 0 {
			won = outcome{}
		}
		var o outcome
		o.Return = w*(-float64(s)*uc+p*V+(1-p)*won.Return) + (1-w)*lost.Return
		o.Conversion = w*(p+(1-p)*won.Conversion) + (1-w)*lost.Conversion
		o.Spend = w*(float64(s)*uc+(1-p)*won.Spend) + (1-w)*lost.Spend
		o.Steps = 1 + w*(1-p)*won.Steps + (1-w)*lost.Steps
		return o
	}
	for t := T - 1; t >= 0; t-- {
		for r := 1; r <= B; r++ {
			if maximise {
				best := outcome{Return: math.Inf(-1)}
				for a := range m.nA {
					if o := step(a, r); o.Return > best.Return {
						best = o
					}
				}
				cur[r] = best
				continue
			}
			var acc outcome
			for a, pa := range policy(t, r) {
				if pa == 0 {
					continue
				}
				o := step(a, r)
				acc.Return += pa * o.Return
				acc.Conversion += pa * o.Conversion
				acc.Spend += pa * o.Spend
				acc.Steps += pa * o.Steps
			}
			cur[r] = acc
		}
		cur[0] = outcome{}
		next, cur = cur, next
	}
	return next[B]
}
