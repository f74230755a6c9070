package sim

import (
	"errors"
	"math"
	"math/rand/v2"
	"time"

	"github.com/aelp/aelp/schemas"
)

// DecisionRequest is what a LiveWorker asks its Decider for one decision:
// the fields of a decision server's decide request.
type DecisionRequest struct {
	// UserID, EpisodeID and Step place the decision in its journey.
	UserID, EpisodeID string
	Step              int
	// State is the observation (float32 values; owned by the Sim and
	// reused after Decide returns).
	State []float64
	// Metadata is the user's (read-only).
	Metadata map[string]string
	// Value is the ad server's estimate of the decision's worth, made
	// before the action is known (see LiveWorker).
	Value float64
	// Time is the decision's event time.
	Time time.Time
}

// ServedDecision is a Decider's answer.
type ServedDecision struct {
	// DecisionID names the decision (its outcomes carry it).
	DecisionID string
	// Action was drawn from Probs, the distribution served (NumActions
	// entries summing to 1).
	Action int
	Probs  []float64
	// PolicyVersion is the version of the policy that acted.
	PolicyVersion int64
}

// Decider makes a decision elsewhere (a decision server) and logs it
// there. An error abandons the journey.
type Decider func(*DecisionRequest) (ServedDecision, error)

// ErrAbandoned is returned by LiveWorker.Journey wrapped with the
// Decider's error.
var ErrAbandoned = errors.New("journey abandoned")

// LiveWorker simulates journeys whose decisions a Decider makes (the
// simulator's live mode acting through `aelp serve`): one per goroutine,
// each with its own Sim, so that many journeys — and many requests — are
// in flight at once. The event-time model is the Live's (LiveConfig), the
// arrival times come from Live.NextArrival and the outcomes go back to
// the Live's queue (Live.Add), so that a Live releases them in delivery
// order exactly as in the in-process mode. The decisions are not queued:
// the Decider has logged them.
//
// Differences from Live.Journey: the action is the served one (the Sim
// follows it: the Sim is handed a one-hot distribution at the served
// action), the decision's id, distribution and policy version are the
// served ones, and the decision's value is an estimate made before the
// action is known — V·mean over actions of P(win)·P(convert)·e^(σZ−σ²/2)
// with the user's true segment value V, instead of the chosen action's
// — because the request carries it.
type LiveWorker struct {
	s      *Sim
	cfg    LiveConfig
	rng    *rand.Rand
	exp    string
	decide Decider

	t      int64
	step   int
	served ServedDecision
	value  float64
	err    error
	out    []Event
	steps  []TrueTransition
	req    DecisionRequest
}

// NewLiveWorker returns a worker simulating s's journeys of experiment
// exp under cfg, its delays drawn from seed, its decisions made by decide.
func NewLiveWorker(s *Sim, cfg LiveConfig, exp string, seed uint64, decide Decider) (*LiveWorker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &LiveWorker{s: s, cfg: cfg, rng: rand.New(rand.NewPCG(seed, 0x5e7e)), exp: exp, decide: decide}, nil
}

// ServedJourney is one journey of a LiveWorker.
type ServedJourney struct {
	// Result is the journey's outcome.
	Result EpisodeResult
	// Outcomes are its outcome records (duplicates and delivery times
	// included), to be queued with Live.Add.
	Outcomes []Event
	// Steps are its decisions' true transitions, in order (the Decision
	// as served and logged is Steps[i].Experience's source).
	Steps []TrueTransition
	// Decisions is the number of decisions served.
	Decisions int
}

// Journey simulates the next user's journey, arriving at arrival (ms of
// event time). With an error (ErrAbandoned wrapping the Decider's) the
// journey stopped asking at the failed step; the decisions served before
// it are logged by the server, and Decisions counts them. The returned
// slices are reused by the next call.
func (w *LiveWorker) Journey(arrival int64) (ServedJourney, error) {
	w.t, w.step, w.err, w.out, w.steps = arrival, 0, nil, w.out[:0], w.steps[:0]
	n := 0
	res := w.s.RunEpisode(servedPolicy{w}, func(tr *Transition) {
		if w.err != nil {
			return
		}
		n++
		sv := &w.served
		d := &schemas.Decision{
			DecisionID: sv.DecisionID, ExperimentID: w.exp, UserID: tr.UserID, EpisodeID: tr.EpisodeID, Step: int32(tr.Step),
			Timestamp: time.UnixMilli(w.t).UTC(), State: f32s(tr.State), Action: int32(sv.Action),
			BehaviorLogProb: math.Log(sv.Probs[sv.Action]), ActionProbs: append([]float64(nil), sv.Probs...),
			PolicyVersion: sv.PolicyVersion, Value: w.value, Metadata: tr.Metadata,
		}
		w.steps = append(w.steps, outcomesOf(d, tr, w.t, w.cfg, w.rng, func(e Event) { w.out = append(w.out, e) }))
	})
	j := ServedJourney{Result: res, Outcomes: w.out, Steps: w.steps, Decisions: n}
	if w.err != nil {
		return j, errors.Join(ErrAbandoned, w.err)
	}
	return j, nil
}

// servedPolicy asks the worker's Decider at each step and hands the Sim
// a one-hot distribution at the served action (the Sim's inverse-CDF draw
// then returns it whatever its uniform number).
type servedPolicy struct{ w *LiveWorker }

func (p servedPolicy) ActionProbs(obs []float64, dst []float64) {
	w := p.w
	clear(dst)
	if w.err != nil {
		dst[0] = 1 // the journey is abandoned: finish it without asking
		return
	}
	s := w.s
	step := w.step // RunEpisode asks once per step
	w.step++
	if step > 0 {
		lo, hi := w.cfg.StepGapMin.Milliseconds(), w.cfg.StepGapMax.Milliseconds()
		w.t += lo + w.rng.Int64N(hi-lo+1)
	}
	w.value = w.valueEstimate()
	w.req = DecisionRequest{UserID: s.tr.UserID, EpisodeID: s.tr.EpisodeID, Step: step, State: obs,
		Metadata: s.tr.Metadata, Value: w.value, Time: time.UnixMilli(w.t).UTC()}
	sv, err := w.decide(&w.req)
	if err == nil && (sv.Action < 0 || sv.Action >= len(dst) || len(sv.Probs) != len(dst)) {
		err = errors.New("served action or distribution does not fit the simulator's actions")
	}
	if err != nil {
		w.err = err
		dst[0] = 1
		return
	}
	w.served = sv
	dst[sv.Action] = 1
}

// valueEstimate is the ad server's value estimate before the action:
// V·mean_a(P(win|bid(a))·P(convert|a))·e^(σZ−σ²/2).
func (w *LiveWorker) valueEstimate() float64 {
	s := w.s
	conv := s.m.conv[s.u.seg]
	mean := 0.0
	for a := range conv {
		b, _ := s.cfg.Decode(a)
		mean += s.m.win[b] * conv[a]
	}
	mean /= float64(len(conv))
	sigma := s.cfg.ValueNoise
	return s.m.value[s.u.seg] * mean * math.Exp(sigma*w.rng.NormFloat64()-sigma*sigma/2)
}

// NextArrival returns the next user's arrival time (ms of event time) and
// moves the arrival process on: the journey to hand to a LiveWorker.
func (l *Live) NextArrival() int64 {
	t := l.arrival
	l.arrival += int64(math.Ceil(l.rng.ExpFloat64() / l.cfg.ArrivalRate * 1000))
	return t
}

// Add queues records (a ServedJourney's outcomes) for delivery.
func (l *Live) Add(events []Event) {
	for _, e := range events {
		l.push(e)
	}
}
