package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aelp/aelp/internal/kafkatest"
	"github.com/aelp/aelp/internal/kafkax"
	"github.com/aelp/aelp/learner"
	"github.com/aelp/aelp/producers"
	"github.com/aelp/aelp/schemas"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
)

func TestToolsUsageErrors(t *testing.T) {
	tests := [][]string{
		{"tail", "--format", "xml"},
		{"tail", "--from-beginning", "--since", "5m"},
		{"tail", "--max", "-1"},
		{"tail", "--since", "soon"},
		{"record", "--topic", "t"},
		{"record", "--out", "x.avro"},
		{"record", "--topic", "t", "--out", "x.avro", "--codec", "zstd"},
		{"record", "--topic", "t", "--out", "x.avro", "--from", "last tuesday"},
		{"replay", "--in", "x.avro"},
		{"replay", "--in", "x.avro", "--topic", "t", "--rate", "-5"},
		{"plot", "--out", "x.png"},
		{"plot", "--experiment", "e", "--out", "x.jpg"},
		{"plot", "--experiment", "e", "--out", "x.png", "extra"},
		{"evaluate", "--policy", "snapshots"},
		{"evaluate", "--policy", "latest"},
		{"learn", "--experiment", "e", "--fresh", "--ground-truth-key", ""},
		{"simulate", "--experiment", "e", "--users", "1", "--shutdown-timeout", "0s"},
		{"broker", "--shutdown-timeout", "-1s"},
	}
	for _, args := range tests {
		var stdout, stderr bytes.Buffer
		if code := realMain(args, &stdout, &stderr); code != 2 {
			t.Errorf("aelp %s: exit %d, want 2", strings.Join(args, " "), code)
		}
		if n := strings.Count(stderr.String(), "\n"); n != 1 {
			t.Errorf("aelp %s: stderr has %d lines, want 1: %q", strings.Join(args, " "), n, stderr.String())
		}
	}
}

func TestProgressBar(t *testing.T) {
	tests := []struct {
		done, total int64
		want        string
	}{
		{0, 100, "[..........]   0.0%  0/100 records"},
		{50, 100, "[#####.....]  50.0%  50/100 records"},
		{100, 100, "[##########] 100.0%  100/100 records"},
		{120, 100, "[##########] 100.0%  120/100 records"},
		{0, 0, "[##########] 100.0%  0/0 records"},
	}
	for _, tc := range tests {
		if got := progressBar(tc.done, tc.total, 10); got != tc.want {
			t.Errorf("progressBar(%d, %d) = %q, want %q", tc.done, tc.total, got, tc.want)
		}
	}
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1536: "1.5 KiB", 5 << 20: "5.0 MiB"} {
		if got := byteSize(n); got != want {
			t.Errorf("byteSize(%d) = %q, want %q", n, got, want)
		}
	}
}

// toolsGet returns the status and body of url ("" and 0 when the request
// fails).
func toolsGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestSimulateMetricsAndHealth runs the simulate role with the --http
// wiring (obs registry and health) against a broker that is down at first:
// /healthz answers 503 until the broker is back and the role has reached
// it, then 200; the /metrics scrape parses and counts every published
// experience.
func TestSimulateMetricsAndHealth(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.Options{})
	cfg := c.Config()
	c.Stop(t)

	log := zerolog.Nop()
	srv, err := startServing("127.0.0.1:0", log)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.close()
	health := "http://" + srv.srv.Addr() + "/healthz"

	s, err := producers.NewSimulator(producers.SimulateConfig{Kafka: cfg, ExperimentID: "http-test", Users: 300,
		Workers: 1, Seed: 3, ProgressEvery: -1, Log: log, Registry: srv.reg, Health: srv.health})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	type result struct {
		rep producers.SimulateReport
		err error
	}
	done := make(chan result, 1)
	go func() {
		rep, err := s.Run(ctx)
		done <- result{rep, err}
	}()
	// The broker is down: the role keeps retrying and is not ready.
	for range 5 {
		if code, body := toolsGet(t, health); code != http.StatusServiceUnavailable || !strings.Contains(body, "connecting to the broker") {
			t.Fatalf("/healthz with the broker down = %d %q, want 503 connecting to the broker", code, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.StartAgain(t)
	var res result
	select {
	case res = <-done:
	case <-ctx.Done():
		t.Fatal("simulate did not finish after the broker came back")
	}
	if res.err != nil {
		t.Fatal(res.err)
	}
	if code, body := toolsGet(t, health); code != http.StatusOK || body != "ok\n" {
		t.Errorf("/healthz after connecting = %d %q, want 200 ok", code, body)
	}
	code, body := toolsGet(t, "http://"+srv.srv.Addr()+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics status %d", code)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	f, ok := fams["aelp_simulate_experiences_total"]
	if !ok || len(f.GetMetric()) != 1 {
		t.Fatalf("aelp_simulate_experiences_total missing from the scrape")
	}
	if got := f.GetMetric()[0].GetCounter().GetValue(); got != float64(res.rep.Experiences) || got == 0 {
		t.Errorf("aelp_simulate_experiences_total = %v, want %d (> 0)", got, res.rep.Experiences)
	}
	var episodes float64
	for _, m := range fams["aelp_simulate_episodes_total"].GetMetric() {
		episodes += m.GetCounter().GetValue()
	}
	if episodes != 300 {
		t.Errorf("aelp_simulate_episodes_total sums to %v, want 300", episodes)
	}
}

// writeTagged publishes n seeded TaggedExperience records of experiment
// exp, keyed by user, each with a header, to topic.
func writeTagged(t *testing.T, ctx context.Context, cfg kafkax.Config, topic, exp string, n int) {
	t.Helper()
	rng := rand.New(rand.NewPCG(11, 0))
	msgs := make([]kafka.Message, 0, n)
	t0 := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	for i := range n {
		user := fmt.Sprintf("user-%d", i/5)
		crisis := (i/5)%10 == 0
		state, next := make([]float32, 16), make([]float32, 16)
		for j := range state {
			state[j], next[j] = float32(rng.NormFloat64()), float32(rng.NormFloat64())
		}
		te := schemas.TaggedExperience{
			// Ids unique per topic too: the learner drops an id its
			// buffer holds, and TestLearnTransactions re-publishes a
			// second topic's records.
			Experience: schemas.Experience{ID: fmt.Sprintf("%s-%s-%d", exp, topic, i), ExperimentID: exp, EpisodeID: "ep-" + user,
				UserID: user, Step: int32(i % 5), Timestamp: t0.Add(time.Duration(i) * time.Millisecond),
				State: state, NextState: next, Action: int32(rng.IntN(12)), BehaviorLogProb: math.Log(1.0 / 12),
				PolicyVersion: -1, Reward: rng.Float64(), Done: i%5 == 4, Value: rng.Float64()},
			EventType: schemas.EventRegular, TagSource: schemas.TagDefault, TaggedAt: t0,
		}
		if crisis {
			te.EventType, te.TagSource, te.TagScore = schemas.EventCrisis, schemas.TagLabel, 1
		}
		v, err := schemas.MarshalTaggedExperience(nil, &te)
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, kafka.Message{Key: []byte(user), Value: v, Time: te.Timestamp,
			Headers: []kafka.Header{{Key: "source", Value: []byte("tools-test")}}})
	}
	if err := kafkax.EnsureTopics(ctx, cfg, kafkax.TopicSpec{Name: topic, Partitions: 3}); err != nil {
		t.Fatal(err)
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

// TestToolsRecordReplayLearnTailPlot drives the CLI end to end on the
// embedded broker: record a tagged topic to a file, replay it into a new
// topic, learn --bounded on the copy (exit 0 with a checkpoint), then tail
// the metrics it published as JSON lines and plot them.
func TestToolsRecordReplayLearnTailPlot(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.Options{})
	cfg := c.Config()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const exp, n = "tools-exp", 2000
	writeTagged(t, ctx, cfg, "tools.tagged", exp, n)
	dir := t.TempDir()
	file := filepath.Join(dir, "tagged.avro")
	brokers := "--brokers=" + c.Addr()
	quiet := "--log-level=error"

	run := func(args ...string) (string, string) {
		t.Helper()
		var stdout, stderr bytes.Buffer
		var err error
		switch args[0] {
		case "record":
			err = recordCmd(ctx, args[1:], &stdout, &stderr, false)
		case "replay":
			err = replayCmd(ctx, args[1:], &stdout)
		case "tail":
			err = tailCmd(ctx, args[1:], &stdout, false)
		case "plot":
			err = plotCmd(ctx, args[1:], &stdout)
		}
		if err != nil {
			t.Fatalf("aelp %s: %v\nstderr: %s", strings.Join(args, " "), err, stderr.String())
		}
		return stdout.String(), stderr.String()
	}

	out, _ := run("record", brokers, quiet, "--topic=tools.tagged", "--out="+file, "--codec=snappy")
	if !strings.HasPrefix(out, fmt.Sprintf("recorded %d records of tools.tagged (3 partitions", n)) {
		t.Errorf("record summary = %q", out)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("%d files in the output dir, want only the recording", len(entries))
	}
	out, _ = run("replay", brokers, quiet, "--in="+file, "--topic=tools.tagged.copy")
	if want := fmt.Sprintf("replayed %d records of tools.tagged from %s to tools.tagged.copy (created, 3 partitions)", n, file); !strings.HasPrefix(out, want) {
		t.Errorf("replay summary = %q, want prefix %q", out, want)
	}
	src, dst := kafkatest.ReadAll(t, cfg, "tools.tagged"), kafkatest.ReadAll(t, cfg, "tools.tagged.copy")
	if len(dst) != len(src) {
		t.Fatalf("copy holds %d records, source %d", len(dst), len(src))
	}
	pairs := map[string]int{}
	for _, m := range src {
		pairs[string(m.Key)+"\x00"+string(m.Value)]++
	}
	for _, m := range dst {
		pairs[string(m.Key)+"\x00"+string(m.Value)]--
		if len(m.Headers) != 1 || string(m.Headers[0].Value) != "tools-test" {
			t.Fatalf("copied record lost its header: %v", m.Headers)
		}
	}
	for k, d := range pairs {
		if d != 0 {
			t.Fatalf("key/value pair %q differs by %d between source and copy", k[:strings.IndexByte(k, 0)], d)
		}
	}

	ckpt := filepath.Join(dir, "learner.ckpt")
	var stdout, stderr bytes.Buffer
	code := realMain([]string{"learn", brokers, quiet, "--experiment=" + exp, "--tagged-topic=tools.tagged.copy",
		"--metrics-topic=tools.metrics", "--policy-topic=tools.policy", "--dead-letter-topic=tools.dlq",
		"--bounded", "--fresh", "--checkpoint=" + ckpt, "--min-buffer=200", "--batch-size=64", "--metrics-every=5"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("learn --bounded exit %d: %s", code, stderr.String())
	}
	cp, err := learner.ReadCheckpoint(ckpt)
	if err != nil {
		t.Fatal(err)
	}
	if cp.ExperimentID != exp || cp.TaggedTopic != "tools.tagged.copy" || cp.Inserted != n {
		t.Errorf("checkpoint: experiment %q topic %q inserted %d, want %q, tools.tagged.copy, %d", cp.ExperimentID, cp.TaggedTopic, cp.Inserted, exp, n)
	}
	var read int64
	for _, o := range cp.Offsets {
		read += o
	}
	if read != n {
		t.Errorf("checkpoint offsets sum to %d, want %d (everything read)", read, n)
	}

	out, _ = run("tail", brokers, quiet, "--topic=tools.metrics", "--from-beginning", "--max=3", "--format=json", "--experiment="+exp)
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("tail printed %d lines, want 3:\n%s", len(lines), out)
	}
	for _, l := range lines {
		var got struct {
			Topic  string         `json:"topic"`
			Key    string         `json:"key"`
			Schema string         `json:"schema"`
			Value  map[string]any `json:"value"`
		}
		if err := json.Unmarshal([]byte(l), &got); err != nil {
			t.Fatalf("tail line is not JSON: %v: %s", err, l)
		}
		if got.Topic != "tools.metrics" || got.Key != exp || got.Schema != schemas.NameTrainingMetrics || got.Value["experiment_id"] != exp {
			t.Errorf("tail line = %+v", got)
		}
		if _, ok := got.Value["policy_loss"].(float64); !ok {
			t.Errorf("policy_loss = %v, want a number", got.Value["policy_loss"])
		}
	}
	out, _ = run("tail", brokers, quiet, "--topic=tools.metrics", "--from-beginning", "--until-end", "--format=table")
	if !strings.HasPrefix(out, "TIME") || !strings.Contains(out, exp) {
		t.Errorf("tail table:\n%s", out)
	}

	img := filepath.Join(dir, "training.png")
	out, _ = run("plot", brokers, quiet, "--experiment="+exp, "--topic=tools.metrics", "--out="+img)
	if !strings.HasPrefix(out, "wrote "+img+": 5 panels") {
		t.Errorf("plot summary = %q", out)
	}
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := png.Decode(f); err != nil {
		t.Fatalf("plot output is not a PNG: %v", err)
	}
	var perr bytes.Buffer
	if err := plotCmd(ctx, []string{brokers, quiet, "--experiment=nobody", "--topic=tools.metrics", "--out=" + img}, &perr); err == nil {
		t.Error("plot of an experiment without metrics succeeded")
	}
}
