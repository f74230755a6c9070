package ope

import (
	"math"
	"math/rand/v2"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// recordsOf returns the records of journeys j, one per step.
func recordsOf(j Journey) []Record {
	var out []Record
	for _, s := range j.Steps {
		out = append(out, Record{Episode: j.ID, Step: s.T, State: s.State, Action: s.Action, LogProb: s.LogProb,
			Probs: s.Probs, Reward: s.Reward, Done: s.Done, Tag: j.Tag, Truth: j.Truth})
	}
	return out
}

func collect(cfg CollectorConfig, capacity int, recs []Record) ([]Journey, Counts) {
	js := NewJourneys(capacity)
	c := NewCollector(cfg, js)
	for i := range recs {
		c.Add(&recs[i])
	}
	return js.Snapshot(), c.Counts()
}

// lineJourney returns a journey of h steps with distinct rewards.
func lineJourney(id string, h int) Journey {
	j := Journey{ID: id, Tag: "T", Truth: "U"}
	for k := range h {
		j.Steps = append(j.Steps, Step{T: k, State: []float32{float32(k), 1}, Action: k % 3, LogProb: math.Log(1.0 / 3),
			Probs: []float64{1.0 / 3, 1.0 / 3, 1.0 / 3}, Reward: float64(10*k + 1), Done: k == h-1})
	}
	return j
}

// TestCollector: records of whole journeys, interleaved, give the journeys
// back; bad records, duplicates, gaps, journeys begun before the range and
// unfinished ones are each counted under their reason.
func TestCollector(t *testing.T) {
	a, b := recordsOf(lineJourney("a", 3)), recordsOf(lineJourney("b", 2))
	recs := []Record{a[0], b[0], a[1], b[1], a[2]} // a and b interleaved, whole
	recs = append(recs, a[0])                      // redelivered after a finished
	c := recordsOf(lineJourney("c", 3))            // a step without a behaviour log-prob
	c[1].LogProb = math.NaN()
	d := recordsOf(lineJourney("d", 2)) // log-prob −Inf
	d[1].LogProb = math.Inf(-1)
	e := recordsOf(lineJourney("e", 3)) // a duplicate in progress: whole
	e = []Record{e[0], e[1], e[0], e[2]}
	f := recordsOf(lineJourney("f", 3)) // a missing step
	f = []Record{f[0], f[2]}
	g := recordsOf(lineJourney("g", 3))[1:] // begun before the range
	h := recordsOf(lineJourney("h", 3))     // a bad state
	h[0].State = []float32{float32(math.Inf(1)), 0}
	for _, rs := range [][]Record{c, d, e, f, g, h} {
		recs = append(recs, rs...)
	}
	recs = append(recs, Record{Episode: "open", State: []float32{0, 0}, LogProb: -1}) // never done
	got, cnt := collect(CollectorConfig{NumActions: 3}, 100, recs)
	if want := []Journey{lineJourney("b", 2), lineJourney("a", 3), lineJourney("e", 3)}; !reflect.DeepEqual(got, want) {
		t.Errorf("journeys %+v, want b, a, e", got)
	}
	want := Counts{Records: int64(len(recs)), Journeys: 3, Steps: 8, MissingLogProb: 1, ImpossibleLogProb: 1, Invalid: 1,
		Duplicates: 2, Gaps: 4, Partial: 1, Pending: 1}
	if cnt != want {
		t.Errorf("counts %+v, want %+v", cnt, want)
	}
	for _, s := range []string{"1 without a behaviour log-prob", "1 with log-prob −Inf", "2 duplicate", "4 with a missing or skipped step",
		"1 begun before the range", "1 journeys still in progress"} {
		if !strings.Contains(cnt.String(), s) {
			t.Errorf("counts %q do not say %q", cnt, s)
		}
	}
}

// TestCollectorEviction: with MaxPending journeys in progress the oldest
// is dropped and counted when another begins; its later records make a
// journey begun before the range.
func TestCollectorEviction(t *testing.T) {
	js := NewJourneys(10)
	c := NewCollector(CollectorConfig{MaxPending: 2}, js)
	for _, id := range []string{"a", "b", "c"} {
		c.Add(&Record{Episode: id, State: []float32{0}, LogProb: -1})
	}
	c.Add(&Record{Episode: "b", Step: 1, State: []float32{0}, LogProb: -1, Done: true})
	c.Add(&Record{Episode: "a", Step: 1, State: []float32{0}, LogProb: -1, Done: true})
	cnt := c.Counts()
	if cnt.Evicted != 1 || cnt.Journeys != 1 || cnt.Partial != 1 || cnt.Pending != 1 || js.Len() != 1 || js.Snapshot()[0].ID != "b" {
		t.Errorf("counts %+v, journeys %v", cnt, js.Snapshot())
	}
}

// TestCollectorProperty: whatever order of whole journeys' records (each
// journey's own in order), with random redeliveries of records already
// seen, the collector yields exactly the journeys, each once.
func TestCollectorProperty(t *testing.T) {
	m := newToyMDP(1, 3, 4)
	for seed := range uint64(20) {
		src := m.journeys(m.randomPolicy(2, 0.1), 50, seed)
		rng := rand.New(rand.NewPCG(seed, 1))
		next := make([]int, len(src))
		var recs []Record
		for live := len(src); live > 0; {
			i := rng.IntN(len(src))
			if next[i] == len(src[i].Steps) {
				continue
			}
			r := recordsOf(src[i])
			recs = append(recs, r[next[i]])
			if rng.Float64() < 0.2 { // redeliver a record of this journey already seen
				recs = append(recs, r[rng.IntN(next[i]+1)])
			}
			if next[i]++; next[i] == len(src[i].Steps) {
				live--
			}
		}
		got, cnt := collect(CollectorConfig{}, 100, recs)
		byID := map[string]Journey{}
		for _, j := range got {
			if _, dup := byID[j.ID]; dup {
				t.Fatalf("seed %d: journey %s twice", seed, j.ID)
			}
			byID[j.ID] = j
		}
		for _, j := range src {
			if !reflect.DeepEqual(byID[j.ID], j) {
				t.Fatalf("seed %d: journey %s = %+v, want %+v", seed, j.ID, byID[j.ID], j)
			}
		}
		if cnt.Journeys != int64(len(src)) || cnt.Duplicates != int64(len(recs))-cnt.Steps || cnt.Pending != 0 {
			t.Fatalf("seed %d: counts %+v", seed, cnt)
		}
	}
}

// TestJourneysRing: a full collection evicts the oldest; Snapshot is in
// arrival order and unaffected by later adds.
func TestJourneysRing(t *testing.T) {
	js := NewJourneys(3)
	ids := func(xs []Journey) string {
		var s []string
		for _, j := range xs {
			s = append(s, j.ID)
		}
		return strings.Join(s, ",")
	}
	for i := range 5 {
		js.Add(Journey{ID: strconv.Itoa(i)})
		if i == 1 {
			if got := ids(js.Snapshot()); got != "0,1" {
				t.Errorf("after 2: %s", got)
			}
		}
	}
	snap := js.Snapshot()
	js.Add(Journey{ID: "5"})
	if got := ids(snap); got != "2,3,4" {
		t.Errorf("snapshot %s, want 2,3,4", got)
	}
	if got := ids(js.Snapshot()); got != "3,4,5" || js.Len() != 3 || js.Added() != 6 || js.Evicted() != 3 {
		t.Errorf("journeys %s, len %d, added %d, evicted %d", got, js.Len(), js.Added(), js.Evicted())
	}
}
