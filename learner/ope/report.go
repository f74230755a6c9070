package ope

import (
	"errors"
	"fmt"
	"math"
)

// Segment kinds.
const (
	// KindAll is every journey.
	KindAll = "all"
	// KindTag groups journeys by the tag of their first step.
	KindTag = "tag"
	// KindTrue groups journeys by their true segment.
	KindTrue = "true"
)

// Interval is a point estimate and its bootstrap percentile interval.
type Interval struct {
	// Value is the estimate on the journeys themselves.
	Value float64 `json:"value"`
	// Lo and Hi bound the percentile interval at Config.Confidence.
	Lo float64 `json:"lo"`
	Hi float64 `json:"hi"`
}

// Estimate is one estimator's value of the target on one segment.
type Estimate struct {
	// Estimator is PDIS, WPDIS, DR or DR-V.
	Estimator string `json:"estimator"`
	Interval
	// Normalized is the estimate and its interval divided by the logged
	// mean return of the segment (1.0 = parity with the logging policy),
	// nil when the logged mean's interval does not lie above 0 (the ratio
	// would mean nothing). The interval treats the logged mean as fixed.
	Normalized *Interval `json:"normalized"`
}

// Segment holds the estimates of the target on one group of journeys.
type Segment struct {
	// Name is "all", "tag <label>" or "true <label>".
	Name string `json:"name"`
	// Kind is KindAll, KindTag or KindTrue; Label the tag or true segment.
	Kind  string `json:"kind"`
	Label string `json:"label,omitempty"`
	// Journeys and Steps count the segment's journeys and decisions.
	Journeys int `json:"journeys"`
	Steps    int `json:"steps"`
	// Logged is the observed mean return of the logged journeys, the
	// behaviour policy's on-policy value, with its interval.
	Logged Interval `json:"logged"`
	// ESS is the effective sample size (Σ_i w_i)²/Σ_i w_i² of the final
	// per-journey weights w_i = w_{i,H_i−1}; StepESS[t] the same of the
	// weights at step t (a finished journey keeps its final weight).
	ESS     float64   `json:"ess"`
	StepESS []float64 `json:"step_ess"`
	// ClippedShare is the share of the segment's step weights that the
	// clip capped (0 without clipping).
	ClippedShare float64 `json:"clipped_share"`
	// Estimates are PDIS, WPDIS, DR, DR-V (with a value head), WDR and
	// DR-CV (both with a fitted-Q model), in that order.
	Estimates []Estimate `json:"estimates"`
}

// Estimate returns the segment's estimate by estimator name.
func (s *Segment) Estimate(name string) (Estimate, bool) {
	for _, e := range s.Estimates {
		if e.Estimator == name {
			return e, true
		}
	}
	return Estimate{}, false
}

// ModelFit describes the DR model.
type ModelFit struct {
	// Model is ModelFQE, ModelLinear or ModelNone.
	Model string `json:"model"`
	// Iterations is the largest number of fitted-Q iterations run by a
	// fold; Folds the cross-fitting folds.
	Iterations int `json:"iterations,omitempty"`
	Folds      int `json:"folds,omitempty"`
	// R2 is the out-of-fold coefficient of determination of the model's
	// Bellman targets, 1 − Σ(y − Q̂(s,a))²/Σ(y − ȳ)² with
	// y = r + γ V̂(s′), over every journey with the model of its fold
	// (fitted without it): 1 is a perfect model, 0 no better than a
	// constant. 0 for ModelNone.
	R2 float64 `json:"r2"`
	// MaxWeight is the gate of the model (Config.ModelMaxWeight), 0 when
	// it never gates; GatedShare the share of steps where the gate set
	// Q̂ and V̂ to 0.
	MaxWeight  float64 `json:"max_weight,omitempty"`
	GatedShare float64 `json:"gated_share"`
	// Lo and Hi are the clamp of every prediction, the range of the
	// logged returns-to-go.
	Lo float64 `json:"lo"`
	Hi float64 `json:"hi"`
}

// Report is the result of Evaluate.
type Report struct {
	// Target names the policy evaluated.
	Target string `json:"target"`
	// Journeys and Steps count the journeys used.
	Journeys int `json:"journeys"`
	Steps    int `json:"steps"`
	// Skipped counts the journeys left out.
	Skipped Skipped `json:"skipped"`
	// Gamma, Confidence, Resamples, Seed and Clip are the settings used
	// (Clip 0: no clipping).
	Gamma      float64 `json:"gamma"`
	Confidence float64 `json:"confidence"`
	Resamples  int     `json:"resamples"`
	Seed       uint64  `json:"seed"`
	Clip       float64 `json:"clip"`
	// Model describes DR's Q model.
	Model ModelFit `json:"model"`
	// SupportSteps is the number of steps that logged the behaviour's
	// full distribution; UnsupportedMass the target's mean probability,
	// over them, on actions the behaviour gives probability 0, where no
	// estimator sees anything (0 is full support).
	SupportSteps    int     `json:"support_steps"`
	UnsupportedMass float64 `json:"unsupported_mass"`
	// Segments are "all", then each tag, then each true segment (labels
	// in order).
	Segments []Segment `json:"segments"`
	// Notes are warnings about the figures (a small effective sample
	// size, unnormalisable segments, …).
	Notes []string `json:"notes,omitempty"`
}

// Segment returns the segment of that name ("all", "true CRISIS_PARENT").
func (r *Report) Segment(name string) (*Segment, bool) {
	for i := range r.Segments {
		if r.Segments[i].Name == name {
			return &r.Segments[i], true
		}
	}
	return nil, false
}

// ErrNoJourneys is returned by Evaluate when no journey can be used.
var ErrNoJourneys = errors.New("off-policy evaluation: no usable journey")

// ErrNonFinite is wrapped by Evaluate's error when a figure would not be
// finite (rewards or weights too large for float64).
var ErrNonFinite = errors.New("off-policy evaluation: non-finite result")

// checkFinite returns an ErrNonFinite error naming the first non-finite
// figure of r.
func (r *Report) checkFinite() error {
	bad := func(what string, v float64) error {
		if finite(v) {
			return nil
		}
		return fmt.Errorf("%w: %s is %v (rewards or importance weights too large; try Clip)", ErrNonFinite, what, v)
	}
	check := func(what string, iv Interval) error {
		return errors.Join(bad(what, iv.Value), bad(what+" lo", iv.Lo), bad(what+" hi", iv.Hi))
	}
	errs := []error{bad("unsupported mass", r.UnsupportedMass), bad("model r2", r.Model.R2), bad("model gated share", r.Model.GatedShare),
		bad("model lo", r.Model.Lo), bad("model hi", r.Model.Hi)}
	for _, s := range r.Segments {
		errs = append(errs, check(s.Name+" logged", s.Logged), bad(s.Name+" ess", s.ESS), bad(s.Name+" clipped share", s.ClippedShare))
		for t, e := range s.StepESS {
			errs = append(errs, bad(fmt.Sprintf("%s ess at step %d", s.Name, t), e))
		}
		for _, e := range s.Estimates {
			errs = append(errs, check(s.Name+" "+e.Estimator, e.Interval))
			if e.Normalized != nil {
				errs = append(errs, check(s.Name+" "+e.Estimator+" normalized", *e.Normalized))
			}
		}
	}
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// quantile returns the type-7 (linear interpolation) quantile p of the
// sorted xs: x_⌊h⌋ + (h − ⌊h⌋)(x_⌊h⌋+1 − x_⌊h⌋) with h = (len − 1)·p.
func quantile(xs []float64, p float64) float64 {
	h := float64(len(xs)-1) * p
	i := int(math.Floor(h))
	if i+1 >= len(xs) {
		return xs[len(xs)-1]
	}
	return xs[i] + (h-float64(i))*(xs[i+1]-xs[i])
}
