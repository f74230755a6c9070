package consumers

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aelp/aelp/internal/kafkatest"
	"github.com/aelp/aelp/internal/kafkax"
	"github.com/aelp/aelp/internal/kafkax/kafkaxtest"
	"github.com/aelp/aelp/schemas"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
)

var tailT0 = time.Date(2026, 5, 1, 10, 30, 15, 250_000_000, time.UTC)

func sampleMetrics(exp string, update int64) schemas.TrainingMetrics {
	prec := 0.9
	return schemas.TrainingMetrics{
		ExperimentID: exp, LearnerID: "learner-1", Update: update, Timestamp: tailT0,
		EnableImportanceSampling: true, CrisisParentWeight: 5, RegularParentWeight: 1,
		CrisisParentRatioInBatch: 0.2266, ExpectedCrisisRatio: 0.226, CrisisFractionInBuffer: 0.1,
		ImportanceWeightsMean: 0.61, ImportanceWeightsMin: 0.38, ImportanceWeightsMax: 1,
		Beta: 0.52, PolicyLoss: -0.0123, ValueLoss: 0.456, Entropy: 2.4, ApproxKL: 0.00071,
		ClipFrac: 0.03, ExplainedVariance: math.NaN(), BufferSize: 4096, Updates: update,
		TagPrecision: &prec,
	}
}

func sampleTagged(id, user string) schemas.TaggedExperience {
	return schemas.TaggedExperience{
		Experience: schemas.Experience{ID: id, ExperimentID: "exp-a", EpisodeID: "ep-" + user, UserID: user, Step: 2,
			Timestamp: tailT0, State: []float32{0.5, -1}, NextState: []float32{0.25, 1}, Action: 3,
			BehaviorLogProb: -2.48, PolicyVersion: -1, Reward: 1.5, Value: 3, Metadata: map[string]string{"campaign": "c1"}},
		EventType: schemas.EventCrisis, TagSource: schemas.TagLabel, TagScore: 1, TaggedAt: tailT0,
	}
}

func TestAppendJSON(t *testing.T) {
	mv, err := schemas.MarshalTrainingMetrics(nil, ptr(sampleMetrics("exp-a", 50)))
	if err != nil {
		t.Fatal(err)
	}
	te := sampleTagged("id-1", "u-7")
	tv, err := schemas.MarshalTaggedExperience(nil, &te)
	if err != nil {
		t.Fatal(err)
	}
	garbage := []byte{0xC3, 0x01, 1, 2, 3}
	tests := []struct {
		name  string
		msg   kafka.Message
		check func(t *testing.T, got map[string]any)
	}{
		{"metrics", kafka.Message{Topic: "aelp.metrics", Partition: 0, Offset: 7, Key: []byte("exp-a"), Value: mv, Time: tailT0},
			func(t *testing.T, got map[string]any) {
				v := got["value"].(map[string]any)
				wantEq(t, "schema", got["schema"], "aelp.TrainingMetrics")
				wantEq(t, "schema_version", got["schema_version"], 3.0)
				wantEq(t, "key", got["key"], "exp-a")
				wantEq(t, "timestamp", got["timestamp"], "2026-05-01T10:30:15.250Z")
				wantEq(t, "update", v["update"], 50.0)
				wantEq(t, "approx_kl", v["approx_kl"], 0.00071)
				wantEq(t, "explained_variance (NaN)", v["explained_variance"], "NaN")
				wantEq(t, "tag_precision (union flattened)", v["tag_precision"], 0.9)
				wantEq(t, "tag_recall (null)", v["tag_recall"], nil)
				wantEq(t, "value timestamp", v["timestamp"], "2026-05-01T10:30:15.250Z")
			}},
		{"tagged with headers", kafka.Message{Topic: "aelp.experiences.tagged", Partition: 3, Offset: 12, Key: []byte("u-7"), Value: tv, Time: tailT0,
			Headers: []kafka.Header{{Key: "trace", Value: []byte("abc")}, {Key: "bin", Value: []byte{0xff, 0x00}}}},
			func(t *testing.T, got map[string]any) {
				v := got["value"].(map[string]any)
				wantEq(t, "event_type", v["event_type"], "CRISIS_PARENT")
				x := v["experience"].(map[string]any)
				wantEq(t, "id", x["id"], "id-1")
				wantEq(t, "state[1]", x["state"].([]any)[1], -1.0)
				wantEq(t, "metadata", x["metadata"].(map[string]any)["campaign"], "c1")
				hs := got["headers"].([]any)
				wantEq(t, "headers", len(hs), 2)
				wantEq(t, "header 0", hs[0].(map[string]any)["value"], "abc")
				wantEq(t, "header 1 base64", hs[1].(map[string]any)["value_base64"], base64.StdEncoding.EncodeToString([]byte{0xff, 0}))
			}},
		{"dead letter, undecodable, null key", kafka.Message{Topic: "aelp.deadletter", Offset: 1, Value: garbage, Time: tailT0,
			Headers: []kafka.Header{{Key: kafkax.HeaderError, Value: []byte("bad body")}}},
			func(t *testing.T, got map[string]any) {
				wantEq(t, "key", got["key"], nil)
				wantEq(t, "value_base64", got["value_base64"], base64.StdEncoding.EncodeToString(garbage))
				if s, _ := got["error"].(string); s == "" {
					t.Error("no error field")
				}
				if _, ok := got["value"]; ok {
					t.Error("value present for an undecodable record")
				}
				wantEq(t, "aelp.error header", got["headers"].([]any)[0].(map[string]any)["value"], "bad body")
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := DecodeEntry(tc.msg)
			line, err := AppendJSON(nil, &e)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.ContainsRune(line, '\n') {
				t.Fatal("JSON spans lines")
			}
			var got map[string]any
			if err := json.Unmarshal(line, &got); err != nil {
				t.Fatalf("not valid JSON: %v\n%s", err, line)
			}
			wantEq(t, "topic", got["topic"], tc.msg.Topic)
			wantEq(t, "partition", got["partition"], float64(tc.msg.Partition))
			wantEq(t, "offset", got["offset"], float64(tc.msg.Offset))
			tc.check(t, got)
		})
	}
}

func TestTableWriter(t *testing.T) {
	var out bytes.Buffer
	tw := &TableWriter{W: &out, HeaderEvery: 2}
	for u := int64(1); u <= 3; u++ {
		mv, _ := schemas.MarshalTrainingMetrics(nil, ptr(sampleMetrics("exp-a", u*50)))
		e := DecodeEntry(kafka.Message{Key: []byte("exp-a"), Value: mv, Time: tailT0})
		if err := tw.Write(&e); err != nil {
			t.Fatal(err)
		}
	}
	te := sampleTagged("id-1", "u-7")
	tv, _ := schemas.MarshalTaggedExperience(nil, &te)
	e := DecodeEntry(kafka.Message{Partition: 2, Offset: 9, Key: []byte("u-7"), Value: tv, Time: tailT0})
	if err := tw.Write(&e); err != nil {
		t.Fatal(err)
	}
	e = DecodeEntry(kafka.Message{Offset: 4, Value: []byte("junk"), Time: tailT0,
		Headers: []kafka.Header{{Key: kafkax.HeaderError, Value: []byte("unknown schema")}}})
	if err := tw.Write(&e); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 7 {
		t.Fatalf("%d lines, want 7 (2 headers, 3 rows, 2 summaries):\n%s", len(lines), out.String())
	}
	header := lines[0]
	if !strings.HasPrefix(header, "TIME") || lines[3] != header {
		t.Errorf("header lines 0 and 3 = %q, %q", lines[0], lines[3])
	}
	// Rows are aligned with the header: the UPDATE column ends where the
	// header's does.
	end := strings.Index(header, "UPDATE") + len("UPDATE")
	for _, i := range []int{1, 2, 4} {
		row := lines[i]
		if len(row) <= end || row[end-1] != '0' || row[end] != ' ' {
			t.Errorf("row %d not aligned under UPDATE: %q", i, row)
		}
		for _, want := range []string{"10:30:15.250", "exp-a", "4096", "10.0%", "22.7%", "22.6%", "0.610", "-0.0123", "0.00071", "NaN"} {
			if !strings.Contains(row, want) {
				t.Errorf("row %d lacks %q: %q", i, want, row)
			}
		}
	}
	for _, want := range []string{"p2@9", "key=u-7", "TaggedExperience v2", "id=id-1", "event_type=CRISIS_PARENT", "reward=1.5"} {
		if !strings.Contains(lines[5], want) {
			t.Errorf("tagged summary lacks %q: %q", want, lines[5])
		}
	}
	for _, want := range []string{"p0@4", "key=-", "UNDECODABLE", "value=" + base64.StdEncoding.EncodeToString([]byte("junk")), `[aelp.error="unknown schema"]`} {
		if !strings.Contains(lines[6], want) {
			t.Errorf("dead-letter summary lacks %q: %q", want, lines[6])
		}
	}
}

func TestMatches(t *testing.T) {
	mv, _ := schemas.MarshalTrainingMetrics(nil, ptr(sampleMetrics("exp-a", 1)))
	te := sampleTagged("id", "u-1")
	tv, _ := schemas.MarshalTaggedExperience(nil, &te)
	tests := []struct {
		key   string
		value []byte
		id    string
		want  bool
	}{
		{"exp-a", mv, "exp-a", true},
		{"other", mv, "exp-a", true}, // value's experiment_id
		{"exp-b", mv, "exp-b", true}, // key
		{"x", mv, "exp-b", false},
		{"u-1", tv, "exp-a", true}, // nested experience.experiment_id
		{"u-1", tv, "exp-b", false},
		{"k", []byte("junk"), "exp-a", false},
	}
	for _, tc := range tests {
		e := DecodeEntry(kafka.Message{Key: []byte(tc.key), Value: tc.value})
		if got := e.Matches(tc.id); got != tc.want {
			t.Errorf("key %q, Matches(%q) = %v, want %v", tc.key, tc.id, got, tc.want)
		}
	}
}

// TestTailEndToEnd publishes metrics of two experiments, a tagged record
// and a dead letter on the embedded broker, then tails: JSON until the end,
// the table with --max, and an experiment filter.
func TestTailEndToEnd(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.Options{})
	cfg := c.Config()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const topic = "tail.test"
	if err := kafkax.EnsureTopics(ctx, cfg, kafkax.TopicSpec{Name: topic, Partitions: 2}); err != nil {
		t.Fatal(err)
	}
	var msgs []kafka.Message
	for u := int64(1); u <= 6; u++ {
		exp := "exp-a"
		if u%3 == 0 {
			exp = "exp-b"
		}
		v, _ := schemas.MarshalTrainingMetrics(nil, ptr(sampleMetrics(exp, u)))
		msgs = append(msgs, kafka.Message{Key: []byte(exp), Value: v, Time: tailT0})
	}
	te := sampleTagged("id-1", "u-7")
	tv, _ := schemas.MarshalTaggedExperience(nil, &te)
	msgs = append(msgs, kafka.Message{Key: []byte("u-7"), Value: tv, Time: tailT0},
		kafkax.DeadLetter(kafka.Message{Topic: "aelp.experiences.raw", Partition: 4, Offset: 99, Key: []byte("exp-a"),
			Value: []byte("garbage"), Time: tailT0}, "unknown schema"))
	w, err := kafkax.NewWriter(cfg, topic, kafkax.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := kafkax.WriteAll(ctx, cfg, w, zerolog.Nop(), msgs); err != nil {
		t.Fatal(err)
	}
	w.Close()

	t.Run("json until end", func(t *testing.T) {
		var out bytes.Buffer
		st, err := Tail(ctx, TailConfig{Kafka: cfg, Topic: topic, FromBeginning: true, UntilEnd: true, Out: &out, Log: zerolog.Nop()})
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
		if st.Printed != 8 || len(lines) != 8 || st.Undecodable != 1 {
			t.Fatalf("printed %d (%d lines, %d undecodable), want 8 lines, 1 undecodable", st.Printed, len(lines), st.Undecodable)
		}
		schemasSeen := map[string]int{}
		for _, l := range lines {
			var got map[string]any
			if err := json.Unmarshal([]byte(l), &got); err != nil {
				t.Fatalf("invalid JSON line %q: %v", l, err)
			}
			s, _ := got["schema"].(string)
			if s == "" {
				hs := got["headers"].([]any)
				if len(hs) != 4 || hs[0].(map[string]any)["key"] != kafkax.HeaderError {
					t.Errorf("dead letter headers = %v, want the four aelp.* headers", hs)
				}
			}
			schemasSeen[s]++
		}
		if schemasSeen["aelp.TrainingMetrics"] != 6 || schemasSeen["aelp.TaggedExperience"] != 1 || schemasSeen[""] != 1 {
			t.Errorf("schemas seen = %v", schemasSeen)
		}
	})
	t.Run("table with max and experiment", func(t *testing.T) {
		var out bytes.Buffer
		st, err := Tail(ctx, TailConfig{Kafka: cfg, Topic: topic, FromBeginning: true, Experiment: "exp-a", Max: 3,
			Format: TailTable, Out: &out, Log: zerolog.Nop()})
		if err != nil {
			t.Fatal(err)
		}
		if st.Printed != 3 {
			t.Fatalf("printed %d, want 3", st.Printed)
		}
		if strings.Contains(out.String(), "exp-b") {
			t.Errorf("filtered experiment shown:\n%s", out.String())
		}
		if !strings.HasPrefix(out.String(), "TIME") {
			t.Errorf("no header:\n%s", out.String())
		}
	})
	t.Run("follows new records until max", func(t *testing.T) {
		var out syncBuffer
		done := make(chan error, 1)
		go func() {
			_, err := Tail(ctx, TailConfig{Kafka: cfg, Topic: topic, Max: 2, Out: &out, Log: zerolog.Nop()})
			done <- err
		}()
		w, err := kafkax.NewWriter(cfg, topic, kafkax.WriterOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		// Tail starts at the end: keep publishing until it has seen two new
		// records (it may start after the first ones are written).
		for i := int64(100); ; i++ {
			v, _ := schemas.MarshalTrainingMetrics(nil, ptr(sampleMetrics("exp-new", i)))
			if err := w.WriteMessages(ctx, kafka.Message{Key: []byte("exp-new"), Value: v}); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
				if n := strings.Count(out.String(), `"key":"exp-new"`); n != 2 || strings.Count(out.String(), "\n") != 2 {
					t.Errorf("%d new records printed, want 2:\n%s", n, out.String())
				}
				if strings.Contains(out.String(), `"exp-a"`) {
					t.Error("tail without --from-beginning printed old records")
				}
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	})
	t.Run("read metrics", func(t *testing.T) {
		ms, skipped, err := ReadMetrics(ctx, cfg, topic, "exp-b", kafkax.ReadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(ms) != 2 || ms[0].ExperimentID != "exp-b" || skipped != 2 {
			t.Errorf("got %d exp-b metrics, %d skipped; want 2 and 2", len(ms), skipped)
		}
	})
}

func TestTailConfigValidate(t *testing.T) {
	out := &bytes.Buffer{}
	kc := kafkax.Config{Brokers: []string{"127.0.0.1:1"}}
	tests := []struct {
		name string
		cfg  TailConfig
		ok   bool
	}{
		{"ok", TailConfig{Kafka: kc, Out: out}, true},
		{"no out", TailConfig{Kafka: kc}, false},
		{"both starts", TailConfig{Kafka: kc, Out: out, FromBeginning: true, Since: time.Minute}, false},
		{"negative max", TailConfig{Kafka: kc, Out: out, Max: -1}, false},
		{"bad format", TailConfig{Kafka: kc, Out: out, Format: 9}, false},
	}
	for _, tc := range tests {
		if err := tc.cfg.Validate(); (err == nil) != tc.ok {
			t.Errorf("%s: Validate() = %v, want ok %v", tc.name, err, tc.ok)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for one writer and one reader.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func ptr[T any](v T) *T { return &v }

func wantEq(t *testing.T, what string, got, want any) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %#v, want %#v", what, got, want)
	}
}

// tailValues tails topic from the beginning to the end as JSON lines and
// returns the printed values (the raw bytes: these records are not Avro)
// per partition, failing on any line that is not one of the topic's data
// records.
func tailValues(t *testing.T, ctx context.Context, cfg TailConfig) map[int][]string {
	t.Helper()
	var out bytes.Buffer
	cfg.FromBeginning, cfg.UntilEnd, cfg.Out, cfg.Log = true, true, &out, zerolog.Nop()
	if _, err := Tail(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	got := map[int][]string{}
	for _, l := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
		if l == "" {
			continue
		}
		var e struct {
			Partition int    `json:"partition"`
			Value     string `json:"value_base64"`
			Headers   []any  `json:"headers"`
		}
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		v, err := base64.StdEncoding.DecodeString(e.Value)
		if err != nil || len(e.Headers) != 1 {
			t.Fatalf("line %q: value %q (%v), headers %v: not a data record of the test (a control record?)", l, v, err, e.Headers)
		}
		got[e.Partition] = append(got[e.Partition], string(v))
	}
	return got
}

// txnTopic starts a broker and writes kafkaxtest.WriteTransactions (no
// transaction left open) to a new topic on it (WriteTransactions creates it); it
// returns the broker's configuration, a context bounding the test and
// what was written.
func txnTopic(t *testing.T, topic string) (kafkax.Config, context.Context, *kafkaxtest.TxnLog) {
	t.Helper()
	cfg := kafkatest.Start(t, kafkatest.Options{}).Config()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return cfg, ctx, kafkaxtest.WriteTransactions(t, cfg, topic, false)
}

// TestTailTransactions tails a topic holding committed and aborted
// transactions interleaved with plain records: by default only the plain
// and committed records are printed, never an aborted record or a
// transaction marker; --isolation-level read_uncommitted prints every data
// record (still no marker).
func TestTailTransactions(t *testing.T) {
	const topic = "tail.txn"
	cfg, ctx, log := txnTopic(t, topic)
	for _, tc := range []struct {
		iso  kafkax.Isolation
		want map[int][]string
	}{{kafkax.ReadCommitted, log.Committed}, {kafkax.ReadUncommitted, log.Uncommitted}} {
		got := tailValues(t, ctx, TailConfig{Kafka: cfg, Topic: topic, Isolation: tc.iso})
		for _, p := range kafkaxtest.Partitions {
			if !slices.Equal(got[p], tc.want[p]) {
				t.Errorf("%v: partition %d printed %q, want %q", tc.iso, p, got[p], tc.want[p])
			}
		}
	}
}

// TestTableWriterOPE: a metrics record with an off-policy evaluation gets
// the gate's line and one line per segment under its row.
func TestTableWriterOPE(t *testing.T) {
	var out bytes.Buffer
	tw := &TableWriter{W: &out}
	m := sampleMetrics("exp-a", 100)
	lcb := 1.386
	m.OPE = &schemas.OffPolicyEvaluation{PolicyVersion: 12, ServingVersion: -1, Estimator: "WPDIS", Confidence: 0.95,
		Journeys: 13381, Reason: "lcb-not-above-serving", Detail: "overall: lower bound 0.89 not above the serving policy's 1.386",
		Segments: []schemas.OffPolicySegment{
			{Segment: "all", Journeys: 13381, Estimate: 1.161, LCB: 0.89, UCB: 1.482, ESS: 1129, ServingLCB: &lcb},
			{Segment: "tag CRISIS_PARENT", Journeys: 1349, Estimate: 14.799, LCB: 12.771, UCB: 17.186, ESS: 47},
		}}
	mv, err := schemas.MarshalTrainingMetrics(nil, &m)
	if err != nil {
		t.Fatal(err)
	}
	e := DecodeEntry(kafka.Message{Key: []byte("exp-a"), Value: mv, Time: tailT0})
	if err := tw.Write(&e); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 6 {
		t.Fatalf("%d lines, want 6 (header, row, gate line, segment header, 2 segments):\n%s", len(lines), out.String())
	}
	for i, want := range map[int][]string{
		2: {"snapshot v12", "WPDIS 95%", "13381 held-out journeys", "serving logging policy", "HELD BACK", "(lcb-not-above-serving)"},
		3: {"SEGMENT", "ESTIMATE", "LCB", "UCB", "ESS", "SERVING_LCB"},
		4: {"all", "13381", "1.161", "0.89", "1.482", "1129", "1.386"},
		5: {"tag CRISIS_PARENT", "1349", "14.8", "12.77", "17.19", "47", "—"},
	} {
		for _, w := range want {
			if !strings.Contains(lines[i], w) {
				t.Errorf("line %d lacks %q: %q", i, w, lines[i])
			}
		}
	}
}

// TestTailTagging: a metrics record's per-source tag accuracy shows as one
// "tags:" line under its table row ("—" for an undefined figure) and as the
// tagging array, unions flattened, in the JSON form.
func TestTailTagging(t *testing.T) {
	m := sampleMetrics("exp-a", 100)
	one, brier, ece, zero := 1.0, 0.0123, 0.0456, 0.0
	m.Tagging = []schemas.TagSourceAccuracy{
		{Source: "LABEL", Records: 812, Precision: &one, Recall: &one, F1: &one, Brier: &zero, ECE: &zero},
		{Source: "DEFAULT", Records: 9000, Recall: &zero, F1: &zero, Brier: &brier, ECE: &ece},
	}
	mv, err := schemas.MarshalTrainingMetrics(nil, &m)
	if err != nil {
		t.Fatal(err)
	}
	e := DecodeEntry(kafka.Message{Key: []byte("exp-a"), Value: mv, Time: tailT0})
	var out bytes.Buffer
	if err := (&TableWriter{W: &out}).Write(&e); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines, want 3 (header, row, tags):\n%s", len(lines), out.String())
	}
	want := "    tags: LABEL n=812 P=1.000 R=1.000 F1=1.000 Brier=0.0000 ECE=0.0000 | DEFAULT n=9000 P=— R=0.000 F1=0.000 Brier=0.0123 ECE=0.0456"
	if lines[2] != want {
		t.Errorf("tags line\n got %q\nwant %q", lines[2], want)
	}
	line, err := AppendJSON(nil, &e)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(line, &got); err != nil {
		t.Fatalf("%v: %s", err, line)
	}
	tagging, ok := got["value"].(map[string]any)["tagging"].([]any)
	if !ok || len(tagging) != 2 {
		t.Fatalf("JSON tagging %v", got["value"].(map[string]any)["tagging"])
	}
	d := tagging[1].(map[string]any)
	wantEq(t, "source", d["source"], "DEFAULT")
	wantEq(t, "records", d["records"], 9000.0)
	wantEq(t, "precision (null)", d["precision"], nil)
	wantEq(t, "ece (union flattened)", d["ece"], 0.0456)
}
