package kafkax_test

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aelp/aelp/internal/kafkatest"
	"github.com/aelp/aelp/internal/kafkax"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// randomBytes returns n bytes that do not compress.
func randomBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// TestWriterLimitFromTopic: a role's writer sizes its batches by the
// topic's max.message.bytes as the broker reports it, and a topic that
// does not exist is an *UnknownTopicError, not a writer that retries.
func TestWriterLimitFromTopic(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.Options{})
	cfg := c.Config()
	ctx := testCtx(t, 2*time.Minute)
	if err := kafkax.EnsureTopics(ctx, cfg, kafkax.TopicSpec{Name: "lim.small", Partitions: 1, Configs: map[string]string{"max.message.bytes": "100000"}},
		kafkax.TopicSpec{Name: "lim.default", Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	cl, err := kafkax.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for topic, want := range map[string]int{"lim.small": 100000, "lim.default": kafkax.DefaultMaxMessageBytes} {
		w, err := cl.NewWriter(ctx, topic, kafkax.WriterOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if l := w.Limit(); l.Bytes != want || l.Source != kafkax.LimitFromTopic {
			t.Errorf("%s: limit %+v, want %d from the topic config", topic, l, want)
		}
		if m := w.MaxRecordBytes(); m >= want || m < want*9/10 {
			t.Errorf("%s: records up to %d bytes, want a little under %d", topic, m, want)
		}
		if w.BatchBytes >= int64(want) {
			t.Errorf("%s: BatchBytes %d, want under %d", topic, w.BatchBytes, want)
		}
		w.Close()
	}
	_, err = cl.NewWriter(ctx, "lim.missing", kafkax.WriterOptions{})
	if !errors.As(err, new(*kafkax.UnknownTopicError)) {
		t.Errorf("writer of a missing topic: %v, want an *UnknownTopicError", err)
	}
}

// TestWriteAllSplitsAndRefuses writes, to a topic of 100,000 bytes, with a
// writer that believes the topic takes 1 MB (as a writer would whose
// --max-message-bytes is wrong, or a topic whose limit was lowered after
// the writer started): the broker refuses its batches of 30 KB records,
// which WriteAll splits until each is written; a 150 KB record the broker
// refuses on its own is a *RecordTooLargeError carrying the broker's
// answer; a 2 MB record is refused before it is sent. The others are all
// written, none twice.
func TestWriteAllSplitsAndRefuses(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.Options{})
	cfg := c.Config()
	ctx := testCtx(t, 5*time.Minute)
	const topic = "split.small"
	if err := kafkax.EnsureTopics(ctx, cfg, kafkax.TopicSpec{Name: topic, Partitions: 2, Configs: map[string]string{"max.message.bytes": "100000"}}); err != nil {
		t.Fatal(err)
	}
	w, err := kafkax.NewWriter(cfg, topic, kafkax.WriterOptions{MaxMessageBytes: 1_000_000})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	var msgs []kafka.Message
	for range 20 {
		msgs = append(msgs, kafka.Message{Key: []byte("one-user"), Value: randomBytes(rng, 30_000)})
	}
	const mid, huge = 7, 13
	msgs[mid].Value = randomBytes(rng, 150_000)
	msgs[huge].Value = randomBytes(rng, 2_000_000)
	err = kafkax.WriteAll(ctx, cfg, w, zerolog.Nop(), msgs)
	re, ok := errors.AsType[*kafkax.RefusedError](err)
	if !ok {
		t.Fatalf("WriteAll = %v, want a *RefusedError", err)
	}
	if re.Written != 18 || len(re.Records) != 2 || re.Records[0].Index != mid || re.Records[1].Index != huge {
		t.Fatalf("refused %+v, written %d; want records %d and %d refused, 18 written", re.Records, re.Written, mid, huge)
	}
	for _, r := range re.Records {
		tl, ok := errors.AsType[*kafkax.RecordTooLargeError](r.Err)
		if !ok || kafkax.RefusalReason(r.Err) != "too-large" || !errors.Is(r.Err, kafka.MessageSizeTooLarge) {
			t.Errorf("record %d refused with %v (reason %s), want a *RecordTooLargeError, too-large", r.Index, r.Err, kafkax.RefusalReason(r.Err))
			continue
		}
		if sent := r.Index == mid; (tl.Err != nil) != sent {
			t.Errorf("record %d: broker's answer %v; want one only for the record that was sent", r.Index, tl.Err)
		}
		if tl.Size < len(msgs[r.Index].Value) || tl.Topic != topic {
			t.Errorf("record %d: %+v, want its size and topic", r.Index, tl)
		}
	}
	got := kafkatest.ReadAll(t, cfg, topic)
	if len(got) != 18 {
		t.Fatalf("%d records in %s, want 18", len(got), topic)
	}
	for _, m := range got {
		if len(m.Value) != 30_000 {
			t.Errorf("record of %d bytes at %d/%d, want only the 30 KB ones", len(m.Value), m.Partition, m.Offset)
		}
	}
	// Every written value once.
	for i, m := range msgs {
		if i == mid || i == huge {
			continue
		}
		n := 0
		for _, g := range got {
			if bytes.Equal(g.Value, m.Value) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("record %d written %d times, want once", i, n)
		}
	}
}

// refuseProduce makes the embedded cluster answer every produce request
// to topic with code, and counts them.
func refuseProduce(kc *kfake.Cluster, topic string, code int16, n *atomic.Int64) {
	kc.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		kc.KeepControl()
		pr := req.(*kmsg.ProduceRequest)
		resp := pr.ResponseKind().(*kmsg.ProduceResponse)
		for _, rt := range pr.Topics {
			if rt.Topic != topic {
				return nil, nil, false
			}
			st := kmsg.NewProduceResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				sp := kmsg.NewProduceResponseTopicPartition()
				sp.Partition = rp.Partition
				sp.ErrorCode = code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		n.Add(1)
		return resp, nil, true
	})
}

// TestWriteAllNonRetriable: a produce refused with a code no retry can fix
// ends WriteAll with a *ProduceError holding that code, rather than being
// retried for as long as the caller waits; an ACL denial says so
// (errors.Is ErrAuth).
func TestWriteAllNonRetriable(t *testing.T) {
	for _, tc := range []struct {
		name string
		code *kerr.Error
		want error
		auth bool
	}{
		{"topic authorization failed", kerr.TopicAuthorizationFailed, kafka.TopicAuthorizationFailed, true},
		{"invalid required acks", kerr.InvalidRequiredAcks, kafka.InvalidRequiredAcks, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kc, err := kfake.NewCluster(kfake.NumBrokers(1))
			if err != nil {
				t.Fatal(err)
			}
			defer kc.Close()
			cfg := kafkax.Config{Brokers: kc.ListenAddrs()}
			ctx := testCtx(t, 5*time.Minute) // ends only a hung test
			const topic = "refused"
			if err := kafkax.EnsureTopics(ctx, cfg, kafkax.TopicSpec{Name: topic, Partitions: 1}); err != nil {
				t.Fatal(err)
			}
			var n atomic.Int64
			refuseProduce(kc, topic, tc.code.Code, &n)
			w, err := kafkax.NewWriter(cfg, topic, kafkax.WriterOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			err = kafkax.WriteAll(ctx, cfg, w, zerolog.Nop(), []kafka.Message{{Key: []byte("k"), Value: []byte("v")}})
			pe, ok := errors.AsType[*kafkax.ProduceError](err)
			if !ok || !errors.Is(err, tc.want) {
				t.Fatalf("WriteAll = %v, want a *ProduceError of %v", err, tc.want)
			}
			if got := errors.Is(err, kafkax.ErrAuth); got != tc.auth {
				t.Errorf("errors.Is(%v, ErrAuth) = %v, want %v", err, got, tc.auth)
			}
			if pe.Topic != topic || !strings.Contains(err.Error(), topic) {
				t.Errorf("error %q, want it to name %s", err, topic)
			}
			t.Logf("%d produce requests refused: %v", n.Load(), err)
		})
	}
}
