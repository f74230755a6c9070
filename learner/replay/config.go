package replay

import (
	"errors"
	"fmt"
	"math"
)

// Default values of Config, as fixed by the design (DESIGN.md, "Importance-
// weighted replay buffer").
const (
	// DefaultCapacity is replay_buffer_capacity.
	DefaultCapacity = 50_000
	// DefaultCrisisWeight is crisis_parent_weight, the priority weight w of a crisis item.
	DefaultCrisisWeight = 5.0
	// DefaultRegularWeight is regular_parent_weight, the priority weight of a regular item.
	DefaultRegularWeight = 1.0
	// DefaultAlpha is the prioritisation exponent α.
	DefaultAlpha = 0.6
	// DefaultTemperature is the temperature T dividing α.
	DefaultTemperature = 1.0
	// DefaultBeta0 is the initial importance-sampling exponent β0.
	DefaultBeta0 = 0.4
	// DefaultAnnealSteps is the number of steps over which β is annealed from β0 to 1.
	DefaultAnnealSteps = 100_000
	// DefaultMinCrisisRatio is min_crisis_parent_ratio, the floor on the crisis stratum's sampling mass.
	DefaultMinCrisisRatio = 0.05
	// DefaultMinFactor is the smallest per-item factor f_i; smaller factors are raised to it.
	DefaultMinFactor = 1e-6
)

// Config configures a Buffer. The zero value is not valid; start from
// DefaultConfig and change the fields you need.
type Config struct {
	// Capacity is the number of items kept; when full, Add evicts the oldest.
	// Must be ≥ 1. Default 50,000.
	Capacity int
	// CrisisWeight is the priority weight w(crisis) of a crisis item. Must be
	// finite and > 0. Default 5.
	CrisisWeight float64
	// RegularWeight is the priority weight w(regular) of a regular item. Must
	// be finite and > 0. Default 1.
	RegularWeight float64
	// Alpha is the prioritisation exponent α in P(i) ∝ p_i^(α/T); 0 makes
	// sampling uniform inside each stratum. Must be finite and ≥ 0. Default 0.6.
	Alpha float64
	// Temperature is T in the exponent α/T; a higher T flattens the
	// distribution. Must be finite and > 0. Default 1.
	Temperature float64
	// Beta0 is the importance-sampling exponent β at step 0, in [0, 1].
	// Default 0.4.
	Beta0 float64
	// AnnealSteps is the number of steps over which β rises linearly from
	// Beta0 to 1: β_t = min(1, β0 + (1 − β0)·t/AnnealSteps). Must be ≥ 1.
	// Default 100,000.
	AnnealSteps int64
	// MinCrisisRatio is the floor on the crisis stratum's share of the
	// sampling mass, in [0, 1): when crisis items and regular items are both
	// present and the crisis share falls below it, sampling gives the crisis
	// stratum exactly this share. 0 disables the floor. Default 0.05.
	MinCrisisRatio float64
	// MinFactor is the smallest per-item factor f_i (for example |TD error|);
	// smaller factors, including 0, are raised to it so that every live item
	// keeps a positive probability and a finite IS weight. Must be finite
	// and > 0. Default 1e-6.
	MinFactor float64
	// Uniform disables importance sampling (enable_importance_sampling =
	// false): P(i) = 1/N and every weight is 1. Priorities are still
	// maintained, so Stats reports the same buffer figures.
	Uniform bool
}

// DefaultConfig returns the configuration fixed by the design.
func DefaultConfig() Config {
	return Config{
		Capacity:       DefaultCapacity,
		CrisisWeight:   DefaultCrisisWeight,
		RegularWeight:  DefaultRegularWeight,
		Alpha:          DefaultAlpha,
		Temperature:    DefaultTemperature,
		Beta0:          DefaultBeta0,
		AnnealSteps:    DefaultAnnealSteps,
		MinCrisisRatio: DefaultMinCrisisRatio,
		MinFactor:      DefaultMinFactor,
	}
}

// Validate reports every field that is out of range, joined into one error.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf(format, args...))
	}
	finite := func(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
	if c.Capacity < 1 {
		bad("replay: capacity %d must be at least 1", c.Capacity)
	}
	if !finite(c.CrisisWeight) || c.CrisisWeight <= 0 {
		bad("replay: crisis weight %v must be finite and positive", c.CrisisWeight)
	}
	if !finite(c.RegularWeight) || c.RegularWeight <= 0 {
		bad("replay: regular weight %v must be finite and positive", c.RegularWeight)
	}
	if !finite(c.Alpha) || c.Alpha < 0 {
		bad("replay: alpha %v must be finite and non-negative", c.Alpha)
	}
	if !finite(c.Temperature) || c.Temperature <= 0 {
		bad("replay: temperature %v must be finite and positive", c.Temperature)
	}
	if !(c.Beta0 >= 0 && c.Beta0 <= 1) {
		bad("replay: beta0 %v must be in [0, 1]", c.Beta0)
	}
	if c.AnnealSteps < 1 {
		bad("replay: anneal steps %d must be at least 1", c.AnnealSteps)
	}
	if !(c.MinCrisisRatio >= 0 && c.MinCrisisRatio < 1) {
		bad("replay: min crisis ratio %v must be in [0, 1)", c.MinCrisisRatio)
	}
	if !finite(c.MinFactor) || c.MinFactor <= 0 {
		bad("replay: min factor %v must be finite and positive", c.MinFactor)
	}
	return errors.Join(errs...)
}
