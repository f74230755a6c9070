package consumers

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/aelp/aelp/consumers/join"
	"github.com/aelp/aelp/internal/kafkatest"
	"github.com/aelp/aelp/internal/kafkax"
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
		Start: time.UnixMilli(1_700_000_000_000),
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
