package train

import (
	"errors"
	"fmt"
	"math"
)

// Defaults of Adaptive.
const (
	// DefaultMaxCrisisWeight is Adaptive.MaxWeight: 5^(1/0.6) ≈ 14.6, the
	// weight that gives a crisis item 5 times a regular item's probability
	// at α = 0.6, the top of `aelp experiment sweep`'s default grid.
	DefaultMaxCrisisWeight = 14.6
	// DefaultAdaptiveSmoothing is Adaptive.Smoothing, in updates.
	DefaultAdaptiveSmoothing = 100
)

// Adaptive configures the adaptive crisis weight: after every update the
// crisis weight w_c is set from the TD errors of the batches seen so far,
// so that the crisis/regular probability ratio tracks the ratio of the
// strata's root-mean-square TD errors.
//
// The rule. For the batch of update t and each tagged stratum s (crisis,
// regular), the draws j of s that PPO trained on give the stratum's mean
// squared TD error, self-normalised by the draw probabilities P_j so that
// it estimates the mean over the stratum's items (with factors 1, the
// plain mean):
//
//	m_s(t) = Σ_{j∈s} δ_j²/P_j / Σ_{j∈s} 1/P_j      δ_j = ρ_j·(r_j + γV(s′_j) − V(s_j))   (ppo.Agent.TDErrors)
//
// smoothed by an exponential moving average with time constant τ =
// Smoothing updates, started at the first batch that has draws of s:
//
//	e_s ← m_s(1);  then  e_s ← e_s + (m_s(t) − e_s)/τ
//
// and the weight is the one whose probability ratio P_c/P_r = (w_c/w_r)^(α/T)
// equals √(e_c/e_r), clamped to [1, MaxWeight]:
//
//	w_c = clamp(w_r·(e_c/e_r)^(T/(2α)), 1, MaxWeight)
//
// Why: at β = 1 the loss is an importance-weighted estimate of the mean
// over the buffer, and the variance of such an estimate under sampling
// that is uniform inside each stratum is smallest when each stratum's
// per-item probability is proportional to the root mean square of its
// per-item gradients (Neyman allocation: minimise Σ_s N_s·E_s[g²]/P_s
// subject to Σ_s N_s·P_s = 1). The per-sample gradient of the value loss
// is −δ·∇V and that of the policy loss is proportional to the advantage
// ρδ, so |δ| stands for the gradient's size. A segment the value function
// fits worse gets more of the batch; if the crisis segment is fitted as
// well as the regular one the weight falls to 1 (uniform sampling). The
// clamp keeps the crisis segment at least as likely as the regular one
// and its IS weights bounded; the moving average over ~τ batches keeps
// the weight from following one batch's noise. A constant signal gives a
// constant weight from the first update on.
//
// A change of weight is replay.Buffer.SetCrisisWeight: O(1), and the IS
// weights of every later draw are exact for the probabilities of the new
// weight. The rule's state (the moving averages, whether each has started,
// and the weight in force) is kept by a checkpoint as
// Counters.Adaptive, so a resumed trainer draws its next batch with the
// weight the uninterrupted one would have used and its averages go on
// from where they were.
type Adaptive struct {
	// Enabled turns the adaptive crisis weight on. Replay.CrisisWeight is
	// then the weight of the first batch. It needs importance sampling
	// (Replay.Uniform false), α > 0 and hard priorities (SoftPriority
	// false). Default false.
	Enabled bool
	// MaxWeight is the largest crisis weight the rule may set; the
	// smallest is 1. Must be ≥ 1 and ≥ Replay.CrisisWeight. Default
	// DefaultMaxCrisisWeight (14.6).
	MaxWeight float64
	// Smoothing is the moving averages' time constant τ, in updates
	// (≥ 1; 1 follows the last batch alone). Default 100.
	Smoothing float64
}

func (a Adaptive) withDefaults() Adaptive {
	if a.MaxWeight == 0 {
		a.MaxWeight = DefaultMaxCrisisWeight
	}
	if a.Smoothing == 0 {
		a.Smoothing = DefaultAdaptiveSmoothing
	}
	return a
}

// validate checks a against the configuration c it is part of (defaults
// filled in).
func (a Adaptive) validate(c Config) error {
	if !a.Enabled {
		return nil
	}
	switch {
	case !(a.MaxWeight >= 1) || math.IsInf(a.MaxWeight, 0):
		return fmt.Errorf("max crisis weight %v: must be finite and at least 1", a.MaxWeight)
	case !(a.Smoothing >= 1) || math.IsInf(a.Smoothing, 0):
		return fmt.Errorf("adaptive smoothing %v: must be finite and at least 1 update", a.Smoothing)
	case c.Replay.CrisisWeight < 1 || c.Replay.CrisisWeight > a.MaxWeight:
		return fmt.Errorf("crisis weight %v: the adaptive weight starts there, so it must be in [1, max crisis weight %v]", c.Replay.CrisisWeight, a.MaxWeight)
	case c.Replay.Uniform:
		return errors.New("adaptive crisis weight needs importance sampling (uniform sampling has no weight to adapt)")
	case c.Replay.Alpha == 0:
		return errors.New("adaptive crisis weight needs α > 0 (at α = 0 the weight changes no probability)")
	case c.SoftPriority:
		return errors.New("adaptive crisis weight and soft priority cannot be combined (a soft priority fixes each item's weight when it is inserted)")
	}
	return nil
}

// weightRule is the adaptive crisis weight's state: the strata's moving
// averages and the rule's constants. It is the rule alone, without the
// buffer, so that it can be tested on any signal.
type weightRule struct {
	cfg     Adaptive
	exp     float64 // T/(2α)
	wr      float64 // w_r
	ema     [2]float64
	started [2]bool
	signal  float64 // √(e_c/e_r), 0 until both averages have started
}

// stratum indices of weightRule.ema.
const (
	stratumRegular = 0
	stratumCrisis  = 1
)

func newWeightRule(c Config) *weightRule {
	return &weightRule{cfg: c.Adaptive, exp: c.Replay.Temperature / (2 * c.Replay.Alpha), wr: c.Replay.RegularWeight}
}

// observe folds one batch's mean squared TD error of each stratum into
// the moving averages (has[s] false: no draw of s in the batch, its
// average is left alone) and returns the weight the rule sets, or ok
// false when it has no signal yet (either average not started, or a
// ratio that is not a number: both averages 0).
func (r *weightRule) observe(m [2]float64, has [2]bool) (w float64, ok bool) {
	for s := range 2 {
		switch {
		case !has[s] || math.IsNaN(m[s]) || math.IsInf(m[s], 0):
		case !r.started[s]:
			r.ema[s], r.started[s] = m[s], true
		default:
			r.ema[s] += (m[s] - r.ema[s]) / r.cfg.Smoothing
		}
	}
	if !r.started[stratumCrisis] || !r.started[stratumRegular] {
		return 0, false
	}
	ratio := r.ema[stratumCrisis] / r.ema[stratumRegular]
	if math.IsNaN(ratio) {
		return 0, false
	}
	r.signal = math.Sqrt(ratio)
	w = r.wr * math.Pow(ratio, r.exp)
	return min(max(w, 1), r.cfg.MaxWeight), true
}

// batchSignal returns each stratum's mean squared TD error of the last
// update, Σ_{j∈s} δ_j²/P_j / Σ_{j∈s} 1/P_j over the draws PPO trained on,
// and whether the stratum had any.
func batchSignal(rows []int, td []float64, probs []float64, crisis []bool) (m [2]float64, has [2]bool) {
	var num, den [2]float64
	for k, j := range rows {
		s := stratumRegular
		if crisis[j] {
			s = stratumCrisis
		}
		inv := 1 / probs[j]
		num[s] += td[k] * td[k] * inv
		den[s] += inv
		has[s] = true
	}
	for s := range 2 {
		if has[s] {
			m[s] = num[s] / den[s]
		}
	}
	return m, has
}

// AdaptiveState is the adaptive rule's state that a checkpoint keeps
// (Counters.Adaptive): with it a resumed Trainer continues the rule where
// it stopped instead of starting again from Replay.CrisisWeight.
type AdaptiveState struct {
	// Weight is the crisis weight in force: the one the next batch is
	// drawn with.
	Weight float64
	// RegularMSE and CrisisMSE are the moving averages e_r and e_c of the
	// strata's mean squared TD errors; RegularStarted and CrisisStarted
	// whether each has started (an average is 0 until then).
	RegularMSE, CrisisMSE         float64
	RegularStarted, CrisisStarted bool
}

// Validate checks that s could have been written by a Trainer: a finite
// weight ≥ 1 and finite, non-negative averages, each 0 until it has
// started.
func (s AdaptiveState) Validate() error {
	switch {
	case math.IsNaN(s.Weight) || math.IsInf(s.Weight, 0) || s.Weight < 1:
		return fmt.Errorf("adaptive state: crisis weight %v, want a finite weight ≥ 1", s.Weight)
	case !(s.RegularMSE >= 0) || !(s.CrisisMSE >= 0) || math.IsInf(s.RegularMSE, 0) || math.IsInf(s.CrisisMSE, 0):
		return fmt.Errorf("adaptive state: averages %v and %v, want finite and ≥ 0", s.RegularMSE, s.CrisisMSE)
	case !s.RegularStarted && s.RegularMSE != 0, !s.CrisisStarted && s.CrisisMSE != 0:
		return fmt.Errorf("adaptive state: an average that has not started is not 0 (regular %v, crisis %v)", s.RegularMSE, s.CrisisMSE)
	}
	return nil
}

// state returns r's state with w the weight in force.
func (r *weightRule) state(w float64) AdaptiveState {
	return AdaptiveState{Weight: w,
		RegularMSE: r.ema[stratumRegular], CrisisMSE: r.ema[stratumCrisis],
		RegularStarted: r.started[stratumRegular], CrisisStarted: r.started[stratumCrisis]}
}

// restore sets r's averages from s (validated) and its signal from them,
// as observe computed it from the same averages: the signal is not kept,
// since it can be +Inf (e_r = 0), which a checkpoint's JSON cannot hold.
// (Only when both averages are exactly 0, where observe keeps the last
// signal, does the restored one read 0 instead; it sets no weight.)
func (r *weightRule) restore(s AdaptiveState) {
	r.ema = [2]float64{stratumRegular: s.RegularMSE, stratumCrisis: s.CrisisMSE}
	r.started = [2]bool{stratumRegular: s.RegularStarted, stratumCrisis: s.CrisisStarted}
	r.signal = 0
	if s.RegularStarted && s.CrisisStarted {
		if ratio := s.CrisisMSE / s.RegularMSE; !math.IsNaN(ratio) {
			r.signal = math.Sqrt(ratio)
		}
	}
}
