package consumers

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/aelp/aelp/internal/kafkatest"
	"github.com/aelp/aelp/internal/kafkax"
	"github.com/aelp/aelp/internal/kafkax/kafkaxtest"
	"github.com/aelp/aelp/schemas"
	"github.com/linkedin/goavro/v2"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
)

func TestParsePosition(t *testing.T) {
	ts := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		in      string
		want    Position
		wantErr bool
	}{
		{"", Position{}, false},
		{"0", Position{Offset: 0, Set: true}, false},
		{"1200", Position{Offset: 1200, Set: true}, false},
		{"2026-05-01T10:00:00Z", Position{Time: ts, IsTime: true, Set: true}, false},
		{"-3", Position{}, true},
		{"yesterday", Position{}, true},
	}
	for _, tc := range tests {
		got, err := ParsePosition(tc.in)
		if (err != nil) != tc.wantErr || !got.Time.Equal(tc.want.Time) || got.Offset != tc.want.Offset || got.Set != tc.want.Set || got.IsTime != tc.want.IsTime {
			t.Errorf("ParsePosition(%q) = %+v, %v; want %+v, error %v", tc.in, got, err, tc.want, tc.wantErr)
		}
		if err == nil && got.String() != tc.in && tc.in != "" {
			t.Errorf("ParsePosition(%q).String() = %q", tc.in, got.String())
		}
	}
}

// recordTestTopic writes n records over 3 partitions: keys k0..k9 (every
// 7th record with a null key), a header on every record, millisecond
// timestamps one second apart from t0.
func recordTestTopic(t *testing.T, ctx context.Context, cfg kafkax.Config, topic string, n int, t0 time.Time) {
	t.Helper()
	if err := kafkax.EnsureTopics(ctx, cfg, kafkax.TopicSpec{Name: topic, Partitions: 3}); err != nil {
		t.Fatal(err)
	}
	msgs := make([]kafka.Message, n)
	for i := range msgs {
		msgs[i] = kafka.Message{Key: []byte(fmt.Sprintf("k%d", i%10)), Value: []byte(fmt.Sprintf("value-%d", i)),
			Time:    t0.Add(time.Duration(i) * time.Second),
			Headers: []kafka.Header{{Key: "seq", Value: []byte(fmt.Sprint(i))}}}
		if i%7 == 0 {
			msgs[i].Key = nil
		}
	}
	w, err := kafkax.NewWriter(cfg, topic, kafkax.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := kafkax.WriteAll(ctx, cfg, w, zerolog.Nop(), msgs); err != nil {
		t.Fatal(err)
	}
}

func readRecording(t *testing.T, b []byte) ([]schemas.RecordedMessage, *schemas.RecordingReader) {
	t.Helper()
	rr, err := schemas.NewRecordingReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	var out []schemas.RecordedMessage
	for {
		m, err := rr.Next()
		if errors.Is(err, io.EOF) {
			return out, rr
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
}

func TestRecord(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.Options{})
	cfg := c.Config()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const topic, n = "record.test", 300
	t0 := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	recordTestTopic(t, ctx, cfg, topic, n, t0)
	all := kafkatest.ReadAll(t, cfg, topic)

	t.Run("everything", func(t *testing.T) {
		for _, codec := range []string{"null", "deflate", "snappy"} {
			var buf bytes.Buffer
			var calls []int64
			st, err := Record(ctx, RecordConfig{Kafka: cfg, Topic: topic, Codec: codec, BlockRecords: 64,
				Progress: func(done, total int64) { calls = append(calls, done) }, Log: zerolog.Nop()}, &buf)
			if err != nil {
				t.Fatal(err)
			}
			if st.Records != n || st.Expected != n || st.Partitions != 3 {
				t.Errorf("%s: stats %+v, want %d records of 3 partitions", codec, st, n)
			}
			if len(calls) == 0 || calls[len(calls)-1] != n {
				t.Errorf("%s: progress calls %v, want the last to be %d", codec, calls, n)
			}
			got, rr := readRecording(t, buf.Bytes())
			if rr.SourceTopic() != topic || rr.SourcePartitions() != 3 {
				t.Errorf("%s: metadata topic %q partitions %d", codec, rr.SourceTopic(), rr.SourcePartitions())
			}
			if len(got) != n {
				t.Fatalf("%s: %d entries, want %d", codec, len(got), n)
			}
			byPos := map[[2]int64]kafka.Message{}
			for _, m := range all {
				byPos[[2]int64{int64(m.Partition), m.Offset}] = m
			}
			lastOff := map[int]int64{0: -1, 1: -1, 2: -1}
			for _, g := range got {
				want, ok := byPos[[2]int64{int64(g.Partition), g.Offset}]
				if !ok || g.Topic != topic {
					t.Fatalf("%s: entry %s/%d@%d not in the topic", codec, g.Topic, g.Partition, g.Offset)
				}
				if g.Offset <= lastOff[g.Partition] {
					t.Errorf("%s: partition %d out of order: %d after %d", codec, g.Partition, g.Offset, lastOff[g.Partition])
				}
				lastOff[g.Partition] = g.Offset
				if !bytes.Equal(g.Key, want.Key) || (g.Key == nil) != (want.Key == nil) ||
					!bytes.Equal(g.Value, want.Value) || !g.Time.Equal(want.Time) ||
					!slices.EqualFunc(g.Headers, want.Headers, func(a schemas.RecordedHeader, b kafka.Header) bool {
						return a.Key == b.Key && bytes.Equal(a.Value, b.Value)
					}) {
					t.Fatalf("%s: entry %d@%d = %+v, want %+v", codec, g.Partition, g.Offset, g, want)
				}
			}
		}
	})
	t.Run("any avro reader", func(t *testing.T) {
		var buf bytes.Buffer
		if _, err := Record(ctx, RecordConfig{Kafka: cfg, Topic: topic, Log: zerolog.Nop()}, &buf); err != nil {
			t.Fatal(err)
		}
		r, err := goavro.NewOCFReader(&buf)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.CompressionName(); got != "deflate" {
			t.Errorf("codec %q, want deflate (the default)", got)
		}
		var count int
		for r.Scan() {
			v, err := r.Read()
			if err != nil {
				t.Fatal(err)
			}
			// The value is ["null", "bytes"]: goavro's native form of a
			// non-null one is {"bytes": value}.
			if u, ok := v.(map[string]any)["value"].(map[string]any); !ok || u["bytes"] == nil {
				t.Fatalf("entry %v has no bytes value", v)
			}
			count++
		}
		if count != n {
			t.Errorf("generic reader saw %d entries, want %d", count, n)
		}
	})
	t.Run("from and to", func(t *testing.T) {
		tests := []struct {
			name     string
			from, to string
			keep     func(m kafka.Message) bool
		}{
			{"offsets", "10", "50", func(m kafka.Message) bool { return m.Offset >= 10 && m.Offset < 50 }},
			{"from offset past the end", "100000", "", func(kafka.Message) bool { return false }},
			{"times", t0.Add(100 * time.Second).Format(time.RFC3339), t0.Add(200 * time.Second).Format(time.RFC3339),
				func(m kafka.Message) bool {
					return !m.Time.Before(t0.Add(100*time.Second)) && m.Time.Before(t0.Add(200*time.Second))
				}},
		}
		for _, tc := range tests {
			from, _ := ParsePosition(tc.from)
			to, _ := ParsePosition(tc.to)
			var buf bytes.Buffer
			st, err := Record(ctx, RecordConfig{Kafka: cfg, Topic: topic, From: from, To: to, Log: zerolog.Nop()}, &buf)
			if err != nil {
				t.Fatal(err)
			}
			want := 0
			for _, m := range all {
				if tc.keep(m) {
					want++
				}
			}
			got, _ := readRecording(t, buf.Bytes())
			if len(got) != want || st.Records != int64(want) {
				t.Errorf("%s: %d entries (stats %d), want %d", tc.name, len(got), st.Records, want)
			}
			for _, g := range got {
				if !tc.keep(kafka.Message{Offset: g.Offset, Time: g.Time}) {
					t.Errorf("%s: entry %d@%d (%s) outside the range", tc.name, g.Partition, g.Offset, g.Time)
				}
			}
		}
	})
	t.Run("stops at the end seen at start", func(t *testing.T) {
		// A writer keeps appending while Record runs; Record must still end
		// with exactly the records that existed when it started.
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			w, err := kafkax.NewWriter(cfg, topic, kafkax.WriterOptions{})
			if err != nil {
				return
			}
			defer w.Close()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				_ = w.WriteMessages(ctx, kafka.Message{Key: []byte("late"), Value: []byte("late")})
			}
		}()
		offs, err := kafkax.ListOffsets(ctx, cfg, topic)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		st, err := Record(ctx, RecordConfig{Kafka: cfg, Topic: topic, Log: zerolog.Nop()}, &buf)
		close(stop)
		<-done
		if err != nil {
			t.Fatal(err)
		}
		if st.Records < offs.Total() || st.Records != st.Expected {
			t.Errorf("recorded %d of %d expected; at least %d existed before", st.Records, st.Expected, offs.Total())
		}
	})
	t.Run("invalid", func(t *testing.T) {
		if _, err := Record(ctx, RecordConfig{Kafka: cfg, Topic: topic, Codec: "zstd"}, io.Discard); err == nil {
			t.Error("codec zstd accepted")
		}
		if _, err := Record(ctx, RecordConfig{Kafka: cfg}, io.Discard); err == nil {
			t.Error("empty topic accepted")
		}
		if _, err := Record(ctx, RecordConfig{Kafka: cfg, Topic: "no.such.topic"}, io.Discard); err == nil {
			t.Error("missing topic accepted")
		}
	})
}

// TestRecordTransactions records a topic holding committed and aborted
// transactions: the recording holds exactly the plain and committed
// records (no aborted record, no transaction marker), and the record ends
// although the last offsets of the log are an aborted transaction's.
func TestRecordTransactions(t *testing.T) {
	const topic = "record.txn"
	cfg, ctx, log := txnTopic(t, topic)
	var buf bytes.Buffer
	st, err := Record(ctx, RecordConfig{Kafka: cfg, Topic: topic, Log: zerolog.Nop()}, &buf)
	if err != nil {
		t.Fatal(err)
	}
	got := map[int][]string{}
	var n int64
	entries, _ := readRecording(t, buf.Bytes())
	for _, e := range entries {
		got[e.Partition] = append(got[e.Partition], string(e.Value))
		n++
	}
	for _, p := range kafkaxtest.Partitions {
		if !slices.Equal(got[p], log.Committed[p]) {
			t.Errorf("partition %d recorded %q, want %q", p, got[p], log.Committed[p])
		}
	}
	if st.Records != n || st.Expected <= n {
		t.Errorf("stats: %d records of %d expected; want %d, fewer than the offsets (markers and aborted records hold some)", st.Records, st.Expected, n)
	}
}
