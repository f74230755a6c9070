package join

import (
	"hash/fnv"
	"runtime"
	"testing"
	"time"

	"github.com/aelp/aelp/producers/sim"
	"github.com/aelp/aelp/schemas"
)

// liveRecord is one encoded record of a simulated live stream.
type liveRecord struct {
	decision bool
	part     int32
	offset   int64
	value    []byte
}

// liveStream encodes the live stream of users simulated journeys (the
// simulator's delay model, 1 arrival per second of event time) as the
// Kafka records the join role reads, spread over parts partitions by user.
func liveStream(tb testing.TB, users, parts int) []liveRecord {
	tb.Helper()
	sc := sim.DefaultConfig()
	s, err := sim.New(sc, 1, 0)
	if err != nil {
		tb.Fatal(err)
	}
	lc := sim.DefaultLiveConfig()
	lc.ArrivalRate = 1
	l, err := sim.NewLive(s, lc, "bench", t0, 2)
	if err != nil {
		tb.Fatal(err)
	}
	pol := sim.Uniform{N: sc.NumActions()}
	var evs []sim.Event
	for range users {
		l.Journey(pol, -1, nil)
		evs = l.Ready(evs, false)
	}
	evs = l.Ready(evs, true)
	next := make([][2]int64, parts)
	out := make([]liveRecord, 0, len(evs))
	for i := range evs {
		e := &evs[i]
		h := fnv.New32a()
		h.Write([]byte(e.Key()))
		p := int32(h.Sum32() % uint32(parts))
		r := liveRecord{decision: e.Decision != nil, part: p}
		if r.decision {
			r.value, err = schemas.MarshalDecision(nil, e.Decision)
			r.offset = next[p][0]
			next[p][0]++
		} else {
			r.value, err = schemas.MarshalOutcome(nil, e.Outcome)
			r.offset = next[p][1]
			next[p][1]++
		}
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

func benchLimits() schemas.Limits {
	sc := sim.DefaultConfig()
	return schemas.Limits{StateDim: sc.StateDim, NumActions: sc.NumActions()}
}

// feedLive decodes the records and adds them to c as the role does, moving the
// watermarks every batch records; it returns the decisions added.
func feedLive(tb testing.TB, c *Core, recs []liveRecord, batch int, now time.Time) int {
	n := 0
	for i := range recs {
		r := &recs[i]
		if r.decision {
			var d schemas.Decision
			if err := schemas.UnmarshalDecision(r.value, &d); err != nil {
				tb.Fatal(err)
			}
			if err := c.AddDecision(r.part, r.offset, &d, now); err != nil {
				tb.Fatal(err)
			}
			n++
		} else {
			var o schemas.Outcome
			if err := schemas.UnmarshalOutcome(r.value, &o); err != nil {
				tb.Fatal(err)
			}
			if err := c.AddOutcome(r.part, r.offset, &o, now); err != nil {
				tb.Fatal(err)
			}
		}
		if batch > 0 && (i+1)%batch == 0 {
			c.Advance(now)
			c.Take()
		}
	}
	return n
}

// BenchmarkJoin measures the core on a simulated live stream (decode, add,
// a watermark advance every 4096 records as the role's polls do, the
// default 10-minute window) beside decoding the same records alone.
func BenchmarkJoin(b *testing.B) {
	recs := liveStream(b, 2000, 6)
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		var d schemas.Decision
		var o schemas.Outcome
		for b.Loop() {
			for i := range recs {
				var err error
				if recs[i].decision {
					err = schemas.UnmarshalDecision(recs[i].value, &d)
				} else {
					err = schemas.UnmarshalOutcome(recs[i].value, &o)
				}
				if err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(float64(len(recs)*b.N)/b.Elapsed().Seconds(), "records/s")
	})
	b.Run("join", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			c, err := New(Config{Limits: benchLimits(), IdleAdvance: time.Hour})
			if err != nil {
				b.Fatal(err)
			}
			feedLive(b, c, recs, 4096, t0)
			c.Flush()
			c.Take()
		}
		b.ReportMetric(float64(len(recs)*b.N)/b.Elapsed().Seconds(), "records/s")
	})
}

// BenchmarkPendingMemory measures the heap held per open decision: the
// decisions of a simulated live stream and their outcomes, decoded as the
// role decodes them, all held open (a window longer than the stream), the
// live heap after a GC minus the heap of an empty core, over the open
// decisions. It reports B/pending, and B/core, the heap of an empty core
// (the set of recently emitted ids, sized by MaxPending).
func BenchmarkPendingMemory(b *testing.B) {
	recs := liveStream(b, 4000, 6)
	cfg := Config{Windows: Windows{Default: 1000 * time.Hour}, Limits: benchLimits(), IdleAdvance: 1000 * time.Hour}
	var perPending, core float64
	for b.Loop() {
		b.StopTimer()
		runtime.GC()
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		c, err := New(cfg)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		n := feedLive(b, c, recs, 0, t0)
		b.StopTimer()
		runtime.GC()
		runtime.ReadMemStats(&m1)
		if st := c.Stats(); st.Pending != n {
			b.Fatalf("%d pending of %d decisions: the window closed some", st.Pending, n)
		}
		// An empty core's own allocation (the recent-id set sized by
		// MaxPending) is not per decision.
		empty, err := New(cfg)
		if err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		var m2 runtime.MemStats
		runtime.ReadMemStats(&m2)
		core = float64(m2.HeapAlloc) - float64(m1.HeapAlloc)
		perPending = (float64(m1.HeapAlloc) - float64(m0.HeapAlloc) - core) / float64(n)
		runtime.KeepAlive(c)
		runtime.KeepAlive(empty)
		b.StartTimer()
	}
	b.ReportMetric(perPending, "B/pending")
	b.ReportMetric(core, "B/core")
}
