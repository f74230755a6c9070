package learner

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/aelp/aelp/internal/kafkatest"
	"github.com/aelp/aelp/internal/kafkax"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
)

// TestLearnDeadLettersNullAndEmpty: the learner dead-letters an empty
// value as empty and a null one (a tombstone) as null, keys and header
// values as they were, read back through kafkax.Reader, which keeps null
// and empty apart.
func TestLearnDeadLettersNullAndEmpty(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.Options{})
	cfg := c.Config()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const topic = "tagged-nulls"
	if err := kafkax.EnsureTopics(ctx, cfg, kafkax.TopicSpec{Name: topic, Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	in := []kafka.Message{
		{Key: []byte("empty-value"), Value: []byte{}, Headers: []kafka.Header{{Key: "e", Value: []byte{}}}},
		{Key: []byte("tombstone"), Headers: []kafka.Header{{Key: "n"}}},
		{Key: []byte{}, Value: []byte("not avro")},
		{Value: []byte("not avro")},
	}
	w, err := kafkax.NewWriter(cfg, topic, kafkax.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := kafkax.WriteAll(ctx, cfg, w, zerolog.Nop(), in); err != nil {
		t.Fatal(err)
	}
	w.Close()
	l, err := New(testConfig(cfg, topic, "exp-n", filepath.Join(t.TempDir(), "n.ckpt")).withBounded())
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if s := l.Stats(); s.DeadLettered != int64(len(in)) {
		t.Fatalf("dead-lettered %d, want %d", s.DeadLettered, len(in))
	}
	r, err := kafkax.NewReader(cfg, kafkax.TopicDeadLetter, kafkax.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	offs, err := r.ListOffsets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var dead []kafka.Message
	if err := r.ReadMessages(ctx, offs.First, offs.End, func(m *kafka.Message) error {
		dead = append(dead, *m)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(dead) != len(in) {
		t.Fatalf("%d dead letters, want %d", len(dead), len(in))
	}
	null := func(b []byte) bool { return b == nil }
	for i, m := range dead {
		want := in[i]
		if string(m.Key) != string(want.Key) || null(m.Key) != null(want.Key) ||
			string(m.Value) != string(want.Value) || null(m.Value) != null(want.Value) {
			t.Errorf("dead letter %d: key %q (null %v) value %q (null %v), want key %q (null %v) value %q (null %v)", i,
				m.Key, null(m.Key), m.Value, null(m.Value), want.Key, null(want.Key), want.Value, null(want.Value))
		}
		for j, h := range want.Headers {
			if got := m.Headers[j]; got.Key != h.Key || string(got.Value) != string(h.Value) || null(got.Value) != null(h.Value) {
				t.Errorf("dead letter %d header %d: %s=%q (null %v), want %s=%q (null %v)", i, j,
					got.Key, got.Value, null(got.Value), h.Key, h.Value, null(h.Value))
			}
		}
	}
}
