package learner

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/aelp/aelp/internal/kafkax"
	"github.com/aelp/aelp/learner/ppo"
	"github.com/aelp/aelp/learner/train"
	"github.com/rs/zerolog"
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

// TestCheckpointAdaptiveRoundTrip: the adaptive state survives Marshal and
// UnmarshalCheckpoint bit for bit; a checkpoint without it has no
// "adaptive" header field and decodes to nil; one with a state no learner
// writes is a bad checkpoint.
func TestCheckpointAdaptiveRoundTrip(t *testing.T) {
	st := &train.AdaptiveState{Weight: 7.123456789012345, RegularMSE: 0.1 + 0.2, CrisisMSE: 3.0000000000000004,
		RegularStarted: true, CrisisStarted: true}
	for _, a := range []*train.AdaptiveState{st, {Weight: 5}, nil} {
		c := &Checkpoint{ExperimentID: "e", TaggedTopic: "t", Offsets: map[int]int64{0: 1}, Agent: []byte{1, 2}, Adaptive: a}
		b, err := c.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if has := bytes.Contains(b, []byte(`"adaptive"`)); has != (a != nil) {
			t.Errorf("state %+v: header has an adaptive field: %v", a, has)
		}
		got, err := UnmarshalCheckpoint(b)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got.Adaptive, a) {
			t.Errorf("round trip of %+v gave %+v", a, got.Adaptive)
		}
	}
	bad := &Checkpoint{Adaptive: &train.AdaptiveState{Weight: 0.5}}
	b, err := bad.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := UnmarshalCheckpoint(b); !errors.Is(err, ErrCheckpoint) || !strings.Contains(err.Error(), "crisis weight 0.5") {
		t.Errorf("a crisis weight of 0.5: %v, want a bad checkpoint naming it", err)
	}
}

// TestLearnResumeAdaptive: a learner with the adaptive crisis weight
// checkpoints the rule's state, and one resumed from that checkpoint
// draws its next batch with the weight in force and reports the same
// signal, and says so in its log; with the rule off the state is ignored,
// with a warning; a checkpoint without the state (as written before it
// was kept) resumes from --crisis-parent-weight, and the log says why.
func TestLearnResumeAdaptive(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.ckpt")
	cfg := testConfig(kafkax.Config{}, "t", "exp", path)
	cfg.MetricsEvery, cfg.SnapshotEvery, cfg.CheckpointEvery = 1<<40, 1<<40, 1<<40 // no publishing: no writers needed
	cfg.Adaptive.Enabled, cfg.Adaptive.MaxWeight, cfg.Adaptive.Smoothing = true, 9, 5
	l, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ingestJourneys(t, l, 300, 3)
	for range 20 {
		if err := l.update(context.Background(), nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.checkpoint(); err != nil {
		t.Fatal(err)
	}
	want := l.tr.Stats()
	initial := l.tr.Config().Replay.CrisisWeight
	if want.CrisisWeight == initial {
		t.Fatalf("the weight is still the initial %v: a resume would pass without restoring it", initial)
	}
	ck, err := ReadCheckpoint(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(ck.Adaptive, l.tr.Counters().Adaptive) || ck.Adaptive.Weight != want.CrisisWeight {
		t.Fatalf("checkpointed state %+v, want %+v", ck.Adaptive, l.tr.Counters().Adaptive)
	}

	resume := func(enabled bool, path string) (*Learner, string) {
		t.Helper()
		var log bytes.Buffer
		c := cfg
		c.CheckpointPath, c.Fresh, c.Log, c.Adaptive.Enabled = path, false, zerolog.New(&log), enabled
		r, err := New(c)
		if err != nil {
			t.Fatal(err)
		}
		return r, log.String()
	}
	r, log := resume(true, path)
	if got := r.tr.Stats(); got.CrisisWeight != want.CrisisWeight || got.AdaptiveSignal != want.AdaptiveSignal {
		t.Fatalf("resumed weight %v signal %v, want %v %v", got.CrisisWeight, got.AdaptiveSignal, want.CrisisWeight, want.AdaptiveSignal)
	}
	if !strings.Contains(log, "restored the adaptive crisis weight") {
		t.Errorf("resume log does not say the adaptive weight was restored:\n%s", log)
	}
	ingestJourneys(t, r, 300, 3)
	if err := r.update(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if got := r.Stats().Buffer.CrisisWeight; got != want.CrisisWeight {
		t.Errorf("first batch after the resume drawn with weight %v, want %v", got, want.CrisisWeight)
	}

	off, log := resume(false, path)
	if got := off.tr.Stats().CrisisWeight; got != initial || off.tr.Counters().Adaptive != nil {
		t.Errorf("rule off: weight %v, state %+v; want the fixed %v and no state", got, off.tr.Counters().Adaptive, initial)
	}
	if !strings.Contains(log, `"level":"warn"`) || !strings.Contains(log, "--adaptive-crisis-weight is off: ignored") {
		t.Errorf("rule off: the log does not warn that the state is ignored:\n%s", log)
	}

	ck.Adaptive = nil
	oldPath := filepath.Join(t.TempDir(), "old.ckpt")
	if err := WriteCheckpoint(oldPath, ck); err != nil {
		t.Fatal(err)
	}
	old, log := resume(true, oldPath)
	if got := old.tr.Stats(); got.CrisisWeight != initial || got.AdaptiveSignal != 0 || got.Updates != want.Updates {
		t.Errorf("checkpoint without the state: weight %v signal %v updates %d, want %v, 0, %d", got.CrisisWeight, got.AdaptiveSignal, got.Updates, initial, want.Updates)
	}
	if !strings.Contains(log, "checkpoint has no adaptive crisis weight state") {
		t.Errorf("checkpoint without the state: the log does not say so:\n%s", log)
	}
}
