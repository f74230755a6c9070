package ope

import (
	"fmt"
	"math"
	"sync"
)

// Step is one logged decision of a journey.
type Step struct {
	// T is the decision's 0-based index in its journey as logged
	// (Experience.Step); a journey's steps are T = 0, 1, … without a gap.
	T int
	// State is the observation the behaviour policy acted on.
	State []float32
	// Action is the action taken.
	Action int
	// LogProb is log μ(Action|State) of the behaviour policy: finite and
	// ≤ 0 in a usable step.
	LogProb float64
	// Probs is the behaviour policy's full distribution μ(·|State) when it
	// was logged, nil otherwise. It is used to report the target's mass on
	// actions the behaviour never takes (where no estimator has support).
	Probs []float64
	// Reward is the step's reward.
	Reward float64
	// Done marks the journey's last step.
	Done bool
}

// Journey is one user's logged episode: Steps in order, T = 0 … H−1, the
// last one Done.
type Journey struct {
	// ID identifies the journey (the episode id); it picks the journey's
	// cross-fitting fold.
	ID string
	// Tag is the segment the tagger gave the journey's first step (the
	// tagged event type, e.g. CRISIS_PARENT), "" when untagged.
	Tag string
	// Truth is the true segment (metadata schemas.KeyTrueSegment), ""
	// when unknown.
	Truth string
	// Steps are the decisions, in order.
	Steps []Step
}

// Return is Σ_t γ^t r_t, the journey's discounted return.
func (j *Journey) Return(gamma float64) float64 {
	g, d := 0.0, 1.0
	for i := range j.Steps {
		g += d * j.Steps[i].Reward
		d *= gamma
	}
	return g
}

// Skip reasons for journeys Evaluate cannot use; see Skipped.
const (
	reasonGap = iota
	reasonIncomplete
	reasonMissingLogProb
	reasonImpossible
	reasonInvalid
	numReasons
)

// Skipped counts the journeys Evaluate left out, by reason. A left-out
// journey never enters an estimate: a journey without one of its steps has
// no importance weight for the rest of it.
type Skipped struct {
	// Gap counts journeys with a missing step (T not 0, 1, … in order).
	Gap int `json:"gap"`
	// Incomplete counts journeys that are empty, do not end with a Done
	// step or have a Done step before the last.
	Incomplete int `json:"incomplete"`
	// MissingLogProb counts journeys with a step without a behaviour
	// log-probability (NaN).
	MissingLogProb int `json:"missing_logprob"`
	// ImpossibleLogProb counts journeys with a step of log-probability
	// −Inf (an action the behaviour policy could not take).
	ImpossibleLogProb int `json:"impossible_logprob"`
	// Invalid counts journeys with a non-finite reward or state value, a
	// state of another width, an action out of range, a log-probability
	// above 0 or a malformed behaviour distribution.
	Invalid int `json:"invalid"`
}

// Total is the number of journeys skipped.
func (s Skipped) Total() int {
	return s.Gap + s.Incomplete + s.MissingLogProb + s.ImpossibleLogProb + s.Invalid
}

func (s *Skipped) add(reason int) {
	switch reason {
	case reasonGap:
		s.Gap++
	case reasonIncomplete:
		s.Incomplete++
	case reasonMissingLogProb:
		s.MissingLogProb++
	case reasonImpossible:
		s.ImpossibleLogProb++
	default:
		s.Invalid++
	}
}

// String says what was skipped ("" when nothing was).
func (s Skipped) String() string {
	if s.Total() == 0 {
		return ""
	}
	return fmt.Sprintf("skipped %d journeys: %d with a gap, %d incomplete, %d with a step without a behaviour log-prob, %d with log-prob −Inf, %d invalid",
		s.Total(), s.Gap, s.Incomplete, s.MissingLogProb, s.ImpossibleLogProb, s.Invalid)
}

// checkLogProb classifies a behaviour log-probability: usable (-1), or the
// reason it is not.
func checkLogProb(lp float64) int {
	switch {
	case math.IsNaN(lp):
		return reasonMissingLogProb
	case math.IsInf(lp, -1):
		return reasonImpossible
	case lp > 0 || math.IsInf(lp, 1):
		return reasonInvalid
	}
	return -1
}

// checkProbs reports whether probs is a distribution over nA actions
// (nA ≤ 0: any length) that gives the logged action the logged
// probability exp(lp) within 1e-6.
func checkProbs(probs []float64, nA, action int, lp float64) bool {
	if nA > 0 && len(probs) != nA || action >= len(probs) {
		return false
	}
	sum := 0.0
	for _, p := range probs {
		if !(p >= 0 && p <= 1) {
			return false
		}
		sum += p
	}
	return math.Abs(sum-1) <= 1e-6 && math.Abs(probs[action]-math.Exp(lp)) <= 1e-6
}

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

// checkStep returns why step s of a journey (at index k) is unusable, or
// -1: dim and nA are the required state width and action count.
func checkStep(s *Step, k, dim, nA int) int {
	if s.T != k {
		return reasonGap
	}
	if r := checkLogProb(s.LogProb); r >= 0 {
		return r
	}
	if !finite(s.Reward) || len(s.State) != dim || s.Action < 0 || s.Action >= nA {
		return reasonInvalid
	}
	for _, v := range s.State {
		if !finite(float64(v)) {
			return reasonInvalid
		}
	}
	if s.Probs != nil && !checkProbs(s.Probs, nA, s.Action, s.LogProb) {
		return reasonInvalid
	}
	return -1
}

// checkJourney returns why j is unusable by Evaluate, or -1.
func checkJourney(j *Journey, dim, nA int) int {
	n := len(j.Steps)
	if n == 0 {
		return reasonIncomplete
	}
	for k := range j.Steps {
		s := &j.Steps[k]
		if r := checkStep(s, k, dim, nA); r >= 0 {
			return r
		}
		if s.Done != (k == n-1) {
			return reasonIncomplete
		}
	}
	return -1
}

// Journeys is a bounded collection of complete journeys in arrival order:
// when it holds Capacity journeys, adding one evicts the oldest. It is the
// evaluation set a learner keeps of recent journeys (a window) and hands
// to Evaluate. It is safe for concurrent use; the journeys it holds are
// never modified, so a Snapshot may be evaluated while more are added.
type Journeys struct {
	mu      sync.Mutex
	ring    []Journey
	start   int
	n       int
	added   int64
	evicted int64
}

// NewJourneys returns an empty collection of at most capacity journeys. It
// panics when capacity < 1.
func NewJourneys(capacity int) *Journeys {
	if capacity < 1 {
		panic("ope: NewJourneys: capacity < 1")
	}
	return &Journeys{ring: make([]Journey, capacity)}
}

// Add appends j, evicting the oldest journey when full. j and its slices
// must not be modified afterwards.
func (c *Journeys) Add(j Journey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.added++
	if c.n < len(c.ring) {
		c.ring[(c.start+c.n)%len(c.ring)] = j
		c.n++
		return
	}
	c.ring[c.start] = j
	c.start = (c.start + 1) % len(c.ring)
	c.evicted++
}

// Len returns the number of journeys held.
func (c *Journeys) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// Capacity returns the most journeys held at once.
func (c *Journeys) Capacity() int { return len(c.ring) }

// Added and Evicted return the journeys added and evicted so far.
func (c *Journeys) Added() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.added
}

// Evicted returns the number of journeys evicted to make room.
func (c *Journeys) Evicted() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.evicted
}

// Snapshot returns the journeys held, oldest first, in a new slice (the
// journeys' own slices are shared, and never modified).
func (c *Journeys) Snapshot() []Journey {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Journey, c.n)
	k := copy(out, c.ring[c.start:min(c.start+c.n, len(c.ring))])
	copy(out[k:], c.ring[:c.n-k])
	return out
}
