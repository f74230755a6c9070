package join

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aelp/aelp/schemas"
)

var t0 = time.UnixMilli(1_700_000_000_000).UTC()

func at(d time.Duration) time.Time { return t0.Add(d) }

func decision(id, user string, step int32, t time.Duration) *schemas.Decision {
	return &schemas.Decision{
		DecisionID: id, ExperimentID: "exp", UserID: user, EpisodeID: "e-" + user, Step: step,
		Timestamp: at(t), State: []float32{float32(step), 1}, Action: 1,
		BehaviorLogProb: math.Log(0.5), ActionProbs: []float64{0.5, 0.5}, PolicyVersion: -1, Value: 0.25,
	}
}

func outcome(decisionID, user, kind string, t time.Duration, value, cost float64) *schemas.Outcome {
	return &schemas.Outcome{DecisionID: decisionID, UserID: user, Kind: kind, Timestamp: at(t), Value: value, Cost: cost}
}

func newCore(t *testing.T, cfg Config) *Core {
	t.Helper()
	if cfg.Limits == (schemas.Limits{}) {
		cfg.Limits = schemas.Limits{StateDim: 2, NumActions: 2}
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func byID(out []Emitted) map[string]Emitted {
	m := make(map[string]Emitted, len(out))
	for _, e := range out {
		m[e.Experience.ID] = e
	}
	return m
}

func TestParseWindows(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Windows
		max  time.Duration
	}{
		{"", Windows{Default: 10 * time.Minute}, 10 * time.Minute},
		{"90s", Windows{Default: 90 * time.Second}, 90 * time.Second},
		{"conversion=24h,click=30m", Windows{Default: 10 * time.Minute, ByKind: map[string]time.Duration{"CONVERSION": 24 * time.Hour, "CLICK": 30 * time.Minute}}, 24 * time.Hour},
		{" 1m , Conversion = 2h ", Windows{Default: time.Minute, ByKind: map[string]time.Duration{"CONVERSION": 2 * time.Hour}}, 2 * time.Hour},
	} {
		got, err := ParseWindows(c.in)
		if err != nil || !reflect.DeepEqual(got, c.want) || got.Max() != c.max {
			t.Errorf("ParseWindows(%q) = %+v (max %s), %v; want %+v (max %s)", c.in, got, got.Max(), err, c.want, c.max)
		}
		if back, err := ParseWindows(got.String()); err != nil || !reflect.DeepEqual(back, got) {
			t.Errorf("ParseWindows(%q.String() = %q) = %+v, %v", c.in, got.String(), back, err)
		}
	}
	w, _ := ParseWindows("conversion=24h")
	if w.For("conversion") != 24*time.Hour || w.For(schemas.KindClick) != DefaultWindow {
		t.Errorf("For: conversion %s, click %s", w.For("conversion"), w.For(schemas.KindClick))
	}
	for in, want := range map[string]string{
		"conversion=":             `"" is not a duration`,
		"=5m":                     "empty kind",
		"click=5":                 `"5" is not a duration`,
		"click=-5m":               "must be positive",
		"0s":                      "must be positive",
		"5m,6m":                   "a second default window",
		"click=5m,CLICK=6m":       "kind CLICK given twice",
		"conversion=24h,,click=1": "is not a duration",
	} {
		if _, err := ParseWindows(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseWindows(%q) = %v, want an error containing %q", in, err, want)
		}
	}
}

// TestJoinBasics: reward, next state, done, default reward, emission only
// once the watermark passes the window.
func TestJoinBasics(t *testing.T) {
	c := newCore(t, Config{Windows: Windows{Default: time.Minute}, Grace: time.Second})
	now := t0
	must(t, c.AddDecision(0, 0, decision("a0", "a", 0, 0), now))
	must(t, c.AddOutcome(0, 0, outcome("a0", "a", schemas.KindImpression, 0, 0, 1.5), now))
	must(t, c.AddDecision(0, 1, decision("a1", "a", 1, 30*time.Second), now))
	must(t, c.AddOutcome(0, 1, outcome("a1", "a", schemas.KindImpression, 30*time.Second, 0, 2), now))
	must(t, c.AddOutcome(0, 2, outcome("a1", "a", schemas.KindConversion, 50*time.Second, 10, 0), now))
	must(t, c.AddOutcome(0, 3, outcome("a1", "a", schemas.KindEnd, 50*time.Second, 0, 0), now))
	must(t, c.AddDecision(0, 2, decision("b0", "b", 0, 40*time.Second), now))
	c.Advance(now)
	if out, _ := c.Take(); len(out) != 0 {
		t.Fatalf("emitted %d before any window closed", len(out))
	}
	// Records at 61s and beyond: the watermark reaches 60s = a0's window end.
	must(t, c.AddDecision(0, 3, decision("z0", "z", 0, 61*time.Second), now))
	must(t, c.AddOutcome(0, 4, outcome("z0", "z", schemas.KindClick, 61*time.Second, 0, 0), now))
	c.Advance(now)
	out, _ := c.Take()
	if len(out) != 1 || out[0].Experience.ID != "a0" {
		t.Fatalf("emitted %+v, want a0 alone", out)
	}
	e := out[0].Experience
	if e.Reward != -1.5 || e.Done || !slices.Equal(e.NextState, []float32{1, 1}) || e.Value != 0.25 || e.Step != 0 {
		t.Errorf("a0 = reward %v done %v next %v value %v", e.Reward, e.Done, e.NextState, e.Value)
	}
	c.Flush()
	m := byID(mustTake(t, c))
	if a1 := m["a1"].Experience; a1.Reward != 8 || !a1.Done || !slices.Equal(a1.NextState, a1.State) {
		t.Errorf("a1 = reward %v done %v next %v, want 8, done at END, next = state", a1.Reward, a1.Done, a1.NextState)
	}
	if b0 := m["b0"]; b0.Experience.Reward != 0 || !b0.Default || !b0.Experience.Done {
		t.Errorf("b0 = %+v, want the default reward and done (no next decision)", b0)
	}
	if s := c.Stats(); s.Emitted != 4 || s.DefaultReward != 1 || s.Pending != 0 {
		t.Errorf("stats %+v", s)
	}
}

func mustTake(t *testing.T, c *Core) []Emitted {
	t.Helper()
	out, _ := c.Take()
	return out
}

// TestAttribution: empty decision ids go to the user's latest decision at
// or before the outcome; per-kind windows; outcomes before their decision
// are held and claimed; late, outside-window and unmatched reasons;
// duplicates count once.
func TestAttribution(t *testing.T) {
	w, _ := ParseWindows("1m,conversion=10m")
	c := newCore(t, Config{Windows: w, Grace: time.Second, BackwardWindow: 30 * time.Second, DefaultReward: -0.5})
	now := t0
	// An outcome before its decision (held), then the decision.
	must(t, c.AddOutcome(0, 0, outcome("u0", "u", schemas.KindImpression, 0, 0, 1), now))
	must(t, c.AddDecision(0, 0, decision("u0", "u", 0, 0), now))
	must(t, c.AddDecision(0, 1, decision("u1", "u", 1, 20*time.Second), now))
	// No decision id: at 10s → u0, at 25s → u1.
	must(t, c.AddOutcome(0, 1, outcome("", "u", schemas.KindClick, 10*time.Second, 3, 0), now))
	must(t, c.AddOutcome(0, 2, outcome("", "u", schemas.KindClick, 25*time.Second, 5, 0), now))
	// Twice the same (no outcome id: same kind, time, value, cost).
	must(t, c.AddOutcome(0, 3, outcome("u1", "u", schemas.KindImpression, 21*time.Second, 0, 2), now))
	must(t, c.AddOutcome(0, 4, outcome("u1", "u", schemas.KindImpression, 21*time.Second, 0, 2), now))
	// A click outside its 1m window but a conversion inside its 10m one.
	must(t, c.AddOutcome(0, 5, outcome("u0", "u", schemas.KindClick, 90*time.Second, 7, 0), now))
	must(t, c.AddOutcome(0, 6, outcome("u0", "u", schemas.KindConversion, 9*time.Minute, 100, 0), now))
	// An outcome nobody claims.
	must(t, c.AddOutcome(0, 7, outcome("ghost", "g", schemas.KindClick, 9*time.Minute, 1, 0), now))
	must(t, c.AddDecision(0, 2, decision("v0", "v", 0, 9*time.Minute), now))
	c.Advance(now)
	_, late := c.Take()
	if len(late) != 1 || late[0].Reason != ReasonOutsideWindow || late[0].Offset != 5 {
		t.Fatalf("late %+v, want the click at offset 5 outside its window", late)
	}
	c.Flush()
	out, late := c.Take()
	m := byID(out)
	if r := m["u0"].Experience.Reward; r != 3+100-1 {
		t.Errorf("u0 reward %v, want 102", r)
	}
	if r := m["u1"].Experience.Reward; r != 5-2 {
		t.Errorf("u1 reward %v, want 3 (the duplicate impression counted once)", r)
	}
	if r := m["v0"]; r.Experience.Reward != -0.5 || !r.Default {
		t.Errorf("v0 = %+v, want the default reward -0.5", r)
	}
	if len(late) != 1 || late[0].Reason != ReasonUnmatched || late[0].Outcome.DecisionID != "ghost" {
		t.Errorf("late after flush %+v, want ghost unmatched", late)
	}
	// An outcome for an emitted decision is late.
	must(t, c.AddOutcome(0, 8, outcome("u0", "u", schemas.KindConversion, 9*time.Minute, 1, 0), now))
	if _, late := c.Take(); len(late) != 1 || late[0].Reason != ReasonLate {
		t.Errorf("late %+v, want reason late", late)
	}
	// A decision delivered again after emission is dropped.
	must(t, c.AddDecision(0, 3, decision("u0", "u", 0, 0), now))
	s := c.Stats()
	if s.DuplicateOutcomes != 1 || s.DuplicateDecisions != 1 || s.Late != 1 || s.OutsideWindow != 1 || s.Unmatched != 1 || s.Pending != 0 {
		t.Errorf("stats %+v", s)
	}
}

// TestWatermarkInputsAndIdle: a decisions topic read far ahead does not
// close windows while the outcomes topic lags; an idle input stops holding
// the watermark back after IdleAdvance; with both idle it moves to wall
// now − grace.
func TestWatermarkInputsAndIdle(t *testing.T) {
	c := newCore(t, Config{Windows: Windows{Default: time.Minute}, Grace: time.Second, IdleAdvance: 10 * time.Second})
	wall := t0
	must(t, c.AddDecision(0, 0, decision("a0", "a", 0, 0), wall))
	must(t, c.AddDecision(0, 1, decision("z0", "z", 0, time.Hour), wall))
	c.Advance(wall)
	if _, _, ok := c.Watermark(0); ok {
		t.Fatal("watermark moved with the outcomes input never read, within IdleAdvance")
	}
	must(t, c.AddOutcome(0, 0, outcome("a0", "a", schemas.KindClick, 30*time.Second, 4, 0), wall))
	c.Advance(wall)
	if wm, _, _ := c.Watermark(0); !wm.Equal(at(29 * time.Second)) {
		t.Fatalf("watermark %v, want min(1h, 30s) − 1s", wm)
	}
	if out := mustTake(t, c); len(out) != 0 {
		t.Fatalf("emitted %v while outcomes lag", out)
	}
	// The outcomes input goes quiet; decisions keep coming: after
	// IdleAdvance the watermark follows decisions alone.
	wall = wall.Add(11 * time.Second)
	must(t, c.AddDecision(0, 2, decision("z1", "z", 1, time.Hour+time.Second), wall))
	c.Advance(wall)
	out := mustTake(t, c)
	if len(out) != 1 || out[0].Experience.ID != "a0" || out[0].Experience.Reward != 4 {
		t.Fatalf("emitted %+v, want a0 with reward 4", out)
	}
	// Both idle: wall now − grace (here 2h after the records) closes the rest.
	wall = at(3 * time.Hour)
	c.Advance(wall)
	if wm, _, _ := c.Watermark(0); !wm.Equal(wall.Add(-time.Second)) {
		t.Errorf("idle watermark %v, want now − grace %v", wm, wall.Add(-time.Second))
	}
	if out := mustTake(t, c); len(out) != 2 {
		t.Errorf("idle partition emitted %d, want z0 and z1", len(out))
	}
}

// TestIdleClosesWithinIdlePlusGrace: with event time = wall time and no
// further traffic, a window ending at E closes at the first Advance at or
// after max(E, last record + IdleAdvance) + Grace.
func TestIdleClosesWithinIdlePlusGrace(t *testing.T) {
	const window, grace, idle = 2 * time.Second, 500 * time.Millisecond, time.Second
	c := newCore(t, Config{Windows: Windows{Default: window}, Grace: grace, IdleAdvance: idle})
	must(t, c.AddDecision(3, 0, decision("a0", "a", 0, 0), t0))
	must(t, c.AddOutcome(3, 0, outcome("a0", "a", schemas.KindImpression, 0, 0, 1), t0))
	closed := time.Duration(-1)
	for step := time.Duration(0); step <= 10*time.Second; step += 50 * time.Millisecond {
		c.Advance(at(step))
		if out := mustTake(t, c); len(out) == 1 {
			closed = step
			break
		}
	}
	if want := window + grace; closed < want || closed > want+50*time.Millisecond {
		t.Errorf("window closed at %s, want at %s (end %s + grace %s)", closed, want, window, grace)
	}
}

// TestValidation: bad records are refused with the field that is wrong.
func TestValidation(t *testing.T) {
	c := newCore(t, Config{})
	for name, c2 := range map[string]struct {
		err   error
		field string
	}{
		"NaN value":     {c.AddOutcome(0, 0, outcome("d", "u", "CLICK", 0, math.NaN(), 0), t0), "value"},
		"negative cost": {c.AddOutcome(0, 1, outcome("d", "u", "CLICK", 0, 0, -1), t0), "cost"},
		"state width": {func() error {
			d := decision("d", "u", 0, 0)
			d.State = []float32{1, 2, 3}
			return c.AddDecision(0, 0, d, t0)
		}(), "state"},
		"action outside the distribution": {func() error {
			d := decision("d", "u", 0, 0)
			d.ActionProbs = []float64{1, 0}
			d.BehaviorLogProb = 0
			return c.AddDecision(0, 1, d, t0)
		}(), "action"},
	} {
		var ve *schemas.ValidationError
		if !errors.As(c2.err, &ve) || ve.Field != c2.field {
			t.Errorf("%s: %v, want invalid %s", name, c2.err, c2.field)
		}
	}
	if s := c.Stats(); s.InvalidDecisions != 2 || s.InvalidOutcomes != 2 || s.Decisions != 0 || s.Outcomes != 0 {
		t.Errorf("stats %+v", s)
	}
}

// TestBackPressure: at MaxPending Full turns true, the decisions input
// stops counting and outcomes alone move the watermark, draining it.
func TestBackPressure(t *testing.T) {
	c := newCore(t, Config{Windows: Windows{Default: time.Minute}, Grace: time.Second, MaxPending: 3})
	for i := range 3 {
		must(t, c.AddDecision(0, int64(i), decision(fmt.Sprint("d", i), fmt.Sprint("u", i), 0, time.Duration(i)*time.Second), t0))
	}
	must(t, c.AddOutcome(0, 0, outcome("d0", "u0", "CLICK", 0, 1, 0), t0))
	if !c.Full() {
		t.Fatal("not Full at MaxPending")
	}
	must(t, c.AddOutcome(0, 1, outcome("x", "x", "CLICK", 2*time.Minute, 1, 0), t0))
	c.Advance(t0)
	if out := mustTake(t, c); len(out) != 3 || c.Full() {
		t.Errorf("emitted %d (Full %v), want 3 drained by the outcomes' clock", len(out), c.Full())
	}
}

func TestConfigValidate(t *testing.T) {
	for _, cfg := range []Config{
		{Grace: -time.Second}, {IdleAdvance: -1}, {BackwardWindow: -1}, {MaxPending: -1}, {MaxSteps: -1},
		{DefaultReward: math.NaN()}, {Windows: Windows{ByKind: map[string]time.Duration{"X": -1}}},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
	if c := newCore(t, Config{MaxSteps: 3}); c.Config().Grace != DefaultGrace || c.Config().MaxPending != DefaultMaxPending {
		t.Errorf("defaults %+v", c.Config())
	}
}

// TestSkipPassesMarkers: offsets read without a record (a transaction's
// marker) move the safe offsets once no open decision or held outcome
// needs the records below them, and never below what an open window
// needs; Skip does not move the clock.
func TestSkipPassesMarkers(t *testing.T) {
	c := newCore(t, Config{Windows: Windows{Default: time.Minute}, Grace: time.Second, IdleAdvance: time.Hour})
	now := t0
	must(t, c.AddDecision(0, 0, decision("d0", "u", 0, 0), now))
	must(t, c.AddOutcome(0, 0, outcome("d0", "u", schemas.KindClick, time.Second, 1, 0), now))
	c.Skip(0, Decisions, 2, now) // the commit marker at offset 1
	c.Skip(0, Outcomes, 2, now)
	if got, _ := c.SafeOffsets(0); got != (Offsets{Decisions: 0, Outcomes: 0}) {
		t.Errorf("safe offsets with d0 open = %+v, want {0 0} (d0 and its outcome are still needed)", got)
	}
	if wm, _, ok := c.Watermark(0); ok {
		t.Errorf("watermark %v after Skip alone, want none", wm)
	}
	must(t, c.AddDecision(0, 2, decision("d1", "u", 1, 2*time.Minute), now))
	must(t, c.AddOutcome(0, 2, outcome("d1", "u", schemas.KindClick, 2*time.Minute, 1, 0), now))
	c.Advance(now) // W = 2m − 1s closes d0 (window end 1m), not d1
	if out := mustTake(t, c); len(out) != 1 || out[0].Experience.ID != "d0" {
		t.Fatalf("emitted %v, want d0 only", out)
	}
	c.Skip(0, Decisions, 4, now) // an abort marker at offset 3
	c.Skip(0, Outcomes, 5, now)  // an aborted record at 3, its marker at 4
	if got, _ := c.SafeOffsets(0); got != (Offsets{Decisions: 2, Outcomes: 2}) {
		t.Errorf("safe offsets with d1 open = %+v, want {2 2}", got)
	}
	c.Flush()
	mustTake(t, c)
	if got, _ := c.SafeOffsets(0); got != (Offsets{Decisions: 4, Outcomes: 5}) {
		t.Errorf("safe offsets after the flush = %+v, want {4 5}: past the markers", got)
	}
	c.Skip(0, Decisions, 3, now) // never backwards
	if got, _ := c.SafeOffsets(0); got.Decisions != 4 {
		t.Errorf("safe decisions offset %d after a lower Skip, want 4", got.Decisions)
	}
}
