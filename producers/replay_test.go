package producers_test

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aelp/aelp/consumers"
	"github.com/aelp/aelp/internal/kafkatest"
	"github.com/aelp/aelp/internal/kafkax"
	"github.com/aelp/aelp/producers"
	"github.com/linkedin/goavro/v2"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
)

// sig is what must survive a record/replay round trip.
func sig(m kafka.Message) string {
	var b strings.Builder
	if m.Key == nil {
		b.WriteString("<nil>")
	}
	fmt.Fprintf(&b, "%q|%q|%d|", m.Key, m.Value, m.Time.UnixMilli())
	for _, h := range m.Headers {
		fmt.Fprintf(&b, "%q=%q,", h.Key, h.Value)
	}
	return b.String()
}

// perKey returns each key's values in log order (partition order; a key
// lives on one partition).
func perKey(msgs []kafka.Message) map[string][]string {
	sorted := slices.Clone(msgs)
	slices.SortStableFunc(sorted, func(a, b kafka.Message) int {
		if a.Partition != b.Partition {
			return a.Partition - b.Partition
		}
		return int(a.Offset - b.Offset)
	})
	out := map[string][]string{}
	for _, m := range sorted {
		if m.Key != nil {
			out[string(m.Key)] = append(out[string(m.Key)], string(m.Value))
		}
	}
	return out
}

// recordTopic writes msgs to a new topic and returns their recording,
// made with the block codec codec ("": the default).
func recordTopic(t *testing.T, ctx context.Context, cfg kafkax.Config, topic kafkax.TopicSpec, codec string, msgs []kafka.Message) []byte {
	t.Helper()
	if err := kafkax.EnsureTopics(ctx, cfg, topic); err != nil {
		t.Fatal(err)
	}
	w, err := kafkax.NewWriter(cfg, topic.Name, kafkax.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := kafkax.WriteAll(ctx, cfg, w, zerolog.Nop(), msgs); err != nil {
		t.Fatal(err)
	}
	w.Close()
	var file bytes.Buffer
	st, err := consumers.Record(ctx, consumers.RecordConfig{Kafka: cfg, Topic: topic.Name, Codec: codec, Log: zerolog.Nop()}, &file)
	if err != nil {
		t.Fatal(err)
	}
	if st.Records != int64(len(msgs)) {
		t.Fatalf("recorded %d records, want %d", st.Records, len(msgs))
	}
	return file.Bytes()
}

func TestRecordReplayRoundTrip(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.Options{})
	cfg := c.Config()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const src, n = "replay.src", 1000
	t0 := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	msgs := make([]kafka.Message, n)
	for i := range msgs {
		msgs[i] = kafka.Message{Key: []byte(fmt.Sprintf("user-%d", i%37)), Value: []byte(fmt.Sprintf("v%d", i)),
			Time: t0.Add(time.Duration(i) * time.Millisecond)}
		if i%5 == 0 {
			msgs[i].Headers = []kafka.Header{{Key: "trace", Value: []byte(fmt.Sprint(i))}, {Key: "empty", Value: []byte{}}}
		}
		if i%50 == 0 {
			msgs[i].Key = nil
		}
	}
	recorded := recordTopic(t, ctx, cfg, kafkax.TopicSpec{Name: src, Partitions: 4}, "snappy", msgs)
	want := kafkatest.ReadAll(t, cfg, src)

	check := func(t *testing.T, topic string, wantParts int) {
		t.Helper()
		got := kafkatest.ReadAll(t, cfg, topic)
		if len(got) != len(want) {
			t.Fatalf("%s holds %d records, want %d", topic, len(got), len(want))
		}
		gs, ws := make([]string, len(got)), make([]string, len(want))
		for i := range got {
			gs[i], ws[i] = sig(got[i]), sig(want[i])
		}
		slices.Sort(gs)
		slices.Sort(ws)
		if !slices.Equal(gs, ws) {
			for i := range gs {
				if gs[i] != ws[i] {
					t.Fatalf("first difference: got %s, want %s", gs[i], ws[i])
				}
			}
		}
		gk, wk := perKey(got), perKey(want)
		for k, vs := range wk {
			if !slices.Equal(gk[k], vs) {
				t.Errorf("key %s: order %v, want %v", k, gk[k], vs)
			}
		}
		parts, err := kafkax.Partitions(ctx, cfg, topic)
		if err != nil {
			t.Fatal(err)
		}
		if len(parts) != wantParts {
			t.Errorf("%s has %d partitions, want %d", topic, len(parts), wantParts)
		}
	}

	t.Run("new topic, source partition count", func(t *testing.T) {
		var progress []int64
		st, err := producers.Replay(ctx, producers.ReplayConfig{Kafka: cfg, Topic: "replay.dst", BatchRecords: 128,
			Progress: func(d int64) { progress = append(progress, d) }, Log: zerolog.Nop()}, bytes.NewReader(recorded))
		if err != nil {
			t.Fatal(err)
		}
		if st.Records != n || !st.Created || st.Partitions != 4 || st.SourceTopic != src {
			t.Errorf("stats %+v, want %d records into a created 4-partition topic from %s", st, n, src)
		}
		if !st.First.Equal(t0) || !st.Last.Equal(t0.Add((n-1)*time.Millisecond)) {
			t.Errorf("time range %s..%s", st.First, st.Last)
		}
		if len(progress) != 8 || progress[7] != n {
			t.Errorf("progress %v, want 8 calls ending at %d", progress, n)
		}
		check(t, "replay.dst", 4)
	})
	t.Run("partitions flag and rate", func(t *testing.T) {
		st, err := producers.Replay(ctx, producers.ReplayConfig{Kafka: cfg, Topic: "replay.dst2", Partitions: 2, Rate: 20000,
			Log: zerolog.Nop()}, bytes.NewReader(recorded))
		if err != nil {
			t.Fatal(err)
		}
		if st.Records != n || st.Partitions != 2 {
			t.Errorf("stats %+v", st)
		}
		check(t, "replay.dst2", 2)
	})
	t.Run("existing topic kept", func(t *testing.T) {
		if err := kafkax.EnsureTopics(ctx, cfg, kafkax.TopicSpec{Name: "replay.dst3", Partitions: 3}); err != nil {
			t.Fatal(err)
		}
		st, err := producers.Replay(ctx, producers.ReplayConfig{Kafka: cfg, Topic: "replay.dst3", Log: zerolog.Nop()}, bytes.NewReader(recorded))
		if err != nil {
			t.Fatal(err)
		}
		if st.Created || st.Partitions != 3 {
			t.Errorf("stats %+v, want the existing 3-partition topic", st)
		}
		check(t, "replay.dst3", 3)
	})
	t.Run("not a recording", func(t *testing.T) {
		var other bytes.Buffer
		ow, err := goavro.NewOCFWriter(goavro.OCFConfig{W: &other, Schema: `{"type":"record","name":"X","fields":[{"name":"a","type":"int"}]}`})
		if err != nil {
			t.Fatal(err)
		}
		if err := ow.Append([]any{map[string]any{"a": int32(1)}}); err != nil {
			t.Fatal(err)
		}
		_, err = producers.Replay(ctx, producers.ReplayConfig{Kafka: cfg, Topic: "replay.bad", Log: zerolog.Nop()}, &other)
		if err == nil || !strings.Contains(err.Error(), "not an aelp recording") {
			t.Errorf("Replay(other schema) = %v, want a 'not an aelp recording' error", err)
		}
		if _, err := producers.Replay(ctx, producers.ReplayConfig{Kafka: cfg, Topic: "replay.bad"}, strings.NewReader("not avro")); err == nil {
			t.Error("Replay(garbage) = nil error")
		}
	})
}

func TestReplayConfigValidate(t *testing.T) {
	kc := kafkax.Config{Brokers: []string{"127.0.0.1:1"}}
	tests := []struct {
		name string
		cfg  producers.ReplayConfig
		ok   bool
	}{
		{"ok", producers.ReplayConfig{Kafka: kc, Topic: "t"}, true},
		{"no topic", producers.ReplayConfig{Kafka: kc}, false},
		{"negative rate", producers.ReplayConfig{Kafka: kc, Topic: "t", Rate: -1}, false},
		{"negative partitions", producers.ReplayConfig{Kafka: kc, Topic: "t", Partitions: -2}, false},
	}
	for _, tc := range tests {
		if err := tc.cfg.Validate(); (err == nil) != tc.ok {
			t.Errorf("%s: Validate() = %v, want ok %v", tc.name, err, tc.ok)
		}
	}
}
