package consumers

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aelp/aelp/internal/kafkatest"
	"github.com/aelp/aelp/internal/kafkax"
	"github.com/aelp/aelp/internal/lifecycle"
	"github.com/aelp/aelp/schemas"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// bigExperience returns a valid Experience of user whose State and
// NextState hold floats random values each (4 bytes apiece, so the record
// is about 8·floats bytes and does not compress).
func bigExperience(rng *rand.Rand, id, user string, floats int) kafka.Message {
	e := schemas.Experience{ID: id, ExperimentID: "size", EpisodeID: "ep-" + user, UserID: user,
		State: make([]float32, floats), NextState: make([]float32, floats), Timestamp: time.Now(), BehaviorLogProb: -1,
		PolicyVersion: -1}
	for i := range e.State {
		e.State[i], e.NextState[i] = rng.Float32(), rng.Float32()
	}
	val, err := schemas.MarshalExperience(nil, &e)
	if err != nil {
		panic(err)
	}
	return kafka.Message{Key: []byte(user), Value: val, Time: e.Timestamp}
}

// produceInChunks writes msgs to topic a few at a time, so that no produce
// batch of the test's own writes comes near the broker's limit.
func produceInChunks(t *testing.T, ctx context.Context, cfg kafkax.Config, topic string, msgs []kafka.Message) {
	t.Helper()
	w, err := kafkax.NewWriter(cfg, topic, kafkax.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for i := 0; i < len(msgs); {
		j, size := i, 0
		for j < len(msgs) && (j == i || size+len(msgs[j].Value) < 256<<10) {
			size += len(msgs[j].Value)
			j++
		}
		if err := kafkax.WriteAll(ctx, cfg, w, zerolog.Nop(), msgs[i:j]); err != nil {
			t.Fatal(err)
		}
		i = j
	}
}

// runAggregatorUntil runs an aggregator of group on cfg's default topics,
// checking no record width (reg, when set, gets its metrics), until done
// holds (waiting by progress, awaitProgress), stops it and returns it and
// its Run error.
func runAggregatorUntil(t *testing.T, ctx context.Context, cfg kafkax.Config, group string, reg prometheus.Registerer, done func(*Aggregator) bool) (*Aggregator, error) {
	t.Helper()
	a, err := NewAggregator(AggregateConfig{Kafka: cfg, Group: group, Limits: schemas.Limits{}, ProgressEvery: -1, Log: zerolog.Nop(), Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	actx, stop := context.WithCancel(ctx)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- a.Run(actx) }() // returns when actx ends
	awaitProgress(t, func() string { return fmt.Sprintf("the aggregator (%+v)", a.Stats()) },
		func() int64 { s := a.Stats(); return s.In + s.Committed },
		func() bool { return done(a) })
	stop()
	return a, <-errc
}

// TestAggregateLargeRecords is the wedge of issue 14: records that each
// fit the broker's limit (max.message.bytes, 1048588 by default) but whose
// produce batches would not. Every record must be tagged and committed.
func TestAggregateLargeRecords(t *testing.T) {
	for _, tc := range []struct {
		name         string
		users, n     int
		floats       int // per vector: the record is about 8·floats bytes
		wantMinBytes int
		wantMaxBytes int
	}{
		{name: "two 600 KB records of one user", users: 1, n: 2, floats: 75_000, wantMinBytes: 600_000, wantMaxBytes: 700_000},
		{name: "backlog of 3000 records of 5.3 KB over 60 users", users: 60, n: 3000, floats: 660, wantMinBytes: 5_200, wantMaxBytes: 5_500},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := kafkatest.Start(t, kafkatest.Options{})
			cfg := c.Config()
			// ctx only ends a hung test; the waits fail long before it.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			if err := kafkax.EnsureTopics(ctx, cfg, kafkax.DefaultTopics(6)...); err != nil {
				t.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(1, 2))
			msgs := make([]kafka.Message, tc.n)
			for i := range msgs {
				msgs[i] = bigExperience(rng, fmt.Sprintf("id-%d", i), fmt.Sprintf("user-%d", i%tc.users), tc.floats)
			}
			if l := len(msgs[0].Value); l < tc.wantMinBytes || l > tc.wantMaxBytes {
				t.Fatalf("record of %d bytes, want %d..%d", l, tc.wantMinBytes, tc.wantMaxBytes)
			}
			produceInChunks(t, ctx, cfg, kafkax.TopicRaw, msgs)

			const group = "size-test"
			a, err := runAggregatorUntil(t, ctx, cfg, group, nil, func(a *Aggregator) bool {
				return a.Stats().Committed >= int64(tc.n) && kafkatest.GroupLag(cfg, group, kafkax.TopicRaw) == 0
			})
			if err != nil {
				t.Fatalf("aggregator: %v", err)
			}
			s := a.Stats()
			if s.Tagged != int64(tc.n) || s.DeadLettered != 0 {
				t.Errorf("tagged %d, dead-lettered %d; want %d tagged, none dead-lettered", s.Tagged, s.DeadLettered, tc.n)
			}
			seen := map[string]bool{}
			for _, m := range kafkatest.ReadAll(t, cfg, kafkax.TopicTagged) {
				var te schemas.TaggedExperience
				if err := schemas.UnmarshalTaggedExperience(m.Value, &te); err != nil {
					t.Fatalf("tagged record at %d/%d: %v", m.Partition, m.Offset, err)
				}
				seen[te.ID] = true
			}
			if len(seen) != tc.n {
				t.Errorf("%d distinct ids tagged, want %d", len(seen), tc.n)
			}
		})
	}
}

// TestAggregateRecordTooLarge checks that a record whose tagged form is
// larger than the output topic takes (its max.message.bytes) goes to the
// dead-letter topic unchanged with reason too-large, and that the records
// around it are tagged and the batch committed.
func TestAggregateRecordTooLarge(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.Options{})
	cfg := c.Config()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	topics := kafkax.DefaultTopics(3)
	for i := range topics {
		if topics[i].Name == kafkax.TopicTagged {
			topics[i].Configs = map[string]string{"max.message.bytes": "200000"}
		}
	}
	if err := kafkax.EnsureTopics(ctx, cfg, topics...); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	var msgs []kafka.Message
	for i := range 20 {
		msgs = append(msgs, bigExperience(rng, fmt.Sprintf("small-%d", i), "u", 100))
	}
	big := bigExperience(rng, "big", "u", 37_500) // ~300 KB: fits the raw topic, not the tagged one
	msgs = append(msgs[:10], append([]kafka.Message{big}, msgs[10:]...)...)
	produceInChunks(t, ctx, cfg, kafkax.TopicRaw, msgs)

	const group = "too-large"
	a, err := runAggregatorUntil(t, ctx, cfg, group, nil, func(a *Aggregator) bool {
		return a.Stats().Committed >= int64(len(msgs)) && kafkatest.GroupLag(cfg, group, kafkax.TopicRaw) == 0
	})
	if err != nil {
		t.Fatalf("aggregator: %v", err)
	}
	if s := a.Stats(); s.Tagged != 20 || s.DeadLettered != 1 || s.DeadLetterReasons["too-large"] != 1 {
		t.Errorf("stats %+v: want 20 tagged, 1 dead-lettered as too-large", s)
	}
	if n := len(kafkatest.ReadAll(t, cfg, kafkax.TopicTagged)); n != 20 {
		t.Errorf("%d tagged records, want 20", n)
	}
	dl := kafkatest.ReadAll(t, cfg, kafkax.TopicDeadLetter)
	if len(dl) != 1 {
		t.Fatalf("%d dead letters, want 1", len(dl))
	}
	h := map[string]string{}
	for _, x := range dl[0].Headers {
		h[x.Key] = string(x.Value)
	}
	if h[kafkax.HeaderError] != "too-large" || h[kafkax.HeaderSourceTopic] != kafkax.TopicRaw || h[kafkax.HeaderSourceOffset] != "10" {
		t.Errorf("dead letter headers %v, want aelp.error=too-large from %s offset 10", h, kafkax.TopicRaw)
	}
	if !bytes.Equal(dl[0].Value, big.Value) || !bytes.Equal(dl[0].Key, big.Key) {
		t.Errorf("dead letter of %d bytes (key %q), want the input record unchanged (%d bytes, key %q)", len(dl[0].Value), dl[0].Key, len(big.Value), big.Key)
	}
}

// TestAggregateDeadLetterTooLarge checks the one case where a record is
// not kept: too large for the output topic and for the dead-letter topic
// too. It is counted as dropped (and logged), and the batch around it is
// tagged and committed rather than retried for ever.
func TestAggregateDeadLetterTooLarge(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.Options{})
	cfg := c.Config()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	topics := kafkax.DefaultTopics(3)
	for i := range topics {
		switch topics[i].Name {
		case kafkax.TopicTagged:
			topics[i].Configs = map[string]string{"max.message.bytes": "200000"}
		case kafkax.TopicDeadLetter:
			topics[i].Configs = map[string]string{"max.message.bytes": "100000"}
		}
	}
	if err := kafkax.EnsureTopics(ctx, cfg, topics...); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	msgs := []kafka.Message{bigExperience(rng, "a", "u", 100), bigExperience(rng, "big", "u", 37_500), bigExperience(rng, "b", "u", 100)}
	msgs = append(msgs, kafka.Message{Key: []byte("u"), Value: []byte("\x00not avro")})
	produceInChunks(t, ctx, cfg, kafkax.TopicRaw, msgs)

	const group = "dlq-too-large"
	reg := prometheus.NewRegistry()
	a, err := runAggregatorUntil(t, ctx, cfg, group, reg, func(a *Aggregator) bool {
		return a.Stats().Committed >= int64(len(msgs)) && kafkatest.GroupLag(cfg, group, kafkax.TopicRaw) == 0
	})
	if err != nil {
		t.Fatalf("aggregator: %v", err)
	}
	if s := a.Stats(); s.Tagged != 2 || s.DeadLettered != 1 || s.Dropped != 1 {
		t.Errorf("stats %+v: want 2 tagged, 1 dead-lettered (bad-magic), 1 dropped", s)
	}
	if got := counterValue(t, reg, "aelp_aggregate_dead_letters_dropped_total", "too-large"); got != 1 {
		t.Errorf("aelp_aggregate_dead_letters_dropped_total{reason=\"too-large\"} = %v, want 1", got)
	}
	dl := kafkatest.ReadAll(t, cfg, kafkax.TopicDeadLetter)
	if len(dl) != 1 || string(dl[0].Value) != "\x00not avro" {
		t.Fatalf("dead letters %v, want the one that is not Avro", dl)
	}
}

// counterValue returns the counter name{reason} gathered from reg (0 when
// absent).
func counterValue(t *testing.T, reg *prometheus.Registry, name, reason string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" && l.GetValue() == reason {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// TestAggregateStopWhileStuckWriting stops an aggregator whose output
// topic answers NOT_ENOUGH_REPLICAS to every produce (retriable, so
// WriteAll retries it for as long as it may): Run must return at the
// shutdown deadline with ErrShutdownTimeout, whatever the broker answers,
// and commit nothing. The embedded broker is driven directly (kfake's
// control functions), so this test runs on it only: a single real
// broker given min.insync.replicas=2 on the output topics still took the
// writes (Kafka 4.4.0), so no real-Kafka variant is kept.
func TestAggregateStopWhileStuckWriting(t *testing.T) {
	kc, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	cfg := kafkax.Config{Brokers: kc.ListenAddrs()}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := kafkax.EnsureTopics(ctx, cfg, kafkax.DefaultTopics(1)...); err != nil {
		t.Fatal(err)
	}
	produceInChunks(t, ctx, cfg, kafkax.TopicRaw, []kafka.Message{{Key: []byte("u"), Value: []byte("\x00not avro")},
		bigExperience(rand.New(rand.NewPCG(7, 8)), "a", "u", 16)})
	var refused atomic.Int64
	kc.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		pr := req.(*kmsg.ProduceRequest)
		resp := pr.ResponseKind().(*kmsg.ProduceResponse)
		for _, rt := range pr.Topics {
			if rt.Topic != kafkax.TopicTagged && rt.Topic != kafkax.TopicDeadLetter {
				return nil, nil, false
			}
			st := kmsg.NewProduceResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				sp := kmsg.NewProduceResponseTopicPartition()
				sp.Partition = rp.Partition
				sp.ErrorCode = kerr.NotEnoughReplicas.Code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		kc.KeepControl()
		refused.Add(1)
		return resp, nil, true
	})
	var dump bytes.Buffer
	a, err := NewAggregator(AggregateConfig{Kafka: cfg, Group: "stuck", Limits: schemas.Limits{}, ProgressEvery: -1,
		Log: zerolog.Nop(), ShutdownTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	a.dump = &dump
	actx, stop := context.WithCancel(ctx)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- a.Run(actx) }() // returns at the shutdown deadline
	awaitProgress(t, func() string { return "the broker to refuse produce requests" },
		func() int64 { return refused.Load() }, func() bool { return refused.Load() >= 3 })
	stop()
	err = <-errc // bounded by the shutdown deadline; ctx ends a hung test
	if !errors.Is(err, lifecycle.ErrShutdownTimeout) {
		t.Fatalf("Run returned %v, want an error wrapping lifecycle.ErrShutdownTimeout", err)
	}
	if s := a.Stats(); s.Committed != 0 || s.Tagged != 0 {
		t.Errorf("stats %+v: want nothing tagged or committed", s)
	}
	if !bytes.Contains(dump.Bytes(), []byte("goroutine ")) {
		t.Errorf("no goroutine dump written at the deadline (got %d bytes)", dump.Len())
	}
	t.Logf("stopped after %d refused produce requests: %v", refused.Load(), err)
}
