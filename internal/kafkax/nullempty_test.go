package kafkax_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aelp/aelp/internal/kafkatest"
	"github.com/aelp/aelp/internal/kafkax"
	"github.com/aelp/aelp/internal/kafkax/kafkaxtest"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kgo"
)

// nullSig describes a key, value and header values, null told from empty.
func nullSig(key, value []byte, hs [][2][]byte) string {
	s := func(b []byte) string {
		if b == nil {
			return "null"
		}
		return strconv.Quote(string(b))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "key=%s value=%s", s(key), s(value))
	for _, h := range hs {
		fmt.Fprintf(&b, " %s=%s", h[0], s(h[1]))
	}
	return b.String()
}

func kafkaSig(m *kafka.Message, n int) string {
	hs := make([][2][]byte, 0, n)
	for _, h := range m.Headers[:n] {
		hs = append(hs, [2][]byte{[]byte(h.Key), h.Value})
	}
	return nullSig(m.Key, m.Value, hs)
}

func kgoSig(r *kgo.Record, n int) string {
	hs := make([][2][]byte, 0, n)
	for _, h := range r.Headers[:n] {
		hs = append(hs, [2][]byte{[]byte(h.Key), h.Value})
	}
	return nullSig(r.Key, r.Value, hs)
}

// TestNullAndEmpty: null and empty keys, values and header values stay
// apart through every hop aelp's records take: kafka-go's writer puts a nil
// as null (a tombstone, for a value) and an empty slice as empty on the
// wire (read back with plain kgo); the Reader's messages keep them apart;
// and DeadLetter of those messages, written again, keeps them too (an
// empty value is dead-lettered empty, a null one null).
func TestNullAndEmpty(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.Options{})
	cfg := c.Config()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const src, dlq = "nulls.src", "nulls.dlq"
	if err := kafkax.EnsureTopics(ctx, cfg, kafkax.TopicSpec{Name: src, Partitions: 1}, kafkax.TopicSpec{Name: dlq, Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	var msgs []kafka.Message
	for _, key := range [][]byte{nil, {}, []byte("k")} {
		for _, value := range [][]byte{nil, {}, []byte("v")} {
			msgs = append(msgs, kafka.Message{Key: key, Value: value,
				Headers: []kafka.Header{{Key: "null"}, {Key: "empty", Value: []byte{}}, {Key: "text", Value: []byte("x")}}})
		}
	}
	want := make([]string, len(msgs))
	for i := range msgs {
		want[i] = kafkaSig(&msgs[i], 3)
	}
	write := func(topic string, msgs []kafka.Message) {
		t.Helper()
		w, err := kafkax.NewWriter(cfg, topic, kafkax.WriterOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		if err := kafkax.WriteAll(ctx, cfg, w, zerolog.Nop(), msgs); err != nil {
			t.Fatal(err)
		}
	}
	check := func(what string, got []string) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("%s: %d records, want %d", what, len(got), len(want))
		}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("%s: record %d is %s, want %s", what, i, got[i], want[i])
			}
		}
	}
	write(src, msgs)
	var got []string
	for _, r := range kafkaxtest.ConsumeAll(t, ctx, cfg, src, len(msgs)) {
		got = append(got, kgoSig(r, 3))
	}
	check("kafka-go's writer, read with kgo", got)

	read := readAll(ctx, t, cfg, src)
	got = got[:0]
	var dead []kafka.Message
	for i := range read {
		got = append(got, kafkaSig(&read[i], 3))
		dead = append(dead, kafkax.DeadLetter(read[i], "test"))
	}
	check("kafkax.Reader", got)

	write(dlq, dead)
	got = got[:0]
	for _, r := range kafkaxtest.ConsumeAll(t, ctx, cfg, dlq, len(dead)) {
		got = append(got, kgoSig(r, 3))
	}
	check("dead letters, read with kgo", got)
}
