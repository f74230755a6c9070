package schemas

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/aelp/aelp/learner/ppo"
)

// fuzzSeeds returns valid records of the given schema (current and older
// versions) and damaged copies of them.
func fuzzSeeds(tb testing.TB, name string) [][]byte {
	rng := rand.New(rand.NewPCG(31, 32))
	var seeds [][]byte
	for range 3 {
		tg := randTagged(rng)
		tg.State, tg.NextState = tg.State[:min(len(tg.State), 4)], tg.NextState[:min(len(tg.NextState), 4)]
		var b []byte
		if name == NameExperience {
			b, _ = MarshalExperience(nil, &tg.Experience)
		} else {
			b, _ = MarshalTaggedExperience(nil, &tg)
		}
		seeds = append(seeds, b, b[:len(b)/2], append(bytes.Clone(b), 0))
	}
	// A version-1 record of the same name.
	v1 := schemaVersion(tb, name, 1)
	b := encodeAs(tb, v1, randNative(rng, v1.root, 0))
	seeds = append(seeds, b, b[:len(b)-1])
	seeds = append(seeds, nil, []byte{0xC3, 0x01}, AppendHeader(nil, Current(name).Fingerprint))
	return seeds
}

// checkExperienceFixpoint is the fuzz invariant for a decoded experience:
// re-encoding it and decoding again gives the same bytes (compared as bytes,
// so NaN payloads count), and for a current-version input goavro's decoder
// accepts the same body and agrees.
func checkExperienceFixpoint(t *testing.T, in []byte, e *Experience) {
	b1, _ := MarshalExperience(nil, e)
	var e2 Experience
	if err := UnmarshalExperience(b1, &e2); err != nil {
		t.Fatalf("re-encoded record does not decode: %v", err)
	}
	if b2, _ := MarshalExperience(nil, &e2); !bytes.Equal(b1, b2) {
		t.Fatalf("decode∘encode is not a fixpoint:\n%x\n%x", b1, b2)
	}
	if _, version, _ := Identify(in); version == Current(NameExperience).Version {
		native, rest, err := Current(NameExperience).Codec().NativeFromBinary(in[HeaderLen:])
		if err != nil || len(rest) != 0 {
			t.Fatalf("hand decoder accepted what goavro rejects: %v (%d left)", err, len(rest))
		}
		var viaGoavro Experience
		if err := viaGoavro.FromNative(native.(map[string]any)); err != nil {
			t.Fatal(err)
		}
		if b3, _ := MarshalExperience(nil, &viaGoavro); !bytes.Equal(b1, b3) {
			t.Fatalf("hand decoder and goavro disagree:\n%x\n%x", b1, b3)
		}
	}
}

// FuzzUnmarshalExperience: invariant — UnmarshalExperience never panics and
// either succeeds or returns a *DecodeError with a known Reason; a value it
// accepts re-encodes to a record that decodes to the same bytes again
// (valid input round-trips), and a current-version value it accepts is
// accepted by goavro with the same content.
func FuzzUnmarshalExperience(f *testing.F) {
	for _, s := range fuzzSeeds(f, NameExperience) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var e Experience
		err := UnmarshalExperience(in, &e)
		if err != nil {
			checkDecodeError(t, err)
			return
		}
		checkExperienceFixpoint(t, in, &e)
	})
}

// FuzzUnmarshalTaggedExperience: invariant — UnmarshalTaggedExperience never
// panics and either succeeds or returns a *DecodeError with a known Reason;
// a value it accepts re-encodes (its enums are valid) to a record that
// decodes to the same bytes again, and a current-version value it accepts is
// accepted by goavro with the same content.
func FuzzUnmarshalTaggedExperience(f *testing.F) {
	for _, s := range fuzzSeeds(f, NameTaggedExperience) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var tg TaggedExperience
		err := UnmarshalTaggedExperience(in, &tg)
		if err != nil {
			checkDecodeError(t, err)
			return
		}
		b1, err := MarshalTaggedExperience(nil, &tg)
		if err != nil {
			t.Fatalf("decoded record does not re-encode: %v", err)
		}
		var tg2 TaggedExperience
		if err := UnmarshalTaggedExperience(b1, &tg2); err != nil {
			t.Fatalf("re-encoded record does not decode: %v", err)
		}
		if b2, _ := MarshalTaggedExperience(nil, &tg2); !bytes.Equal(b1, b2) {
			t.Fatalf("decode∘encode is not a fixpoint:\n%x\n%x", b1, b2)
		}
		if _, version, _ := Identify(in); version == Current(NameTaggedExperience).Version {
			native, rest, err := Current(NameTaggedExperience).Codec().NativeFromBinary(in[HeaderLen:])
			if err != nil || len(rest) != 0 {
				t.Fatalf("hand decoder accepted what goavro rejects: %v (%d left)", err, len(rest))
			}
			var viaGoavro TaggedExperience
			if err := viaGoavro.FromNative(native.(map[string]any)); err != nil {
				t.Fatal(err)
			}
			if b3, _ := MarshalTaggedExperience(nil, &viaGoavro); !bytes.Equal(b1, b3) {
				t.Fatalf("hand decoder and goavro disagree:\n%x\n%x", b1, b3)
			}
		}
	})
}

// FuzzDecodeNative: invariant — DecodeNative never panics; it either
// succeeds with a native record that the current codec of its schema
// encodes, or returns a *DecodeError with a known Reason.
func FuzzDecodeNative(f *testing.F) {
	for _, s := range append(fuzzSeeds(f, NameExperience), fuzzSeeds(f, NameTaggedExperience)...) {
		f.Add(s)
	}
	rng := rand.New(rand.NewPCG(33, 34))
	m, p := randMetrics(rng), randSnapshot(rng)
	mb, _ := MarshalTrainingMetrics(nil, &m)
	pb, _ := MarshalPolicySnapshot(nil, &p)
	f.Add(mb)
	f.Add(pb[:min(len(pb), 200)])
	f.Fuzz(func(t *testing.T, in []byte) {
		name, native, err := DecodeNative(in)
		if err != nil {
			checkDecodeError(t, err)
			return
		}
		if _, err := Current(name).Codec().BinaryFromNative(nil, native); err != nil {
			t.Fatalf("decoded %s does not re-encode: %v", name, err)
		}
	})
}

// metricsSeeds returns encodings of TrainingMetrics records: one the
// learner published during an `aelp run` (testdata/training-metrics.v1.bin,
// with tag precision, recall and per-segment returns set), the v2 fixture
// (with an off-policy evaluation), records with
// every optional figure null and every one set, random ones, and damaged
// copies of them.
func metricsSeeds(tb testing.TB) [][]byte {
	recorded, err := os.ReadFile(filepath.Join("testdata", "training-metrics.v1.bin"))
	if err != nil {
		tb.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(35, 36))
	var none, all TrainingMetrics
	none.ExperimentID, all.ExperimentID = "exp", "exp"
	_, _, opts := all.fields()
	for i, f := range opts {
		*f.p = ptr(float64(i) / 7)
	}
	all.Tagging = []TagSourceAccuracy{{Source: "LABEL", Records: 3, Precision: ptr(1.0), Recall: ptr(1.0), F1: ptr(1.0), Brier: ptr(0.0), ECE: ptr(0.0)},
		{Source: "DEFAULT", Records: 9, Recall: ptr(0.0), F1: ptr(0.0), Brier: ptr(0.1), ECE: ptr(0.05)}}
	recordedV2, err := os.ReadFile(filepath.Join("testdata", "training-metrics.v2.bin"))
	if err != nil {
		tb.Fatal(err)
	}
	var seeds [][]byte
	for _, m := range []TrainingMetrics{none, all, randMetrics(rng), randMetrics(rng)} {
		b, err := MarshalTrainingMetrics(nil, &m)
		if err != nil {
			tb.Fatal(err)
		}
		seeds = append(seeds, b)
	}
	seeds = append(seeds, recorded, recordedV2)
	for _, b := range slices.Clone(seeds) {
		seeds = append(seeds, b[:len(b)/2], append(bytes.Clone(b), 0))
	}
	return append(seeds, nil, []byte{0xC3, 0x01}, AppendHeader(nil, Current(NameTrainingMetrics).Fingerprint))
}

// snapshotSeeds returns encodings of PolicySnapshot records: the snapshot
// of a real PPO agent (ppo.Agent.MarshalPolicy, as the learner publishes
// it, with a 4-unit hidden layer so that the seed stays small), one
// without normalisation statistics, random ones, and damaged copies.
func snapshotSeeds(tb testing.TB) [][]byte {
	cfg := ppo.DefaultConfig(16, 12)
	cfg.Hidden = []int{4}
	agent, err := ppo.New(cfg, rand.New(rand.NewPCG(37, 38)))
	if err != nil {
		tb.Fatal(err)
	}
	arch, params, mean, variance, count, err := agent.MarshalPolicy()
	if err != nil {
		tb.Fatal(err)
	}
	real := PolicySnapshot{ExperimentID: "run-1764582000", Version: 50, CreatedAt: time.UnixMilli(1764582000123).UTC(),
		Architecture: arch, Params: params, ObsMean: mean, ObsVar: variance, ObsCount: count}
	bare := real
	bare.ObsMean, bare.ObsVar, bare.ObsCount = nil, nil, 0
	rng := rand.New(rand.NewPCG(39, 40))
	var seeds [][]byte
	for _, p := range []PolicySnapshot{real, bare, randSnapshot(rng), {}} {
		b, err := MarshalPolicySnapshot(nil, &p)
		if err != nil {
			tb.Fatal(err)
		}
		seeds = append(seeds, b)
	}
	for _, b := range slices.Clone(seeds) {
		seeds = append(seeds, b[:len(b)/2], append(bytes.Clone(b), 0))
	}
	return append(seeds, nil, []byte{0xC3, 0x01}, AppendHeader(nil, Current(NamePolicySnapshot).Fingerprint))
}

// FuzzUnmarshalTrainingMetrics: invariant — UnmarshalTrainingMetrics never
// panics; on error it returns a *DecodeError with a known Reason and leaves
// its destination unchanged; a value it accepts re-encodes to a record that
// decodes to the same bytes again (valid input round-trips).
func FuzzUnmarshalTrainingMetrics(f *testing.F) {
	for _, s := range metricsSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		sentinel := TrainingMetrics{ExperimentID: "unchanged", Updates: -7, TagRecall: ptr(0.5)}
		m := sentinel
		if err := UnmarshalTrainingMetrics(in, &m); err != nil {
			checkDecodeError(t, err)
			if !reflect.DeepEqual(m, sentinel) {
				t.Fatalf("failed decode changed its destination: %+v", m)
			}
			return
		}
		b1, err := MarshalTrainingMetrics(nil, &m)
		if err != nil {
			t.Fatalf("decoded record does not re-encode: %v", err)
		}
		var m2 TrainingMetrics
		if err := UnmarshalTrainingMetrics(b1, &m2); err != nil {
			t.Fatalf("re-encoded record does not decode: %v", err)
		}
		if b2, _ := MarshalTrainingMetrics(nil, &m2); !bytes.Equal(b1, b2) {
			t.Fatalf("decode∘encode is not a fixpoint:\n%x\n%x", b1, b2)
		}
	})
}

// FuzzUnmarshalPolicySnapshot: invariant — UnmarshalPolicySnapshot never
// panics; on error it returns a *DecodeError with a known Reason and leaves
// its destination unchanged; a value it accepts owns its Params (changing
// the input afterwards does not change them) and re-encodes to a record
// that decodes to the same bytes again (valid input round-trips).
func FuzzUnmarshalPolicySnapshot(f *testing.F) {
	for _, s := range snapshotSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		sentinel := PolicySnapshot{ExperimentID: "unchanged", Version: -7, Params: []byte{1, 2, 3}}
		p := sentinel
		buf := bytes.Clone(in)
		if err := UnmarshalPolicySnapshot(buf, &p); err != nil {
			checkDecodeError(t, err)
			if !reflect.DeepEqual(p, sentinel) {
				t.Fatalf("failed decode changed its destination: %+v", p)
			}
			return
		}
		params := bytes.Clone(p.Params)
		for i := range buf {
			buf[i] ^= 0xFF
		}
		if !bytes.Equal(p.Params, params) {
			t.Fatal("decoded Params alias the input")
		}
		b1, err := MarshalPolicySnapshot(nil, &p)
		if err != nil {
			t.Fatalf("decoded snapshot does not re-encode: %v", err)
		}
		var p2 PolicySnapshot
		if err := UnmarshalPolicySnapshot(b1, &p2); err != nil {
			t.Fatalf("re-encoded snapshot does not decode: %v", err)
		}
		if b2, _ := MarshalPolicySnapshot(nil, &p2); !bytes.Equal(b1, b2) {
			t.Fatalf("decode∘encode is not a fixpoint:\n%x\n%x", b1, b2)
		}
	})
}

// decisionOutcomeSeeds returns encodings of random decisions (name
// NameDecision) or outcomes, a decision without action_probs, and damaged
// copies of them.
func decisionOutcomeSeeds(tb testing.TB, name string) [][]byte {
	rng := rand.New(rand.NewPCG(47, 48))
	var seeds [][]byte
	for i := range 4 {
		var b []byte
		if name == NameDecision {
			d := randDecision(rng)
			d.State = d.State[:min(len(d.State), 4)]
			if i == 0 {
				d.ActionProbs = nil
			}
			b, _ = MarshalDecision(nil, &d)
		} else {
			o := randOutcome(rng)
			b, _ = MarshalOutcome(nil, &o)
		}
		seeds = append(seeds, b, b[:len(b)/2], append(bytes.Clone(b), 0))
	}
	return append(seeds, nil, []byte{0xC3, 0x01}, AppendHeader(nil, Current(name).Fingerprint))
}

// FuzzUnmarshalDecision: invariant — UnmarshalDecision never panics and
// either succeeds or returns a *DecodeError with a known Reason, leaving
// its destination zeroed; a value it accepts re-encodes to a record that
// decodes to the same bytes again, and goavro accepts the same body and
// agrees.
func FuzzUnmarshalDecision(f *testing.F) {
	for _, s := range decisionOutcomeSeeds(f, NameDecision) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		d := Decision{DecisionID: "stale"}
		if err := UnmarshalDecision(in, &d); err != nil {
			checkDecodeError(t, err)
			if !reflect.DeepEqual(d, Decision{}) {
				t.Fatalf("failed decode left %+v", d)
			}
			return
		}
		b1, _ := MarshalDecision(nil, &d)
		var d2 Decision
		if err := UnmarshalDecision(b1, &d2); err != nil {
			t.Fatalf("re-encoded decision does not decode: %v", err)
		}
		if b2, _ := MarshalDecision(nil, &d2); !bytes.Equal(b1, b2) {
			t.Fatalf("decode∘encode is not a fixpoint:\n%x\n%x", b1, b2)
		}
		native, rest, err := Current(NameDecision).Codec().NativeFromBinary(in[HeaderLen:])
		if err != nil || len(rest) != 0 {
			t.Fatalf("hand decoder accepted what goavro rejects: %v (%d left)", err, len(rest))
		}
		var viaGoavro Decision
		if err := viaGoavro.FromNative(native.(map[string]any)); err != nil {
			t.Fatal(err)
		}
		if b3, _ := MarshalDecision(nil, &viaGoavro); !bytes.Equal(b1, b3) {
			t.Fatalf("hand decoder and goavro disagree:\n%x\n%x", b1, b3)
		}
	})
}

// FuzzUnmarshalOutcome: invariant — UnmarshalOutcome never panics and
// either succeeds or returns a *DecodeError with a known Reason, leaving
// its destination zeroed; a value it accepts re-encodes to a record that
// decodes to the same bytes again, and goavro accepts the same body and
// agrees.
func FuzzUnmarshalOutcome(f *testing.F) {
	for _, s := range decisionOutcomeSeeds(f, NameOutcome) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		o := Outcome{Kind: "stale"}
		if err := UnmarshalOutcome(in, &o); err != nil {
			checkDecodeError(t, err)
			if !reflect.DeepEqual(o, Outcome{}) {
				t.Fatalf("failed decode left %+v", o)
			}
			return
		}
		b1, _ := MarshalOutcome(nil, &o)
		var o2 Outcome
		if err := UnmarshalOutcome(b1, &o2); err != nil {
			t.Fatalf("re-encoded outcome does not decode: %v", err)
		}
		if b2, _ := MarshalOutcome(nil, &o2); !bytes.Equal(b1, b2) {
			t.Fatalf("decode∘encode is not a fixpoint:\n%x\n%x", b1, b2)
		}
		native, rest, err := Current(NameOutcome).Codec().NativeFromBinary(in[HeaderLen:])
		if err != nil || len(rest) != 0 {
			t.Fatalf("hand decoder accepted what goavro rejects: %v (%d left)", err, len(rest))
		}
		var viaGoavro Outcome
		if err := viaGoavro.FromNative(native.(map[string]any)); err != nil {
			t.Fatal(err)
		}
		if b3, _ := MarshalOutcome(nil, &viaGoavro); !bytes.Equal(b1, b3) {
			t.Fatalf("hand decoder and goavro disagree:\n%x\n%x", b1, b3)
		}
	})
}

func checkDecodeError(t *testing.T, err error) {
	t.Helper()
	var de *DecodeError
	if !errors.As(err, &de) {
		t.Fatalf("error %T %v is not a *DecodeError", err, err)
	}
	switch r := Reason(err); r {
	case "bad-magic", "truncated", "unknown-schema", "bad-body":
	default:
		t.Fatalf("Reason(%v) = %q", err, r)
	}
}

// TestFuzzCorpus keeps the committed seed corpus under testdata/fuzz in step
// with fuzzSeeds (go test runs those files as regular test cases).
// Regenerate with go test ./schemas -run TestFuzzCorpus -update.
func TestFuzzCorpus(t *testing.T) {
	for _, c := range []struct {
		fuzz  string
		seeds func(testing.TB) [][]byte
	}{
		{"FuzzUnmarshalExperience", func(tb testing.TB) [][]byte { return fuzzSeeds(tb, NameExperience) }},
		{"FuzzUnmarshalTaggedExperience", func(tb testing.TB) [][]byte { return fuzzSeeds(tb, NameTaggedExperience) }},
		{"FuzzUnmarshalTrainingMetrics", metricsSeeds},
		{"FuzzUnmarshalPolicySnapshot", snapshotSeeds},
		{"FuzzUnmarshalDecision", func(tb testing.TB) [][]byte { return decisionOutcomeSeeds(tb, NameDecision) }},
		{"FuzzUnmarshalOutcome", func(tb testing.TB) [][]byte { return decisionOutcomeSeeds(tb, NameOutcome) }},
	} {
		dir := filepath.Join("testdata", "fuzz", c.fuzz)
		seeds := c.seeds(t)
		if *update {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			for i, s := range seeds {
				content := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", s)
				if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%02d", i)), []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
		files, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		if len(files) < len(seeds) {
			t.Errorf("%s: %d corpus files, want at least %d", dir, len(files), len(seeds))
		}
	}
}

// FuzzRecordingReader feeds arbitrary bytes to the recording reader, seeded
// with a recording of the v1 recorder, truncated and damaged copies, and
// empty and foreign files. Invariant: it never panics and reading ends;
// every Next returns an entry or an error, and an entry it returns encodes
// again with the recording schema.
func FuzzRecordingReader(f *testing.F) {
	fixture, err := os.ReadFile(filepath.Join("testdata", "recording.v1.avro"))
	if err != nil {
		f.Fatal(err)
	}
	var nullCodec bytes.Buffer
	w, err := NewRecordingWriter(&nullCodec, RecordingOptions{Codec: "null", SourceTopic: "t", SourcePartitions: 1})
	if err != nil {
		f.Fatal(err)
	}
	for i := range recordingFixture {
		_ = w.Write(&recordingFixture[i])
	}
	_ = w.Flush()
	for _, b := range [][]byte{fixture, nullCodec.Bytes()} {
		f.Add(b)
		f.Add(b[:len(b)/2])
		f.Add(b[:len(b)-1])
		flipped := bytes.Clone(b)
		flipped[len(flipped)-20] ^= 0xff
		f.Add(flipped)
	}
	f.Add([]byte{})
	f.Add([]byte("Obj\x01"))
	codec := RecordingSchema().Codec()
	f.Fuzz(func(t *testing.T, in []byte) {
		r, err := NewRecordingReader(bytes.NewReader(in))
		if err != nil {
			return
		}
		for {
			m, err := r.Next()
			if err != nil {
				return
			}
			if _, err := codec.BinaryFromNative(nil, m.Native()); err != nil {
				t.Fatalf("entry %+v read does not encode again: %v", m, err)
			}
		}
	})
}
