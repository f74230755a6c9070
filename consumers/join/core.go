package join

import (
	"cmp"
	"container/heap"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/aelp/aelp/schemas"
)

// Reasons of a late outcome (the aelp.error header on aelp.outcomes.late).
const (
	// ReasonLate: the outcome's decision was already emitted.
	ReasonLate = "late"
	// ReasonOutsideWindow: the outcome came after decision time + the
	// window of its kind.
	ReasonOutsideWindow = "outside-window"
	// ReasonUnmatched: no decision claimed the outcome within the backward
	// window.
	ReasonUnmatched = "unmatched"
)

// Input is one of a partition's two inputs.
type Input int8

// The inputs.
const (
	// Decisions is the decisions topic.
	Decisions Input = iota
	// Outcomes is the outcomes topic.
	Outcomes
)

const none = math.MinInt64

// Emitted is one experience the core emits.
type Emitted struct {
	// Partition and Offset are the decision record's.
	Partition int32
	Offset    int64
	// Experience is the joined transition; its slices and maps are shared
	// with the decision (read-only).
	Experience schemas.Experience
	// Outcomes is the number of outcomes attributed; Default reports that
	// there were none and the reward is Config.DefaultReward.
	Outcomes int
	Default  bool
	// Watermark is the partition's watermark when the window closed (the
	// event time of the emission; +∞ after Flush is the zero Time).
	Watermark time.Time
	// Arrived is the wall time the decision was added.
	Arrived time.Time
}

// Late is an outcome the core does not train on.
type Late struct {
	// Partition and Offset are the outcome record's.
	Partition int32
	Offset    int64
	Outcome   schemas.Outcome
	// Reason is ReasonLate, ReasonOutsideWindow or ReasonUnmatched.
	Reason string
}

// Stats are the core's counters since New.
type Stats struct {
	// Decisions and Outcomes are the valid records added.
	Decisions, Outcomes int64
	// Emitted experiences, DefaultReward of them without any outcome.
	Emitted, DefaultReward int64
	// Late, OutsideWindow and Unmatched count the late outcomes by reason.
	Late, OutsideWindow, Unmatched int64
	// DuplicateOutcomes and DuplicateDecisions were dropped.
	DuplicateOutcomes, DuplicateDecisions int64
	// InvalidDecisions and InvalidOutcomes were refused by validation.
	InvalidDecisions, InvalidOutcomes int64
	// Pending are the open decisions, Held the outcomes waiting for their
	// decision.
	Pending, Held int
}

// Offsets are a partition's safe commit offsets: every record below them
// is no longer needed. -1 means nothing to commit on that input yet.
type Offsets struct {
	Decisions, Outcomes int64
}

type outcomeRec struct {
	o      schemas.Outcome
	t      int64
	offset int64
}

type dstate struct {
	d        schemas.Decision
	t        int64
	closeAt  int64
	offset   int64
	arrived  time.Time
	outcomes []outcomeRec
	minOut   int64 // smallest offset of an attributed outcome; MaxInt64 none
	emitted  bool
}

type held struct {
	rec     outcomeRec
	expire  int64
	claimed bool
}

type clock struct {
	maxT int64
	last time.Time
	seen bool
}

type partition struct {
	id      int32
	in      [2]clock
	wm      int64
	next    [2]int64
	pending map[string]*dstate
	fifo    []*dstate // offset order; the head is open
	closing closeHeap
	users   map[string][]*dstate
	heldID  map[string][]*held
	heldUsr map[string][]*held
	heldQ   heldHeap
}

// Core is the join state of the partitions a consumer owns. It is not safe
// for concurrent use.
type Core struct {
	cfg     Config
	window  int64 // Windows.Max in ms
	parts   map[int32]*partition
	pending int
	held    int
	emitted recentIDs
	stats   Stats
	out     []Emitted
	late    []Late
}

// New returns a core for cfg.
func New(cfg Config) (*Core, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("join: %w", err)
	}
	cfg = cfg.WithDefaults()
	return &Core{
		cfg: cfg, window: cfg.Windows.Max().Milliseconds(), parts: make(map[int32]*partition),
		emitted: newRecentIDs(cfg.MaxPending),
	}, nil
}

// Config returns the core's configuration with its defaults.
func (c *Core) Config() Config { return c.cfg }

func (c *Core) part(p int32, now time.Time) *partition {
	if pt := c.parts[p]; pt != nil {
		return pt
	}
	pt := &partition{
		id: p, wm: none, next: [2]int64{-1, -1},
		pending: make(map[string]*dstate), users: make(map[string][]*dstate),
		heldID: make(map[string][]*held), heldUsr: make(map[string][]*held),
	}
	for i := range pt.in {
		pt.in[i] = clock{maxT: none, last: now}
	}
	c.parts[p] = pt
	return pt
}

func (pt *partition) saw(in Input, offset, t int64, now time.Time) {
	cl := &pt.in[in]
	cl.maxT, cl.last, cl.seen = max(cl.maxT, t), now, true
	pt.next[in] = max(pt.next[in], offset+1)
}

// Skip tells the core that partition p's input in has been read up to
// next (exclusive) though not every offset below it came as a record:
// transaction markers, and under read_committed the records of aborted
// transactions, hold offsets no record is added for. SafeOffsets may then
// pass them (a commit that stopped at the last record would leave the
// group's lag at 1 behind a log ending on a marker). It neither moves the
// input's clock nor counts as activity for the idle advance.
func (c *Core) Skip(p int32, in Input, next int64, now time.Time) {
	pt := c.part(p, now)
	pt.next[in] = max(pt.next[in], next)
}

// AddDecision adds the decision record at offset of partition p, read at
// wall time now. The core keeps d's slices and maps: the caller must not
// change them afterwards. An invalid decision is refused with its
// *schemas.ValidationError (dead-letter it); a duplicate of an open or
// recently emitted decision is dropped and counted.
func (c *Core) AddDecision(p int32, offset int64, d *schemas.Decision, now time.Time) error {
	if err := d.Validate(c.cfg.Limits); err != nil {
		c.stats.InvalidDecisions++
		return err
	}
	pt := c.part(p, now)
	t := d.Timestamp.UnixMilli()
	pt.saw(Decisions, offset, t, now)
	if pt.pending[d.DecisionID] != nil || c.emitted.has(d.DecisionID) {
		c.stats.DuplicateDecisions++
		return nil
	}
	c.stats.Decisions++
	ds := &dstate{d: *d, t: t, closeAt: satAdd(t, c.window), offset: offset, arrived: now, minOut: math.MaxInt64}
	pt.pending[d.DecisionID] = ds
	pt.fifo = append(pt.fifo, ds)
	heap.Push(&pt.closing, ds)
	pt.users[d.UserID] = append(pt.users[d.UserID], ds)
	c.pending++
	if hs := pt.heldID[d.DecisionID]; hs != nil {
		delete(pt.heldID, d.DecisionID)
		for _, h := range hs {
			c.claim(pt, ds, h)
		}
	}
	if hs := pt.heldUsr[d.UserID]; hs != nil {
		keep := hs[:0]
		for _, h := range hs {
			if h.claimed {
				continue
			}
			if h.rec.t >= t {
				c.claim(pt, ds, h)
			} else {
				keep = append(keep, h)
			}
		}
		if len(keep) == 0 {
			delete(pt.heldUsr, d.UserID)
		} else {
			pt.heldUsr[d.UserID] = keep
		}
	}
	return nil
}

func (c *Core) claim(pt *partition, ds *dstate, h *held) {
	if h.claimed {
		return
	}
	h.claimed = true
	c.held--
	c.attach(pt, ds, h.rec)
}

// AddOutcome adds the outcome record at offset of partition p, read at
// wall time now. An invalid outcome is refused with its
// *schemas.ValidationError (dead-letter it).
func (c *Core) AddOutcome(p int32, offset int64, o *schemas.Outcome, now time.Time) error {
	if err := o.Validate(); err != nil {
		c.stats.InvalidOutcomes++
		return err
	}
	pt := c.part(p, now)
	rec := outcomeRec{o: *o, t: o.Timestamp.UnixMilli(), offset: offset}
	pt.saw(Outcomes, offset, rec.t, now)
	c.stats.Outcomes++
	if ds := pt.decisionOf(&rec); ds != nil {
		c.attach(pt, ds, rec)
		return nil
	}
	if o.DecisionID != "" && c.emitted.has(o.DecisionID) {
		c.reject(pt, rec, ReasonLate)
		return nil
	}
	h := &held{rec: rec, expire: satAdd(rec.t, c.cfg.BackwardWindow.Milliseconds())}
	if o.DecisionID != "" {
		pt.heldID[o.DecisionID] = append(pt.heldID[o.DecisionID], h)
	} else {
		pt.heldUsr[o.UserID] = append(pt.heldUsr[o.UserID], h)
	}
	heap.Push(&pt.heldQ, h)
	c.held++
	return nil
}

// decisionOf returns the open decision an outcome belongs to: by id, or the
// user's latest open decision at or before it.
func (pt *partition) decisionOf(rec *outcomeRec) *dstate {
	if rec.o.DecisionID != "" {
		return pt.pending[rec.o.DecisionID]
	}
	var best *dstate
	for _, ds := range pt.users[rec.o.UserID] {
		if ds.t <= rec.t && (best == nil || ds.t >= best.t) {
			best = ds
		}
	}
	return best
}

// sameOutcome reports whether a and b are one outcome delivered twice.
func sameOutcome(a, b *schemas.Outcome) bool {
	if a.OutcomeID != "" || b.OutcomeID != "" {
		return a.OutcomeID == b.OutcomeID
	}
	return a.Kind == b.Kind && a.Timestamp.Equal(b.Timestamp) &&
		math.Float64bits(a.Value) == math.Float64bits(b.Value) && math.Float64bits(a.Cost) == math.Float64bits(b.Cost)
}

func (c *Core) attach(pt *partition, ds *dstate, rec outcomeRec) {
	if rec.t > satAdd(ds.t, c.cfg.Windows.For(rec.o.Kind).Milliseconds()) {
		c.reject(pt, rec, ReasonOutsideWindow)
		return
	}
	for i := range ds.outcomes {
		if sameOutcome(&ds.outcomes[i].o, &rec.o) {
			c.stats.DuplicateOutcomes++
			return
		}
	}
	ds.outcomes = append(ds.outcomes, rec)
	ds.minOut = min(ds.minOut, rec.offset)
}

func (c *Core) reject(pt *partition, rec outcomeRec, reason string) {
	switch reason {
	case ReasonLate:
		c.stats.Late++
	case ReasonOutsideWindow:
		c.stats.OutsideWindow++
	case ReasonUnmatched:
		c.stats.Unmatched++
	}
	c.late = append(c.late, Late{Partition: pt.id, Offset: rec.offset, Outcome: rec.o, Reason: reason})
}

// Full reports whether the open decisions have reached MaxPending: stop
// reading decisions until it turns false (outcomes keep moving the clock).
func (c *Core) Full() bool { return c.pending >= c.cfg.MaxPending }

// Advance moves every partition's watermark for wall time now and emits
// the decisions whose windows it closes; held outcomes past the backward
// window become unmatched. Take returns what it produced.
func (c *Core) Advance(now time.Time) {
	for _, p := range c.Partitions() {
		pt := c.parts[p]
		if wm := c.watermark(pt, now); wm > pt.wm {
			pt.wm = wm
		}
		c.close(pt)
	}
}

// Flush moves every watermark to +∞ (the end of the input): every open
// decision is emitted and every held outcome is unmatched.
func (c *Core) Flush() {
	for _, p := range c.Partitions() {
		pt := c.parts[p]
		pt.wm = math.MaxInt64
		c.close(pt)
	}
}

// watermark computes the partition's candidate watermark (see the package
// documentation).
func (c *Core) watermark(pt *partition, now time.Time) int64 {
	grace := c.cfg.Grace.Milliseconds()
	full := c.Full()
	minActive, anyActive, maxAll := int64(math.MaxInt64), false, int64(none)
	for i := range pt.in {
		cl := &pt.in[i]
		if cl.seen {
			maxAll = max(maxAll, cl.maxT)
		}
		if Input(i) == Decisions && full {
			continue
		}
		if now.Sub(cl.last) < c.cfg.IdleAdvance {
			anyActive, minActive = true, min(minActive, cl.maxT)
		}
	}
	switch {
	case anyActive && minActive == none:
		return none
	case anyActive:
		return minActive - grace
	default:
		return max(maxAll, now.UnixMilli()) - grace
	}
}

func (c *Core) close(pt *partition) {
	for pt.closing.Len() > 0 && pt.closing[0].closeAt <= pt.wm {
		c.emit(pt, heap.Pop(&pt.closing).(*dstate))
	}
	for pt.heldQ.Len() > 0 && pt.heldQ[0].expire < pt.wm {
		h := heap.Pop(&pt.heldQ).(*held)
		if h.claimed {
			continue
		}
		h.claimed = true
		c.held--
		c.unindex(pt, h)
		c.reject(pt, h.rec, ReasonUnmatched)
	}
}

func (c *Core) unindex(pt *partition, h *held) {
	idx, key := pt.heldID, h.rec.o.DecisionID
	if key == "" {
		idx, key = pt.heldUsr, h.rec.o.UserID
	}
	hs := slices.DeleteFunc(idx[key], func(x *held) bool { return x == h })
	if len(hs) == 0 {
		delete(idx, key)
	} else {
		idx[key] = hs
	}
}

// compareOutcomes orders outcomes by event time, then content, so that the
// reward's sums do not depend on arrival order.
func compareOutcomes(a, b outcomeRec) int {
	return cmp.Or(cmp.Compare(a.t, b.t), strings.Compare(a.o.OutcomeID, b.o.OutcomeID),
		strings.Compare(a.o.Kind, b.o.Kind), cmp.Compare(a.o.Value, b.o.Value), cmp.Compare(a.o.Cost, b.o.Cost))
}

func (c *Core) emit(pt *partition, ds *dstate) {
	slices.SortFunc(ds.outcomes, compareOutcomes)
	var value, cost float64
	end := false
	for i := range ds.outcomes {
		o := &ds.outcomes[i].o
		value += o.Value
		cost += o.Cost
		end = end || strings.EqualFold(o.Kind, schemas.KindEnd)
	}
	reward := value - cost
	if len(ds.outcomes) == 0 {
		reward = c.cfg.DefaultReward
		c.stats.DefaultReward++
	}
	d := &ds.d
	next := pt.nextOf(ds)
	done := end || next == nil || c.cfg.MaxSteps > 0 && int(d.Step) >= c.cfg.MaxSteps-1
	nextState := d.State
	if !done {
		nextState = next.d.State
	}
	e := Emitted{
		Partition: pt.id, Offset: ds.offset, Outcomes: len(ds.outcomes), Default: len(ds.outcomes) == 0, Arrived: ds.arrived,
		Experience: schemas.Experience{
			ID: d.DecisionID, ExperimentID: d.ExperimentID, EpisodeID: d.EpisodeID, UserID: d.UserID,
			Step: d.Step, Timestamp: d.Timestamp, State: d.State, Action: d.Action,
			BehaviorLogProb: d.BehaviorLogProb, PolicyVersion: d.PolicyVersion, Reward: reward,
			NextState: nextState, Done: done, Value: d.Value, Metadata: d.Metadata,
		},
	}
	if pt.wm != math.MaxInt64 {
		e.Watermark = time.UnixMilli(pt.wm).UTC()
	}
	c.out = append(c.out, e)
	c.stats.Emitted++
	c.retire(pt, ds)
}

// nextOf returns the user's open decision of the same episode with the
// smallest step above ds's, made by the end of ds's window, or nil.
func (pt *partition) nextOf(ds *dstate) *dstate {
	var best *dstate
	for _, o := range pt.users[ds.d.UserID] {
		if o != ds && o.d.EpisodeID == ds.d.EpisodeID && o.d.Step > ds.d.Step && o.t <= ds.closeAt &&
			(best == nil || o.d.Step < best.d.Step) {
			best = o
		}
	}
	return best
}

// retire removes an emitted decision from the open state; its fifo entry
// keeps only the offsets until it reaches the head.
func (c *Core) retire(pt *partition, ds *dstate) {
	id, user := ds.d.DecisionID, ds.d.UserID
	delete(pt.pending, id)
	us := slices.DeleteFunc(pt.users[user], func(x *dstate) bool { return x == ds })
	if len(us) == 0 {
		delete(pt.users, user)
	} else {
		pt.users[user] = us
	}
	c.emitted.add(id)
	c.pending--
	ds.emitted, ds.d, ds.outcomes = true, schemas.Decision{}, nil
	i := 0
	for i < len(pt.fifo) && pt.fifo[i].emitted {
		i++
	}
	if i > 0 {
		// Reslice rather than shift the open entries down (O(1), not
		// O(open decisions) per emission); append moves the open ones to
		// a new array when this one is full, and the old one is freed.
		clear(pt.fifo[:i])
		pt.fifo = pt.fifo[i:]
	}
}

// Take returns the experiences and late outcomes produced since the last
// Take, in order; the slices are the caller's.
func (c *Core) Take() ([]Emitted, []Late) { return c.TakeAppend(nil, nil) }

// TakeAppend is Take appending to out and late, so that a caller reusing
// its slices allocates nothing once they have grown; the core keeps its
// own buffers too.
func (c *Core) TakeAppend(out []Emitted, late []Late) ([]Emitted, []Late) {
	out, late = append(out, c.out...), append(late, c.late...)
	clear(c.out) // drop the references to the decisions' slices
	clear(c.late)
	c.out, c.late = c.out[:0], c.late[:0]
	return out, late
}

// SafeOffsets returns partition p's safe commit offsets (see the package
// documentation); ok is false for a partition the core has not seen.
func (c *Core) SafeOffsets(p int32) (o Offsets, ok bool) {
	pt := c.parts[p]
	if pt == nil {
		return Offsets{-1, -1}, false
	}
	o = Offsets{Decisions: pt.next[Decisions], Outcomes: pt.next[Outcomes]}
	if len(pt.fifo) > 0 {
		o.Decisions = pt.fifo[0].offset
	}
	minOut := int64(math.MaxInt64)
	for _, ds := range pt.fifo {
		minOut = min(minOut, ds.minOut)
	}
	for _, h := range pt.heldQ {
		if !h.claimed {
			minOut = min(minOut, h.rec.offset)
		}
	}
	if minOut != math.MaxInt64 {
		o.Outcomes = minOut
	}
	return o, true
}

// Drop forgets partition p (its partitions were revoked): its open
// decisions and held outcomes are dropped unemitted, for the next owner to
// rebuild from the committed offsets.
func (c *Core) Drop(p int32) {
	pt := c.parts[p]
	if pt == nil {
		return
	}
	c.pending -= len(pt.pending)
	for _, h := range pt.heldQ {
		if !h.claimed {
			c.held--
		}
	}
	delete(c.parts, p)
}

// Partitions returns the partitions the core holds state for, ascending.
func (c *Core) Partitions() []int32 {
	ps := make([]int32, 0, len(c.parts))
	for p := range c.parts {
		ps = append(ps, p)
	}
	slices.Sort(ps)
	return ps
}

// Watermark returns partition p's watermark and the highest event time
// seen on it; ok is false before the watermark has moved.
func (c *Core) Watermark(p int32) (wm, maxEvent time.Time, ok bool) {
	pt := c.parts[p]
	if pt == nil || pt.wm == none {
		return time.Time{}, time.Time{}, false
	}
	m := max(pt.in[0].maxT, pt.in[1].maxT)
	if pt.wm == math.MaxInt64 {
		return time.Time{}, time.UnixMilli(m).UTC(), true
	}
	return time.UnixMilli(pt.wm).UTC(), time.UnixMilli(m).UTC(), true
}

// Stats returns the counters.
func (c *Core) Stats() Stats {
	s := c.stats
	s.Pending, s.Held = c.pending, c.held
	return s
}

func satAdd(t, d int64) int64 {
	if t > math.MaxInt64-d {
		return math.MaxInt64
	}
	return t + d
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }
