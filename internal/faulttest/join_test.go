package faulttest

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aelp/aelp/internal/kafkatest"
	"github.com/aelp/aelp/internal/kafkax"
	"github.com/aelp/aelp/learner/train"
	"github.com/aelp/aelp/producers"
	"github.com/aelp/aelp/producers/sim"
	"github.com/aelp/aelp/schemas"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
)

// TestJoinProcessKilled: an `aelp join` process joins a live stream (the
// in-process live simulator, rate-capped, publishing while the join runs)
// and is SIGKILLed three times mid-stream, each time after another share
// of experiences appeared on the raw topic (aimed, as in
// TestAggregatorProcessKilled, at the window between a publish and its
// commit), and started again in the same group. The window is longer than
// every delay and every gap between a user's decisions, so the crash-free
// join is the simulator's truth. Every decision must be emitted at least
// once, every copy must carry the truth's reward (bit-equal), next state
// and done flag, and the duplicates are bounded by the experiences that
// were on the raw topic above the group's committed decision offsets at
// the kills (only those are read again). The learner's trainer, fed every
// raw record, holds each id once.
func TestJoinProcessKilled(t *testing.T) {
	requireReal(t)
	aelpBinary(t) // before the broker starts: the build takes a while
	c := kafkatest.Start(t, kafkatest.Options{})
	cfg := c.Config()
	const group, partitions = "fault-join-proc", 3
	const window = 20 * time.Minute
	const grace = 5 * time.Second
	live := sim.DefaultLiveConfig()
	// 200 users over 170 minutes of event time (about 8 windows), so
	// windows close all along the stream; conversion delays
	// median·e^(0.5·Z): P(D > window) = 1 − Φ(2 ln 20) ≈ 1e-9.
	live.ArrivalRate, live.ConversionMedian, live.ConversionSigma = 0.02, time.Minute, 0.5
	// The simulator runs at most lead decisions ahead of the distinct
	// experiences on the raw topic (more than a window and a journey
	// hold), so the stream cannot end while a killed join is down, and a
	// running one can always emit more: every wait is on progress.
	const lead = 500
	var dupsPrev atomic.Int64 // Σ beyond so far: copies the later runs write again
	var s *producers.LiveSimulator
	pace := func(ctx context.Context) error {
		for s.Stats().Decisions-(endTotal(cfg, kafkax.TopicRaw)-dupsPrev.Load()) > lead {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(10 * time.Millisecond):
			}
		}
		return nil
	}
	var truths []sim.TrueTransition
	s, err := producers.NewLiveSimulator(producers.LiveSimulateConfig{
		SimulateConfig: producers.SimulateConfig{Kafka: cfg, ExperimentID: "faultjoin", Users: 200, Seed: 41,
			Partitions: partitions, Rate: 300, BatchRecords: 32, Pace: pace, ProgressEvery: -1, Log: zerolog.Nop()},
		Live: live, Start: eventStart(),
		Truth: func(tt *sim.TrueTransition) { truths = append(truths, *tt) },
	})
	if err != nil {
		t.Fatal(err)
	}
	simCtx, stopSim := context.WithCancel(context.Background())
	defer stopSim()
	type simResult struct {
		rep producers.LiveReport
		err error
	}
	simDone := make(chan simResult, 1)
	go func() { rep, err := s.Run(simCtx); simDone <- simResult{rep, err} }() // returns at the user bound or stopSim

	tr, err := cfg.WithDefaults().Transport()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tr.CloseIdleConnections)
	client := &kafka.Client{Addr: kafka.TCP(cfg.Brokers...), Transport: tr, Timeout: 10 * time.Second}
	sc := sim.DefaultConfig()
	args := append(append([]string{"join"}, kafkaArgs(cfg)...),
		"--group", group, "--partitions", strconv.Itoa(partitions), "--window", window.String(), "--grace", grace.String(),
		"--idle-advance", "1h", "--state-dim", strconv.Itoa(sc.StateDim), "--num-actions", strconv.Itoa(sc.NumActions()),
		"--http", "127.0.0.1:0", "--log-format", "json")
	var procs []*proc
	var beyond []int64  // per kill: distinct ids on raw above the committed decision offsets
	var atKill []int64  // per kill: distinct ids on raw
	const step = 100    // further experiences per run before its kill
	const aimLimit = 60 // further experiences a run may emit while the kill is aimed
	const maxStops = 300
	var distinct int64 // distinct ids on raw at the last kill
	for i := 0; i < 3; i++ {
		p := startAelp(t, fmt.Sprintf("join (run %d)", i+1), kafkaEnv(cfg), args...)
		procs = append(procs, p)
		want := distinct + step
		probe := func() (raw, committed int64, ok bool) {
			raw = endTotal(cfg, kafkax.TopicRaw) - dupsPrev.Load()
			committed, ok = committedTotal(cfg, client, group, kafkax.TopicDecisions)
			return raw, committed, ok
		}
		pollUntil := func(what string, cond func(raw, committed int64) bool) (int64, int64) {
			last, since := [2]int64{-1, -1}, time.Now()
			for {
				if !p.Running() {
					t.Fatalf("aelp %s exited before the kill (waiting for %s): %v", p.Name, what, p.Err())
				}
				raw, com, ok := probe()
				if ok && cond(raw, com) {
					return raw, com
				}
				if cur := [2]int64{raw, com}; ok && cur != last {
					last, since = cur, time.Now()
				} else if time.Since(since) > stallAfter {
					t.Fatalf("no progress for %s waiting for %s: raw %d committed %d", stallAfter, what, last[0], last[1])
				}
				time.Sleep(time.Millisecond)
			}
		}
		reached, _ := pollUntil(fmt.Sprintf("%d experiences", want), func(raw, _ int64) bool { return raw >= want })
		stops := 0
		for {
			p.Signal(t, syscall.SIGSTOP)
			stops++
			raw, com := settleJoin(t, probe)
			if raw > com || raw >= reached+aimLimit || stops >= maxStops {
				break
			}
			// Run the join for a slice of CPU time, or until its next
			// experiences are acknowledged: only the raw topic is probed
			// (one request, not two), so the freeze comes as soon as
			// possible after the write, before the commit that follows it.
			cpu0, _ := cpuTime(p.Cmd.Process.Pid)
			slice := time.Duration(1+i) * time.Millisecond
			p.Signal(t, syscall.SIGCONT)
			for last, since := [2]int64{-1, -1}, time.Now(); ; {
				if !p.Running() {
					t.Fatalf("aelp %s exited before the kill: %v", p.Name, p.Err())
				}
				r := endTotal(cfg, kafkax.TopicRaw) - dupsPrev.Load()
				cpu, ok := cpuTime(p.Cmd.Process.Pid)
				if r != raw || (ok && cpu-cpu0 >= slice) {
					break
				}
				if cur := [2]int64{r, int64(cpu)}; cur != last {
					last, since = cur, time.Now()
				} else if time.Since(since) > stallAfter {
					t.Fatalf("no progress for %s in the join's slice of work: raw %d, CPU %s", stallAfter, r, cpu)
				}
			}
		}
		p.Kill(t)
		settleJoin(t, probe)
		var b int64
		b, distinct = beyondCommits(t, cfg, client, group)
		beyond, atKill = append(beyond, b), append(atKill, distinct)
		dupsPrev.Add(b)
		t.Logf("kill %d: %d distinct experiences on raw, %d above the committed decision offsets (%d stops)", i+1, distinct, b, stops)
	}

	last := startAelp(t, "join (final run)", kafkaEnv(cfg), args...)
	procs = append(procs, last)
	// The simulator finishes once the final run has emitted all but lead
	// of its decisions: wait as long as the stream moves.
	var res simResult
	finished := false
	streamProgress := func() [3]int64 {
		com, _ := committedTotal(cfg, client, group, kafkax.TopicDecisions)
		return [3]int64{s.Stats().Decisions, endTotal(cfg, kafkax.TopicRaw), com}
	}
	awaitProgress(t, func() string {
		pr := streamProgress()
		return fmt.Sprintf("the live simulator to finish: %d decisions published, %d records on raw, %d decisions committed (join running: %v)",
			pr[0], pr[1], pr[2], last.Running())
	}, streamProgress, func() bool {
		if !finished {
			select {
			case res = <-simDone:
				finished = true
			default:
			}
		}
		return finished || !last.Running()
	})
	if !finished {
		t.Fatalf("aelp %s exited before the simulator finished: %v", last.Name, last.Err())
	}
	if res.err != nil {
		t.Fatalf("simulate: %v", res.err)
	}
	if int64(len(truths)) != res.rep.Decisions {
		t.Fatalf("%d truths for %d decisions published", len(truths), res.rep.Decisions)
	}
	var maxTime time.Time
	for _, tt := range truths {
		for _, o := range tt.Outcomes {
			if d := o.Timestamp.Sub(tt.Experience.Timestamp); d >= window {
				t.Fatalf("outcome %s %s after its decision: the window %s does not cover every delay", o.OutcomeID, d, window)
			}
			if o.Timestamp.After(maxTime) {
				maxTime = o.Timestamp
			}
		}
		if tt.Experience.Timestamp.After(maxTime) {
			maxTime = tt.Experience.Timestamp
		}
	}
	// End of input: one decision and one outcome per partition beyond
	// every window; they move each watermark past the last decision's
	// window (the sentinels themselves stay open).
	writeSentinels(t, cfg, partitions, maxTime.Add(window+grace+time.Minute))
	awaitProgress(t, func() string {
		return fmt.Sprintf("group lag %d on the decisions (want %d, the sentinels; join running: %v)",
			kafkatest.GroupLag(cfg, group, kafkax.TopicDecisions), partitions, last.Running())
	}, streamProgress, func() bool {
		return !last.Running() || kafkatest.GroupLag(cfg, group, kafkax.TopicDecisions) == partitions
	})
	// The role bounds its own drain (--shutdown-timeout); the wait only
	// ends a hung process.
	if err := last.Stop(t, hungAfter); err != nil {
		t.Fatalf("final join run: %v", err)
	}
	for _, p := range procs {
		if n := countLevel(p.Stderr.String(), "error"); n != 0 {
			t.Errorf("aelp %s logged %d errors", p.Name, n)
		}
	}

	truthOf := make(map[string]*schemas.Experience, len(truths))
	for i := range truths {
		truthOf[truths[i].Experience.ID] = &truths[i].Experience
	}
	for k, n := range atKill {
		if n >= int64(len(truths)) {
			t.Errorf("kill %d: %d of %d experiences already out: not mid-stream", k+1, n, len(truths))
		}
	}
	trainer, err := train.New(train.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if c := trainer.Config().Replay.Capacity; c < len(truths) {
		// An eviction could hide a second copy of an id.
		t.Fatalf("trainer buffer capacity %d below the %d decisions", c, len(truths))
	}
	copies := map[string]int{}
	var te schemas.TaggedExperience
	for _, m := range kafkatest.ReadAll(t, cfg, kafkax.TopicRaw) {
		if err := schemas.UnmarshalExperience(m.Value, &te.Experience); err != nil {
			t.Fatalf("raw/%d@%d: %v", m.Partition, m.Offset, err)
		}
		e := &te.Experience
		want, ok := truthOf[e.ID]
		if !ok {
			t.Fatalf("raw/%d@%d: id %s is no decision of the simulator", m.Partition, m.Offset, e.ID)
		}
		copies[e.ID]++
		if math.Float64bits(e.Reward) != math.Float64bits(want.Reward) || e.Done != want.Done ||
			!equalF32(e.NextState, want.NextState) || !equalF32(e.State, want.State) || e.Action != want.Action ||
			math.Float64bits(e.BehaviorLogProb) != math.Float64bits(want.BehaviorLogProb) {
			t.Errorf("%s (copy %d):\n got reward %v done %v next %v\nwant reward %v done %v next %v", e.ID, copies[e.ID],
				e.Reward, e.Done, e.NextState, want.Reward, want.Done, want.NextState)
		}
		trainer.Insert(&te)
	}
	acc := tally{Produced: int64(len(truths)), Delivered: int64(len(copies))}
	for _, n := range copies {
		acc.Duplicated += int64(n - 1)
	}
	for _, tt := range truths {
		if copies[tt.Experience.ID] == 0 {
			acc.Lost++
			if len(acc.Missing) < 10 {
				acc.Missing = append(acc.Missing, tt.Experience.ID)
			}
		}
	}
	var bound int64
	for _, b := range beyond {
		bound += b
	}
	t.Logf("join SIGKILL ×%d: %v (%d outcomes on the late topic)",
		len(beyond), acc, endTotal(cfg, kafkax.TopicOutcomesLate))
	t.Logf("experiences above the committed decision offsets at each kill: %v; duplicate bound %d", beyond, bound)
	if acc.Lost != 0 {
		t.Errorf("%d decisions never emitted (e.g. %v)", acc.Lost, acc.Missing)
	}
	if acc.Duplicated > bound {
		t.Errorf("%d duplicates, want at most %d (the experiences above the committed offsets at the kills)", acc.Duplicated, bound)
	}
	st := trainer.Stats()
	t.Logf("trainer: %d in the buffer, %d duplicates dropped", trainer.Len(), st.Duplicates)
	if trainer.Len() != len(copies) || st.Duplicates != acc.Duplicated {
		t.Errorf("trainer holds %d experiences and dropped %d duplicates, want %d distinct ids and %d dropped",
			trainer.Len(), st.Duplicates, len(copies), acc.Duplicated)
	}
}

// eventStart is the event time the test's stream starts at: 6 hours ago,
// so the stream (about 3 hours of event time) ends in the past. Real
// Kafka deletes segments whose newest timestamp is older than the
// retention (7 days by default; a fixed date of 2023 was wiped at the
// broker's first retention check, mid-test), and may refuse timestamps
// too far in the future.
func eventStart() time.Time { return time.Now().Add(-6 * time.Hour).Truncate(time.Millisecond) }

func equalF32(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}

// The waits of TestJoinProcessKilled are bounded by progress: a wait
// fails when what it watches has not moved for stallAfter (a stuck
// stream), and a wait that cannot measure progress (a stop, a settle, an
// offset fetch) only when it lasts hungAfter (a hung test). Neither is a
// claim about speed: a loaded machine moves slowly but moves.
const (
	stallAfter = 5 * time.Minute
	hungAfter  = 15 * time.Minute
)

// awaitProgress polls done every 50 ms until it holds, failing the test
// with what() once progress() has returned the same value for stallAfter.
func awaitProgress[P comparable](t *testing.T, what func() string, progress func() P, done func() bool) {
	t.Helper()
	last, since := progress(), time.Now()
	for !done() {
		if p := progress(); p != last {
			last, since = p, time.Now()
		} else if time.Since(since) > stallAfter {
			t.Fatalf("no progress for %s waiting for %s", stallAfter, what())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// settleJoin returns the join's progress once two reads 50 ms apart agree
// (the requests a frozen or killed process had in flight have landed);
// it fails the test if they keep moving or stay unknown for hungAfter.
func settleJoin(t *testing.T, probe func() (raw, committed int64, ok bool)) (int64, int64) {
	t.Helper()
	deadline := time.Now().Add(hungAfter)
	r0, c0, ok0 := probe()
	for {
		time.Sleep(50 * time.Millisecond)
		r, c, ok := probe()
		if ok && ok0 && r == r0 && c == c0 {
			return r, c
		}
		if time.Now().After(deadline) {
			t.Fatalf("the join's progress did not settle in %s: raw %d committed %d (known: %v)", hungAfter, r, c, ok)
		}
		r0, c0, ok0 = r, c, ok
	}
}

// committedOffsets returns group's committed offset of each partition of
// topic (partitions without one are left out); ok is false when the
// offsets cannot be read (real Kafka answers NOT_COORDINATOR at first).
func committedOffsets(cfg kafkax.Config, client *kafka.Client, group, topic string) (map[int]int64, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	offs, err := kafkax.ListOffsets(ctx, cfg, topic)
	if err != nil {
		return nil, false
	}
	parts := make([]int, 0, len(offs.End))
	for p := range offs.End {
		parts = append(parts, p)
	}
	of, err := client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: parts}})
	if err != nil || of.Error != nil || len(of.Topics[topic]) != len(parts) {
		return nil, false
	}
	out := map[int]int64{}
	for _, po := range of.Topics[topic] {
		if po.Error != nil {
			return nil, false
		}
		if po.CommittedOffset >= 0 {
			out[po.Partition] = po.CommittedOffset
		}
	}
	return out, true
}

// committedTotal is the number of records of topic below group's
// committed offsets (the topics of this test start at offset 0).
func committedTotal(cfg kafkax.Config, client *kafka.Client, group, topic string) (int64, bool) {
	offs, ok := committedOffsets(cfg, client, group, topic)
	var n int64
	for _, o := range offs {
		n += o
	}
	return n, ok
}

// beyondCommits reads the raw topic, the decisions topic and group's
// committed decision offsets, and returns the number of distinct ids on
// raw whose decision is at or above its partition's committed offset (the
// ones a restart reads and emits again) and the number of distinct ids on
// raw.
func beyondCommits(t *testing.T, cfg kafkax.Config, client *kafka.Client, group string) (beyond, distinct int64) {
	t.Helper()
	var com map[int]int64
	waitFor(t, hungAfter, func() string { return "the join group's committed offsets" }, func() bool {
		var ok bool
		com, ok = committedOffsets(cfg, client, group, kafkax.TopicDecisions)
		return ok
	})
	type pos struct {
		part   int
		offset int64
	}
	where := map[string]pos{}
	var d schemas.Decision
	for _, m := range kafkatest.ReadAll(t, cfg, kafkax.TopicDecisions) {
		if err := schemas.UnmarshalDecision(m.Value, &d); err != nil {
			t.Fatalf("decisions/%d@%d: %v", m.Partition, m.Offset, err)
		}
		where[d.DecisionID] = pos{m.Partition, m.Offset}
	}
	seen := map[string]bool{}
	for _, id := range experienceIDs(t, cfg, kafkax.TopicRaw, false) {
		if seen[id] {
			continue
		}
		seen[id] = true
		w, ok := where[id]
		if !ok {
			t.Fatalf("raw holds %s, which is on no decision", id)
		}
		if w.offset >= com[w.part] {
			beyond++
		}
	}
	return beyond, int64(len(seen))
}

// writeSentinels writes, to every partition of the decisions and outcomes
// topics, one valid decision and one impression for it at event time at.
func writeSentinels(t *testing.T, cfg kafkax.Config, partitions int, at time.Time) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hungAfter) // WriteAll retries until acknowledged
	defer cancel()
	sc := sim.DefaultConfig()
	parts := make([]int, partitions)
	for i := range parts {
		parts[i] = i
	}
	var decs, outs []kafka.Message
	for p, n := 0, 0; p < partitions; n++ {
		user := "sentinel-" + strconv.Itoa(n)
		if cfg.WithDefaults().Partitioner.Balancer().Balance(kafka.Message{Key: []byte(user)}, parts...) != p {
			continue
		}
		probs := make([]float64, sc.NumActions())
		for i := range probs {
			probs[i] = 1 / float64(len(probs))
		}
		d := schemas.Decision{DecisionID: user, ExperimentID: "faultjoin", UserID: user, EpisodeID: user, Timestamp: at,
			State: make([]float32, sc.StateDim), BehaviorLogProb: math.Log(probs[0]), ActionProbs: probs, PolicyVersion: -1}
		o := schemas.Outcome{OutcomeID: user + "-imp", DecisionID: user, UserID: user, Timestamp: at, Kind: schemas.KindImpression}
		dv, err := schemas.MarshalDecision(nil, &d)
		if err != nil {
			t.Fatal(err)
		}
		ov, err := schemas.MarshalOutcome(nil, &o)
		if err != nil {
			t.Fatal(err)
		}
		decs = append(decs, kafka.Message{Key: []byte(user), Value: dv})
		outs = append(outs, kafka.Message{Key: []byte(user), Value: ov})
		p++
	}
	for _, w := range []struct {
		topic string
		msgs  []kafka.Message
	}{{kafkax.TopicDecisions, decs}, {kafkax.TopicOutcomes, outs}} {
		wr, err := kafkax.NewWriter(cfg, w.topic, kafkax.WriterOptions{})
		if err != nil {
			t.Fatal(err)
		}
		err = kafkax.WriteAll(ctx, cfg, wr, zerolog.Nop(), w.msgs)
		if cerr := wr.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			t.Fatalf("write sentinels to %s: %v", w.topic, err)
		}
	}
}
