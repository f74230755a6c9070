package consumers

import (
	"context"
	"errors"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aelp/aelp/internal/kafkatest"
	"github.com/aelp/aelp/internal/kafkax"
	"github.com/aelp/aelp/producers"
	"github.com/aelp/aelp/schemas"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
)

// TestAggregateTwoMembersNoLoss runs the scenario: 20k simulated
// users through two aggregator members of one group, garbage mixed in, and
// one member stopping mid-stream after publishing a batch but before
// committing it. Every valid input id must reach the tagged topic; the bad
// records must reach the dead-letter topic with their reasons.
func TestAggregateTwoMembersNoLoss(t *testing.T) {
	users := int64(20_000)
	if testing.Short() {
		users = 3_000
	}
	c := kafkatest.Start(t, kafkatest.Options{})
	cfg := c.Config()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	if err := kafkax.EnsureTopics(ctx, cfg, kafkax.DefaultTopics(6)...); err != nil {
		t.Fatal(err)
	}
	simr, err := producers.NewSimulator(producers.SimulateConfig{Kafka: cfg, ExperimentID: "agg-test", Users: users,
		Workers: 2, Seed: 7, ProgressEvery: -1, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	rep, err := simr.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("simulated %d records in %s", rep.Experiences, time.Since(t0))

	// Bad records: garbage bytes, a NaN reward, a state of the wrong width.
	w, err := kafkax.NewWriter(cfg, kafkax.TopicRaw, kafkax.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	good := schemas.Experience{ID: "bad-1", ExperimentID: "agg-test", EpisodeID: "e", UserID: "u-bad",
		State: make([]float32, 16), NextState: make([]float32, 16), Timestamp: time.Now(), BehaviorLogProb: -1}
	nan := good
	nan.ID, nan.Reward = "bad-nan", math.NaN()
	narrow := good
	narrow.ID, narrow.State = "bad-width", make([]float32, 3)
	nanVal, _ := schemas.MarshalExperience(nil, &nan)
	narrowVal, _ := schemas.MarshalExperience(nil, &narrow)
	bad := []kafka.Message{
		{Key: []byte("u-bad"), Value: []byte("\x00garbage that is not avro")},
		{Key: []byte("u-bad"), Value: nanVal},
		{Key: []byte("u-bad"), Value: narrowVal},
	}
	if err := w.WriteMessages(ctx, bad...); err != nil {
		t.Fatal(err)
	}
	w.Close()

	const group = "agg-test-group"
	newMember := func() *Aggregator {
		a, err := NewAggregator(AggregateConfig{Kafka: cfg, Group: group, Limits: schemas.Limits{StateDim: 16, NumActions: 12},
			BatchMax: 500, ProgressEvery: -1, Log: zerolog.Nop()})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	a, b := newMember(), newMember()
	var batches atomic.Int64
	a.crashBeforeCommit = func() bool { return batches.Add(1) == 20 }
	var wg sync.WaitGroup
	var aErr, bErr error
	bCtx, stopB := context.WithCancel(ctx)
	wg.Add(2)
	go func() { defer wg.Done(); aErr = a.Run(ctx) }()
	go func() { defer wg.Done(); bErr = b.Run(bCtx) }()

	deadline := time.Now().Add(3 * time.Minute)
	for kafkatest.GroupLag(cfg, group, kafkax.TopicRaw) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("group still lags after 3 minutes: a %+v b %+v", a.Stats(), b.Stats())
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("group caught up after %s (a stopped: %v)", time.Since(t0), aErr)
	stopB()
	wg.Wait()
	if !errors.Is(aErr, errCrashed) {
		t.Fatalf("member a: got %v, want the test crash (it processed %d batches)", aErr, batches.Load())
	}
	if bErr != nil {
		t.Fatalf("member b: %v", bErr)
	}

	want := map[string]bool{}
	for _, m := range kafkatest.ReadAll(t, cfg, kafkax.TopicRaw) {
		var e schemas.Experience
		if schemas.UnmarshalExperience(m.Value, &e) == nil && e.Validate(schemas.Limits{StateDim: 16, NumActions: 12}) == nil {
			want[e.ID] = true
		}
	}
	if int64(len(want)) != rep.Experiences {
		t.Fatalf("raw topic holds %d valid ids, the simulator reported %d", len(want), rep.Experiences)
	}
	seen := map[string]int{}
	partOfUser := map[string]int{}
	for _, m := range kafkatest.ReadAll(t, cfg, kafkax.TopicTagged) {
		var te schemas.TaggedExperience
		if err := schemas.UnmarshalTaggedExperience(m.Value, &te); err != nil {
			t.Fatalf("tagged record at %d/%d: %v", m.Partition, m.Offset, err)
		}
		seen[te.ID]++
		if string(m.Key) != te.UserID {
			t.Fatalf("tagged record key %q, user %q", m.Key, te.UserID)
		}
		if p, ok := partOfUser[te.UserID]; ok && p != m.Partition {
			t.Fatalf("user %s on partitions %d and %d", te.UserID, p, m.Partition)
		}
		partOfUser[te.UserID] = m.Partition
	}
	missing, dups := 0, 0
	for id := range want {
		if seen[id] == 0 {
			missing++
		}
		if seen[id] > 1 {
			dups += seen[id] - 1
		}
	}
	t.Logf("produced %d (+%d bad), tagged %d distinct, missing %d, duplicates %d; member a %d in, b %d in",
		rep.Experiences, len(bad), len(seen), missing, dups, a.Stats().In, b.Stats().In)
	if missing != 0 {
		t.Fatalf("%d ids missing from the tagged topic", missing)
	}
	if dups == 0 {
		t.Errorf("the crash before commit should have caused redelivered duplicates; got none")
	}

	reasons := map[string]string{}
	for _, m := range kafkatest.ReadAll(t, cfg, kafkax.TopicDeadLetter) {
		h := map[string]string{}
		for _, x := range m.Headers {
			h[x.Key] = string(x.Value)
		}
		if h[kafkax.HeaderSourceTopic] != kafkax.TopicRaw || h[kafkax.HeaderSourcePartition] == "" || h[kafkax.HeaderSourceOffset] == "" {
			t.Errorf("dead letter headers %v", h)
		}
		reasons[string(m.Value)] = h[kafkax.HeaderError]
	}
	for val, want := range map[string]string{string(bad[0].Value): "bad-magic", string(nanVal): "invalid:reward", string(narrowVal): "invalid:state"} {
		if got, ok := reasons[val]; !ok || got != want {
			t.Errorf("dead letter reason %q, want %q (present %v)", got, want, ok)
		}
	}

}
