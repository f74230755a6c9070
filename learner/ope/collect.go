package ope

import (
	"fmt"
	"strings"
)

// Record is one logged decision as it arrives from a stream or a file: one
// step of one journey, in the journey's order (Kafka keeps a user's records
// in order on one partition).
type Record struct {
	// Episode identifies the journey (Experience.EpisodeID).
	Episode string
	// Step is the decision's 0-based index in its journey.
	Step int
	// State is the observation acted on; the Collector copies it.
	State []float32
	// Action is the action taken.
	Action int
	// LogProb is log μ(Action|State) of the behaviour policy; NaN when the
	// producer did not log it.
	LogProb float64
	// Probs is μ(·|State) when the producer logged the full distribution,
	// nil otherwise; the Collector copies it.
	Probs []float64
	// Reward is the step's reward; Done marks the journey's last step.
	Reward float64
	Done   bool
	// Tag is the tagged event type of the step ("" untagged); Truth the
	// true segment ("" unknown). A journey takes its first step's.
	Tag, Truth string
}

// CollectorConfig configures a Collector. The zero value of a field takes
// the default named in its comment.
type CollectorConfig struct {
	// NumActions, when > 0, bounds actions to [0, NumActions) and is the
	// length a logged behaviour distribution must have.
	NumActions int
	// StateDim, when > 0, is the state width required; 0 takes the width
	// of the first record accepted.
	StateDim int
	// MaxPending bounds the journeys in progress; when a new journey
	// starts with MaxPending in progress, the one that started first is
	// dropped (counted in Counts.Evicted). Default 10,000.
	MaxPending int
	// Remember is the number of finished journey ids kept to recognise a
	// redelivered journey (at-least-once delivery), counted in
	// Counts.Duplicates. Default 4·MaxPending.
	Remember int
}

func (c *CollectorConfig) setDefaults() {
	if c.MaxPending <= 0 {
		c.MaxPending = 10_000
	}
	if c.Remember <= 0 {
		c.Remember = 4 * c.MaxPending
	}
}

// Counts are a Collector's figures: what it was given and what it did
// with each record.
type Counts struct {
	// Records is the number of records given to Add.
	Records int64 `json:"records"`
	// Journeys is the number of complete journeys added, Steps their
	// decisions.
	Journeys int64 `json:"journeys"`
	Steps    int64 `json:"steps"`
	// MissingLogProb counts records skipped without a behaviour
	// log-probability (NaN); ImpossibleLogProb those of log-probability
	// −Inf; Invalid those with a log-probability above 0, a non-finite
	// reward or state value, a state of another width, an action out of
	// range or a malformed behaviour distribution.
	MissingLogProb    int64 `json:"missing_logprob"`
	ImpossibleLogProb int64 `json:"impossible_logprob"`
	Invalid           int64 `json:"invalid"`
	// Duplicates counts records of a step already seen (a redelivery).
	Duplicates int64 `json:"duplicates"`
	// Gaps counts journeys dropped because a step is missing or was
	// skipped: the importance weight of the rest of the journey is
	// unknown.
	Gaps int64 `json:"gaps"`
	// Partial counts journeys dropped because their first record seen was
	// not step 0 (they began before the range read).
	Partial int64 `json:"partial"`
	// Evicted counts journeys in progress dropped to respect MaxPending.
	Evicted int64 `json:"evicted"`
	// Pending is the number of journeys in progress (not yet Done): at the
	// end of a range, journeys cut off by its end.
	Pending int `json:"pending"`
}

// Skipped is the number of records skipped (not counting duplicates).
func (c Counts) Skipped() int64 { return c.MissingLogProb + c.ImpossibleLogProb + c.Invalid }

// String says what happened to the records, naming every reason a record
// or a journey was left out.
func (c Counts) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d records: %d complete journeys (%d steps)", c.Records, c.Journeys, c.Steps)
	if n := c.Skipped(); n > 0 {
		fmt.Fprintf(&b, "; skipped %d records (%d without a behaviour log-prob, %d with log-prob −Inf, %d invalid)",
			n, c.MissingLogProb, c.ImpossibleLogProb, c.Invalid)
	}
	if c.Duplicates > 0 {
		fmt.Fprintf(&b, "; %d duplicate records ignored", c.Duplicates)
	}
	if n := c.Gaps + c.Partial + c.Evicted; n > 0 {
		fmt.Fprintf(&b, "; dropped %d journeys (%d with a missing or skipped step, %d begun before the range, %d evicted in progress)",
			n, c.Gaps, c.Partial, c.Evicted)
	}
	if c.Pending > 0 {
		fmt.Fprintf(&b, "; %d journeys still in progress", c.Pending)
	}
	return b.String()
}

// pending is a journey in progress.
type pending struct {
	j       Journey
	broken  bool // a step is missing or was skipped: drop it when it ends
	partial bool // its first record seen was not step 0
	seq     int64
}

// Collector assembles journeys from records arriving one step at a time
// and adds each complete one to a Journeys collection. A record that
// cannot be used (no behaviour log-prob, log-prob −Inf, a non-finite
// value) is counted and skipped, and its journey is dropped when it ends:
// a journey with a missing step has no importance weight. It is not safe
// for concurrent use.
type Collector struct {
	cfg     CollectorConfig
	dst     *Journeys
	dim     int
	pend    map[string]*pending
	order   []string // episode ids in the order their journeys began
	orderAt []int64  // their pending.seq, to skip stale entries
	seq     int64
	done    map[string]struct{}
	doneQ   []string
	doneAt  int
	counts  Counts
}

// NewCollector returns a Collector adding complete journeys to dst.
func NewCollector(cfg CollectorConfig, dst *Journeys) *Collector {
	cfg.setDefaults()
	return &Collector{cfg: cfg, dst: dst, dim: cfg.StateDim, pend: map[string]*pending{},
		done: map[string]struct{}{}, doneQ: make([]string, 0, min(cfg.Remember, 1024))}
}

// Counts returns the figures so far.
func (c *Collector) Counts() Counts {
	out := c.counts
	out.Pending = len(c.pend)
	return out
}

// recordReason returns why r cannot be used, or -1.
func (c *Collector) recordReason(r *Record) int {
	if reason := checkLogProb(r.LogProb); reason >= 0 {
		return reason
	}
	nA := c.cfg.NumActions
	if !finite(r.Reward) || r.Action < 0 || nA > 0 && r.Action >= nA || r.Step < 0 ||
		c.dim > 0 && len(r.State) != c.dim || len(r.State) == 0 {
		return reasonInvalid
	}
	for _, v := range r.State {
		if !finite(float64(v)) {
			return reasonInvalid
		}
	}
	if r.Probs != nil && !checkProbs(r.Probs, nA, r.Action, r.LogProb) {
		return reasonInvalid
	}
	return -1
}

// Add takes one record. It never fails: a record that cannot be used is
// counted (see Counts) and its journey dropped.
func (c *Collector) Add(r *Record) {
	c.counts.Records++
	p := c.pend[r.Episode]
	if p == nil {
		if _, seen := c.done[r.Episode]; seen {
			c.counts.Duplicates++
			return
		}
	} else if !p.broken && r.Step < len(p.j.Steps) {
		c.counts.Duplicates++
		return
	}
	if reason := c.recordReason(r); reason >= 0 {
		c.countSkipped(reason)
		if p == nil {
			p = c.start(r)
			p.partial = r.Step != 0
		}
		p.broken = true
	} else {
		if p == nil {
			p = c.start(r)
			p.partial = r.Step != 0
			p.broken = p.partial
		}
		if !p.broken && r.Step != len(p.j.Steps) {
			p.broken = true
		}
		if !p.broken {
			p.j.Steps = append(p.j.Steps, c.step(r))
		}
	}
	if r.Done {
		c.finish(r.Episode, p)
	}
}

func (c *Collector) countSkipped(reason int) {
	switch reason {
	case reasonMissingLogProb:
		c.counts.MissingLogProb++
	case reasonImpossible:
		c.counts.ImpossibleLogProb++
	default:
		c.counts.Invalid++
	}
}

// start begins the journey of r's episode, evicting the oldest journey in
// progress when MaxPending are.
func (c *Collector) start(r *Record) *pending {
	for len(c.pend) >= c.cfg.MaxPending && len(c.order) > 0 {
		id, at := c.order[0], c.orderAt[0]
		c.order, c.orderAt = c.order[1:], c.orderAt[1:]
		if old := c.pend[id]; old != nil && old.seq == at {
			delete(c.pend, id)
			c.counts.Evicted++
		}
	}
	c.seq++
	p := &pending{j: Journey{ID: r.Episode, Tag: r.Tag, Truth: r.Truth}, seq: c.seq}
	c.pend[r.Episode] = p
	c.order, c.orderAt = append(c.order, r.Episode), append(c.orderAt, c.seq)
	if len(c.order) > 2*len(c.pend)+64 {
		c.compact()
	}
	return p
}

// compact drops the entries of finished journeys from the start order.
func (c *Collector) compact() {
	k := 0
	for i, id := range c.order {
		if p := c.pend[id]; p != nil && p.seq == c.orderAt[i] {
			c.order[k], c.orderAt[k] = id, c.orderAt[i]
			k++
		}
	}
	c.order, c.orderAt = c.order[:k], c.orderAt[:k]
}

// step copies r into a Step, fixing the state width on the first one.
func (c *Collector) step(r *Record) Step {
	if c.dim == 0 {
		c.dim = len(r.State)
	}
	s := Step{T: r.Step, State: append([]float32(nil), r.State...), Action: r.Action, LogProb: r.LogProb,
		Reward: r.Reward, Done: r.Done}
	if r.Probs != nil {
		s.Probs = append([]float64(nil), r.Probs...)
	}
	return s
}

// finish ends the journey of id: added when whole, dropped otherwise.
func (c *Collector) finish(id string, p *pending) {
	delete(c.pend, id)
	c.remember(id)
	switch {
	case p.partial:
		c.counts.Partial++
		return
	case p.broken:
		c.counts.Gaps++
		return
	}
	c.counts.Journeys++
	c.counts.Steps += int64(len(p.j.Steps))
	c.dst.Add(p.j)
}

// remember keeps id among the last Remember finished journeys.
func (c *Collector) remember(id string) {
	if len(c.doneQ) < c.cfg.Remember {
		c.doneQ = append(c.doneQ, id)
	} else {
		delete(c.done, c.doneQ[c.doneAt])
		c.doneQ[c.doneAt] = id
		c.doneAt = (c.doneAt + 1) % len(c.doneQ)
	}
	c.done[id] = struct{}{}
}
