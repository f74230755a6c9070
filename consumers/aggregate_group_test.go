package consumers

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/aelp/aelp/internal/kafkatest"
	"github.com/aelp/aelp/internal/kafkax"
	"github.com/aelp/aelp/internal/kafkax/kafkaxtest"
	"github.com/aelp/aelp/internal/obs"
	"github.com/aelp/aelp/schemas"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
)

// experiences returns n valid Experience records of ids <prefix>-<i>, over
// three users.
func experiences(t *testing.T, prefix string, n int) []kafka.Message {
	t.Helper()
	out := make([]kafka.Message, n)
	for i := range out {
		user := fmt.Sprintf("u-%d", i%3)
		e := schemas.Experience{ID: fmt.Sprintf("%s-%d", prefix, i), ExperimentID: "agg-txn", EpisodeID: "e-" + user, UserID: user,
			State: make([]float32, 4), NextState: make([]float32, 4), Timestamp: time.Now(), BehaviorLogProb: -1}
		v, err := schemas.MarshalExperience(nil, &e)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = kafka.Message{Key: []byte(user), Value: v}
	}
	return out
}

// TestAggregateTransactions writes experiences through transactional
// producers (kgo with a TransactionalID, as Flink or Kafka Streams
// exactly-once would), committed and aborted transactions interleaved with
// plain records, and runs the aggregator until its group has committed
// everything: under read_committed (the default) exactly the plain and
// committed records are tagged, under read_uncommitted the aborted ones
// too; at neither level does a transaction marker reach the dead-letter
// topic, and the committed offsets reach the end of the log (past the
// last marker). It runs on the embedded broker and, with
// AELP_TEST_KAFKA=real, on Apache Kafka.
func TestAggregateTransactions(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.Options{})
	cfg := c.Config()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for _, iso := range []kafkax.Isolation{kafkax.ReadCommitted, kafkax.ReadUncommitted} {
		t.Run(iso.String(), func(t *testing.T) {
			in, out, dlq := "agg.txn.raw."+iso.String(), "agg.txn.tagged."+iso.String(), "agg.txn.dlq."+iso.String()
			if err := kafkax.EnsureTopics(ctx, cfg, kafkax.TopicSpec{Name: in, Partitions: 3}); err != nil {
				t.Fatal(err)
			}
			w, err := kafkax.NewWriter(cfg, in, kafkax.WriterOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			committed := experiences(t, "commit-a", 20)
			aborted := experiences(t, "abort-a", 20)
			plain := experiences(t, "plain", 10)
			kafkaxtest.ProduceTransaction(t, cfg, in, true, committed)
			if err := w.WriteMessages(ctx, plain[:5]...); err != nil {
				t.Fatal(err)
			}
			kafkaxtest.ProduceTransaction(t, cfg, in, false, aborted)
			more := experiences(t, "commit-b", 20)
			kafkaxtest.ProduceTransaction(t, cfg, in, true, more)
			if err := w.WriteMessages(ctx, plain[5:]...); err != nil {
				t.Fatal(err)
			}
			last := experiences(t, "abort-b", 5) // the log ends with an abort marker
			kafkaxtest.ProduceTransaction(t, cfg, in, false, last)

			want := ids(t, append(append(slices.Clone(committed), plain...), more...))
			if iso == kafkax.ReadUncommitted {
				want = append(want, ids(t, append(slices.Clone(aborted), last...))...)
			}
			slices.Sort(want)

			group := "agg-txn-" + iso.String()
			a, err := NewAggregator(AggregateConfig{Kafka: cfg, Group: group, InTopic: in, OutTopic: out, DeadLetterTopic: dlq,
				Isolation: iso, Partitions: 3, ProgressEvery: -1, Log: zerolog.Nop()})
			if err != nil {
				t.Fatal(err)
			}
			actx, stop := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() { done <- a.Run(actx) }()
			r, err := kafkax.NewReader(cfg, in, kafkax.ReadOptions{Isolation: kafkax.ReadUncommitted})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			offs, err := r.ListOffsets(ctx)
			if err != nil {
				t.Fatal(err)
			}
			awaitProgress(t, func() string {
				return fmt.Sprintf("the aggregator to commit up to the end offsets %v (%+v)", offs.End, a.Stats())
			}, func() int64 { return a.Stats().Committed }, func() bool {
				got, err := r.GroupCommitted(ctx, group)
				return err == nil && committedToEnd(got, offs.End)
			})
			stop()
			if err := <-done; err != nil {
				t.Fatalf("aggregator: %v", err)
			}
			var got []string
			for _, m := range kafkatest.ReadAll(t, cfg, out) {
				var te schemas.TaggedExperience
				if err := schemas.UnmarshalTaggedExperience(m.Value, &te); err != nil {
					t.Fatalf("tagged record %d/%d: %v", m.Partition, m.Offset, err)
				}
				got = append(got, te.ID)
			}
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("tagged %d ids %v,\nwant %d %v", len(got), got, len(want), want)
			}
			if dead := kafkatest.ReadAll(t, cfg, dlq); len(dead) != 0 {
				t.Errorf("%d records dead-lettered, want none; the first: %v", len(dead), dead[0].Headers)
			}
			if s := a.Stats(); s.DeadLettered != 0 {
				t.Errorf("stats count %d dead letters, want 0", s.DeadLettered)
			}
		})
	}
}

// ids returns the Experience ids of msgs.
func ids(t *testing.T, msgs []kafka.Message) []string {
	t.Helper()
	out := make([]string, len(msgs))
	for i, m := range msgs {
		var e schemas.Experience
		if err := schemas.UnmarshalExperience(m.Value, &e); err != nil {
			t.Fatal(err)
		}
		out[i] = e.ID
	}
	return out
}

// TestAggregateReadyWhenIdle starts an aggregator on an empty topic: its
// /healthz answers 200 once it has joined its group, with no record ever
// read, and 503 again once it is stopped.
func TestAggregateReadyWhenIdle(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.Options{})
	cfg := c.Config()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	health := &obs.Health{}
	srv, err := obs.Serve("127.0.0.1:0", obs.NewRegistry(), health, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	a, err := NewAggregator(AggregateConfig{Kafka: cfg, Group: "agg-idle", InTopic: "agg.idle.raw", OutTopic: "agg.idle.tagged",
		DeadLetterTopic: "agg.idle.dlq", ProgressEvery: -1, Health: health, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	actx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(actx) }()
	status := func() int {
		resp, err := http.Get("http://" + srv.Addr() + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for status() != http.StatusOK {
		select {
		case err := <-done:
			t.Fatalf("aggregator returned %v before /healthz turned 200", err)
		case <-ctx.Done():
			t.Fatalf("/healthz of an idle aggregator never turned 200 (%+v)", a.Stats())
		case <-time.After(50 * time.Millisecond):
		}
	}
	if s := a.Stats(); s.In != 0 {
		t.Fatalf("read %d records from an empty topic", s.In)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("aggregator: %v", err)
	}
	if got := status(); got != http.StatusServiceUnavailable {
		t.Errorf("/healthz after the stop = %d, want 503", got)
	}
}

// committedToEnd reports whether got, a group's committed offsets, stands
// at end on every partition: exactly at a partition's end offset (past its
// last marker) where it has records, and at most 0 (-1: never committed)
// on an empty one.
func committedToEnd(got, end map[int]int64) bool {
	for p, e := range end {
		c, ok := got[p]
		switch {
		case e == 0 && (!ok || c <= 0):
		case !ok || c != e:
			return false
		}
	}
	return true
}
