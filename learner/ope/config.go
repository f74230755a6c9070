package ope

import (
	"errors"
	"fmt"
	"math"
)

// Q models of the DR estimator, accepted by Config.Model.
const (
	// ModelFQE is fitted-Q evaluation of the target policy (see fitFQE)
	// on features of the history: the state, the mean of the journey's
	// states so far and random ReLU features of both (see
	// historyFeatures); cross-fitted: each journey's Q̂ is fitted on the
	// other folds only. The default.
	ModelFQE = "fqe"
	// ModelLinear is the same fitted-Q evaluation, linear in the current
	// state alone.
	ModelLinear = "fqe-linear"
	// ModelNone is Q̂ = 0, with which DR is PDIS exactly.
	ModelNone = "none"
)

// Estimator names, in the order a Segment lists its estimates.
const (
	// PDIS is per-decision importance sampling.
	PDIS = "PDIS"
	// WPDIS is weighted (per-step self-normalised) PDIS.
	WPDIS = "WPDIS"
	// DR is doubly robust for sequences with the Config.Model Q̂.
	DR = "DR"
	// DRValue is doubly robust with the candidate's own value head,
	// Q̂(s, a) = V̂(s) = Target.Value(s) for every a; present when the
	// Target has a value head.
	DRValue = "DR-V"
	// WDR is weighted doubly robust (Thomas & Brunskill 2016): DR with
	// each step's two terms normalised by the sum of their weights, as
	// WPDIS normalises PDIS; with the Config.Model Q̂ (absent with
	// ModelNone, where it is WPDIS).
	WDR = "WDR"
	// DRCV is DR with its model correction scaled by a control-variate
	// coefficient: PDIS + β̂·(DR − PDIS), β̂ ∈ [0, 1] the coefficient of
	// least variance fitted on the segment's journeys (refitted in every
	// bootstrap resample); absent with ModelNone.
	DRCV = "DR-CV"
)

// Policy is a target policy: log π(·|s) over NumActions actions.
// [ppo.Policy] is one; wrap a policy that gives probabilities in
// ProbPolicy.
type Policy interface {
	// LogProbs writes log π(a|obs) for every action a into dst, of length
	// NumActions. With Config.Workers > 1 it is called from several
	// goroutines at once.
	LogProbs(obs, dst []float64)
	// NumActions is the number of actions.
	NumActions() int
}

// ProbPolicy adapts a policy that writes probabilities (a sim.Policy, say)
// to Policy: log π(a|s) = ln(π(a|s)).
type ProbPolicy struct {
	// P writes π(·|obs) into dst.
	P interface{ ActionProbs(obs, dst []float64) }
	// N is the number of actions.
	N int
}

// LogProbs writes ln π(a|obs) for every action.
func (p ProbPolicy) LogProbs(obs, dst []float64) {
	p.P.ActionProbs(obs, dst)
	for i, v := range dst {
		dst[i] = math.Log(v)
	}
}

// NumActions returns N.
func (p ProbPolicy) NumActions() int { return p.N }

// Target is a policy to evaluate.
type Target struct {
	// Name names it in the report.
	Name string
	// Policy is π. Required. When it has an ObsDim() int method (as
	// ppo.Policy does), the journeys' states must be that wide.
	Policy Policy
	// Value, when set, is the candidate's own value head V̂(s) (a raw
	// observation in), used by the DR-V estimator; it is called on one
	// goroutine.
	Value func(obs []float64) float64
}

// Config configures Evaluate. The zero value of a field takes the default
// named in its comment (DefaultConfig).
type Config struct {
	// Gamma is the discount γ ∈ (0, 1] of the value estimated,
	// Σ_t γ^t r_t. Default 1: the journey return, as the simulator's
	// on-policy evaluation and the learner report it.
	Gamma float64
	// Resamples is the number B of bootstrap resamples of the journeys
	// behind each interval (each resample n journeys drawn with
	// replacement from the n). Default 1,000.
	Resamples int
	// Confidence is the level of the percentile intervals. Default 0.95.
	Confidence float64
	// Seed seeds the bootstrap: resample b draws from PCG(Seed, b), so the
	// intervals do not depend on Workers.
	Seed uint64
	// Clip, when > 0, caps every cumulative importance weight
	// w_t = Π_{k≤t} ρ_k at Clip (biased, lower variance); the report
	// states it and the share of weights it capped. 0 (the default) does
	// not clip.
	Clip float64
	// Model is DR's Q model: ModelFQE (default), ModelLinear or ModelNone.
	Model string
	// Ridge is the fitted-Q ridge penalty λ (per row of an action's
	// regression, on standardised features). Default 1e-3.
	Ridge float64
	// Iterations bounds the fitted-Q iterations. Default: the longest
	// journey's length (enough for a tabular model to be exact), at most
	// 100.
	Iterations int
	// Folds is the number of cross-fitting folds of the Q model. Default 2.
	Folds int
	// ModelMaxWeight gates the model of DR (and of DR-V, WDR, DR-CV): Q̂
	// and V̂ serve step t only while the journey's cumulative weight
	// before it, w_{t−1} (w_{−1} = 1), is at most ModelMaxWeight; at a
	// step past it both are 0 and the step's term is PDIS's, w_t r_t.
	// The gate is a function of the history before a_t, so the model
	// correction keeps its zero mean and DR its unbiasedness; it bounds
	// each step's correction by ModelMaxWeight·(|V̂| + ρ_t|Q̂|), where
	// the rare journeys that follow the target for many steps would
	// otherwise carry corrections so large and so skewed that a sample
	// rarely holds its share of them (docs/off-policy-evaluation.md).
	// Default 100; +Inf never gates (the model at every step).
	ModelMaxWeight float64
	// Workers is the number of goroutines for the target's log-probs, the
	// Q model's folds and the bootstrap. Default 1. With more than one,
	// Target.Policy must be safe for concurrent use (ppo.Policy is).
	Workers int
}

// DefaultConfig returns the defaults: γ = 1, 1,000 resamples, 95%
// intervals, seed 0, no clipping, the cross-fitted fitted-Q model on the history
// (λ = 1e-3, 2 folds, iterations up to the longest journey) gated at
// weight 100, 1 worker.
func DefaultConfig() Config {
	var c Config
	c.setDefaults()
	return c
}

func (c *Config) setDefaults() {
	if c.Gamma == 0 {
		c.Gamma = 1
	}
	if c.Resamples == 0 {
		c.Resamples = 1000
	}
	if c.Confidence == 0 {
		c.Confidence = 0.95
	}
	if c.Model == "" {
		c.Model = ModelFQE
	}
	if c.Ridge == 0 {
		c.Ridge = 1e-3
	}
	if c.Folds == 0 {
		c.Folds = 2
	}
	if c.ModelMaxWeight == 0 {
		c.ModelMaxWeight = DefaultModelMaxWeight
	}
	if c.Workers == 0 {
		c.Workers = 1
	}
}

// DefaultModelMaxWeight is Config.ModelMaxWeight's default, chosen on
// the tuning seeds of docs/off-policy-evaluation.md.
const DefaultModelMaxWeight = 100

// ErrInvalidConfig is wrapped by every error Config.Validate returns.
var ErrInvalidConfig = errors.New("invalid off-policy evaluation config")

// Validate reports the first invalid field (after defaults).
func (c Config) Validate() error {
	c.setDefaults()
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...)
	}
	switch {
	case !(c.Gamma > 0 && c.Gamma <= 1):
		return bad("gamma %v not in (0, 1]", c.Gamma)
	case c.Resamples < 2 || c.Resamples > 1_000_000:
		return bad("resamples %d not in [2, 1000000]", c.Resamples)
	case !(c.Confidence > 0 && c.Confidence < 1):
		return bad("confidence %v not in (0, 1)", c.Confidence)
	case !(c.Clip >= 0) || math.IsInf(c.Clip, 1):
		return bad("clip %v: want 0 (off) or a finite positive cap", c.Clip)
	case c.Model != ModelFQE && c.Model != ModelLinear && c.Model != ModelNone:
		return bad("model %q: want %s, %s or %s", c.Model, ModelFQE, ModelLinear, ModelNone)
	case !(c.Ridge > 0) || math.IsInf(c.Ridge, 1):
		return bad("ridge %v: must be positive and finite", c.Ridge)
	case c.Iterations < 0 || c.Iterations > 10_000:
		return bad("iterations %d not in [0, 10000]", c.Iterations)
	case c.Folds < 2 || c.Folds > 100:
		return bad("folds %d not in [2, 100]", c.Folds)
	case !(c.ModelMaxWeight > 0):
		return bad("model max weight %v: want a positive weight or +Inf (never gate)", c.ModelMaxWeight)
	case c.Workers < 1 || c.Workers > 256:
		return bad("workers %d not in [1, 256]", c.Workers)
	}
	return nil
}
