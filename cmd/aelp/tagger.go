package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/aelp/aelp/app/tagger"
	"github.com/aelp/aelp/consumers/classify"
)

// taggerSetup measures the crisis taggers (rules, learned, Bayes limit) on
// a simulated stream, without Kafka.
func taggerSetup() (*flagSet, action) {
	fs := newFlagSet("tagger")
	cfg := newConfig(fs, tagger.DefaultConfig)
	simFlags(fs, &cfg.Sim)
	taggerFlags(fs, &cfg.Classifier)
	fs.IntVar(&cfg.Users, "users", cfg.Users, "simulated users (aelp run's number by default)")
	fs.IntVar(&cfg.Workers, "workers", cfg.Workers, "simulator streams the users are split over")
	fs.Uint64Var(&cfg.Seed, "seed", cfg.Seed, "simulator seed")
	return fs, func(context.Context) error {
		if err := cfg.Validate(); err != nil {
			return usagef("%v", err)
		}
		rep, err := tagger.Measure(*cfg)
		if err != nil {
			return err
		}
		return rep.Write(os.Stdout)
	}
}

// taggerFlags binds the learned tagger's flags onto c.
func taggerFlags(fs *flagSet, c *classify.Config) {
	fs.Var(&c.Tagger, "tagger", "who tags the unlabelled records: rules (the hand-set METADATA and VALUE rules) or learned (a calibrated logistic model trained on the labelled records, after its warm-up)")
	fs.Var(&c.Objective, "tagger-objective", "what the learned tagger's threshold on P(crisis) is chosen for: f1, precision=P (most recall with precision >= P) or cost=R (a missed crisis parent costs R false crisis tags)")
	fs.Int64Var(&c.TaggerWarmUp, "tagger-warmup", c.TaggerWarmUp, "labelled records the learned tagger trains on before it decides (the rules decide until then)")
}

// taggerStateConfig is where aelp aggregate keeps its learned tagger's
// state across restarts.
type taggerStateConfig struct {
	// Path is the state file; empty keeps nothing.
	Path string
}

// loadTaggerState reads a learned tagger state written by saveTaggerState
// into c.State; a missing file is a first start (nothing to load).
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
	if _, err := classify.New(*c); err != nil {
		return fmt.Errorf("load tagger state %s: %w", path, err)
	}
	return nil
}

// saveTaggerState writes state to path atomically (a temporary file, then
// rename).
func saveTaggerState(path string, state []byte) error {
	if path == "" {
		return nil
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, state, 0o644); err != nil {
		return fmt.Errorf("save tagger state: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("save tagger state: %w", err)
	}
	return nil
}
