package main

import (
	"testing"
)

func TestTaggerFlagsRejectBadValues(t *testing.T) {
	for _, args := range [][]string{{"--tagger", "neural"}, {"--tagger-objective", "precision=2"}} {
		fs, _ := aggregateSetup()
		if err := fs.Parse(args); err == nil {
			t.Errorf("aggregate %v parsed, want an error", args)
		}
	}
}
