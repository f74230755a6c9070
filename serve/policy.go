package serve

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/aelp/aelp/learner/ppo"
	"github.com/aelp/aelp/producers/sim"
	"github.com/aelp/aelp/schemas"
)

// LoggingVersion is the policy version of the uniform logging policy.
const LoggingVersion = -1

// loggingArchitecture is GET /v1/policy's architecture of the logging
// policy.
const loggingArchitecture = "uniform"

// servedPolicy is one policy version as requests use it; it is never
// modified once published (Server.policy).
type servedPolicy struct {
	version      int64
	architecture string
	loadedAt     time.Time
	// policy is a *ppo.Policy (safe for concurrent use) or sim.Uniform.
	policy sim.Policy
}

// loadSnapshot builds the served policy of snapshot s and checks that it
// takes stateDim inputs and has numActions actions.
func loadSnapshot(s *schemas.PolicySnapshot, stateDim, numActions int, now time.Time) (*servedPolicy, error) {
	p, err := ppo.LoadPolicy(s.Architecture, s.Params, s.ObsMean, s.ObsVar, s.ObsCount)
	if err != nil {
		return nil, err
	}
	if p.ObsDim() != stateDim || p.NumActions() != numActions {
		return nil, fmt.Errorf("policy is %d inputs × %d actions, the server %d × %d", p.ObsDim(), p.NumActions(), stateDim, numActions)
	}
	return &servedPolicy{version: s.Version, architecture: s.Architecture, loadedAt: now, policy: p}, nil
}

// Mix turns the policy's distribution pi, in place, into the served one:
//
//	q_a = (1 − ε)·π_a + ε/K
//
// then, when min_a q_a < floor, mixes further with the uniform
// distribution just enough to lift the smallest probability to the floor:
//
//	q_a ← (1 − λ)·q_a + λ/K,  λ = (floor − min q) / (1/K − min q)
//
// (floor ≤ 1/K). Both steps keep Σ q = 1 and the policy's order of the
// actions. With ε = 0 and no floor reached pi is left bit for bit as is.
func Mix(pi []float64, epsilon, floor float64) {
	k := float64(len(pi))
	if epsilon > 0 {
		for a, p := range pi {
			pi[a] = (1-epsilon)*p + epsilon/k
		}
	}
	lo := math.Inf(1)
	for _, p := range pi {
		lo = min(lo, p)
	}
	if lo >= floor {
		return
	}
	lambda := (floor - lo) / (1/k - lo)
	for a, p := range pi {
		pi[a] = (1-lambda)*p + lambda/k
	}
}

// sample draws an action from q by inverse CDF with one uniform draw of
// rng, as the simulator does: actions of probability 0 are never drawn.
func sample(q []float64, rng *rand.Rand) int {
	sum := 0.0
	for _, p := range q {
		sum += p
	}
	x := rng.Float64() * sum
	last := 0
	for a, p := range q {
		if p == 0 {
			continue
		}
		last = a
		if x -= p; x < 0 {
			return a
		}
	}
	return last
}
