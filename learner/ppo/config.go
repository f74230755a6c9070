package ppo

import (
	"errors"
	"fmt"
	"math"
)

// Learning-rate schedules accepted by [Config.LRSchedule].
const (
	// ScheduleConstant keeps the learning rate at Config.LR.
	ScheduleConstant = "constant"
	// ScheduleLinear decays the learning rate linearly,
	// lr_u = LR·max(0, 1 − u/TotalUpdates) for the u-th update (u = 0, 1, …).
	ScheduleLinear = "linear"
)

// Reference policies for the clipped ratio, accepted by [Config.Ratio].
const (
	// RatioProximal clips r = π_θ/π_θold, where θ_old are the parameters at
	// the start of the update (decoupled PPO, as in IMPALA-style APPO). The
	// off-policy correction π_θold/μ enters once, through ρ in the advantage.
	// This is the default.
	RatioProximal = "proximal"
	// RatioBehavior clips r = π_θ/μ with μ the logged behaviour policy, the
	// literal formula of DESIGN.md. With replayed data it confines π_θ to
	// [1−ε, 1+ε]·μ and multiplies the IS correction in twice (r·ρ); kept for
	// comparison only.
	RatioBehavior = "behavior"
)

// Limits on the architecture accepted by [Config.Validate]; they bound the
// memory a corrupt checkpoint or snapshot header can make us allocate.
const (
	maxWidth  = 1 << 16
	maxParams = 1 << 26
)

// Config configures an [Agent]. Start from [DefaultConfig] and override.
type Config struct {
	// ObsDim is the width of an observation (state) vector. Required, > 0.
	ObsDim int
	// NumActions is the number of discrete actions. Required, ≥ 2.
	NumActions int
	// Hidden are the widths of the tanh hidden layers of both the policy and
	// the value network. Default [64, 64]. At least one layer.
	Hidden []int
	// LR is the Adam learning rate at the first update. Default 3e-4.
	LR float64
	// LRSchedule is ScheduleConstant (default) or ScheduleLinear.
	LRSchedule string
	// TotalUpdates is the number of updates over which ScheduleLinear decays
	// the learning rate to 0; after that the rate stays 0. Required (> 0)
	// for ScheduleLinear, ignored otherwise.
	TotalUpdates int
	// Gamma is the discount factor γ ∈ [0, 1]. Default 0.99.
	Gamma float64
	// ClipEps is the surrogate clip range ε > 0 (and the value clip range
	// when ClipValue is set). Default 0.2.
	ClipEps float64
	// RhoBar is the V-trace truncation ρ̄ > 0 of the IS ratio in the
	// advantage and the value target. Default 1.
	RhoBar float64
	// ValueCoef is c_v ≥ 0, the weight of the value loss. Default 0.5.
	ValueCoef float64
	// EntropyCoef is c_e ≥ 0, the weight of the entropy bonus. Default 0.01.
	EntropyCoef float64
	// MaxGradNorm is the global gradient-norm clip; 0 disables it.
	// Default 0.5.
	MaxGradNorm float64
	// AdamEps is Adam's ε > 0. Default 1e-5. (β1 = 0.9, β2 = 0.999.)
	AdamEps float64
	// TargetKL stops an update early: before each minibatch step the
	// minibatch's approx_kl = mean((r − 1) − log r) is compared with it and
	// the update ends, without that step, when it is larger. 0 disables it.
	TargetKL float64
	// Epochs is K, the number of passes over the batch per update. Default 4.
	Epochs int
	// Minibatches is M, the number of minibatches per epoch. The batch is
	// shuffled and cut into M nearly equal parts. Default 4.
	Minibatches int
	// MaxStaleness drops samples whose PolicyVersion lags the agent's
	// version by more than this many versions; 0 disables it. Samples with a
	// negative version (a logging or heuristic policy) are never dropped.
	MaxStaleness int64
	// ClipValue enables the clipped value loss
	// ½·max((V − t)², (V_old + clip(V − V_old, ±ε) − t)²).
	ClipValue bool
	// NormalizeObs enables the running observation normalisation
	// clip((x − mean)/√(var + 1e-8), ±10), fed by [Agent.ObserveObs].
	// Default true.
	NormalizeObs bool
	// NormalizeAdvantage enables per-minibatch advantage normalisation.
	// Default true.
	NormalizeAdvantage bool
	// Ratio selects the reference policy of the clipped ratio:
	// RatioProximal (default) or RatioBehavior.
	Ratio string
	// Workers is the number of goroutines [Agent.Update] spreads its work
	// over: the pre-update pass and each minibatch's forward pass, loss
	// and backward deltas are cut into min(Workers, m) contiguous parts of
	// the m samples, the weight gradients and the Adam step into parts of
	// the parameters, evaluated in parallel. 0 or 1 (default 0) computes
	// everything on the calling goroutine. No sum depends on the split
	// (see the package documentation), so the results are bit-identical
	// for every Workers value. The extra goroutines are started by each
	// Update and wait blocked (taking no CPU) between their tasks; Update
	// tells them to return before it returns, and [Agent.Close] waits
	// until they have. At most MaxWorkers. It is saved in checkpoints
	// like every other field; see [Agent.SetWorkers] to change it after
	// [Restore].
	Workers int
}

// MaxWorkers bounds [Config.Workers].
const MaxWorkers = 256

// DefaultConfig returns the documented defaults for the given observation
// width and number of actions.
func DefaultConfig(obsDim, numActions int) Config {
	return Config{
		ObsDim:             obsDim,
		NumActions:         numActions,
		Hidden:             []int{64, 64},
		LR:                 3e-4,
		LRSchedule:         ScheduleConstant,
		Gamma:              0.99,
		ClipEps:            0.2,
		RhoBar:             1,
		ValueCoef:          0.5,
		EntropyCoef:        0.01,
		MaxGradNorm:        0.5,
		AdamEps:            1e-5,
		Epochs:             4,
		Minibatches:        4,
		NormalizeObs:       true,
		NormalizeAdvantage: true,
		Ratio:              RatioProximal,
	}
}

// ErrInvalidConfig is wrapped by every error [Config.Validate] returns.
var ErrInvalidConfig = errors.New("invalid ppo config")

func finiteNonNeg(x float64) bool { return x >= 0 && !math.IsInf(x, 1) }

// Validate reports the first invalid field, wrapped in ErrInvalidConfig.
func (c *Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...)
	}
	switch {
	case c.ObsDim <= 0 || c.ObsDim > maxWidth:
		return bad("obs dim %d not in [1, %d]", c.ObsDim, maxWidth)
	case c.NumActions < 2 || c.NumActions > maxWidth:
		return bad("num actions %d not in [2, %d]", c.NumActions, maxWidth)
	case len(c.Hidden) == 0 || len(c.Hidden) > 16:
		return bad("%d hidden layers, want 1 to 16", len(c.Hidden))
	}
	for i, h := range c.Hidden {
		if h <= 0 || h > maxWidth {
			return bad("hidden width %d at layer %d not in [1, %d]", h, i, maxWidth)
		}
	}
	if n := paramCount(layerSizes(c.ObsDim, c.Hidden, c.NumActions)) + paramCount(layerSizes(c.ObsDim, c.Hidden, 1)); n > maxParams {
		return bad("%d parameters exceed %d", n, maxParams)
	}
	switch {
	case !(c.LR > 0) || math.IsInf(c.LR, 1):
		return bad("learning rate %v not positive and finite", c.LR)
	case c.LRSchedule != ScheduleConstant && c.LRSchedule != ScheduleLinear:
		return bad("unknown learning-rate schedule %q", c.LRSchedule)
	case c.LRSchedule == ScheduleLinear && c.TotalUpdates <= 0:
		return bad("linear schedule needs total updates > 0, got %d", c.TotalUpdates)
	case c.TotalUpdates < 0:
		return bad("total updates %d negative", c.TotalUpdates)
	case !(c.Gamma >= 0 && c.Gamma <= 1):
		return bad("gamma %v not in [0, 1]", c.Gamma)
	case !(c.ClipEps > 0) || math.IsInf(c.ClipEps, 1):
		return bad("clip eps %v not positive and finite", c.ClipEps)
	case !(c.RhoBar > 0) || math.IsInf(c.RhoBar, 1):
		return bad("rho bar %v not positive and finite", c.RhoBar)
	case !finiteNonNeg(c.ValueCoef):
		return bad("value coef %v not finite and ≥ 0", c.ValueCoef)
	case !finiteNonNeg(c.EntropyCoef):
		return bad("entropy coef %v not finite and ≥ 0", c.EntropyCoef)
	case !finiteNonNeg(c.MaxGradNorm):
		return bad("max grad norm %v not finite and ≥ 0", c.MaxGradNorm)
	case !(c.AdamEps > 0) || math.IsInf(c.AdamEps, 1):
		return bad("adam eps %v not positive and finite", c.AdamEps)
	case !finiteNonNeg(c.TargetKL):
		return bad("target kl %v not finite and ≥ 0", c.TargetKL)
	case c.Epochs <= 0 || c.Epochs > 1000:
		return bad("epochs %d not in [1, 1000]", c.Epochs)
	case c.Minibatches <= 0 || c.Minibatches > 1<<20:
		return bad("minibatches %d not in [1, %d]", c.Minibatches, 1<<20)
	case c.MaxStaleness < 0:
		return bad("max staleness %d negative", c.MaxStaleness)
	case c.Ratio != RatioProximal && c.Ratio != RatioBehavior:
		return bad("unknown ratio reference %q", c.Ratio)
	case c.Workers < 0 || c.Workers > MaxWorkers:
		return bad("workers %d not in [0, %d]", c.Workers, MaxWorkers)
	}
	return nil
}

// learningRate returns the rate for the update with index u (0-based).
func (c *Config) learningRate(u int64) float64 {
	if c.LRSchedule != ScheduleLinear {
		return c.LR
	}
	return c.LR * math.Max(0, 1-float64(u)/float64(c.TotalUpdates))
}
