package sim

import (
	"container/heap"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/aelp/aelp/schemas"
)

// LiveConfig is the event-time model of the simulator's live mode: when
// users arrive, how far apart a user's decisions are, and how long each
// outcome takes to arrive after its decision.
//
// # Delay model
//
// Users arrive as a Poisson process of ArrivalRate per second of event
// time. A user's first decision is at arrival, each next one a
// uniform(StepGapMin, StepGapMax) gap later. For each decision:
//
//   - IMPRESSION (cost = the step's spend) at the decision's time when the
//     auction is won;
//   - CONVERSION (value = the conversion value) after a log-normal delay,
//     D = ConversionMedian·e^(σZ), Z ~ N(0,1), σ = ConversionSigma, when
//     the step converts: P(D > w) = 1 − Φ(ln(w/median)/σ) (LateProbability),
//     the tail beyond any finite window;
//   - END on the journey's last decision: with the conversion when it
//     converted, at the decision's time otherwise.
//
// Delivery order is event order, except that a DisorderShare of the
// outcomes is delivered up to DisorderMax later than its event time (out
// of order), and a DuplicateShare is delivered twice (the copy up to
// DisorderMax later). Keep DisorderMax below the join's grace.
type LiveConfig struct {
	// ArrivalRate is users per second of event time. Default 20.
	ArrivalRate float64
	// StepGapMin and StepGapMax bound the gap between a user's decisions.
	// Default 10s and 2m.
	StepGapMin, StepGapMax time.Duration
	// ConversionMedian and ConversionSigma are the log-normal conversion
	// delay's median and log-scale σ. Default 2m and 1.
	ConversionMedian time.Duration
	ConversionSigma  float64
	// DuplicateShare and DisorderShare are the shares of outcomes delivered
	// twice and out of order. Default 0.01 and 0.02.
	DuplicateShare, DisorderShare float64
	// DisorderMax bounds how late an out-of-order or duplicate outcome is
	// delivered. Default 2s.
	DisorderMax time.Duration
}

// DefaultLiveConfig returns the defaults given with LiveConfig's fields.
func DefaultLiveConfig() LiveConfig {
	return LiveConfig{
		ArrivalRate: 20, StepGapMin: 10 * time.Second, StepGapMax: 2 * time.Minute,
		ConversionMedian: 2 * time.Minute, ConversionSigma: 1, DuplicateShare: 0.01, DisorderShare: 0.02,
		DisorderMax: 2 * time.Second,
	}
}

// Validate reports the first invalid field.
func (c LiveConfig) Validate() error {
	switch {
	case !(c.ArrivalRate > 0) || math.IsInf(c.ArrivalRate, 0):
		return fmt.Errorf("live: arrival rate %v: must be positive", c.ArrivalRate)
	case c.StepGapMin <= 0 || c.StepGapMax < c.StepGapMin:
		return fmt.Errorf("live: step gap %s..%s: must be positive and ordered", c.StepGapMin, c.StepGapMax)
	case c.ConversionMedian <= 0 || !(c.ConversionSigma >= 0) || math.IsInf(c.ConversionSigma, 0):
		return fmt.Errorf("live: conversion delay median %s σ %v: median must be positive, σ ≥ 0", c.ConversionMedian, c.ConversionSigma)
	case !(c.DuplicateShare >= 0 && c.DuplicateShare <= 1) || !(c.DisorderShare >= 0 && c.DisorderShare <= 1):
		return fmt.Errorf("live: duplicate share %v, disorder share %v: must be in [0, 1]", c.DuplicateShare, c.DisorderShare)
	case c.DisorderMax < 0:
		return fmt.Errorf("live: disorder max %s: must not be negative", c.DisorderMax)
	}
	return nil
}

// LateProbability is P(conversion delay > w) = 1 − Φ(ln(w/median)/σ).
func (c LiveConfig) LateProbability(w time.Duration) float64 {
	if c.ConversionSigma == 0 {
		if w < c.ConversionMedian {
			return 1
		}
		return 0
	}
	z := math.Log(float64(w)/float64(c.ConversionMedian)) / c.ConversionSigma
	return 0.5 * math.Erfc(z/math.Sqrt2)
}

// Event is one record of the live stream: a decision or an outcome.
type Event struct {
	// Deliver is when the record is published, in event time (ms since
	// the Unix epoch); the record's own timestamp may be earlier.
	Deliver int64
	// Decision or Outcome is set.
	Decision *schemas.Decision
	Outcome  *schemas.Outcome
	seq      uint64
}

// Key returns the record's user id (the Kafka key).
func (e *Event) Key() string {
	if e.Decision != nil {
		return e.Decision.UserID
	}
	return e.Outcome.UserID
}

// TrueTransition is what a join with a window longer than every delay
// must produce for one decision: the experience, and the distinct outcomes
// of the decision (before duplication).
type TrueTransition struct {
	Experience schemas.Experience
	Outcomes   []schemas.Outcome
}

// Live generates the live stream of a Sim: decisions at decision time and
// outcomes later, in delivery order. It is not safe for concurrent use.
type Live struct {
	s       *Sim
	cfg     LiveConfig
	rng     *rand.Rand
	exp     string
	arrival int64 // ms, the next user's
	q       eventHeap
	seq     uint64
	steps   []TrueTransition
	version int64
}

// NewLive returns the live stream of s for experiment exp, its first user
// arriving at start; seed seeds the event-time model (the journeys are s's).
func NewLive(s *Sim, cfg LiveConfig, exp string, start time.Time, seed uint64) (*Live, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Live{s: s, cfg: cfg, rng: rand.New(rand.NewPCG(seed, 0x11ce)), exp: exp, arrival: start.UnixMilli()}, nil
}

// Journey simulates the next user's journey under p (of policy version
// version, −1 for the logging policy) at the next arrival time, queues its
// records, and calls truth (when not nil) with each step's true
// transition, in order; the TrueTransition is reused after truth returns.
func (l *Live) Journey(p Policy, version int64, truth func(*TrueTransition)) EpisodeResult {
	l.version = version
	l.steps = l.steps[:0]
	t := l.arrival
	res := l.s.RunEpisode(p, func(tr *Transition) {
		if tr.Step > 0 {
			t += l.gap()
		}
		l.step(tr, t)
	})
	for i := range l.steps {
		if truth != nil {
			truth(&l.steps[i])
		}
	}
	l.arrival += int64(math.Ceil(l.rng.ExpFloat64() / l.cfg.ArrivalRate * 1000))
	return res
}

func (l *Live) gap() int64 {
	lo, hi := l.cfg.StepGapMin.Milliseconds(), l.cfg.StepGapMax.Milliseconds()
	return lo + l.rng.Int64N(hi-lo+1)
}

// step queues one transition's decision and outcomes at event time t (ms).
func (l *Live) step(tr *Transition, t int64) {
	id := l.exp + ":" + tr.EpisodeID + ":" + strconv.Itoa(tr.Step)
	d := &schemas.Decision{
		DecisionID: id, ExperimentID: l.exp, UserID: tr.UserID, EpisodeID: tr.EpisodeID, Step: int32(tr.Step),
		Timestamp: time.UnixMilli(t).UTC(), State: f32s(tr.State), Action: int32(tr.Action),
		BehaviorLogProb: tr.BehaviorLogProb, ActionProbs: append([]float64(nil), tr.ActionProbs...),
		PolicyVersion: l.version, Value: tr.Value, Metadata: tr.Metadata,
	}
	l.push(Event{Deliver: t, Decision: d})
	l.steps = append(l.steps, outcomesOf(d, tr, t, l.cfg, l.rng, l.push))
}

// outcomesOf queues (push) the outcomes of decision d, made at event time
// t (ms) for transition tr, with the delays and delivery of cfg drawn from
// rng, and returns d's true transition.
func outcomesOf(d *schemas.Decision, tr *Transition, t int64, cfg LiveConfig, rng *rand.Rand, push func(Event)) TrueTransition {
	id := d.DecisionID
	var outs []schemas.Outcome
	out := func(kind string, at int64, value, cost float64) {
		outs = append(outs, schemas.Outcome{OutcomeID: id + ":" + kind, DecisionID: id, UserID: tr.UserID,
			Timestamp: time.UnixMilli(at).UTC(), Kind: kind, Value: value, Cost: cost})
	}
	if tr.Won {
		out(schemas.KindImpression, t, 0, tr.Spend)
	}
	end := t
	if tr.Converted {
		end = t + int64(math.Round(float64(cfg.ConversionMedian.Milliseconds())*math.Exp(cfg.ConversionSigma*rng.NormFloat64())))
		out(schemas.KindConversion, end, tr.ConversionValue, 0)
	}
	if tr.Done {
		out(schemas.KindEnd, end, 0, 0)
	}
	for i := range outs {
		deliver(&outs[i], cfg, rng, push)
	}
	return TrueTransition{Experience: trueExperience(d, tr, outs), Outcomes: outs}
}

// deliver queues an outcome, out of order or twice for the configured
// shares.
func deliver(o *schemas.Outcome, cfg LiveConfig, rng *rand.Rand, push func(Event)) {
	t := o.Timestamp.UnixMilli()
	late := func() int64 { return t + rng.Int64N(cfg.DisorderMax.Milliseconds()+1) }
	at := t
	if rng.Float64() < cfg.DisorderShare {
		at = late()
	}
	c := *o
	push(Event{Deliver: at, Outcome: &c})
	if rng.Float64() < cfg.DuplicateShare {
		dup := *o
		push(Event{Deliver: late(), Outcome: &dup})
	}
}

// trueExperience is the joined transition of d: reward Σ value − Σ cost of
// its outcomes in event-time order (as aelp join sums them; 0 with none),
// the journey's done flag, and the next decision's state (tr.NextState) or
// d's own state when done.
func trueExperience(d *schemas.Decision, tr *Transition, outs []schemas.Outcome) schemas.Experience {
	var value, cost float64
	for i := range outs {
		value += outs[i].Value
		cost += outs[i].Cost
	}
	next := d.State
	if !tr.Done {
		next = f32s(tr.NextState)
	}
	return schemas.Experience{
		ID: d.DecisionID, ExperimentID: d.ExperimentID, EpisodeID: d.EpisodeID, UserID: d.UserID, Step: d.Step,
		Timestamp: d.Timestamp, State: d.State, Action: d.Action, BehaviorLogProb: d.BehaviorLogProb,
		PolicyVersion: d.PolicyVersion, Reward: value - cost, NextState: next, Done: tr.Done, Value: d.Value,
		Metadata: d.Metadata,
	}
}

func f32s(v []float64) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(x)
	}
	return out
}

func (l *Live) push(e Event) {
	l.seq++
	e.seq = l.seq
	heap.Push(&l.q, e)
}

// Ready appends to dst the queued records due before the next user's
// arrival (every queued record when final), in delivery order.
func (l *Live) Ready(dst []Event, final bool) []Event {
	if final {
		return l.ReadyBefore(dst, math.MaxInt64)
	}
	return l.ReadyBefore(dst, l.arrival)
}

// ReadyBefore appends to dst the queued records due before t (ms), in
// delivery order.
func (l *Live) ReadyBefore(dst []Event, t int64) []Event {
	for l.q.Len() > 0 && l.q[0].Deliver < t {
		dst = append(dst, heap.Pop(&l.q).(Event))
	}
	return dst
}

// Queued returns the number of records queued.
func (l *Live) Queued() int { return l.q.Len() }

type eventHeap []Event

func (h eventHeap) Len() int { return len(h) }
func (h eventHeap) Less(i, j int) bool {
	if h[i].Deliver != h[j].Deliver {
		return h[i].Deliver < h[j].Deliver
	}
	return h[i].seq < h[j].seq
}
func (h eventHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *eventHeap) Push(x any)   { *h = append(*h, x.(Event)) }
func (h *eventHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
