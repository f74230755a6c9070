package consumers

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aelp/aelp/consumers/classify"
	"github.com/aelp/aelp/internal/kafkatest"
	"github.com/aelp/aelp/internal/kafkax"
	"github.com/aelp/aelp/producers"
	"github.com/rs/zerolog"
)

// TestAggregateTaggerStateSurvivesRestart: an aggregator with a tagger
// state file saves the learned tagger's state while it runs (after its
// commits), so the file a crash would leave holds everything committed;
// it saves it again when it stops; and the next aggregator starts from
// it with the same model, its warm-up already done. A corrupt file is an
// error.
func TestAggregateTaggerStateSurvivesRestart(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.Options{})
	cfg := c.Config()
	// ctx only ends a hung test; the waits are bounded by progress.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := kafkax.EnsureTopics(ctx, cfg, kafkax.DefaultTopics(6)...); err != nil {
		t.Fatal(err)
	}
	simr, err := producers.NewSimulator(producers.SimulateConfig{Kafka: cfg, ExperimentID: "state-test", Users: 600,
		Workers: 1, Seed: 3, ProgressEvery: -1, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := simr.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "tagger.state")
	ccfg := classify.DefaultConfig()
	ccfg.TaggerWarmUp = 200
	acfg := AggregateConfig{Kafka: cfg, Group: "state-test", Classifier: ccfg, TaggerStatePath: path,
		TaggerStateEvery: time.Nanosecond, ProgressEvery: -1, BatchMax: 500, Log: zerolog.Nop()}
	a, err := NewAggregator(acfg)
	if err != nil {
		t.Fatal(err)
	}
	if s := a.Stats(); s.TaggerResumed != 0 || s.TaggerLabelled != 0 {
		t.Fatalf("no state file: resumed %d, labelled %d; want a first start", s.TaggerResumed, s.TaggerLabelled)
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- a.Run(runCtx) }()
	awaitProgress(t, func() string {
		return fmt.Sprintf("the aggregator to commit %d records (%+v)", rep.Experiences, a.Stats())
	},
		func() int64 { return a.Stats().Committed }, func() bool { return a.Stats().Committed >= rep.Experiences })
	// The aggregator runs on, idle: the file on disk is what a crash now
	// would leave.
	fileLabelled := func() int64 {
		b, err := os.ReadFile(path)
		if err != nil {
			return -1
		}
		cc := ccfg
		cc.State = b
		r, err := classify.New(cc)
		if err != nil {
			t.Fatalf("state file does not load: %v", err)
		}
		return r.Labelled()
	}
	labelled := a.Stats().TaggerLabelled
	if labelled < ccfg.TaggerWarmUp {
		t.Fatalf("%d labelled records in %d records: want more than the warm-up %d", labelled, rep.Experiences, ccfg.TaggerWarmUp)
	}
	awaitProgress(t, func() string {
		return fmt.Sprintf("the state file to hold %d labelled records (%d)", labelled, fileLabelled())
	},
		func() int64 { return 0 }, func() bool { return fileLabelled() == labelled })
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := fileLabelled(); n != labelled {
		t.Fatalf("after the stop the state file holds %d labelled records, want %d", n, labelled)
	}
	b, err := NewAggregator(acfg)
	if err != nil {
		t.Fatal(err)
	}
	if s := b.Stats(); s.TaggerResumed != labelled || s.TaggerLabelled != labelled || !b.cls.Learned() {
		t.Errorf("restarted: resumed %d, labelled %d, learned %v; want %d, %d, true", s.TaggerResumed, s.TaggerLabelled, b.cls.Learned(), labelled, labelled)
	}
	if b.cls.Model().Weights() != a.cls.Model().Weights() || b.cls.Threshold() != a.cls.Threshold() {
		t.Error("restarted with other weights or another threshold than the stopped aggregator's")
	}
	if b.Config().Classifier.State != nil {
		t.Error("the loaded state stays in the configuration")
	}
	if err := os.WriteFile(path, []byte("not a state"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := NewAggregator(acfg); err == nil {
		t.Error("corrupt state file loaded without error")
	}
}
