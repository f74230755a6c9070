package learner

import (
	"errors"
	"io/fs"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aelp/aelp/internal/kafkax"
	"github.com/aelp/aelp/learner/ppo"
)

// TestReadCheckpointMissing: a missing checkpoint is an error that says so
// and keeps fs.ErrNotExist in its chain, through New's ResumeError too.
func TestReadCheckpointMissing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing.ckpt")
	_, err := ReadCheckpoint(path)
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), path+" does not exist") {
		t.Fatalf("ReadCheckpoint of a missing file: %v (errors.Is fs.ErrNotExist: %v)", err, errors.Is(err, fs.ErrNotExist))
	}
	var pe *fs.PathError
	if !errors.As(err, &pe) || pe.Path != path {
		t.Errorf("ReadCheckpoint of a missing file: no *fs.PathError of %s in %v", path, err)
	}
	cfg := testConfig(kafkax.Config{}, "t", "exp", path)
	cfg.Fresh = false
	_, err = New(cfg)
	var re *ResumeError
	if !errors.As(err, &re) || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("New without its checkpoint: %v, want a *ResumeError wrapping fs.ErrNotExist", err)
	}
}

// TestLearnResumeMismatch: a checkpoint is resumed only by a learner of
// its experiment and tagged topic; otherwise New refuses it with a
// *MismatchError naming the saved and the configured value, before
// anything is restored.
func TestLearnResumeMismatch(t *testing.T) {
	agent, err := ppo.New(DefaultPPO(16, 12), rand.New(rand.NewPCG(1, 1)))
	if err != nil {
		t.Fatal(err)
	}
	state, err := agent.MarshalCheckpoint()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "m.ckpt")
	if err := WriteCheckpoint(path, &Checkpoint{ExperimentID: "exp-a", TaggedTopic: "tagged.a",
		Offsets: map[int]int64{0: 5}, Agent: state}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, experiment, topic string
		field, saved, conf      string // want; field "" for a resume
	}{
		{"same", "exp-a", "tagged.a", "", "", ""},
		{"other tagged topic", "exp-a", "tagged.b", "TaggedTopic", "tagged.a", "tagged.b"},
		{"other experiment", "exp-b", "tagged.a", "ExperimentID", "exp-a", "exp-b"},
		{"both other", "exp-b", "tagged.b", "ExperimentID", "exp-a", "exp-b"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(kafkax.Config{}, tc.topic, tc.experiment, path)
			cfg.Fresh = false
			l, err := New(cfg)
			if tc.field == "" {
				if err != nil {
					t.Fatalf("resume of its own checkpoint: %v", err)
				}
				if l.offsets[0] != 5 {
					t.Errorf("restored offsets %v, want partition 0 at 5", l.offsets)
				}
				return
			}
			var me *MismatchError
			if !errors.As(err, &me) {
				t.Fatalf("New = %v, want a *MismatchError", err)
			}
			if me.Field != tc.field || me.Saved != tc.saved || me.Configured != tc.conf || me.Path != path {
				t.Errorf("mismatch %+v, want field %s saved %q configured %q of %s", *me, tc.field, tc.saved, tc.conf, path)
			}
			for _, s := range []string{path, `"` + tc.saved + `"`, `"` + tc.conf + `"`} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not name %s", err, s)
				}
			}
		})
	}
	// Fresh ignores the file, so no mismatch arises.
	cfg := testConfig(kafkax.Config{}, "tagged.b", "exp-b", path)
	if _, err := New(cfg); err != nil {
		t.Errorf("fresh learner with another experiment's checkpoint path: %v", err)
	}
}
