package consumers

import (
	"context"
	"errors"
	"fmt"
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

// TestAggregateTwoMembersNoLoss runs the scenario: 2,000 simulated
// users through two aggregator members of one group, garbage mixed in, and
// one member stopping mid-stream after publishing a batch but before
// committing it, which makes the group rebalance. Every valid input id must
// reach the tagged topic; duplicates must exist and be no more than the
// crash and the rebalances can repeat; the bad records must reach the
// dead-letter topic with their reasons.
//
// Every wait is bounded by progress, not by a deadline for the whole test:
// it fails when the thing it waits on has stopped moving for awaitStall.
func TestAggregateTwoMembersNoLoss(t *testing.T) {
	const users = 2_000
	c := kafkatest.Start(t, kafkatest.Options{})
	cfg := c.Config()
	// ctx only ends a hung test; the waits below fail long before it.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
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
	var rep producers.SimulateReport
	var simErr error
	simDone := make(chan struct{})
	go func() { // exits when the bounded run is published (or ctx ends)
		defer close(simDone)
		rep, simErr = simr.Run(ctx)
	}()
	awaitProgress(t, func() string { return fmt.Sprintf("the simulator to publish %d users (%+v)", users, simr.Stats()) },
		func() int64 { return simr.Stats().Experiences }, func() bool { return isClosed(simDone) })
	if simErr != nil {
		t.Fatal(simErr)
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

	const group, batchMax = "agg-test-group", 200
	newMember := func() *Aggregator {
		a, err := NewAggregator(AggregateConfig{Kafka: cfg, Group: group, Limits: schemas.Limits{StateDim: 16, NumActions: 12},
			BatchMax: batchMax, ProgressEvery: -1, Log: zerolog.Nop()})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	a, b := newMember(), newMember()
	// Member a joins first and has the partitions to itself; member b
	// joins once a has read (a rebalance: a hands over half) and a stops
	// without committing after its fifth batch of records (a rebalance: b
	// takes a's partitions back, and re-reads the batch a published and
	// did not commit). a starts first so that it reaches its fifth batch
	// whatever the scheduling: with b first, b could read the whole topic
	// before a's join rebalance (kgo holds a rebalance until the member's
	// batch is committed), and a would never crash.
	var aBatches atomic.Int64
	a.crashBeforeCommit = func() bool { return aBatches.Add(1) == 5 }
	var wg sync.WaitGroup
	var aErr, bErr error
	aCtx, stopA := context.WithCancel(ctx)
	bCtx, stopB := context.WithCancel(ctx)
	defer stopA()
	defer stopB()
	wg.Add(2)
	go func() { defer wg.Done(); aErr = a.Run(aCtx) }() // exits at its crash, or when aCtx ends
	// Nothing counts before a has joined: this wait is bounded by
	// awaitStall alone.
	awaitProgress(t, func() string { return "member a to join the group and read" },
		func() int64 { return 0 }, func() bool { return a.Stats().In > 0 })
	go func() { defer wg.Done(); bErr = b.Run(bCtx) }() // exits when bCtx ends

	awaitProgress(t, func() string {
		return fmt.Sprintf("the group to commit every record (lag %d; a %+v; b %+v)",
			kafkatest.GroupLag(cfg, group, kafkax.TopicRaw), a.Stats(), b.Stats())
	}, func() int64 {
		as, bs := a.Stats(), b.Stats()
		return as.In + as.Committed + bs.In + bs.Committed
	}, func() bool { return kafkatest.GroupLag(cfg, group, kafkax.TopicRaw) == 0 })
	t.Logf("group caught up after %s", time.Since(t0))
	stopA()
	stopB()
	wg.Wait()
	t.Logf("members stopped after %s", time.Since(t0))
	if !errors.Is(aErr, errCrashed) {
		t.Fatalf("member a: got %v, want the test crash (it read %d records)", aErr, a.Stats().In)
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
	// A record is processed again only when a member published it and did
	// not commit it (a's last batch), or at a rebalance: the batch a member
	// has in hand is committed under the new generation, after the member
	// now owning some of its partitions fetched the older offsets, so it is
	// read again (at most one batch per member per rebalance). The scenario
	// has two rebalances (a joins, a leaves) and two members.
	as, bs := a.Stats(), b.Stats()
	uncommitted := as.In - as.Committed + bs.In - bs.Committed
	t.Logf("produced %d (+%d bad), tagged %d distinct, missing %d, duplicates %d; member a %d in %d committed, b %d in %d committed",
		rep.Experiences, len(bad), len(seen), missing, dups, as.In, as.Committed, bs.In, bs.Committed)
	if missing != 0 {
		t.Fatalf("%d ids missing from the tagged topic", missing)
	}
	if dups == 0 {
		t.Errorf("the crash before commit should have caused redelivered duplicates; got none")
	}
	if bound := uncommitted + 2*2*batchMax; int64(dups) > bound {
		t.Errorf("%d duplicates, want at most %d: the %d records read and not committed (a %d−%d, b %d−%d) and one batch (%d) per member per rebalance",
			dups, bound, uncommitted, as.In, as.Committed, bs.In, bs.Committed, batchMax)
	}
	if as.In-as.Committed > batchMax {
		t.Errorf("member a left %d records uncommitted, want at most its last batch (%d)", as.In-as.Committed, batchMax)
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

// awaitStall is how long a wait of awaitProgress may see no progress
// before it fails: far beyond a rebalance or a slow batch on a loaded
// machine, far below the test timeout.
const awaitStall = 2 * time.Minute

// awaitProgress polls done every 100 ms until it holds. It fails the test,
// saying what it waited for, when progress (a count that grows while the
// awaited work goes on) has not changed for awaitStall: the wait is bounded
// by progress, so a slow machine only makes it longer, and a hang ends it.
func awaitProgress(t *testing.T, what func() string, progress func() int64, done func() bool) {
	t.Helper()
	last, since := progress(), time.Now()
	for !done() {
		if p := progress(); p != last {
			last, since = p, time.Now()
		} else if time.Since(since) > awaitStall {
			t.Fatalf("no progress for %s waiting for %s", awaitStall, what())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// isClosed reports whether ch is closed.
func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
