package consumers

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/aelp/aelp/consumers/classify"
)

// TaggerState returns the state of the aggregator's learned crisis tagger
// (classify.Classifier.AppendState): pass it as AggregateConfig.Classifier.State
// to the next aggregator so that a restart keeps what was learned. Call it
// only after Run has returned (the classifier belongs to Run's loop while
// it runs).
func (a *Aggregator) TaggerState() []byte { return a.cls.AppendState(nil) }

// loadTaggerState reads the state file at path into c.State; an empty
// path or a missing file leaves c alone (a first start).
func loadTaggerState(path string, c *classify.Config) error {
	if path == "" {
		return nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("load tagger state: %w", err)
	}
	c.State = b
	return nil
}

// saveTaggerState writes the tagger's state to TaggerStatePath atomically
// (a temporary file, then rename), when it is set. Only Run's goroutine
// calls it, or the caller after Run has returned.
func (a *Aggregator) saveTaggerState() error {
	path := a.cfg.TaggerStatePath
	if path == "" {
		return nil
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, a.cls.AppendState(nil), 0o644); err != nil {
		return fmt.Errorf("save tagger state: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("save tagger state: %w", err)
	}
	a.stateSaved = time.Now()
	return nil
}

// saveTaggerStateEvery saves the tagger's state when TaggerStateEvery has
// passed since the last save. A failed save is logged and tried again
// after the next commit: tagging goes on, and the state on disk stays the
// last one saved.
func (a *Aggregator) saveTaggerStateEvery() {
	if a.cfg.TaggerStatePath == "" || time.Since(a.stateSaved) < a.cfg.TaggerStateEvery {
		return
	}
	if err := a.saveTaggerState(); err != nil {
		a.log.Error().Err(err).Msg("tagger state not saved; trying again after the next commit")
	}
}
