package sim

import (
	"fmt"
	"math"
	"strconv"
)

// PolicyPosterior estimates, by Monte Carlo from the simulator's generative
// model, the posterior that a record comes from a crisis parent given its
// metadata md and its value v, when the actions are drawn by a policy π
// that reads the observation (a learned policy). The acting policy makes
// the action, and so the value, depend on the segment through the
// observation, so the value's likelihood is no longer the uniform mixture
// of Posterior. Exactly, with f the crisis share of users,
//
//	odds(crisis | md, v) = f·P(md | crisis)·Σ_a N_crisis(a | md)·p(v | crisis, a)
//	                       / ((1 − f)·P(md | regular)·Σ_a N_regular(a | md)·p(v | regular, a))
//
// where N_s(a | md) = E[Σ_t π(a | o_t) | s, md] is the expected number of
// steps of a segment-s journey with metadata md on which π would pick a
// (the journey's expected length when summed over a), and p(v | s, a) the
// log-normal density of the value of action a, which does not depend on
// the policy. The metadata terms are Posterior's, exact. N_s(a | md) is
// the Monte Carlo part: Ghosts journeys per segment are simulated with the
// user's metadata traits (keyword and campaign flags, engagement, urgent
// searches) held at md's and the traits no record carries (hour, device,
// recent engagement) and every observation noise drawn from the segment's
// distribution, π's probabilities summed at every step (Rao–Blackwellised
// over the action) while the journey follows an action drawn from them.
// The engagement is held at md's three-decimal value (the true one is
// within 5·10⁻⁴ of it). With π uniform N_s(a | md) = E[steps | s]/A and the
// estimate converges to Posterior.
//
// A PolicyPosterior is not safe for concurrent use; π must be.
type PolicyPosterior struct {
	post   *Posterior
	pol    Policy
	ghosts int
	s      *Sim
	n      [2][]float64 // N_s(a | md) of the last User call, per segment
	logF   float64
}

// NewPolicyPosterior returns the Monte Carlo posterior of cfg's stream
// under pol, with ghosts journeys per segment and user, its randomness
// from (seed, stream). It fails when cfg is invalid, ValueNoise is 0 or
// ghosts < 1.
func NewPolicyPosterior(cfg Config, pol Policy, ghosts int, seed, stream uint64) (*PolicyPosterior, error) {
	if ghosts < 1 {
		return nil, fmt.Errorf("%w: %d ghost journeys per segment, need at least 1", ErrInvalidConfig, ghosts)
	}
	post, err := NewPosterior(cfg)
	if err != nil {
		return nil, err
	}
	s, err := New(cfg, seed, stream)
	if err != nil {
		return nil, err
	}
	f := cfg.CrisisFraction
	pp := &PolicyPosterior{post: post, pol: pol, ghosts: ghosts, s: s, logF: math.Log(f / (1 - f))}
	for seg := range 2 {
		pp.n[seg] = make([]float64, s.m.nA)
	}
	return pp, nil
}

// UserEvidence is what PolicyPosterior.User computed for one user: the
// log-odds of every record of that user follows from a value alone.
type UserEvidence struct {
	logPriorMeta float64
	logN         [2][]float64 // log N_s(a | md)
	pp           *PolicyPosterior
}

// User simulates the ghost journeys of a user with metadata md and returns
// its evidence, valid until the next call of User. md must carry the
// signals the simulator writes (keywords, campaign, engagement, urgent
// searches); it fails otherwise.
func (pp *PolicyPosterior) User(md map[string]string, ev *UserEvidence) error {
	e, err := strconv.ParseFloat(md[KeyCrisisContentEngagement], 64)
	if err != nil || !(e >= 0 && e <= 1) {
		return fmt.Errorf("sim: policy posterior: engagement %q", md[KeyCrisisContentEngagement])
	}
	n, err := strconv.Atoi(md[KeyUrgentSearchCount])
	if err != nil || n < 0 {
		return fmt.Errorf("sim: policy posterior: urgent searches %q", md[KeyUrgentSearchCount])
	}
	kw := pp.post.hasCrisisKeyword(md[KeyProfileKeywords])
	camp := pp.post.crisisCamp[md[KeyCampaignID]]
	for seg := range 2 {
		clear(pp.n[seg])
		for range pp.ghosts {
			pp.s.ghostJourney(seg, e, n, kw, camp, pp.pol, pp.n[seg])
		}
	}
	ev.pp = pp
	ev.logPriorMeta = pp.logF + pp.post.MetadataLogLR(md)
	for seg := range 2 {
		if ev.logN[seg] == nil {
			ev.logN[seg] = make([]float64, len(pp.n[seg]))
		}
		for a, v := range pp.n[seg] {
			ev.logN[seg][a] = math.Log(v / float64(pp.ghosts))
		}
	}
	return nil
}

// LogOdds returns the estimated log P(crisis | md, v)/P(regular | md, v)
// of a record of the user with value v; a value that is not finite and
// positive contributes nothing.
func (ev *UserEvidence) LogOdds(v float64) float64 {
	l := ev.logPriorMeta
	p := ev.pp.post
	if !(v > 0) || math.IsInf(v, 1) {
		// Without a value the odds of a record are those of its user
		// weighted by the journey lengths.
		return l + logSumExp(ev.logN[segCrisis], nil) - logSumExp(ev.logN[segRegular], nil)
	}
	x := math.Log(v)
	var d [2]float64
	for seg := range 2 {
		d[seg] = logSumExp(ev.logN[seg], func(a int) float64 {
			z := (x - p.valueMu[seg][a]) / p.sigma
			return -z * z / 2
		})
	}
	return l + d[segCrisis] - d[segRegular]
}

// logSumExp is log Σ_a exp(base[a] + add(a)) (add nil: 0).
func logSumExp(base []float64, add func(int) float64) float64 {
	mx := math.Inf(-1)
	terms := make([]float64, len(base))
	for a, b := range base {
		t := b
		if add != nil {
			t += add(a)
		}
		terms[a] = t
		mx = math.Max(mx, t)
	}
	if math.IsInf(mx, -1) {
		return mx
	}
	var s float64
	for _, t := range terms {
		s += math.Exp(t - mx)
	}
	return mx + math.Log(s)
}

// drawGhost draws a segment-seg user with the given metadata traits and
// drawUser's distributions for the rest into s.u.
func (s *Sim) drawGhost(seg int, engagement float64, searches int, keywords, crisisCamp bool) {
	u := &s.u
	*u = user{crisis: seg == segCrisis, seg: seg, engagement: engagement, searches: searches,
		logSearch: math.Log1p(float64(searches)), keywords: keywords, crisisCamp: crisisCamp}
	// These are drawUser's constants.
	hourMean, hourSD, mobile, desktop, recent := 14.0, 4.0, 0.50, 0.35, 0.0
	if u.crisis {
		hourMean, hourSD, mobile, desktop, recent = 22, 3.5, 0.70, 0.20, 0.4
	}
	u.hour = math.Mod(hourMean+hourSD*s.rng.NormFloat64()+48, 24)
	d := s.rng.Float64()
	u.mobile, u.desktop = d < mobile, d >= mobile && d < mobile+desktop
	u.recent = recent + s.rng.NormFloat64()
}

// ghostJourney runs one journey of a ghost user (drawGhost) under pol,
// adding π(a | o_t) of every step t to acc[a]. The dynamics are
// RunEpisode's.
func (s *Sim) ghostJourney(seg int, engagement float64, searches int, keywords, crisisCamp bool, pol Policy, acc []float64) {
	s.episode.Seed(s.master.Uint64(), s.master.Uint64())
	s.drawGhost(seg, engagement, searches, keywords, crisisCamp)
	obs := s.obs[0]
	remaining, impressions, lastBid, lastWon := s.cfg.BudgetUnits, 0, 0, false
	conv := s.m.conv[seg]
	for step := 0; ; step++ {
		s.observe(obs, step, impressions, remaining, lastWon, lastBid)
		pol.ActionProbs(obs, s.probs)
		for a, q := range s.probs {
			acc[a] += q
		}
		a := s.sample()
		b, _ := s.cfg.Decode(a)
		won := s.bernoulli(s.m.win[b])
		converted := false
		if won {
			remaining -= min(s.m.cost[b], remaining)
			impressions++
			converted = s.bernoulli(conv[a])
		}
		if converted || remaining == 0 || step+1 == s.cfg.MaxSteps {
			return
		}
		lastWon, lastBid = won, b
		u := &s.u
		u.hour = math.Mod(u.hour+0.25+1.5*s.rng.Float64(), 24)
	}
}

// SetPolicy makes pol the policy of the next User calls, keeping the ghost
// stream: a stream acted on by a sequence of policies (one per user) is
// evaluated with one PolicyPosterior. pol must be safe for concurrent use
// when other PolicyPosteriors share it.
func (pp *PolicyPosterior) SetPolicy(pol Policy) { pp.pol = pol }
