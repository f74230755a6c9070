package kafkax_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aelp/aelp/internal/kafkatest"
	"github.com/aelp/aelp/internal/kafkax"
	"github.com/aelp/aelp/internal/kafkax/kafkaxtest"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
)

func newGroup(t *testing.T, cfg kafkax.Config, group string, topics []string, opt kafkax.GroupOptions) *kafkax.GroupConsumer {
	t.Helper()
	opt.Logger = zerolog.Nop()
	g, err := kafkax.NewGroupConsumer(cfg, group, topics, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		g.Close(ctx)
	})
	return g
}

// drainGroup polls g, committing after every poll, until the group's lag on
// topic is 0, and returns the values polled per topic and partition.
func drainGroup(ctx context.Context, t *testing.T, cfg kafkax.Config, g *kafkax.GroupConsumer, topic string) map[int][]string {
	t.Helper()
	r := newReader(t, cfg, topic, kafkax.ReadCommitted)
	got := map[int][]string{}
	var b kafkax.GroupBatch
	for {
		lag, err := r.GroupLag(ctx, g.Group())
		if err != nil {
			t.Fatal(err)
		}
		if lag == 0 {
			return got
		}
		b.Reset()
		pctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		err = g.Poll(pctx, &b, 100)
		cancel()
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("poll: %v", err)
		}
		for _, m := range b.Messages {
			if m.Topic != topic {
				t.Fatalf("message of topic %q, want %q", m.Topic, topic)
			}
			got[m.Partition] = append(got[m.Partition], string(m.Value))
		}
		if err := g.Commit(ctx, &b); err != nil {
			t.Fatalf("commit: %v", err)
		}
		g.AllowRebalance()
	}
}

// writeNumbered writes n records to topic: keys k0, k1, …, values
// <prefix>-0, <prefix>-1, ….
func writeNumbered(ctx context.Context, t *testing.T, cfg kafkax.Config, topic, prefix string, n int) {
	t.Helper()
	w, err := kafkax.NewWriter(cfg, topic, kafkax.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	msgs := make([]kafka.Message, n)
	for i := range msgs {
		msgs[i] = kafka.Message{Key: fmt.Appendf(nil, "k%d", i), Value: fmt.Appendf(nil, "%s-%d", prefix, i)}
	}
	if err := kafkax.WriteAll(ctx, cfg, w, zerolog.Nop(), msgs); err != nil {
		t.Fatal(err)
	}
}

// TestGroupConsumerTransactions consumes a topic holding plain records and
// committed, aborted and interleaved transactions, the log ending with an
// aborted one, through a consumer group at both isolation levels:
// read_committed returns exactly the plain and committed records,
// read_uncommitted every data record, neither a control record; and the
// commits reach the end offsets (past the transaction markers), so the
// group's lag is 0.
func TestGroupConsumerTransactions(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.Options{})
	cfg := c.Config()
	ctx := testCtx(t, 3*time.Minute)
	const topic = "kafkax.group.txn"
	log := kafkaxtest.WriteTransactions(t, cfg, topic, false)
	for _, tc := range []struct {
		iso  kafkax.Isolation
		want map[int][]string
	}{{kafkax.ReadCommitted, log.Committed}, {kafkax.ReadUncommitted, log.Uncommitted}} {
		t.Run(tc.iso.String(), func(t *testing.T) {
			group := "kafkax-group-txn-" + tc.iso.String()
			g := newGroup(t, cfg, group, []string{topic}, kafkax.GroupOptions{Isolation: tc.iso})
			got := drainGroup(ctx, t, cfg, g, topic)
			for _, p := range kafkaxtest.Partitions {
				if !slices.Equal(got[p], tc.want[p]) {
					t.Errorf("partition %d: consumed %q, want %q", p, got[p], tc.want[p])
				}
			}
			r := newReader(t, cfg, topic, kafkax.ReadUncommitted)
			offs, err := r.ListOffsets(ctx)
			if err != nil {
				t.Fatal(err)
			}
			committed, err := r.GroupCommitted(ctx, group)
			if err != nil {
				t.Fatal(err)
			}
			if !mapsEqual(committed, offs.End) {
				t.Errorf("committed offsets %v, want the end offsets %v (past the last transaction marker)", committed, offs.End)
			}
		})
	}
}

// TestGroupConsumerTopics consumes two topics of equal partition counts
// with two members: each member gets the same partitions of both topics
// (the range strategy's co-partitioning a join needs), and together they
// read every record of both once.
func TestGroupConsumerTopics(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.Options{})
	cfg := c.Config()
	ctx := testCtx(t, 3*time.Minute)
	topics := []string{"kafkax.group.left", "kafkax.group.right"}
	const n = 200
	for _, topic := range topics {
		if err := kafkax.EnsureTopics(ctx, cfg, kafkax.TopicSpec{Name: topic, Partitions: 4, ReplicationFactor: 1}); err != nil {
			t.Fatal(err)
		}
		w, err := kafkax.NewWriter(cfg, topic, kafkax.WriterOptions{})
		if err != nil {
			t.Fatal(err)
		}
		msgs := make([]kafka.Message, n)
		for i := range msgs {
			msgs[i] = kafka.Message{Key: fmt.Appendf(nil, "k%d", i), Value: fmt.Appendf(nil, "%s-%d", topic, i)}
		}
		if err := w.WriteMessages(ctx, msgs...); err != nil {
			t.Fatal(err)
		}
		w.Close()
	}
	const group = "kafkax-group-topics"
	members := []*kafkax.GroupConsumer{newGroup(t, cfg, group, topics, kafkax.GroupOptions{}), newGroup(t, cfg, group, topics, kafkax.GroupOptions{})}
	seen := map[string]int{}
	var b kafkax.GroupBatch
	for len(seen) < 2*n {
		progress := len(seen)
		for _, g := range members {
			b.Reset()
			pctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
			err := g.Poll(pctx, &b, 50)
			cancel()
			if err != nil && !errors.Is(err, context.DeadlineExceeded) {
				t.Fatal(err)
			}
			for _, m := range b.Messages {
				seen[string(m.Value)]++
			}
			if err := g.Commit(ctx, &b); err != nil && !errors.Is(err, kafkax.ErrCommitRefused) {
				t.Fatal(err)
			}
			g.AllowRebalance()
		}
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d records (last round: %d)", len(seen), 2*n, len(seen)-progress)
		}
	}
	a0, a1 := members[0].Assigned(), members[1].Assigned()
	for i, a := range []map[string][]int{a0, a1} {
		if len(a[topics[0]]) == 0 || !slices.Equal(a[topics[0]], a[topics[1]]) {
			t.Errorf("member %d holds %v of %s and %v of %s, want the same partitions of both", i, a[topics[0]], topics[0], a[topics[1]], topics[1])
		}
	}
	if got := slices.Sorted(slices.Values(append(slices.Clone(a0[topics[0]]), a1[topics[0]]...))); !slices.Equal(got, []int{0, 1, 2, 3}) {
		t.Errorf("the members hold partitions %v of %s, want 0..3 once each", got, topics[0])
	}
	for v, k := range seen {
		if k != 1 {
			t.Errorf("record %s read %d times", v, k)
		}
	}
}

// TestGroupConsumerHoldsPartitionsUntilAllowed: a member that has polled
// keeps its partitions while a second member joins (the rebalance waits for
// AllowRebalance), so its commit succeeds; once it allows the rebalance,
// the second member gets partitions. A member that holds a batch longer
// than the rebalance timeout is removed from the group: the other member
// gets every partition, and the removed member's commit is refused with
// ErrCommitRefused, never applied.
func TestGroupConsumerHoldsPartitionsUntilAllowed(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.Options{})
	cfg := c.Config()
	ctx := testCtx(t, 3*time.Minute)
	const topic, group, partitions = "kafkax.group.hold", "kafkax-group-hold", 4
	if err := kafkax.EnsureTopics(ctx, cfg, kafkax.TopicSpec{Name: topic, Partitions: partitions, ReplicationFactor: 1}); err != nil {
		t.Fatal(err)
	}
	writeNumbered(ctx, t, cfg, topic, "first", 40)
	// A short rebalance timeout: the second half of the test waits for it
	// to expire (its length is configuration, nothing is timed).
	opt := kafkax.GroupOptions{RebalanceTimeout: 3 * time.Second, SessionTimeout: 10 * time.Second}
	a := newGroup(t, cfg, group, []string{topic}, opt)
	var ab kafkax.GroupBatch
	if err := a.Poll(ctx, &ab, 1000); err != nil {
		t.Fatal(err)
	}
	if got := a.Assigned()[topic]; len(got) != partitions {
		t.Fatalf("member a holds %v, want all %d partitions", got, partitions)
	}
	b := newGroup(t, cfg, group, []string{topic}, opt)
	bDone := make(chan error, 1)
	var bb kafkax.GroupBatch
	go func() { bDone <- b.Poll(ctx, &bb, 1000) }() // joins; returns with records once it has partitions
	// While a holds its batch, b's join cannot complete: wait until the
	// group knows b (it is rebalancing), then commit a's batch.
	waitGroupState(ctx, t, cfg, group, "PreparingRebalance")
	if got := a.Assigned()[topic]; len(got) != partitions {
		t.Fatalf("member a lost partitions while it held a batch: holds %v", got)
	}
	if err := a.Commit(ctx, &ab); err != nil {
		t.Fatalf("commit of the held batch: %v", err)
	}
	a.AllowRebalance()
	// a must poll again to rejoin; b then gets its share.
	for len(b.Assigned()[topic]) == 0 {
		ab.Reset()
		pctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		if err := a.Poll(pctx, &ab, 1000); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			t.Fatal(err)
		}
		cancel()
		if err := a.Commit(ctx, &ab); err != nil && !errors.Is(err, kafkax.ErrCommitRefused) {
			t.Fatal(err)
		}
		a.AllowRebalance()
		if ctx.Err() != nil {
			t.Fatal("member b never got partitions")
		}
	}
	ha, hb := a.Assigned()[topic], b.Assigned()[topic]
	if len(ha) == 0 || len(ha)+len(hb) != partitions {
		t.Fatalf("after the rebalance a holds %v and b %v, want %d partitions split between them", ha, hb, partitions)
	}

	// a polls new records and holds them past the rebalance timeout while b
	// rejoins: a is removed, b takes every partition, a's commit is refused.
	writeNumbered(ctx, t, cfg, topic, "second", 40)
	ab.Reset()
	for ab.Len() == 0 {
		if err := a.Poll(ctx, &ab, 1000); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-bDone; err != nil {
		t.Fatalf("member b: %v", err)
	}
	before, err := newReader(t, cfg, topic, kafkax.ReadCommitted).GroupCommitted(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	b.AllowRebalance()
	// b leaves and joins again as a new member: a rebalance a does not
	// take part in (it holds its batch).
	if err := b.Close(ctx); err != nil {
		t.Fatal(err)
	}
	b2 := newGroup(t, cfg, group, []string{topic}, opt)
	var b2b kafkax.GroupBatch
	b2Done := make(chan error, 1)
	go func() { b2Done <- b2.Poll(ctx, &b2b, 1000) }()
	for len(b2.Assigned()[topic]) != partitions {
		if ctx.Err() != nil {
			t.Fatalf("the new member holds %v, want every partition once a was removed", b2.Assigned()[topic])
		}
		time.Sleep(50 * time.Millisecond)
	}
	err = a.Commit(ctx, &ab)
	if !errors.Is(err, kafkax.ErrCommitRefused) {
		t.Fatalf("commit of a removed member = %v, want ErrCommitRefused", err)
	}
	after, err := newReader(t, cfg, topic, kafkax.ReadCommitted).GroupCommitted(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	if !mapsEqual(before, after) {
		t.Errorf("committed offsets moved from %v to %v: the refused commit was applied", before, after)
	}
	a.AllowRebalance()
	if err := <-b2Done; err != nil {
		t.Fatalf("new member: %v", err)
	}
	b2.AllowRebalance()
}

// waitGroupState waits until group is in state (as DescribeGroups says).
func waitGroupState(ctx context.Context, t *testing.T, cfg kafkax.Config, group, state string) {
	t.Helper()
	c := client(t, cfg)
	var last string
	for {
		resp, err := c.DescribeGroups(ctx, &kafka.DescribeGroupsRequest{GroupIDs: []string{group}})
		if err == nil && len(resp.Groups) == 1 {
			last = resp.Groups[0].GroupState
			if last == state {
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("group %s never reached state %s (last %q, %v)", group, state, last, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestGroupConsumerJoinedEmpty: three members of a group over a topic of
// two partitions all report Joined, the one without partitions too.
func TestGroupConsumerJoinedEmpty(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.Options{})
	cfg := c.Config()
	ctx := testCtx(t, 3*time.Minute)
	const topic, group = "kafkax.group.empty", "kafkax-group-empty"
	if err := kafkax.EnsureTopics(ctx, cfg, kafkax.TopicSpec{Name: topic, Partitions: 2, ReplicationFactor: 1}); err != nil {
		t.Fatal(err)
	}
	members := make([]*kafkax.GroupConsumer, 3)
	for i := range members {
		members[i] = newGroup(t, cfg, group, []string{topic}, kafkax.GroupOptions{})
	}
	// Each member polls (an idle topic: the polls end with their context)
	// until all three have joined one generation of the group.
	for {
		joined, held := 0, 0
		for _, g := range members {
			var b kafkax.GroupBatch
			pctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
			if err := g.Poll(pctx, &b, 10); err != nil && !errors.Is(err, context.DeadlineExceeded) {
				t.Fatal(err)
			}
			cancel()
			g.AllowRebalance()
			select {
			case <-g.Joined():
				joined++
			default:
			}
			held += len(g.Assigned()[topic])
		}
		if joined == len(members) && held == 2 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("%d of %d members joined, holding %d partitions", joined, len(members), held)
		}
	}
	empty := 0
	for _, g := range members {
		if len(g.Assigned()[topic]) == 0 {
			empty++
		}
	}
	if empty != 1 {
		t.Errorf("%d members without partitions, want 1", empty)
	}
}

func TestNewGroupConsumerValidates(t *testing.T) {
	for _, tc := range []struct {
		group  string
		topics []string
	}{{"", []string{"t"}}, {"g", nil}, {"g", []string{"t", ""}}} {
		if _, err := kafkax.NewGroupConsumer(kafkax.Config{}, tc.group, tc.topics, kafkax.GroupOptions{}); err == nil {
			t.Errorf("NewGroupConsumer(%q, %q) succeeded", tc.group, tc.topics)
		} else if !strings.Contains(err.Error(), "group") {
			t.Errorf("error %q does not say it is about a group consumer", err)
		}
	}
}

// TestGroupConsumerRidesOutBrokerKill: a member polls while the broker is
// killed; once its polls have failed (a warning logged) the broker starts
// again on the same data, and the member reads the records written after
// the restart without help. Polls that return only errors must not hold
// back the group's recovery (kgo's BlockRebalanceOnPoll blocks on them
// too).
func TestGroupConsumerRidesOutBrokerKill(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.Options{})
	cfg := c.Config()
	ctx := testCtx(t, 5*time.Minute)
	const topic, group = "kafkax.group.kill", "kafkax-group-kill"
	if err := kafkax.EnsureTopics(ctx, cfg, kafkax.TopicSpec{Name: topic, Partitions: 3, ReplicationFactor: 1}); err != nil {
		t.Fatal(err)
	}
	var logs syncWriter
	g, err := kafkax.NewGroupConsumer(cfg, group, []string{topic}, kafkax.GroupOptions{MaxWait: 100 * time.Millisecond,
		Logger: zerolog.New(&logs).Level(zerolog.WarnLevel)})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seen := map[string]bool{}
	count := func(prefix string) int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for v := range seen {
			if strings.HasPrefix(v, prefix+"-") {
				n++
			}
		}
		return n
	}
	pctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { // exits when pctx ends
		var b kafkax.GroupBatch
		for {
			b.Reset()
			err := g.Poll(pctx, &b, 100)
			if err != nil {
				g.AllowRebalance()
				if pctx.Err() != nil {
					done <- nil
				} else {
					done <- err
				}
				return
			}
			mu.Lock()
			for _, m := range b.Messages {
				seen[string(m.Value)] = true
			}
			mu.Unlock()
			_ = g.Commit(pctx, &b) // a commit during the outage may fail: the records come again
			g.AllowRebalance()
		}
	}()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("poll: %v", err)
		}
		g.Close(context.WithoutCancel(ctx))
		if t.Failed() {
			t.Logf("consumer warnings:\n%s", logs.String())
		}
	}()
	waitUntil := func(what string, cond func() bool) {
		t.Helper()
		for !cond() {
			select {
			case <-ctx.Done():
				t.Fatalf("gave up waiting for %s", what)
			case err := <-done:
				t.Fatalf("the consumer stopped (%v) while waiting for %s", err, what)
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	writeNumbered(ctx, t, cfg, topic, "before", 100)
	waitUntil("the records written before the kill", func() bool { return count("before") == 100 })
	c.Kill(t)
	waitUntil("a failed poll to be logged", func() bool { return strings.Contains(logs.String(), `"level":"warn"`) })
	c.StartAgain(t)
	writeNumbered(ctx, t, cfg, topic, "after", 100)
	waitUntil("the records written after the restart", func() bool { return count("after") == 100 })
}

// TestGroupConsumerCommitOffsetsRevokePause: CommitOffsets commits the
// offsets given (below what was polled), not the batch's positions; a
// second member's join calls the first's OnRevoked with the partitions it
// gave up; a paused topic delivers nothing until resumed while the other
// topic goes on.
func TestGroupConsumerCommitOffsetsRevokePause(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.Options{})
	cfg := c.Config()
	ctx := testCtx(t, 3*time.Minute)
	const ta, tb, group = "kafkax.group.ca", "kafkax.group.cb", "kafkax-group-commit-offsets"
	if err := kafkax.EnsureTopics(ctx, cfg, kafkax.TopicSpec{Name: ta, Partitions: 2, ReplicationFactor: 1},
		kafkax.TopicSpec{Name: tb, Partitions: 2, ReplicationFactor: 1}); err != nil {
		t.Fatal(err)
	}
	writeNumbered(ctx, t, cfg, ta, ta, 20)
	var mu sync.Mutex
	revoked := map[string][]int{}
	opt := kafkax.GroupOptions{RebalanceTimeout: 10 * time.Second, OnRevoked: func(r map[string][]int) {
		mu.Lock()
		defer mu.Unlock()
		for t, ps := range r {
			revoked[t] = append(revoked[t], ps...)
		}
	}}
	a := newGroup(t, cfg, group, []string{ta, tb}, opt)
	var b kafkax.GroupBatch
	for b.Len() < 20 {
		if err := a.Poll(ctx, &b, 1000); err != nil {
			t.Fatal(err)
		}
	}
	perPart := map[int]int64{}
	for _, m := range b.Messages {
		perPart[m.Partition]++
	}
	// Commit offset 1 on every partition of ta that has records.
	want := map[int]int64{0: -1, 1: -1}
	offs := map[string]map[int]int64{ta: {}}
	for p, n := range perPart {
		if n > 1 {
			offs[ta][p], want[p] = 1, 1
		}
	}
	if err := a.CommitOffsets(ctx, offs); err != nil {
		t.Fatal(err)
	}
	if err := a.CommitOffsets(ctx, map[string]map[int]int64{ta: {0: -5}}); err == nil {
		t.Error("a negative offset was committed")
	}
	got, err := newReader(t, cfg, ta, kafkax.ReadCommitted).GroupCommitted(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	if !mapsEqual(got, want) {
		t.Fatalf("committed %v, want %v (the offsets given, not the %v polled)", got, want, b.Positions()[ta])
	}
	a.AllowRebalance()

	// Pause tb: its records stay unread while ta's come through.
	a.PauseTopics(tb)
	if p := a.Paused(); !slices.Equal(p, []string{tb}) {
		t.Fatalf("paused %v, want [%s]", p, tb)
	}
	writeNumbered(ctx, t, cfg, tb, tb, 10)
	writeNumbered(ctx, t, cfg, ta, ta, 10)
	seen := map[string]int{}
	// pollUntil polls a until it has seen n records of topic in all.
	pollUntil := func(topic string, n int) {
		t.Helper()
		for seen[topic] < n {
			b.Reset()
			if err := a.Poll(ctx, &b, 1000); err != nil {
				t.Fatal(err)
			}
			a.AllowRebalance()
			for _, m := range b.Messages {
				seen[m.Topic]++
			}
		}
	}
	pollUntil(ta, 10)
	if seen[tb] != 0 {
		t.Fatalf("%d records of the paused topic polled", seen[tb])
	}
	a.ResumeTopics(tb)
	pollUntil(tb, 10)

	// A second member joins: a gives up its partitions (range strategy,
	// eager: all of them) and OnRevoked hears of it.
	m2 := newGroup(t, cfg, group, []string{ta, tb}, opt)
	done := make(chan struct{})
	go func() {
		defer close(done)
		var b2 kafkax.GroupBatch
		pctx, cancel := context.WithCancel(ctx)
		defer cancel()
		go func() {
			for len(m2.Assigned()) == 0 && pctx.Err() == nil {
				time.Sleep(20 * time.Millisecond)
			}
			cancel()
		}()
		m2.Poll(pctx, &b2, 1000)
		m2.AllowRebalance()
	}()
	for {
		mu.Lock()
		n := len(revoked[ta]) + len(revoked[tb])
		mu.Unlock()
		if n > 0 {
			break
		}
		b.Reset()
		pctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		if err := a.Poll(pctx, &b, 1000); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			t.Fatal(err)
		}
		cancel()
		a.AllowRebalance()
		if ctx.Err() != nil {
			t.Fatal("OnRevoked was never called")
		}
	}
	<-done
	mu.Lock()
	defer mu.Unlock()
	for _, topic := range []string{ta, tb} {
		if len(revoked[topic]) == 0 {
			t.Errorf("no partition of %s revoked: %v", topic, revoked)
		}
	}
}
