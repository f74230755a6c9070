package systemtest

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aelp/aelp/internal/kafkatest"
	"github.com/aelp/aelp/internal/kafkax"
	"github.com/aelp/aelp/internal/kafkax/kafkaxtest"
	"github.com/twmb/franz-go/pkg/kgo"
)

// fidelityRecords are the records of the source topic, each on a given
// partition and carrying an "fid" header that names it: a policy snapshot
// and its tombstone (a null value, a deletion on a compacted topic), an
// empty value, a null key, six records with an empty key, and headers with
// an empty, a null and a text value.
func fidelityRecords(t0 time.Time) []*kgo.Record {
	var recs []*kgo.Record
	add := func(p int32, key, value []byte, hs ...kgo.RecordHeader) {
		id := strconv.Itoa(len(recs))
		recs = append(recs, &kgo.Record{Partition: p, Key: key, Value: value,
			Timestamp: t0.Add(time.Duration(len(recs)) * time.Second),
			Headers:   append([]kgo.RecordHeader{{Key: "fid", Value: []byte(id)}}, hs...)})
	}
	add(0, []byte("exp-a"), []byte("snapshot-1"))
	add(0, []byte("exp-a"), nil)
	add(1, []byte("empty-value"), []byte{})
	add(2, nil, []byte("null key"))
	add(2, nil, nil)
	for i := range 6 {
		add(int32(i%3), []byte{}, fmt.Appendf(nil, "empty key %d", i))
	}
	add(1, []byte("headers"), []byte("h"),
		kgo.RecordHeader{Key: "empty", Value: []byte{}}, kgo.RecordHeader{Key: "null", Value: nil},
		kgo.RecordHeader{Key: "text", Value: []byte("x")})
	return recs
}

// bytesSig tells null from empty.
func bytesSig(b []byte) string {
	if b == nil {
		return "null"
	}
	return strconv.Quote(string(b))
}

// recordSig is what a record/replay round trip keeps: key, value, headers
// in order and the timestamp, null and empty told apart.
func recordSig(key, value []byte, hs []kgo.RecordHeader, ts time.Time) string {
	var b strings.Builder
	fmt.Fprintf(&b, "key=%s value=%s ts=%d headers=[", bytesSig(key), bytesSig(value), ts.UnixMilli())
	for i, h := range hs {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "%s=%s", h.Key, bytesSig(h.Value))
	}
	b.WriteString("]")
	return b.String()
}

func fid(hs []kgo.RecordHeader) string {
	for _, h := range hs {
		if h.Key == "fid" {
			return string(h.Value)
		}
	}
	return ""
}

// TestRecordReplayFidelity: a topic holding a tombstone, an empty value, a
// null and an empty key and empty and null header values, written and read
// back with kgo, goes through `aelp record` and `aelp replay` into a new
// topic that holds every record as it was: null stays null and empty stays
// empty, keys, values and header values alike, and the empty-key records
// are hashed to one partition as any key is (a null key would be spread).
// kcat, a librdkafka client, reads the copy the same way.
func TestRecordReplayFidelity(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.Options{})
	cfg := c.Config()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const src, dst = "fidelity.src", "fidelity.copy"
	if err := kafkax.EnsureTopics(ctx, cfg, kafkax.TopicSpec{Name: src, Partitions: 3}); err != nil {
		t.Fatal(err)
	}
	// A fixed time in the past: Apache Kafka refuses a record stamped more
	// than message.timestamp.after.max.ms (1 h by default) in the future.
	t0 := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	recs := fidelityRecords(t0)
	want := map[string]string{}
	for _, r := range recs {
		r.Topic = src
		want[fid(r.Headers)] = recordSig(r.Key, r.Value, r.Headers, r.Timestamp)
	}
	prod := kafkaxtest.Client(t, cfg, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	check := func(t *testing.T, what string, got map[string]string) {
		t.Helper()
		for id, w := range want {
			if got[id] != w {
				t.Errorf("%s: record %s is %s, want %s", what, id, got[id], w)
			}
		}
		if len(got) != len(want) {
			t.Errorf("%s: %d records, want %d", what, len(got), len(want))
		}
	}
	sigs := func(rs []*kgo.Record) map[string]string {
		m := map[string]string{}
		for _, r := range rs {
			m[fid(r.Headers)] = recordSig(r.Key, r.Value, r.Headers, r.Timestamp)
		}
		return m
	}
	// The broker keeps null and empty apart: the test's premise.
	check(t, "source read back with kgo", sigs(kafkaxtest.ConsumeAll(t, ctx, cfg, src, len(recs))))

	file := filepath.Join(t.TempDir(), "fidelity.avro")
	brokers := "--brokers=" + strings.Join(cfg.Brokers, ",")
	runAelp(t, 2*time.Minute, "record", brokers, "--topic="+src, "--out="+file)
	runAelp(t, 2*time.Minute, "replay", brokers, "--in="+file, "--topic="+dst)
	copied := kafkaxtest.ConsumeAll(t, ctx, cfg, dst, len(recs))
	check(t, "copy read back with kgo", sigs(copied))

	emptyKeyParts := map[int32]bool{}
	var policy []string
	for _, r := range copied {
		if r.Key != nil && len(r.Key) == 0 {
			emptyKeyParts[r.Partition] = true
		}
		if string(r.Key) == "exp-a" {
			policy = append(policy, bytesSig(r.Value))
		}
	}
	if len(emptyKeyParts) != 1 {
		t.Errorf("the empty-key records landed on partitions %v of the copy, want one (a key is hashed, a null key is not)", emptyKeyParts)
	}
	if !slices.Equal(policy, []string{`"snapshot-1"`, "null"}) {
		t.Errorf("exp-a's records in the copy: %v, want the snapshot then its tombstone", policy)
	}

	t.Run("kcat", func(t *testing.T) {
		kcat := lookTool(t, "kcat", "kcat")
		check(t, "copy read back with kcat", kcatRead(t, kcat, cfg, dst))
	})
}

// kcatRead reads topic to its end with kcat's JSON envelope (-J) and
// returns each record's signature by its fid header. kcat writes a null
// key, value or header value as JSON null and an empty one as "".
func kcatRead(t *testing.T, kcat string, cfg kafkax.Config, topic string) map[string]string {
	t.Helper()
	if cfg.TLS.Enable || cfg.SASL.Mechanism != "" {
		t.Skip("kcat is run here on PLAINTEXT only")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, kcat, "-b", strings.Join(cfg.Brokers, ","), "-C", "-t", topic, "-o", "beginning", "-e", "-q", "-J")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kcat: %v\n%s", err, out)
	}
	got := map[string]string{}
	for line := range strings.SplitSeq(strings.TrimSpace(string(out)), "\n") {
		var m struct {
			Key     *string   `json:"key"`
			Payload *string   `json:"payload"`
			TS      int64     `json:"ts"`
			Headers []*string `json:"headers"`
		}
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("kcat line %q: %v", line, err)
		}
		var hs []kgo.RecordHeader
		for i := 0; i+1 < len(m.Headers); i += 2 {
			h := kgo.RecordHeader{Key: *m.Headers[i]}
			if v := m.Headers[i+1]; v != nil {
				h.Value = []byte(*v)
			}
			hs = append(hs, h)
		}
		ptr := func(s *string) []byte {
			if s == nil {
				return nil
			}
			return []byte(*s)
		}
		got[fid(hs)] = recordSig(ptr(m.Key), ptr(m.Payload), hs, time.UnixMilli(m.TS))
	}
	return got
}
