package schemas

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
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
	b, err := v1.Codec().BinaryFromNative(AppendHeader(nil, v1.Fingerprint), randNative(rng, v1.root, 0))
	if err != nil {
		tb.Fatal(err)
	}
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
	for _, c := range []struct{ fuzz, name string }{
		{"FuzzUnmarshalExperience", NameExperience},
		{"FuzzUnmarshalTaggedExperience", NameTaggedExperience},
	} {
		dir := filepath.Join("testdata", "fuzz", c.fuzz)
		seeds := fuzzSeeds(t, c.name)
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
