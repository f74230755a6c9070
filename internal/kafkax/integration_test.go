package kafkax_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aelp/aelp/internal/kafkatest"
	"github.com/aelp/aelp/internal/kafkax"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// These tests run against the embedded broker, or against real Apache
// Kafka with AELP_TEST_KAFKA=real (see internal/kafkatest).

func testCtx(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func client(t *testing.T, cfg kafkax.Config) *kafka.Client {
	t.Helper()
	c, err := cfg.Client()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// waitStableGroup waits until group is Stable with want members, each
// holding at least one partition of topic, and returns the assignment of
// each member. It asks with kmsg's DescribeGroups, which decodes the
// consumer protocol's assignments whichever client wrote them.
func waitStableGroup(ctx context.Context, t *testing.T, cfg kafkax.Config, group, topic string, want int) [][]int {
	t.Helper()
	opts, err := cfg.KgoOptions(zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var last string
	for {
		req := kmsg.NewPtrDescribeGroupsRequest()
		req.Groups = []string{group}
		resp, err := req.RequestWith(ctx, cl)
		if err == nil && len(resp.Groups) == 1 && resp.Groups[0].ErrorCode == 0 {
			g := resp.Groups[0]
			var assigned [][]int
			for _, m := range g.Members {
				var a kmsg.ConsumerMemberAssignment
				if err := a.ReadFrom(m.MemberAssignment); err != nil {
					continue
				}
				for _, tp := range a.Topics {
					if tp.Topic == topic && len(tp.Partitions) > 0 {
						ps := make([]int, len(tp.Partitions))
						for i, p := range tp.Partitions {
							ps[i] = int(p)
						}
						assigned = append(assigned, slices.Sorted(slices.Values(ps)))
					}
				}
			}
			last = fmt.Sprintf("state %s, %d members, assignments %v", g.State, len(g.Members), assigned)
			if g.State == "Stable" && len(g.Members) == want && len(assigned) == want {
				return assigned
			}
		} else {
			last = fmt.Sprintf("describe: %v (%+v)", err, resp)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("group %s not stable with %d members: %s", group, want, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// consume polls g until stop is closed, recording every message and
// committing after every poll (an idle topic ends a poll after 200 ms); it
// commits what it polled before returning.
func consume(ctx context.Context, g *kafkax.GroupConsumer, stop <-chan struct{}, record func(kafka.Message)) error {
	var b kafkax.GroupBatch
	for {
		select {
		case <-stop:
			return nil
		default:
		}
		b.Reset()
		pctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		err := g.Poll(pctx, &b, 200)
		cancel()
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			g.AllowRebalance()
			return fmt.Errorf("poll: %w", err)
		}
		for _, m := range b.Messages {
			record(m)
		}
		err = g.Commit(ctx, &b)
		g.AllowRebalance()
		if err != nil && !errors.Is(err, kafkax.ErrCommitRefused) {
			return fmt.Errorf("commit: %w", err)
		}
	}
}

// committed returns the group's committed offset per partition.
func committed(ctx context.Context, t *testing.T, cfg kafkax.Config, group, topic string, parts []int) map[int]int64 {
	t.Helper()
	resp, err := client(t, cfg).OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: parts}})
	if err != nil {
		t.Fatalf("offset fetch: %v", err)
	}
	if resp.Error != nil {
		t.Fatalf("offset fetch: %v", resp.Error)
	}
	out := map[int]int64{}
	for _, p := range resp.Topics[topic] {
		if p.Error != nil {
			t.Fatalf("offset fetch %s/%d: %v", topic, p.Partition, p.Error)
		}
		out[p.Partition] = p.CommittedOffset
	}
	return out
}

// readAll reads every partition of topic from the first to the end offset
// with a kafkax.Reader.
func readAll(ctx context.Context, t *testing.T, cfg kafkax.Config, topic string) []kafka.Message {
	t.Helper()
	r, err := kafkax.NewReader(cfg, topic, kafkax.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	offs, err := r.ListOffsets(ctx)
	if err != nil {
		t.Fatalf("list offsets: %v", err)
	}
	var out []kafka.Message
	if err := r.ReadMessages(ctx, offs.First, offs.End, func(m *kafka.Message) error {
		out = append(out, *m)
		return nil
	}); err != nil {
		t.Fatalf("read %s: %v", topic, err)
	}
	return out
}

// TestGroupKeyedRecordsAndRestart produces 5,000 keyed records over 500
// keys, consumes them with a two-member group (Poll + Commit), and restarts the broker on the same data: records and
// committed offsets survive, and the group resumes after them.
func TestGroupKeyedRecordsAndRestart(t *testing.T) {
	const (
		topic      = "kafkax.group"
		group      = "kafkax-group-test"
		n          = 5000
		keys       = 500
		partitions = 6
	)
	c := kafkatest.Start(t, kafkatest.Options{})
	cfg := c.Config()
	ctx := testCtx(t, 3*time.Minute)
	if err := kafkax.EnsureTopics(ctx, cfg, kafkax.TopicSpec{Name: topic, Partitions: partitions, ReplicationFactor: 1}); err != nil {
		t.Fatalf("ensure topics: %v", err)
	}

	// Two members join first and split the partitions, so both consume.
	var (
		mu       sync.Mutex
		seen     = map[string]int{} // value -> partition
		keyParts = map[string]map[int]bool{}
		perMem   [2]int
		all      = make(chan struct{})
	)
	stop := make(chan struct{})
	errs := make(chan error, 2)
	readers := make([]*kafkax.GroupConsumer, 2)
	for i := range readers {
		r, err := kafkax.NewGroupConsumer(cfg, group, []string{topic}, kafkax.GroupOptions{MaxWait: 100 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		readers[i] = r
		go func() {
			errs <- consume(ctx, r, stop, func(m kafka.Message) {
				mu.Lock()
				defer mu.Unlock()
				perMem[i]++
				k := string(m.Key)
				if keyParts[k] == nil {
					keyParts[k] = map[int]bool{}
				}
				keyParts[k][m.Partition] = true
				seen[string(m.Value)] = m.Partition
				if len(seen) == n {
					close(all)
				}
			})
		}()
	}
	assigned := waitStableGroup(ctx, t, cfg, group, topic, 2)
	if got := slices.Sorted(slices.Values(slices.Concat(assigned...))); !slices.Equal(got, []int{0, 1, 2, 3, 4, 5}) {
		t.Errorf("group assignment %v does not cover partitions 0..5 exactly once", assigned)
	}

	w, err := kafkax.NewWriter(cfg, topic, kafkax.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	msgs := make([]kafka.Message, n)
	for i := range msgs {
		msgs[i] = kafka.Message{Key: fmt.Appendf(nil, "key-%03d", i%keys), Value: strconv.AppendInt(nil, int64(i), 10)}
	}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatalf("write: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("close writer: %v", err)
	}

	select {
	case <-all:
	case err := <-errs:
		t.Fatalf("consumer stopped early: %v", err)
	case <-ctx.Done():
		mu.Lock()
		t.Fatalf("consumed %d of %d distinct records before the deadline", len(seen), n)
	}
	close(stop)
	for range readers {
		if err := <-errs; err != nil {
			t.Errorf("consumer: %v", err)
		}
	}
	for _, r := range readers {
		if err := r.Close(ctx); err != nil {
			t.Errorf("close group consumer: %v", err)
		}
	}

	mu.Lock()
	if len(keyParts) != keys {
		t.Errorf("saw %d keys, want %d", len(keyParts), keys)
	}
	all6 := []int{0, 1, 2, 3, 4, 5}
	for k, ps := range keyParts {
		if len(ps) != 1 {
			t.Errorf("key %s on partitions %v, want exactly one", k, ps)
			continue
		}
		if want := kafkax.Murmur2.Partition([]byte(k), 6); !ps[want] {
			t.Errorf("key %s on partitions %v, want %d (murmur2, the default partitioner)", k, ps, want)
		}
	}
	for i, got := range perMem {
		if got == 0 {
			t.Errorf("member %d consumed no record; both members should share the partitions", i)
		}
	}
	firstRun := seen
	mu.Unlock()

	offs, err := kafkax.ListOffsets(ctx, cfg, topic)
	if err != nil {
		t.Fatalf("list offsets: %v", err)
	}
	if got := offs.Total(); got != n {
		t.Errorf("records in topic = %d, want %d", got, n)
	}
	if got := committed(ctx, t, cfg, group, topic, all6); !mapsEqual(got, offs.End) {
		t.Errorf("committed offsets = %v, want the end offsets %v", got, offs.End)
	}

	c.Restart(t)

	offs2, err := kafkax.ListOffsets(ctx, cfg, topic)
	if err != nil {
		t.Fatalf("list offsets after restart: %v", err)
	}
	if !mapsEqual(offs2.End, offs.End) {
		t.Errorf("end offsets after restart = %v, want %v", offs2.End, offs.End)
	}
	if got := committed(ctx, t, cfg, group, topic, all6); !mapsEqual(got, offs.End) {
		t.Errorf("committed offsets after restart = %v, want %v", got, offs.End)
	}
	back := readAll(ctx, t, cfg, topic)
	if len(back) != n {
		t.Errorf("read back %d records after restart, want %d", len(back), n)
	}
	for _, m := range back {
		if p, ok := firstRun[string(m.Value)]; !ok || p != m.Partition {
			t.Errorf("record %s on partition %d after restart; before: partition %d (present %v)", m.Value, m.Partition, p, ok)
			break
		}
	}

	// The group resumes after its committed offsets: a new member gets
	// only records written after the restart.
	w2, err := kafkax.NewWriter(cfg, topic, kafkax.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	const extra = 20
	more := make([]kafka.Message, extra)
	for i := range more {
		more[i] = kafka.Message{Key: fmt.Appendf(nil, "key-%03d", i), Value: fmt.Appendf(nil, "after-%d", i)}
	}
	if err := w2.WriteMessages(ctx, more...); err != nil {
		t.Fatalf("write after restart: %v", err)
	}
	w2.Close()
	r, err := kafkax.NewGroupConsumer(cfg, group, []string{topic}, kafkax.GroupOptions{MaxWait: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(ctx)
	got := map[string]bool{}
	var b kafkax.GroupBatch
	for len(got) < extra {
		b.Reset()
		if err := r.Poll(ctx, &b, extra); err != nil {
			t.Fatalf("poll after restart (%d of %d): %v", len(got), extra, err)
		}
		for _, m := range b.Messages {
			if !strings.HasPrefix(string(m.Value), "after-") {
				t.Fatalf("group redelivered %s/%d@%d (%s) after restart; committed offsets were not kept", m.Topic, m.Partition, m.Offset, m.Value)
			}
			got[string(m.Value)] = true
		}
		r.AllowRebalance()
	}
}

func mapsEqual(a, b map[int]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestSASLSCRAM connects over TLS with SCRAM-SHA-512: the right password
// creates topics, writes and reads; the wrong one fails at once with
// kafkax.ErrAuth and a message that names the user but not the password.
func TestSASLSCRAM(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.Options{SASL: true})
	cfg := c.Config()
	ctx := testCtx(t, 2*time.Minute)
	const topic = "kafkax.sasl"
	if err := kafkax.EnsureTopics(ctx, cfg, kafkax.TopicSpec{Name: topic, Partitions: 2, ReplicationFactor: 1}); err != nil {
		t.Fatalf("ensure topics with the right password: %v", err)
	}
	w, err := kafkax.NewWriter(cfg, topic, kafkax.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteMessages(ctx, kafka.Message{Key: []byte("k"), Value: []byte("over tls")}); err != nil {
		t.Fatalf("write with the right password: %v", cfg.Explain(err))
	}
	w.Close()
	back := readAll(ctx, t, cfg, topic)
	if len(back) != 1 || string(back[0].Value) != "over tls" {
		t.Fatalf("read back %d records %v, want the one written", len(back), back)
	}

	wrong := c.WrongPassword()
	dialer, err := wrong.Dialer()
	if err != nil {
		t.Fatal(err)
	}
	noRetry, err := kafkax.NewWriter(wrong, topic, kafkax.WriterOptions{MaxAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer noRetry.Close()
	tests := []struct {
		name string
		op   func(ctx context.Context) error
	}{
		{"EnsureTopics", func(ctx context.Context) error {
			return kafkax.EnsureTopics(ctx, wrong, kafkax.TopicSpec{Name: topic})
		}},
		{"ListOffsets", func(ctx context.Context) error {
			_, err := kafkax.ListOffsets(ctx, wrong, topic)
			return err
		}},
		{"Reader.Read", func(ctx context.Context) error {
			r, err := kafkax.NewReader(wrong, topic, kafkax.ReadOptions{})
			if err != nil {
				return err
			}
			defer r.Close()
			return r.Read(ctx, map[int]int64{0: 0}, nil, func(*kafkax.Batch) error { return nil })
		}},
		{"GroupConsumer.Poll", func(ctx context.Context) error {
			g, err := kafkax.NewGroupConsumer(wrong, "kafkax-sasl-group", []string{topic}, kafkax.GroupOptions{Logger: zerolog.Nop()})
			if err != nil {
				return err
			}
			defer g.Close(ctx)
			var b kafkax.GroupBatch
			return g.Poll(ctx, &b, 10)
		}},
		{"Writer", func(ctx context.Context) error {
			return wrong.Explain(noRetry.WriteMessages(ctx, kafka.Message{Value: []byte("x")}))
		}},
		{"Dialer", func(ctx context.Context) error {
			conn, err := dialer.DialContext(ctx, "tcp", wrong.Brokers[0])
			if err == nil {
				conn.Close()
			}
			return wrong.Explain(err)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The deadline is far beyond what a refusal takes; running
			// into it means the failure was not detected.
			ctx, cancel := context.WithTimeout(ctx, 45*time.Second)
			defer cancel()
			err := tt.op(ctx)
			if err == nil {
				t.Fatal("succeeded with the wrong password")
			}
			if !errors.Is(err, kafkax.ErrAuth) {
				t.Errorf("error = %v, want one matching kafkax.ErrAuth", err)
			}
			if errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
				t.Errorf("error = %v: ran into the deadline instead of failing fast", err)
			}
			msg := err.Error()
			if !strings.Contains(msg, "authentication failed") || !strings.Contains(msg, `"aelp"`) {
				t.Errorf("error %q does not say that authentication failed for user \"aelp\"", msg)
			}
			for _, pw := range []string{cfg.SASL.Password, wrong.SASL.Password} {
				if strings.Contains(msg, pw) {
					t.Errorf("error text contains a password: %q", msg)
				}
			}
		})
	}
}

// TestEnsureTopicsAndDeadLetter checks that EnsureTopics is idempotent,
// creates the partitions asked for, sets cleanup.policy=compact on the
// compacted topic only, and that a dead letter keeps its headers through
// the broker.
func TestEnsureTopicsAndDeadLetter(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.Options{})
	cfg := c.Config()
	ctx := testCtx(t, 2*time.Minute)
	specs := kafkax.DefaultTopics(4)
	for i := range specs {
		specs[i].ReplicationFactor = 1
	}
	for i := range 2 {
		if err := kafkax.EnsureTopics(ctx, cfg, specs...); err != nil {
			t.Fatalf("EnsureTopics call %d: %v", i+1, err)
		}
	}
	// An existing topic with other settings is left alone.
	if err := kafkax.EnsureTopics(ctx, cfg, kafkax.TopicSpec{Name: kafkax.TopicRaw, Partitions: 9, ReplicationFactor: 1}); err != nil {
		t.Fatalf("EnsureTopics on an existing topic: %v", err)
	}
	wantParts := map[string]int{kafkax.TopicRaw: 4, kafkax.TopicTagged: 4, kafkax.TopicMetrics: 1, kafkax.TopicPolicy: 1, kafkax.TopicDeadLetter: 1}
	for topic, want := range wantParts {
		ps, err := kafkax.Partitions(ctx, cfg, topic)
		if err != nil {
			t.Fatalf("partitions of %s: %v", topic, err)
		}
		if len(ps) != want {
			t.Errorf("%s has partitions %v, want %d", topic, ps, want)
		}
	}
	if _, err := kafkax.Partitions(ctx, cfg, "no.such.topic"); err == nil {
		t.Error("Partitions of a missing topic succeeded")
	}

	res := []kafka.DescribeConfigRequestResource{
		{ResourceType: kafka.ResourceTypeTopic, ResourceName: kafkax.TopicPolicy, ConfigNames: []string{"cleanup.policy"}},
		{ResourceType: kafka.ResourceTypeTopic, ResourceName: kafkax.TopicRaw, ConfigNames: []string{"cleanup.policy"}},
	}
	resp, err := client(t, cfg).DescribeConfigs(ctx, &kafka.DescribeConfigsRequest{Resources: res})
	if err != nil {
		t.Fatalf("describe configs: %v", err)
	}
	wantPolicy := map[string]string{kafkax.TopicPolicy: "compact", kafkax.TopicRaw: "delete"}
	for _, r := range resp.Resources {
		if r.Error != nil {
			t.Fatalf("describe %s: %v", r.ResourceName, r.Error)
		}
		got := ""
		for _, e := range r.ConfigEntries {
			if e.ConfigName == "cleanup.policy" {
				got = e.ConfigValue
			}
		}
		if got != wantPolicy[r.ResourceName] {
			t.Errorf("%s cleanup.policy = %q, want %q", r.ResourceName, got, wantPolicy[r.ResourceName])
		}
		delete(wantPolicy, r.ResourceName)
	}
	if len(wantPolicy) != 0 {
		t.Errorf("no config returned for %v", wantPolicy)
	}

	// A bad record goes to the dead-letter topic with its origin.
	w, err := kafkax.NewWriter(cfg, kafkax.TopicRaw, kafkax.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	orig := kafka.Message{Key: []byte("u1"), Value: []byte{0xc3, 0x01, 0xff}, Headers: []kafka.Header{{Key: "trace", Value: []byte("t-1")}}}
	if err := w.WriteMessages(ctx, orig); err != nil {
		t.Fatalf("write: %v", err)
	}
	w.Close()
	raw := readAll(ctx, t, cfg, kafkax.TopicRaw)
	if len(raw) != 1 {
		t.Fatalf("raw topic holds %d records, want 1", len(raw))
	}
	dlw, err := kafkax.NewWriter(cfg, kafkax.TopicDeadLetter, kafkax.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := dlw.WriteMessages(ctx, kafkax.DeadLetter(raw[0], "decode experience: bad fingerprint")); err != nil {
		t.Fatalf("write dead letter: %v", err)
	}
	dlw.Close()
	dl := readAll(ctx, t, cfg, kafkax.TopicDeadLetter)
	if len(dl) != 1 {
		t.Fatalf("dead-letter topic holds %d records, want 1", len(dl))
	}
	if string(dl[0].Key) != "u1" || string(dl[0].Value) != string(orig.Value) {
		t.Errorf("dead letter key/value = %q/%x, want %q/%x", dl[0].Key, dl[0].Value, orig.Key, orig.Value)
	}
	wantH := map[string]string{
		"trace":                      "t-1",
		kafkax.HeaderError:           "decode experience: bad fingerprint",
		kafkax.HeaderSourceTopic:     kafkax.TopicRaw,
		kafkax.HeaderSourcePartition: strconv.Itoa(raw[0].Partition),
		kafkax.HeaderSourceOffset:    strconv.FormatInt(raw[0].Offset, 10),
	}
	gotH := map[string]string{}
	for _, h := range dl[0].Headers {
		gotH[h.Key] = string(h.Value)
	}
	for k, v := range wantH {
		if gotH[k] != v {
			t.Errorf("dead-letter header %s = %q, want %q", k, gotH[k], v)
		}
	}
}

// TestSASLConnectionCut: under SASL a cut connection (EOF) is an
// authentication failure only when a new connection's handshake is
// refused: with the right password it stays a transient error that Retry
// retries, with the wrong one it becomes an *AuthError that stops Retry.
func TestSASLConnectionCut(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.Options{SASL: true})
	ctx := testCtx(t, 2*time.Minute)
	for _, tt := range []struct {
		name      string
		cfg       kafkax.Config
		wantCalls int
		wantAuth  bool
	}{
		{"right password", c.Config(), 3, false},
		{"wrong password", c.WrongPassword(), 1, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			err := kafkax.Retry(ctx, zerolog.Nop(), "op", func(ctx context.Context) error {
				calls++
				if calls < 3 {
					return tt.cfg.ExplainContext(ctx, fmt.Errorf("fetch: %w", io.ErrUnexpectedEOF))
				}
				return nil
			})
			if calls != tt.wantCalls || errors.Is(err, kafkax.ErrAuth) != tt.wantAuth {
				t.Fatalf("Retry() = %v after %d calls, want %d calls and ErrAuth %v", err, calls, tt.wantCalls, tt.wantAuth)
			}
			if tt.wantAuth && !strings.Contains(err.Error(), "SASL handshake") {
				t.Errorf("error %q does not say the handshake was refused", err)
			}
		})
	}
}
