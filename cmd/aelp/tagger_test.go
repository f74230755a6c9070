package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/aelp/aelp/consumers/classify"
)

// TestTaggerStateSurvivesRestart: the state saved on shutdown is loaded by
// the next start, which then resumes with the labelled records already
// learned; no file is a first start; a corrupt file is an error.
func TestTaggerStateSurvivesRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tagger.state")
	cfg := classify.DefaultConfig()
	if err := loadTaggerState(path, &cfg); err != nil || cfg.State != nil {
		t.Fatalf("no file: %v, state %d bytes; want a first start", err, len(cfg.State))
	}
	c, err := classify.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	md := map[string]string{classify.KeyEventType: classify.LabelRegular, classify.KeyUrgentSearchCount: "1"}
	for range 3000 {
		c.Classify(md, 0.01)
	}
	if err := saveTaggerState(path, c.AppendState(nil)); err != nil {
		t.Fatal(err)
	}
	next := classify.DefaultConfig()
	if err := loadTaggerState(path, &next); err != nil {
		t.Fatal(err)
	}
	r, err := classify.New(next)
	if err != nil {
		t.Fatal(err)
	}
	if r.Labelled() != 3000 || !r.Learned() || r.Model().Weights() != c.Model().Weights() {
		t.Fatalf("restarted: labelled %d, learned %v; want 3000 and true with the same weights", r.Labelled(), r.Learned())
	}
	if err := os.WriteFile(path, []byte("not a state"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := loadTaggerState(path, &next); err == nil {
		t.Error("corrupt state loaded without error")
	}
}

func TestTaggerFlagsRejectBadValues(t *testing.T) {
	for _, args := range [][]string{{"--tagger", "neural"}, {"--tagger-objective", "precision=2"}} {
		fs, _ := aggregateSetup()
		if err := fs.Parse(args); err == nil {
			t.Errorf("aggregate %v parsed, want an error", args)
		}
	}
}
