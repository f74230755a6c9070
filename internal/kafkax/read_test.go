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

	"github.com/aelp/aelp/internal/broker"
	"github.com/aelp/aelp/internal/kafkatest"
	"github.com/aelp/aelp/internal/kafkax"
	"github.com/aelp/aelp/internal/kafkax/kafkaxtest"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
)

func TestParseIsolation(t *testing.T) {
	tests := []struct {
		in   string
		want kafkax.Isolation
		ok   bool
	}{
		{"read_committed", kafkax.ReadCommitted, true},
		{"READ-UNCOMMITTED", kafkax.ReadUncommitted, true},
		{" read_uncommitted ", kafkax.ReadUncommitted, true},
		{"committed", kafkax.ReadCommitted, false},
		{"", kafkax.ReadCommitted, false},
	}
	for _, tc := range tests {
		got, err := kafkax.ParseIsolation(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseIsolation(%q) = %v, %v; want %v, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
		if tc.ok && got.String() != strings.ReplaceAll(strings.ToLower(strings.TrimSpace(tc.in)), "-", "_") {
			t.Errorf("%v.String() = %q", got, got.String())
		}
	}
	if kafkax.Isolation(0) != kafkax.ReadCommitted {
		t.Error("the zero Isolation is not ReadCommitted")
	}
}

func newReader(t *testing.T, cfg kafkax.Config, topic string, iso kafkax.Isolation) *kafkax.Reader {
	t.Helper()
	r, err := kafkax.NewReader(cfg, topic, kafkax.ReadOptions{Isolation: iso, Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r
}

// collected is what a Read returned, per partition.
type collected struct {
	values map[int][]string
	next   map[int]int64 // the last Batch.Next
}

// collect returns a Read callback that checks each batch (offsets rising,
// the partition, topic, high-water mark and the case header set, Next past
// the messages) and records values and positions into c.
func collect(t *testing.T, topic string, c *collected) func(*kafkax.Batch) error {
	c.values, c.next = map[int][]string{}, map[int]int64{}
	return func(b *kafkax.Batch) error {
		last, seen := c.next[b.Partition]
		for _, m := range b.Messages {
			if m.Topic != topic || m.Partition != b.Partition || (seen && m.Offset < last) || m.Offset >= b.Next {
				return fmt.Errorf("message %s/%d@%d in a batch of partition %d (previous next %d, next %d)",
					m.Topic, m.Partition, m.Offset, b.Partition, last, b.Next)
			}
			if m.HighWaterMark <= m.Offset || len(m.Headers) != 1 || m.Headers[0].Key != "case" || m.Time.IsZero() {
				return fmt.Errorf("message %d@%d: high-water mark %d, headers %v, time %v", m.Partition, m.Offset, m.HighWaterMark, m.Headers, m.Time)
			}
			c.values[b.Partition] = append(c.values[b.Partition], string(m.Value))
		}
		if seen && b.Next < last {
			return fmt.Errorf("partition %d: next %d after %d", b.Partition, b.Next, last)
		}
		c.next[b.Partition] = b.Next
		return nil
	}
}

// TestReaderTransactions writes plain records and committed, aborted and
// interleaved transactions, and reads them back bounded, at both isolation
// levels: read_committed returns exactly the plain and committed records and
// ends at the last stable offset even though the last offsets below it hold
// only aborted records and control markers; read_uncommitted returns every
// data record and ends at the high-water mark. No read returns a control
// record.
func TestReaderTransactions(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.Options{})
	cfg := c.Config()
	for _, open := range []bool{false, true} {
		t.Run(fmt.Sprintf("open=%v", open), func(t *testing.T) {
			ctx := testCtx(t, 2*time.Minute)
			topic := fmt.Sprintf("kafkax.txn.%v", open)
			log := kafkaxtest.WriteTransactions(t, cfg, topic, open)
			defer log.End(t, false)
			committed := newReader(t, cfg, topic, kafkax.ReadCommitted)
			uncommitted := newReader(t, cfg, topic, kafkax.ReadUncommitted)
			lso, err := committed.ListOffsets(ctx)
			if err != nil {
				t.Fatal(err)
			}
			hwm, err := uncommitted.ListOffsets(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range kafkaxtest.Partitions {
				if open && lso.End[p] >= hwm.End[p] || !open && lso.End[p] != hwm.End[p] {
					t.Errorf("partition %d: last stable offset %d, high-water mark %d (a transaction open: %v)", p, lso.End[p], hwm.End[p], open)
				}
				// Every value was written once per partition, and each
				// transaction adds one control record.
				if n := int64(len(log.Uncommitted[p])); hwm.End[p] <= n {
					t.Errorf("partition %d: high-water mark %d, want more than the %d data records (control records)", p, hwm.End[p], n)
				}
			}
			for _, tc := range []struct {
				r    *kafkax.Reader
				offs kafkax.Offsets
				want map[int][]string
			}{{committed, lso, log.Committed}, {uncommitted, hwm, log.Uncommitted}} {
				t.Run(tc.r.Isolation().String(), func(t *testing.T) {
					var got collected
					if err := tc.r.Read(ctx, tc.offs.First, tc.offs.End, collect(t, topic, &got)); err != nil {
						t.Fatal(err)
					}
					for _, p := range kafkaxtest.Partitions {
						if !slices.Equal(got.values[p], tc.want[p]) {
							t.Errorf("partition %d: read %q, want %q", p, got.values[p], tc.want[p])
						}
						if got.next[p] != tc.offs.End[p] {
							t.Errorf("partition %d: read up to %d, want the end %d", p, got.next[p], tc.offs.End[p])
						}
					}
				})
			}
		})
	}
}

// TestReaderFollowsTransactions follows a topic under read_committed while
// a transaction is open: the reader returns the committed records, stops
// at the open transaction, and returns its records once it commits; aborted
// ones never come. Cancelling ctx ends the read with ctx's error.
func TestReaderFollowsTransactions(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.Options{})
	cfg := c.Config()
	ctx := testCtx(t, 2*time.Minute)
	const topic = "kafkax.txn.follow"
	log := kafkaxtest.WriteTransactions(t, cfg, topic, true)
	r := newReader(t, cfg, topic, kafkax.ReadCommitted)
	offs, err := r.ListOffsets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got collected
	check := collect(t, topic, &got)
	progress := make(chan struct{}, 1)
	readCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- r.Read(readCtx, offs.First, nil, func(b *kafkax.Batch) error {
			mu.Lock()
			defer mu.Unlock()
			if err := check(b); err != nil {
				return err
			}
			select {
			case progress <- struct{}{}:
			default:
			}
			return nil
		})
	}()
	// waitFor waits until every partition has returned want's values.
	waitFor := func(what string, want map[int][]string) {
		t.Helper()
		for {
			mu.Lock()
			ok := true
			for _, p := range kafkaxtest.Partitions {
				ok = ok && len(got.values[p]) >= len(want[p])
			}
			snapshot := fmt.Sprint(got.values)
			mu.Unlock()
			if ok {
				return
			}
			select {
			case err := <-done:
				t.Fatalf("%s: read returned %v", what, err)
			case <-ctx.Done():
				t.Fatalf("%s: read %s, want %v", what, snapshot, want)
			case <-progress:
			}
		}
	}
	waitFor("before the commit", log.Committed)
	before := map[int][]string{}
	mu.Lock()
	for p, vs := range got.values {
		before[p] = slices.Clone(vs)
	}
	mu.Unlock()
	log.End(t, true)
	waitFor("after the commit", log.Committed)
	stop()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("read ended with %v, want context.Canceled", err)
	}
	for _, p := range kafkaxtest.Partitions {
		want := log.Committed[p]
		if !slices.Equal(before[p], want[:len(want)-len(log.Open[p])]) {
			t.Errorf("partition %d before the commit: read %q, want %q", p, before[p], want[:len(want)-len(log.Open[p])])
		}
		if !slices.Equal(got.values[p], want) {
			t.Errorf("partition %d after the commit: read %q, want %q", p, got.values[p], want)
		}
	}
}

// TestReaderUnknownTopic: look-ups and reads of a topic that does not exist
// fail at once with an error naming it (kafka-go's ListOffsets retried for
// about 40 s).
func TestReaderUnknownTopic(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.Options{})
	ctx := testCtx(t, 2*time.Minute)
	r := newReader(t, c.Config(), "no.such.topic", kafkax.ReadCommitted)
	ops := map[string]func() error{
		"ListOffsets": func() error { _, err := r.ListOffsets(ctx); return err },
		"OffsetsForTime": func() error {
			_, err := r.OffsetsForTime(ctx, time.Now())
			return err
		},
		"Read": func() error {
			return r.Read(ctx, map[int]int64{0: 0}, nil, func(*kafkax.Batch) error { return nil })
		},
	}
	for name, op := range ops {
		err := op()
		var ute *kafkax.UnknownTopicError
		if !errors.As(err, &ute) || !errors.Is(err, kafka.UnknownTopicOrPartition) || !strings.Contains(err.Error(), `"no.such.topic"`) {
			t.Errorf("%s: error %v, want an UnknownTopicError naming the topic", name, err)
		}
		if ctx.Err() != nil {
			t.Fatalf("%s: ran into the test's deadline", name)
		}
	}
	// A partition the topic lacks fails the same way.
	cfg := c.Config()
	if err := kafkax.EnsureTopics(ctx, cfg, kafkax.TopicSpec{Name: "kafkax.one", Partitions: 1, ReplicationFactor: 1}); err != nil {
		t.Fatal(err)
	}
	err := newReader(t, cfg, "kafkax.one", kafkax.ReadCommitted).Read(ctx, map[int]int64{3: 0}, nil, func(*kafkax.Batch) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "no partition 3") {
		t.Errorf("read of a missing partition: %v, want an error naming it", err)
	}
}

// TestReaderRidesOutRestart follows a topic while the broker restarts: the
// read logs warnings, keeps going and returns the records written after the
// restart; only ctx ends it.
func TestReaderRidesOutRestart(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.Options{})
	cfg := c.Config()
	ctx := testCtx(t, 3*time.Minute)
	const topic = "kafkax.restart"
	if err := kafkax.EnsureTopics(ctx, cfg, kafkax.TopicSpec{Name: topic, Partitions: 2, ReplicationFactor: 1}); err != nil {
		t.Fatal(err)
	}
	write := func(from, to int) {
		t.Helper()
		w, err := kafkax.NewWriter(cfg, topic, kafkax.WriterOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		var msgs []kafka.Message
		for i := from; i < to; i++ {
			msgs = append(msgs, kafka.Message{Key: []byte(fmt.Sprint(i)), Value: []byte(fmt.Sprint(i))})
		}
		if err := kafkax.WriteAll(ctx, cfg, w, zerolog.Nop(), msgs); err != nil {
			t.Fatal(err)
		}
	}
	write(0, 50)
	var logs syncWriter
	r, err := kafkax.NewReader(cfg, topic, kafkax.ReadOptions{Logger: zerolog.New(&logs)})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var n sync.Map
	count := func() int {
		k := 0
		n.Range(func(any, any) bool { k++; return true })
		return k
	}
	readCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- r.ReadMessages(readCtx, map[int]int64{0: 0, 1: 0}, nil, func(m *kafka.Message) error {
			n.Store(string(m.Value), true)
			return nil
		})
	}()
	waitCount := func(want int) {
		t.Helper()
		for count() < want {
			select {
			case err := <-done:
				t.Fatalf("read returned %v with %d of %d records", err, count(), want)
			case <-ctx.Done():
				t.Fatalf("read %d of %d records", count(), want)
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	waitCount(50)
	c.Restart(t)
	write(50, 100)
	waitCount(100)
	stop()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("read ended with %v, want context.Canceled", err)
	}
	if got := count(); got != 100 {
		t.Errorf("read %d distinct records, want 100", got)
	}
	t.Logf("warnings during the restart: %d", strings.Count(logs.String(), `"level":"warn"`))
}

type syncWriter struct {
	mu sync.Mutex
	b  strings.Builder
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// TestReaderSASLMechanisms reads with each SASL mechanism (plaintext
// listener, a user per mechanism): the right password reads back what a
// kafka-go writer wrote, a wrong one fails at once with an *AuthError that
// names the user and not the password.
func TestReaderSASLMechanisms(t *testing.T) {
	users := []broker.User{
		{Mechanism: "PLAIN", Username: "plain-user", Password: "plain-secret"},
		{Mechanism: "SCRAM-SHA-256", Username: "scram256-user", Password: "scram256-secret"},
		{Mechanism: "SCRAM-SHA-512", Username: "scram512-user", Password: "scram512-secret"},
	}
	b, err := broker.Start(broker.Config{Listen: "127.0.0.1:0", Users: users})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	ctx := testCtx(t, 2*time.Minute)
	for _, u := range users {
		t.Run(u.Mechanism, func(t *testing.T) {
			cfg := kafkax.Config{Brokers: b.Addrs(), SASL: kafkax.SASLConfig{Mechanism: u.Mechanism, Username: u.Username, Password: u.Password}}
			topic := "kafkax.sasl." + strings.ToLower(u.Mechanism)
			if err := kafkax.EnsureTopics(ctx, cfg, kafkax.TopicSpec{Name: topic, Partitions: 1, ReplicationFactor: 1}); err != nil {
				t.Fatal(err)
			}
			w, err := kafkax.NewWriter(cfg, topic, kafkax.WriterOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if err := kafkax.WriteAll(ctx, cfg, w, zerolog.Nop(), []kafka.Message{{Value: []byte(u.Mechanism)}}); err != nil {
				t.Fatal(err)
			}
			w.Close()
			if got := readAll(ctx, t, cfg, topic); len(got) != 1 || string(got[0].Value) != u.Mechanism {
				t.Fatalf("read %v, want the record written", got)
			}
			wrong := cfg
			wrong.SASL.Password = "not-" + u.Password
			_, err = kafkax.ListOffsets(ctx, wrong, topic)
			var ae *kafkax.AuthError
			if !errors.As(err, &ae) || ae.Username != u.Username || ae.Mechanism != u.Mechanism {
				t.Fatalf("wrong password: %v, want an *AuthError for %s %s", err, u.Mechanism, u.Username)
			}
			if msg := err.Error(); !strings.Contains(msg, "check the username and password") || strings.Contains(msg, u.Password) {
				t.Errorf("error %q: want the AuthError message, without the password", msg)
			}
			if ctx.Err() != nil {
				t.Fatal("ran into the test's deadline")
			}
		})
	}
}
