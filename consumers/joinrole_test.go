package consumers

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/aelp/aelp/consumers/join"
	"github.com/aelp/aelp/internal/kafkatest"
	"github.com/aelp/aelp/internal/kafkax"
	"github.com/aelp/aelp/internal/kafkax/kafkaxtest"
	"github.com/aelp/aelp/producers"
	"github.com/aelp/aelp/producers/sim"
	"github.com/aelp/aelp/schemas"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
)

// liveRun publishes users' live stream, joins it with windows w and
// returns the truths, the joined experiences and the late topic.
func liveRun(t *testing.T, users int64, w func(maxDelay time.Duration) join.Windows) ([]sim.TrueTransition, []kafka.Message, []kafka.Message, sim.LiveConfig, join.Windows) {
	t.Helper()
	c := kafkatest.Start(t, kafkatest.Options{})
	cfg := c.Config()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var truths []sim.TrueTransition
	s, err := producers.NewLiveSimulator(producers.LiveSimulateConfig{
		SimulateConfig: producers.SimulateConfig{Kafka: cfg, ExperimentID: "join-test", Users: users, Seed: 11, Partitions: 3,
			ProgressEvery: -1, Log: zerolog.Nop()},
		Start: recentPast(),
		Truth: func(tt *sim.TrueTransition) { truths = append(truths, *tt) },
	})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := s.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var maxDelay time.Duration
	for _, tt := range truths {
		for _, o := range tt.Outcomes {
			maxDelay = max(maxDelay, o.Timestamp.Sub(tt.Experience.Timestamp))
		}
	}
	windows := w(maxDelay)
	sc := sim.DefaultConfig()
	j, err := NewJoiner(JoinConfig{Kafka: cfg, Partitions: 3, Group: "join-test", Log: zerolog.Nop(),
		Join: join.Config{Windows: windows, IdleAdvance: time.Hour,
			Limits: schemas.Limits{StateDim: sc.StateDim, NumActions: sc.NumActions()}}})
	if err != nil {
		t.Fatal(err)
	}
	jctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- j.Run(jctx) }()
	waitFor(t, ctx, func() bool { st := j.Stats(); return st.Read[0] == rep.Decisions && st.Read[1] == rep.Outcomes })
	j.Flush()
	waitFor(t, ctx, func() bool { return j.Stats().Written == rep.Decisions })
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	return truths, kafkatest.ReadAll(t, cfg, kafkax.TopicRaw), kafkatest.ReadAll(t, cfg, kafkax.TopicOutcomesLate), sim.DefaultLiveConfig(), windows
}

// recentPast is the event time the tests' streams start at: 6 hours ago
// (before the latest outcome of a simulated stream could reach the present).
// Real Kafka deletes segments whose newest timestamp is older than the
// retention (7 days by default) at its next retention check, so a fixed
// date in the past would empty the topics mid-test.
func recentPast() time.Time { return time.Now().Add(-6 * time.Hour).Truncate(time.Millisecond) }

func waitFor(t *testing.T, ctx context.Context, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatal("timed out waiting for the join")
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestJoinEqualsTruth: with a window longer than every delay (and every
// gap between a user's decisions), the joined experiences are the
// simulator's true transitions: same ids, bit-equal rewards, same next
// states and done flags; nothing is late.
func TestJoinEqualsTruth(t *testing.T) {
	truths, out, late, _, _ := liveRun(t, 400, func(maxDelay time.Duration) join.Windows {
		return join.Windows{Default: max(maxDelay, sim.DefaultLiveConfig().StepGapMax) + time.Minute}
	})
	if len(late) != 0 {
		t.Errorf("%d outcomes on the late topic", len(late))
	}
	got := map[string]schemas.Experience{}
	for _, m := range out {
		var e schemas.Experience
		if err := schemas.UnmarshalExperience(m.Value, &e); err != nil {
			t.Fatal(err)
		}
		if _, dup := got[e.ID]; dup {
			t.Fatalf("%s written twice", e.ID)
		}
		got[e.ID] = e
	}
	if len(got) != len(truths) {
		t.Fatalf("%d experiences for %d decisions", len(got), len(truths))
	}
	for _, tt := range truths {
		want := tt.Experience
		e, ok := got[want.ID]
		if !ok {
			t.Fatalf("%s missing", want.ID)
		}
		if math.Float64bits(e.Reward) != math.Float64bits(want.Reward) || e.Done != want.Done ||
			!equalF32(e.NextState, want.NextState) || !equalF32(e.State, want.State) || e.Action != want.Action ||
			e.BehaviorLogProb != want.BehaviorLogProb {
			t.Fatalf("%s:\n got reward %v done %v next %v\nwant reward %v done %v next %v", want.ID,
				e.Reward, e.Done, e.NextState, want.Reward, want.Done, want.NextState)
		}
	}
}

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

// TestJoinLateMatchesDelayModel: with a conversion window shorter than
// part of the delays, the count and value of the late conversions are
// within 3 standard errors of the delay model's prediction (given the
// conversions that happened), and every conversion later than its window
// is on aelp.outcomes.late with a reason, and no other conversion is.
func TestJoinLateMatchesDelayModel(t *testing.T) {
	const window = 5 * time.Minute
	truths, _, late, lc, _ := liveRun(t, 3000, func(time.Duration) join.Windows { return join.Windows{Default: window} })
	onLate := map[string]string{}
	for _, m := range late {
		var o schemas.Outcome
		if err := schemas.UnmarshalOutcome(m.Value, &o); err != nil {
			t.Fatal(err)
		}
		reason := ""
		for _, h := range m.Headers {
			if h.Key == "aelp.error" {
				reason = string(h.Value)
			}
		}
		if reason != join.ReasonLate && reason != join.ReasonOutsideWindow {
			t.Fatalf("late outcome %s with reason %q", o.OutcomeID, reason)
		}
		onLate[o.OutcomeID] = reason
	}
	p := lc.LateProbability(window)
	var n, lateN int
	var v1, v2, lateV float64
	for _, tt := range truths {
		for _, o := range tt.Outcomes {
			if o.Kind != schemas.KindConversion {
				continue
			}
			n++
			v1, v2 = v1+o.Value, v2+o.Value*o.Value
			isLate := o.Timestamp.Sub(tt.Experience.Timestamp) > window
			if _, on := onLate[o.OutcomeID]; on != isLate {
				t.Fatalf("conversion %s after %s: on the late topic %v", o.OutcomeID, o.Timestamp.Sub(tt.Experience.Timestamp), on)
			}
			if isLate {
				lateN++
				lateV += o.Value
			}
		}
	}
	seN := math.Sqrt(float64(n) * p * (1 - p))
	seV := math.Sqrt(v2 * p * (1 - p))
	t.Logf("%d conversions: %d late (model %.1f ± %.1f), value %.1f (model %.1f ± %.1f)", n, lateN, float64(n)*p, seN, lateV, v1*p, seV)
	if math.Abs(float64(lateN)-float64(n)*p) > 3*seN || math.Abs(lateV-v1*p) > 3*seV {
		t.Errorf("late conversions outside 3 standard errors of the model")
	}
	if n < 100 {
		t.Errorf("only %d conversions", n)
	}
}

// startJoin runs a joiner on cfg until the test ends; it returns the
// joiner and a stop that waits for Run.
func startJoin(t *testing.T, ctx context.Context, jc JoinConfig) (*Joiner, func()) {
	t.Helper()
	jc.Log = zerolog.Nop()
	j, err := NewJoiner(jc)
	if err != nil {
		t.Fatal(err)
	}
	jctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- j.Run(jctx) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
	t.Cleanup(stop)
	return j, stop
}

func writeRecords(t *testing.T, ctx context.Context, cfg kafkax.Config, topic string, msgs ...kafka.Message) {
	t.Helper()
	if err := kafkax.EnsureTopics(ctx, cfg, kafkax.TopicSpec{Name: topic, Partitions: 3, ReplicationFactor: 1}); err != nil {
		t.Fatal(err)
	}
	w, err := kafkax.NewWriter(cfg, topic, kafkax.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := kafkax.WriteAll(ctx, cfg, w, zerolog.Nop(), msgs); err != nil {
		t.Fatal(err)
	}
}

func testDecision(id, user string, at time.Time) schemas.Decision {
	return schemas.Decision{DecisionID: id, ExperimentID: "x", UserID: user, EpisodeID: "ep-" + user, Step: 0, Timestamp: at,
		State: []float32{1, 2, 3}, Action: 1, BehaviorLogProb: math.Log(0.5), ActionProbs: []float64{0.5, 0.5}, PolicyVersion: -1}
}

func decisionMsg(t *testing.T, d schemas.Decision) kafka.Message {
	t.Helper()
	v, err := schemas.MarshalDecision(nil, &d)
	if err != nil {
		t.Fatal(err)
	}
	return kafka.Message{Key: []byte(d.UserID), Value: v}
}

func outcomeMsg(t *testing.T, o schemas.Outcome) kafka.Message {
	t.Helper()
	v, err := schemas.MarshalOutcome(nil, &o)
	if err != nil {
		t.Fatal(err)
	}
	return kafka.Message{Key: []byte(o.UserID), Value: v}
}

// TestJoinIdlePartitionCloses: decisions whose event time is the wall
// clock's, then no record at all: the idle advance moves the watermark by
// the wall clock and every window closes without a Flush and without a
// later record (the wait is bounded by progress only).
func TestJoinIdlePartitionCloses(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.Options{})
	cfg := c.Config()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	now := time.Now().Truncate(time.Millisecond)
	var msgs []kafka.Message
	for i := range 6 {
		msgs = append(msgs, decisionMsg(t, testDecision(fmt.Sprintf("idle-%d", i), fmt.Sprintf("u%d", i), now)))
	}
	writeRecords(t, ctx, cfg, kafkax.TopicDecisions, msgs...)
	writeRecords(t, ctx, cfg, kafkax.TopicOutcomes)
	j, _ := startJoin(t, ctx, JoinConfig{Kafka: cfg, Partitions: 3, Group: "join-idle", Tick: 50 * time.Millisecond,
		Join: join.Config{Windows: join.Windows{Default: time.Second}, Grace: 500 * time.Millisecond, IdleAdvance: time.Second}})
	waitFor(t, ctx, func() bool { return j.Stats().Written == 6 })
	out := kafkatest.ReadAll(t, cfg, kafkax.TopicRaw)
	if len(out) != 6 {
		t.Fatalf("%d experiences, want 6", len(out))
	}
	st := j.Stats()
	if st.EventLatencyN != 6 {
		t.Errorf("%d experiences emitted by a watermark, want 6 (none by a flush)", st.EventLatencyN)
	}
	// Closed by a watermark past decision + window: event latency ≥ window.
	if mean := st.EventLatency / time.Duration(st.EventLatencyN); mean < time.Second {
		t.Errorf("mean event latency %s, below the window", mean)
	}
}

// TestJoinBadInputDeadLettered: undecodable decisions and outcomes, a NaN
// value, a negative cost, a decision with the wrong state width and one
// whose action is outside its distribution go to the dead-letter topic
// with their reason; the valid decision and outcome around them are
// joined.
func TestJoinBadInputDeadLettered(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.Options{})
	cfg := c.Config()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	at := recentPast()
	wide := testDecision("wide", "u1", at)
	wide.State = []float32{1, 2, 3, 4}
	outside := testDecision("outside", "u1", at)
	outside.Action = 5
	good := testDecision("good", "u1", at)
	writeRecords(t, ctx, cfg, kafkax.TopicDecisions,
		kafka.Message{Key: []byte("u1"), Value: []byte("not avro")}, decisionMsg(t, wide), decisionMsg(t, outside), decisionMsg(t, good))
	o := schemas.Outcome{OutcomeID: "o", DecisionID: "good", UserID: "u1", Timestamp: at.Add(time.Second), Kind: schemas.KindConversion, Value: 2, Cost: 0.5}
	nan, neg := o, o
	nan.OutcomeID, nan.Value = "nan", math.NaN()
	neg.OutcomeID, neg.Cost = "neg", -1
	writeRecords(t, ctx, cfg, kafkax.TopicOutcomes,
		kafka.Message{Key: []byte("u1"), Value: []byte{0xc3, 0x01, 1, 2}}, outcomeMsg(t, nan), outcomeMsg(t, neg), outcomeMsg(t, o))
	j, _ := startJoin(t, ctx, JoinConfig{Kafka: cfg, Partitions: 3, Group: "join-bad",
		Join: join.Config{IdleAdvance: time.Hour, Limits: schemas.Limits{StateDim: 3, NumActions: 2}}})
	waitFor(t, ctx, func() bool { st := j.Stats(); return st.Read[0] == 4 && st.Read[1] == 4 })
	j.Flush()
	waitFor(t, ctx, func() bool { return j.Stats().Written == 1 && j.Stats().DeadLettered == 6 })
	got := map[string]string{} // source topic/offset → reason
	for _, m := range kafkatest.ReadAll(t, cfg, kafkax.TopicDeadLetter) {
		src := kafkax.DeadLetterSource(m)
		got[fmt.Sprintf("%s/%d", src.Topic, src.Offset)] = src.Reason
	}
	for key, want := range map[string]string{
		kafkax.TopicDecisions + "/0": "bad-magic", kafkax.TopicOutcomes + "/0": "",
		kafkax.TopicDecisions + "/1": "invalid:state", kafkax.TopicDecisions + "/2": "invalid:action",
		kafkax.TopicOutcomes + "/1": "invalid:value", kafkax.TopicOutcomes + "/2": "invalid:cost",
	} {
		r, ok := got[key]
		switch {
		case !ok:
			t.Errorf("%s not dead-lettered (dead letters %v)", key, got)
		case want != "" && r != want:
			t.Errorf("%s dead-lettered with reason %q, want %q", key, r, want)
		case r == "":
			t.Errorf("%s dead-lettered without a reason", key)
		}
	}
	out := kafkatest.ReadAll(t, cfg, kafkax.TopicRaw)
	if len(out) != 1 {
		t.Fatalf("%d experiences, want 1", len(out))
	}
	var e schemas.Experience
	if err := schemas.UnmarshalExperience(out[0].Value, &e); err != nil {
		t.Fatal(err)
	}
	if e.ID != "good" || e.Reward != 1.5 {
		t.Errorf("experience %s reward %v, want good 1.5", e.ID, e.Reward)
	}
}

// TestJoinCommitsPastMarkers: decisions and outcomes written in
// transactions, the decisions topic ending on an abort marker and the
// outcomes topic on a commit marker: the aborted decision is not joined,
// and once the windows closed the group's committed offsets reach the end
// of both logs (past the last marker), so its lag is 0, not 1.
func TestJoinCommitsPastMarkers(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.Options{})
	cfg := c.Config()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	at := recentPast()
	var decs, outs []kafka.Message
	for i := range 6 {
		id, user := fmt.Sprintf("txn-%d", i), fmt.Sprintf("u%d", i)
		decs = append(decs, decisionMsg(t, testDecision(id, user, at)))
		outs = append(outs, outcomeMsg(t, schemas.Outcome{OutcomeID: id + "-imp", DecisionID: id, UserID: user,
			Timestamp: at.Add(time.Second), Kind: schemas.KindImpression, Cost: 0.25}))
	}
	writeRecords(t, ctx, cfg, kafkax.TopicDecisions)
	writeRecords(t, ctx, cfg, kafkax.TopicOutcomes)
	kafkaxtest.ProduceTransaction(t, cfg, kafkax.TopicDecisions, true, decs)
	kafkaxtest.ProduceTransaction(t, cfg, kafkax.TopicOutcomes, true, outs)
	kafkaxtest.ProduceTransaction(t, cfg, kafkax.TopicDecisions, false,
		[]kafka.Message{decisionMsg(t, testDecision("aborted", "u0", at))})
	const group = "join-txn"
	j, stop := startJoin(t, ctx, JoinConfig{Kafka: cfg, Partitions: 3, Group: group,
		Join: join.Config{IdleAdvance: time.Hour, Limits: schemas.Limits{StateDim: 3, NumActions: 2}}})
	waitFor(t, ctx, func() bool { st := j.Stats(); return st.Read[0] == 6 && st.Read[1] == 6 })
	j.Flush()
	waitFor(t, ctx, func() bool { return j.Stats().Written == 6 })
	for _, topic := range []string{kafkax.TopicDecisions, kafkax.TopicOutcomes} {
		r, err := kafkax.NewReader(cfg, topic, kafkax.ReadOptions{Isolation: kafkax.ReadUncommitted})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		offs, err := r.ListOffsets(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var got map[int]int64
		awaitProgress(t, func() string {
			return fmt.Sprintf("the join to commit %s up to the end offsets %v (committed %v)", topic, offs.End, got)
		}, func() int64 { return j.Stats().Written }, func() bool {
			got, err = r.GroupCommitted(ctx, group)
			return err == nil && committedToEnd(got, offs.End)
		})
	}
	stop()
	st := j.Stats()
	if st.Written != 6 || st.Read != [2]int64{6, 6} || st.DeadLettered != 0 {
		t.Errorf("written %d, read %v, dead-lettered %d; want 6, [6 6], 0 (the aborted decision unread)", st.Written, st.Read, st.DeadLettered)
	}
	for _, m := range kafkatest.ReadAll(t, cfg, kafkax.TopicRaw) {
		var e schemas.Experience
		if err := schemas.UnmarshalExperience(m.Value, &e); err != nil {
			t.Fatal(err)
		}
		if e.ID == "aborted" || e.Reward != -0.25 {
			t.Errorf("experience %s reward %v, want a committed decision with reward -0.25", e.ID, e.Reward)
		}
	}
}
