package producers_test

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/aelp/aelp/internal/kafkatest"
	"github.com/aelp/aelp/internal/kafkax"
	"github.com/aelp/aelp/producers"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
)

// largeValues returns 4 small records of key u around two random
// 600,000-byte values (each fits a default topic, the two together do
// not).
func largeValues() []kafka.Message {
	rng := rand.New(rand.NewPCG(9, 10))
	big := func() []byte {
		b := make([]byte, 600_000)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	t0 := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	var msgs []kafka.Message
	for i, v := range [][]byte{[]byte("s0"), big(), []byte("s1"), big(), []byte("s2"), []byte("s3")} {
		msgs = append(msgs, kafka.Message{Key: []byte("u"), Value: v, Time: t0.Add(time.Duration(i) * time.Second)})
	}
	return msgs
}

// TestReplayLargeValues is the replay of issue 14 that never finished: a
// recording with two 600,000-byte values of one key is replayed in batches
// under the topic's limit, every record once, in order.
func TestReplayLargeValues(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.Options{})
	cfg := c.Config()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute) // ends only a hung test
	defer cancel()
	msgs := largeValues()
	rec := recordTopic(t, ctx, cfg, kafkax.TopicSpec{Name: "large.src", Partitions: 1}, "", msgs)
	st, err := producers.Replay(ctx, producers.ReplayConfig{Kafka: cfg, Topic: "large.dst", Log: zerolog.Nop()}, bytes.NewReader(rec))
	if err != nil {
		t.Fatalf("replay: %v", err)
	}
	if st.Records != int64(len(msgs)) || len(st.Refused) != 0 {
		t.Errorf("stats %+v, want %d records replayed", st, len(msgs))
	}
	got := kafkatest.ReadAll(t, cfg, "large.dst")
	if len(got) != len(msgs) {
		t.Fatalf("large.dst holds %d records, want %d", len(got), len(msgs))
	}
	for i := range got {
		if !bytes.Equal(got[i].Value, msgs[i].Value) {
			t.Errorf("record %d: %d bytes, want the recorded %d bytes in order", i, len(got[i].Value), len(msgs[i].Value))
		}
	}
}

// TestReplayRefusedRecords: replayed to a topic whose max.message.bytes is
// 300,000, the two 600 KB records cannot be written. The replay does not
// retry them for ever: it writes the others and returns a
// *producers.RefusedError naming where each refused record was recorded.
func TestReplayRefusedRecords(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.Options{})
	cfg := c.Config()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	msgs := largeValues()
	rec := recordTopic(t, ctx, cfg, kafkax.TopicSpec{Name: "refused.src", Partitions: 1}, "", msgs)
	if err := kafkax.EnsureTopics(ctx, cfg, kafkax.TopicSpec{Name: "refused.dst", Partitions: 1,
		Configs: map[string]string{"max.message.bytes": "300000"}}); err != nil {
		t.Fatal(err)
	}
	st, err := producers.Replay(ctx, producers.ReplayConfig{Kafka: cfg, Topic: "refused.dst", Log: zerolog.Nop()}, bytes.NewReader(rec))
	re, ok := errors.AsType[*producers.RefusedError](err)
	if !ok {
		t.Fatalf("replay = %v, want a *producers.RefusedError", err)
	}
	if st.Records != 4 || len(re.Records) != 2 || re.Records[0].Offset != 1 || re.Records[1].Offset != 3 {
		t.Fatalf("stats %+v, refused %+v: want 4 written, offsets 1 and 3 refused", st, re.Records)
	}
	if !errors.As(err, new(*kafkax.RecordTooLargeError)) || !strings.Contains(err.Error(), "partition 0 offset 1") {
		t.Errorf("error %q: want a *RecordTooLargeError naming partition 0 offset 1", err)
	}
	if got := kafkatest.ReadAll(t, cfg, "refused.dst"); len(got) != 4 {
		t.Errorf("refused.dst holds %d records, want the 4 small ones", len(got))
	}
}
