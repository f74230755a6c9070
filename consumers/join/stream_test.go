package join

import (
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"sort"
	"testing"
	"time"

	"github.com/aelp/aelp/schemas"
)

// stream is a synthetic live stream of one partition: each input in
// event-time order (outcomes jittered by less than the grace), as the
// partition's two topics hold them.
type stream struct {
	decisions []*schemas.Decision
	outcomes  []*schemas.Outcome
}

// genStream draws users with up to 5 steps a few seconds apart; each step
// an impression (cost) at once with probability 0.7, a conversion (value)
// after an exponential delay of mean 20s, an END on the last step; 5% of
// outcomes are delivered twice.
func genStream(rng *rand.Rand, users int) stream {
	var s stream
	var outs []*schemas.Outcome
	for u := range users {
		user := fmt.Sprint("u", u)
		start := time.Duration(rng.IntN(600_000)) * time.Millisecond
		steps := 1 + rng.IntN(5)
		for k := range steps {
			id := fmt.Sprintf("%s-%d", user, k)
			tk := start + time.Duration(k)*time.Duration(1000+rng.IntN(4000))*time.Millisecond
			d := decision(id, user, int32(k), tk)
			d.State = []float32{float32(rng.NormFloat64()), float32(k)}
			s.decisions = append(s.decisions, d)
			if rng.Float64() < 0.7 {
				outs = append(outs, &schemas.Outcome{OutcomeID: id + "-i", DecisionID: id, UserID: user, Kind: schemas.KindImpression, Timestamp: at(tk), Cost: 0.1 + rng.Float64()})
			}
			if rng.Float64() < 0.2 {
				delay := time.Duration(rng.ExpFloat64() * 20e3 * float64(time.Millisecond))
				outs = append(outs, &schemas.Outcome{OutcomeID: id + "-c", DecisionID: id, UserID: user, Kind: schemas.KindConversion, Timestamp: at(tk + delay), Value: 10 * rng.Float64()})
			}
			if k == steps-1 {
				outs = append(outs, &schemas.Outcome{DecisionID: id, UserID: user, Kind: schemas.KindEnd, Timestamp: at(tk)})
			}
		}
	}
	for _, o := range outs {
		if rng.Float64() < 0.05 {
			outs = append(outs, o)
		}
	}
	sort.SliceStable(s.decisions, func(i, j int) bool { return s.decisions[i].Timestamp.Before(s.decisions[j].Timestamp) })
	// Delivery order: event time plus a jitter below the grace (2s).
	key := make(map[*schemas.Outcome]time.Time, len(outs))
	for _, o := range outs {
		key[o] = o.Timestamp.Add(time.Duration(rng.IntN(1500)) * time.Millisecond)
	}
	s.outcomes = append(s.outcomes, outs...)
	sort.SliceStable(s.outcomes, func(i, j int) bool { return key[s.outcomes[i]].Before(key[s.outcomes[j]]) })
	return s
}

func streamConfig() Config {
	return Config{Windows: Windows{Default: 3 * time.Minute}, Grace: 2 * time.Second, IdleAdvance: time.Hour,
		BackwardWindow: time.Minute, Limits: schemas.Limits{StateDim: 2, NumActions: 2}}
}

// feed reads the stream from offsets (dFrom, oFrom) in a random
// interleaving of its two inputs, advancing after every record; stop
// returns true to crash before the record it is given the index of (then
// feed returns the offsets last committed, every 50 records). Without a
// crash it flushes at the end.
func feed(t *testing.T, c *Core, s stream, rng *rand.Rand, from Offsets, crashAt int) (out []Emitted, committed Offsets, crashed bool) {
	t.Helper()
	di, oi := int(from.Decisions), int(from.Outcomes)
	committed = from
	for n := 0; di < len(s.decisions) || oi < len(s.outcomes); n++ {
		if n == crashAt {
			return out, committed, true
		}
		if oi >= len(s.outcomes) || di < len(s.decisions) && rng.IntN(2) == 0 {
			d := *s.decisions[di]
			must(t, c.AddDecision(0, int64(di), &d, t0))
			di++
		} else {
			o := *s.outcomes[oi]
			must(t, c.AddOutcome(0, int64(oi), &o, t0))
			oi++
		}
		c.Advance(t0)
		got, _ := c.Take()
		out = append(out, got...)
		if n%50 == 49 {
			off, _ := c.SafeOffsets(0)
			if off.Decisions < committed.Decisions || off.Outcomes < committed.Outcomes {
				t.Fatalf("safe offsets went back: %+v after %+v", off, committed)
			}
			committed = off
		}
	}
	c.Flush()
	got, _ := c.Take()
	return append(out, got...), committed, false
}

func experiences(out []Emitted) map[string][]schemas.Experience {
	m := make(map[string][]schemas.Experience)
	for _, e := range out {
		m[e.Experience.ID] = append(m[e.Experience.ID], e.Experience)
	}
	return m
}

// TestStreamOrderIndependent: every interleaving of the two inputs gives
// exactly one experience per decision and the same experiences, bit for
// bit; the rewards are the sums of each decision's distinct outcomes.
func TestStreamOrderIndependent(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	s := genStream(rng, 300)
	var ref map[string][]schemas.Experience
	for run := range 5 {
		c := newCore(t, streamConfig())
		out, _, _ := feed(t, c, s, rand.New(rand.NewPCG(uint64(run), 9)), Offsets{}, -1)
		got := experiences(out)
		if len(got) != len(s.decisions) || len(out) != len(s.decisions) {
			t.Fatalf("run %d: %d experiences for %d ids, want one per decision (%d)", run, len(out), len(got), len(s.decisions))
		}
		if st := c.Stats(); st.Late+st.Unmatched+st.OutsideWindow != 0 || st.DuplicateOutcomes == 0 {
			t.Fatalf("run %d: stats %+v: want no late outcome and some duplicates", run, st)
		}
		if run == 0 {
			ref = got
			checkRewards(t, s, got)
			continue
		}
		if !reflect.DeepEqual(got, ref) {
			t.Fatalf("run %d: experiences differ with the interleaving", run)
		}
	}
}

// checkRewards recomputes each decision's reward from the stream.
func checkRewards(t *testing.T, s stream, got map[string][]schemas.Experience) {
	t.Helper()
	type sums struct{ v, c float64 }
	seen := make(map[*schemas.Outcome]bool)
	want := make(map[string]sums)
	for _, o := range s.outcomes {
		if seen[o] {
			continue
		}
		seen[o] = true
		w := want[o.DecisionID]
		w.v, w.c = w.v+o.Value, w.c+o.Cost
		want[o.DecisionID] = w
	}
	for id, es := range got {
		if w := want[id]; math.Abs(es[0].Reward-(w.v-w.c)) > 1e-9 {
			t.Fatalf("%s: reward %v, want %v", id, es[0].Reward, w.v-w.c)
		}
	}
}

// TestRestartFromSafeOffsets: a core that crashes at a random point and is
// rebuilt from its last committed SafeOffsets emits every decision at
// least once over both lives, each copy equal (bit for bit) to the
// crash-free run's.
func TestRestartFromSafeOffsets(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	s := genStream(rng, 200)
	ref, _, _ := feed(t, newCore(t, streamConfig()), s, rng, Offsets{}, -1)
	want := experiences(ref)
	total := len(s.decisions) + len(s.outcomes)
	for trial := range 20 {
		crashAt := 1 + rng.IntN(total-1)
		before, committed, crashed := feed(t, newCore(t, streamConfig()), s, rng, Offsets{}, crashAt)
		if !crashed {
			t.Fatal("did not crash")
		}
		after, _, _ := feed(t, newCore(t, streamConfig()), s, rng, committed, -1)
		got := experiences(append(before, after...))
		if len(got) != len(want) {
			t.Fatalf("trial %d (crash at %d, commit %+v): %d decisions emitted, want %d", trial, crashAt, committed, len(got), len(want))
		}
		dups := 0
		for id, es := range got {
			dups += len(es) - 1
			for _, e := range es {
				if !reflect.DeepEqual(e, want[id][0]) {
					t.Fatalf("trial %d: %s re-emitted as\n%+v\nwant\n%+v", trial, id, e, want[id][0])
				}
			}
		}
		if dups > len(before) {
			t.Fatalf("trial %d: %d duplicates, more than the %d emitted before the crash", trial, dups, len(before))
		}
	}
}

// FuzzCore drives a core with an arbitrary sequence of records and clock
// moves. Invariant: it never panics; no decision is emitted twice; after
// Flush every valid decision added has been emitted, nothing is pending or
// held, and every reward and next state is finite and of the state width;
// no decision is emitted more often than it was added (a decision added
// again after the core forgot its emission is emitted again: at least once).
func FuzzCore(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9})
	f.Add([]byte("decisions and outcomes in some order, with clock jumps"))
	f.Fuzz(func(t *testing.T, in []byte) {
		c, err := New(Config{Windows: Windows{Default: 10 * time.Second, ByKind: map[string]time.Duration{"CLICK": 2 * time.Second}},
			Grace: time.Second, IdleAdvance: 3 * time.Second, BackwardWindow: 4 * time.Second, MaxPending: 8,
			Limits: schemas.Limits{StateDim: 2, NumActions: 2}})
		if err != nil {
			t.Fatal(err)
		}
		wall := t0
		emitted := make(map[string]int)
		added := make(map[string]int)
		var offs [2]int64
		take := func() {
			out, _ := c.Take()
			for _, e := range out {
				if emitted[e.Experience.ID]++; emitted[e.Experience.ID] > added[e.Experience.ID] {
					t.Fatalf("%s emitted %d times, added %d", e.Experience.ID, emitted[e.Experience.ID], added[e.Experience.ID])
				}
				if !finite(e.Experience.Reward) || len(e.Experience.NextState) != 2 {
					t.Fatalf("bad experience %+v", e.Experience)
				}
			}
		}
		for i := 0; i+1 < len(in); i += 2 {
			op, arg := in[i], in[i+1]
			p := int32(op >> 6)
			et := time.Duration(arg) * 200 * time.Millisecond
			user := fmt.Sprint("u", arg%4)
			switch op % 4 {
			case 0:
				id := fmt.Sprint("d", arg%32)
				if err := c.AddDecision(p, offs[0], decision(id, user, int32(arg%3), et), wall); err == nil {
					added[id]++
				}
				offs[0]++
			case 1:
				kinds := []string{"CLICK", "CONVERSION", "END", "IMPRESSION"}
				o := outcome(fmt.Sprint("d", (arg/2)%32), user, kinds[op>>2%4], et, float64(arg%5), float64(op%3))
				if arg%7 == 0 {
					o.DecisionID = ""
				}
				_ = c.AddOutcome(p, offs[1], o, wall)
				offs[1]++
			case 2:
				wall = wall.Add(time.Duration(arg) * 50 * time.Millisecond)
				c.Advance(wall)
			case 3:
				for _, q := range c.Partitions() {
					if o, ok := c.SafeOffsets(q); !ok || o.Decisions > offs[0] || o.Outcomes > offs[1] {
						t.Fatalf("safe offsets %+v beyond the %v read", o, offs)
					}
				}
			}
			take()
		}
		c.Flush()
		take()
		for id := range added {
			if emitted[id] == 0 {
				t.Fatalf("%s added but never emitted", id)
			}
		}
		if s := c.Stats(); s.Pending != 0 || s.Held != 0 {
			t.Fatalf("after Flush: %+v", s)
		}
	})
}
