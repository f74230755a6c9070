package learner

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/aelp/aelp/internal/kafkatest"
	"github.com/aelp/aelp/internal/kafkax"
	"github.com/aelp/aelp/internal/stats"
	"github.com/aelp/aelp/learner/ppo"
	"github.com/aelp/aelp/producers"
	"github.com/aelp/aelp/producers/sim"
	"github.com/aelp/aelp/schemas"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
)

// fillTagged publishes users' journeys from the simulator's logging policy
// as TaggedExperience records tagged with the true segment, plus extra
// raw bytes, and returns the number of valid records.
func fillTagged(t *testing.T, cfg kafkax.Config, topic, experiment string, users int, seed uint64, extra ...[]byte) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := kafkax.EnsureTopics(ctx, cfg, kafkax.TopicSpec{Name: topic, Partitions: 3}); err != nil {
		t.Fatal(err)
	}
	s, err := sim.New(sim.DefaultConfig(), seed, 0)
	if err != nil {
		t.Fatal(err)
	}
	var msgs []kafka.Message
	n := 0
	for range users {
		s.RunEpisode(sim.Uniform{N: 12}, func(tr *sim.Transition) {
			n++
			te := schemas.TaggedExperience{Experience: schemas.Experience{ExperimentID: experiment}, TagSource: schemas.TagLabel}
			producers.FillExperience(&te.Experience, tr, fmt.Sprintf("%s-%d", experiment, n), -1, time.Now())
			te.TaggedAt = te.Timestamp
			if tr.Crisis {
				te.EventType = schemas.EventCrisis
			}
			val, err := schemas.MarshalTaggedExperience(nil, &te)
			if err != nil {
				t.Fatal(err)
			}
			msgs = append(msgs, kafka.Message{Key: []byte(tr.UserID), Value: val})
		})
	}
	for _, b := range extra {
		msgs = append(msgs, kafka.Message{Key: []byte("bad"), Value: b})
	}
	w, err := kafkax.NewWriter(cfg, topic, kafkax.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	return n
}

func testConfig(cfg kafkax.Config, topic, experiment, ckpt string) Config {
	return Config{Kafka: cfg, TaggedTopic: topic, ExperimentID: experiment, CheckpointPath: ckpt, Fresh: true,
		MinBuffer: 500, BatchSize: 128, MetricsEvery: 10, SnapshotEvery: 10, CheckpointEvery: 20,
		Seed: 11, ProgressEvery: -1, Log: zerolog.Nop()}
}

// TestLearnBoundedTrainsAndDeadLetters: a bounded run reads the topic to
// its end, trains SamplesPerInsert samples per record, dead-letters the bad
// records, publishes decodable metrics and snapshots, and checkpoints.
func TestLearnBoundedTrainsAndDeadLetters(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.Options{})
	cfg := c.Config()
	n := fillTagged(t, cfg, "tagged-bounded", "exp-b", 400, 1, []byte("not avro"), []byte{0xC3, 0x01, 1, 2, 3})
	ckpt := filepath.Join(t.TempDir(), "l.ckpt")
	l, err := New(testConfig(cfg, "tagged-bounded", "exp-b", ckpt).withBounded())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := l.Run(ctx); err != nil {
		t.Fatal(err)
	}
	// Run's drain closed the agent, which waits for its PPO workers.
	if n := ppoWorkersRunning(); n != 0 {
		t.Fatalf("%d PPO worker goroutines still running after Run returned", n)
	}
	s := l.Stats()
	if s.Ingested != int64(n) || s.DeadLettered != 2 {
		t.Fatalf("ingested %d (want %d), dead-lettered %d (want 2)", s.Ingested, n, s.DeadLettered)
	}
	wantUpdates := (int64(n) + 127) / 128 // samples per insert 1, batch 128
	if s.Updates < wantUpdates-1 || s.Updates > wantUpdates+1 {
		t.Fatalf("%d updates for %d records at batch 128, want about %d", s.Updates, n, wantUpdates)
	}
	ck, err := ReadCheckpoint(ckpt)
	if err != nil {
		t.Fatal(err)
	}
	var offs int64
	for _, o := range ck.Offsets {
		offs += o
	}
	if offs != int64(n+2) {
		t.Fatalf("checkpoint offsets sum to %d, want %d records read", offs, n+2)
	}
	metrics := kafkatest.ReadAll(t, cfg, kafkax.TopicMetrics)
	if len(metrics) == 0 {
		t.Fatal("no metrics published")
	}
	for _, m := range metrics {
		var tm schemas.TrainingMetrics
		if err := schemas.UnmarshalTrainingMetrics(m.Value, &tm); err != nil {
			t.Fatalf("metrics record %d: %v", m.Offset, err)
		}
		if tm.ExperimentID != "exp-b" || string(m.Key) != "exp-b" || tm.Updates <= 0 || tm.BufferSize <= 0 {
			t.Fatalf("metrics record %+v", tm)
		}
	}
	checkPublishedTagging(t, metrics[len(metrics)-1], l.tr.Stats().Tags)
	dead := kafkatest.ReadAll(t, cfg, kafkax.TopicDeadLetter)
	if len(dead) != 2 {
		t.Fatalf("%d dead letters, want 2", len(dead))
	}
	snaps := kafkatest.ReadAll(t, cfg, kafkax.TopicPolicy)
	if len(snaps) == 0 {
		t.Fatal("no policy snapshot published")
	}
	var ps schemas.PolicySnapshot
	if err := schemas.UnmarshalPolicySnapshot(snaps[len(snaps)-1].Value, &ps); err != nil {
		t.Fatal(err)
	}
	if _, err := ppo.LoadPolicy(ps.Architecture, ps.Params, ps.ObsMean, ps.ObsVar, ps.ObsCount); err != nil {
		t.Fatalf("published snapshot does not load: %v", err)
	}
}

func (c Config) withBounded() Config { c.Bounded = true; return c }

// ppoWorkersRunning counts the goroutines in the PPO agent's worker loop.
func ppoWorkersRunning() int {
	var b strings.Builder
	_ = pprof.Lookup("goroutine").WriteTo(&b, 2)
	return strings.Count(b.String(), "learner/ppo.(*worker).loop")
}

// TestLearnKilledResumesFromCheckpoint: a learner killed without its
// graceful path restarts from its last checkpoint with the same
// parameters, refills its buffer from the log and keeps training.
func TestLearnKilledResumesFromCheckpoint(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.Options{})
	cfg := c.Config()
	n := fillTagged(t, cfg, "tagged-kill", "exp-k", 600, 2)
	ckpt := filepath.Join(t.TempDir(), "k.ckpt")
	first := testConfig(cfg, "tagged-kill", "exp-k", ckpt)
	first.SamplesPerInsert = 4 // train past the first checkpoints before the data runs out
	l, err := New(first)
	if err != nil {
		t.Fatal(err)
	}
	l.abortOnCancel = true
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	deadline := time.Now().Add(time.Minute)
	for l.Stats().Updates < 50 {
		if time.Now().After(deadline) {
			t.Fatalf("only %d updates after a minute", l.Stats().Updates)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	ck, err := ReadCheckpoint(ckpt)
	if err != nil {
		t.Fatalf("no checkpoint after the kill: %v", err)
	}
	saved, err := ppo.Restore(ck.Agent, rand.New(rand.NewPCG(1, 1)))
	if err != nil {
		t.Fatal(err)
	}
	if saved.Updates() < 20 || saved.Updates()%20 != 0 {
		t.Fatalf("checkpoint at %d updates, want a multiple of CheckpointEvery=20", saved.Updates())
	}

	again := testConfig(cfg, "tagged-kill", "exp-k", ckpt)
	again.Fresh, again.Bounded, again.SamplesPerInsert = false, true, 4
	l2, err := New(again)
	if err != nil {
		t.Fatal(err)
	}
	restored, err := l2.Agent().MarshalCheckpoint()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(restored, ck.Agent) {
		t.Fatal("the restarted learner's parameters differ from its checkpoint")
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel2()
	if err := l2.Run(ctx2); err != nil {
		t.Fatal(err)
	}
	s := l2.Stats()
	var consumed int64
	for _, o := range ck.Offsets {
		consumed += o
	}
	if s.Refilled != consumed {
		t.Fatalf("refilled %d records, the checkpoint had consumed %d", s.Refilled, consumed)
	}
	if s.Ingested != int64(n)-consumed {
		t.Fatalf("ingested %d after the restart, want the %d not yet consumed", s.Ingested, int64(n)-consumed)
	}
	if s.Updates <= saved.Updates() {
		t.Fatalf("no training after the restart: %d updates, checkpoint had %d", s.Updates, saved.Updates())
	}
}

// TestLearnEmptyTopic: an empty topic neither crashes a bounded nor an
// unbounded learner.
func TestLearnEmptyTopic(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.Options{})
	cfg := c.Config()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := kafkax.EnsureTopics(ctx, cfg, kafkax.TopicSpec{Name: "tagged-empty", Partitions: 2}); err != nil {
		t.Fatal(err)
	}
	ckpt := filepath.Join(t.TempDir(), "e.ckpt")
	l, err := New(testConfig(cfg, "tagged-empty", "exp-e", ckpt).withBounded())
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Run(ctx); err != nil {
		t.Fatalf("bounded on an empty topic: %v", err)
	}
	if s := l.Stats(); s.Updates != 0 || s.Ingested != 0 {
		t.Fatalf("stats on an empty topic: %+v", s)
	}
	if _, err := ReadCheckpoint(ckpt); err != nil {
		t.Fatalf("bounded run wrote no checkpoint: %v", err)
	}
	l2, err := New(testConfig(cfg, "tagged-empty", "exp-e", ""))
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithTimeout(ctx, time.Second)
	defer stop()
	if err := l2.Run(runCtx); err != nil {
		t.Fatalf("following an empty topic: %v", err)
	}
}

// TestLearnCheckpointErrors: a missing or corrupt checkpoint is a clear
// error unless Fresh.
func TestLearnCheckpointErrors(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(kafkax.Config{}, "t", "exp", filepath.Join(dir, "missing.ckpt"))
	cfg.Fresh = false
	if _, err := New(cfg); err == nil || !bytes.Contains([]byte(err.Error()), []byte("does not exist")) {
		t.Fatalf("missing checkpoint: got %v", err)
	}
	agent, err := ppo.New(DefaultPPO(16, 12), rand.New(rand.NewPCG(1, 1)))
	if err != nil {
		t.Fatal(err)
	}
	state, _ := agent.MarshalCheckpoint()
	good := filepath.Join(dir, "good.ckpt")
	if err := WriteCheckpoint(good, &Checkpoint{ExperimentID: "exp", TaggedTopic: "t", Offsets: map[int]int64{0: 5}, Agent: state}); err != nil {
		t.Fatal(err)
	}
	b, _ := ReadCheckpoint(good)
	raw, _ := b.Marshal()
	for i := 0; i < len(raw); i += len(raw) / 50 {
		bad := bytes.Clone(raw)
		bad[i] ^= 0x40
		if _, err := UnmarshalCheckpoint(bad); err == nil {
			t.Fatalf("flipping byte %d went unnoticed", i)
		}
	}
	for _, cut := range []int{0, 7, 20, len(raw) - 1} {
		if _, err := UnmarshalCheckpoint(raw[:cut]); err == nil {
			t.Fatalf("truncation at %d went unnoticed", cut)
		}
	}
	cfg.CheckpointPath = good
	cfg.ExperimentID = "other"
	if _, err := New(cfg); err == nil {
		t.Fatal("a checkpoint of another experiment was accepted")
	}
	cfg.ExperimentID = "exp"
	l, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if l.offsets[0] != 5 {
		t.Fatalf("restored offsets %v", l.offsets)
	}
}

// TestLearnFreshIfMissing: FreshIfMissing starts fresh without a
// checkpoint file, resumes when there is one, and still refuses a corrupt
// one.
func TestLearnFreshIfMissing(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f.ckpt")
	cfg := testConfig(kafkax.Config{}, "t", "exp", path)
	cfg.Fresh, cfg.FreshIfMissing = false, true
	l, err := New(cfg)
	if err != nil {
		t.Fatalf("missing checkpoint with FreshIfMissing: %v", err)
	}
	if !l.fresh {
		t.Fatal("started without a checkpoint but not fresh")
	}
	if err := l.checkpoint(); err != nil {
		t.Fatal(err)
	}
	l2, err := New(cfg)
	if err != nil {
		t.Fatalf("existing checkpoint with FreshIfMissing: %v", err)
	}
	if l2.fresh {
		t.Fatal("a checkpoint exists but the learner started fresh")
	}
	b, _ := os.ReadFile(path)
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := New(cfg); err == nil {
		t.Fatal("a corrupt checkpoint was accepted with FreshIfMissing")
	}
}

// TestLearnGroundTruthKey: the learner reads the ground truth under
// Config.GroundTruthKey, not under a hard-coded key: records with the truth
// under the configured key count in the tag accuracy and the returns, those
// with it under the default key only do not.
func TestLearnGroundTruthKey(t *testing.T) {
	const key = "truth.elsewhere"
	cfg := testConfig(kafkax.Config{}, "t", "exp", "")
	cfg.GroundTruthKey = key
	l, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got := l.tr.Config().GroundTruthKey; got != key {
		t.Fatalf("training core's ground-truth key %q, want %q", got, key)
	}
	rec := func(offset int64, md map[string]string) *record {
		return &record{offset: offset, te: schemas.TaggedExperience{
			Experience: schemas.Experience{ExperimentID: "exp", EpisodeID: fmt.Sprint(offset), Reward: 2, Done: true,
				State: make([]float32, 16), NextState: make([]float32, 16), Metadata: md},
			EventType: schemas.EventCrisis}}
	}
	l.ingest(rec(0, map[string]string{key: schemas.EventCrisis.String()}))
	l.ingest(rec(1, map[string]string{key: schemas.EventRegular.String()}))
	l.ingest(rec(2, map[string]string{schemas.KeyTrueSegment: schemas.EventCrisis.String()}))
	s := l.tr.Stats()
	if s.Inserted != 3 || s.Tags.TP != 1 || s.Tags.FP != 1 || s.Tags.Total() != 2 {
		t.Fatalf("inserted %d, tags %+v; want 3 inserted, TP 1 and FP 1 from the configured key only", s.Inserted, s.Tags)
	}
	m := l.trainingMetrics(time.Now())
	if m.TagPrecision == nil || *m.TagPrecision != 0.5 || m.TagRecall == nil || *m.TagRecall != 1 {
		t.Errorf("metrics tag precision %v, recall %v; want 0.5 and 1", m.TagPrecision, m.TagRecall)
	}
	if m.MeanReturnCrisis == nil || *m.MeanReturnCrisis != 2 || m.MeanReturnRegular == nil || *m.MeanReturnRegular != 2 {
		t.Errorf("metrics mean returns crisis %v, regular %v; want 2 and 2", m.MeanReturnCrisis, m.MeanReturnRegular)
	}
}

// checkPublishedTagging: the last metrics record of a run over fillTagged's
// records (all LABEL, tagged with the truth, tag_score 0) carries one
// LABEL entry over every record with ground truth: precision, recall and
// F1 1, and Brier score and ECE both the crisis share (every score 0 is
// off by 1 on a crisis parent, and all fall in the first bin).
func checkPublishedTagging(t *testing.T, m kafka.Message, tags stats.Confusion) {
	t.Helper()
	var tm schemas.TrainingMetrics
	if err := schemas.UnmarshalTrainingMetrics(m.Value, &tm); err != nil {
		t.Fatal(err)
	}
	share := float64(tags.TP+tags.FN) / float64(tags.Total())
	if len(tm.Tagging) != 1 || tags.FP+tags.FN != 0 || share == 0 {
		t.Fatalf("tagging %+v, tags %+v: want one LABEL entry, perfect tags, some crisis parents", tm.Tagging, tags)
	}
	a := tm.Tagging[0]
	one := func(p *float64) bool { return p != nil && *p == 1 }
	near := func(p *float64) bool { return p != nil && math.Abs(*p-share) < 1e-12 }
	if a.Source != "LABEL" || a.Records != int64(tags.Total()) || !one(a.Precision) || !one(a.Recall) || !one(a.F1) || !near(a.Brier) || !near(a.ECE) {
		t.Errorf("published tagging %s records %d P %v R %v F1 %v Brier %v ECE %v; want LABEL, %d, 1, 1, 1, %v, %v",
			a.Source, a.Records, deref(a.Precision), deref(a.Recall), deref(a.F1), deref(a.Brier), deref(a.ECE), tags.Total(), share, share)
	}
}

func deref(p *float64) any {
	if p == nil {
		return nil
	}
	return *p
}
