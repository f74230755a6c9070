package schemas

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/linkedin/goavro/v2"
)

var update = flag.Bool("update", false, "rewrite the fixtures under testdata/")

func schemaVersion(t testing.TB, name string, version int) *Schema {
	t.Helper()
	for _, s := range Schemas() {
		if s.Name == name && s.Version == version {
			return s
		}
	}
	t.Fatalf("no %s v%d", name, version)
	return nil
}

// encodeAs returns native in s's single-object encoding.
func encodeAs(t testing.TB, s *Schema, native any) []byte {
	t.Helper()
	b, err := s.Codec().BinaryFromNative(AppendHeader(nil, s.Fingerprint), native)
	if err != nil {
		t.Fatalf("encode as %s v%d: %v", s.Name, s.Version, err)
	}
	return b
}

// fixture returns the bytes of testdata/file, a record of schema s, after
// rewriting them with native() under -update (native nil: a recording of
// a run, never rewritten); it fails unless they identify as s.
func fixture(t *testing.T, file string, s *Schema, native func() map[string]any) []byte {
	t.Helper()
	path := filepath.Join("testdata", file)
	if *update && native != nil {
		if err := os.WriteFile(path, encodeAs(t, s, native()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if name, version, err := Identify(b); err != nil || name != s.Name || version != s.Version {
		t.Fatalf("Identify(%s) = %q, %d, %v; want %s v%d", file, name, version, err, s.Name, s.Version)
	}
	return b
}

// v1FixtureNative is the record in testdata/experience.v1.bin, written with
// experience.v1.avsc (no policy_version).
func v1FixtureNative() map[string]any {
	return map[string]any{
		"id": "exp-000001", "experiment_id": "baseline", "episode_id": "ep-7",
		"user_id": "user-42", "step": int32(3),
		"timestamp":        time.Date(2024, 5, 6, 7, 8, 9, 123e6, time.UTC),
		"state":            []any{float32(0.5), float32(-1.25), float32(3)},
		"action":           int32(2),
		"behavior_logprob": -0.6931471805599453,
		"reward":           1.5,
		"next_state":       []any{float32(0.75), float32(-1), float32(2.5)},
		"done":             false,
		"value":            12.25,
		"metadata":         map[string]any{"event_type": "CRISIS_PARENT"},
	}
}

// TestV1Fixture decodes the committed bytes of a version-1 Experience into
// the current struct: policy_version, absent in v1, takes its default -1.
// Regenerate with go test ./schemas -run TestV1Fixture -update.
func TestV1Fixture(t *testing.T) {
	b := fixture(t, "experience.v1.bin", schemaVersion(t, NameExperience, 1), v1FixtureNative)
	var got Experience
	if err := UnmarshalExperience(b, &got); err != nil {
		t.Fatalf("UnmarshalExperience(fixture): %v", err)
	}
	want := Experience{
		ID: "exp-000001", ExperimentID: "baseline", EpisodeID: "ep-7", UserID: "user-42", Step: 3,
		Timestamp:       time.Date(2024, 5, 6, 7, 8, 9, 123e6, time.UTC),
		State:           []float32{0.5, -1.25, 3},
		Action:          2,
		BehaviorLogProb: -0.6931471805599453,
		PolicyVersion:   -1,
		Reward:          1.5,
		NextState:       []float32{0.75, -1, 2.5},
		Value:           12.25,
		Metadata:        map[string]string{"event_type": "CRISIS_PARENT"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("fixture\n got %+v\nwant %+v", got, want)
	}
	if err := got.Validate(Limits{StateDim: 3, NumActions: 4}); err != nil {
		t.Errorf("fixture does not validate: %v", err)
	}
	_, native, err := DecodeNative(b)
	if err != nil {
		t.Fatal(err)
	}
	if pv, ok := native["policy_version"].(int64); !ok || pv != -1 {
		t.Errorf("DecodeNative policy_version = %#v, want int64(-1)", native["policy_version"])
	}
	// Re-encoding gives a current (v2) record.
	again, _ := MarshalExperience(nil, &got)
	if _, version, _ := Identify(again); version != 2 {
		t.Errorf("re-encoded fixture is version %d, want 2", version)
	}
}

// randNative returns a random datum of schema n in goavro's native form.
func randNative(rng *rand.Rand, n *node, depth int) any {
	switch n.kind {
	case kNull:
		return nil
	case kBoolean:
		return rng.IntN(2) == 1
	case kInt:
		return int32(rng.Uint32())
	case kLong:
		if n.logical == "timestamp-millis" {
			return randMillis(rng)
		}
		return int64(rng.Uint64())
	case kFloat:
		return float32(rng.NormFloat64())
	case kDouble:
		return rng.NormFloat64()
	case kBytes:
		return []byte(randString(rng, 30))
	case kString:
		return randString(rng, 12)
	case kEnum:
		return n.symbols[rng.IntN(len(n.symbols))]
	case kFixed:
		return bytes.Repeat([]byte{byte(rng.Uint32())}, n.size)
	case kArray:
		out := make([]any, rng.IntN(5))
		for i := range out {
			out[i] = randNative(rng, n.items, depth+1)
		}
		return out
	case kMap:
		out := make(map[string]any)
		for range rng.IntN(4) {
			out[randString(rng, 6)] = randNative(rng, n.values, depth+1)
		}
		return out
	case kRecord:
		out := make(map[string]any, len(n.fields))
		for _, f := range n.fields {
			out[f.name] = randNative(rng, f.typ, depth+1)
		}
		return out
	case kUnion:
		b := n.branches[rng.IntN(len(n.branches))]
		if b.kind == kNull {
			return nil
		}
		return map[string]any{branchName(b): randNative(rng, b, depth+1)}
	}
	panic("unknown kind")
}

// checkResolved asserts that reader datum rv holds writer datum wv field by
// field, and the reader's default wherever the writer lacks a field.
func checkResolved(t *testing.T, path string, w, r *node, wv, rv any) {
	t.Helper()
	if w.kind == kRecord && r.kind == kRecord {
		wm, rm := wv.(map[string]any), rv.(map[string]any)
		if len(rm) != len(r.fields) {
			t.Errorf("%s: %d reader fields, want %d", path, len(rm), len(r.fields))
		}
		for _, rf := range r.fields {
			i := -1
			for j, wf := range w.fields {
				if wf.name == rf.name {
					i = j
				}
			}
			if i < 0 {
				def, err := defaultNative(rf.typ, rf.def, 0)
				if err != nil {
					t.Fatalf("%s.%s default: %v", path, rf.name, err)
				}
				if !reflect.DeepEqual(rm[rf.name], def) {
					t.Errorf("%s.%s = %#v, want the default %#v", path, rf.name, rm[rf.name], def)
				}
				continue
			}
			checkResolved(t, path+"."+rf.name, w.fields[i].typ, rf.typ, wm[rf.name], rm[rf.name])
		}
		return
	}
	if w.kind == kArray && r.kind == kArray {
		wa, ra := wv.([]any), rv.([]any)
		if len(wa) != len(ra) {
			t.Errorf("%s: %d items, want the written %d", path, len(ra), len(wa))
			return
		}
		for i := range wa {
			checkResolved(t, fmt.Sprintf("%s[%d]", path, i), w.items, r.items, wa[i], ra[i])
		}
		return
	}
	if w.kind != kUnion && r.kind == kUnion {
		// A value promoted into a union: the reader's branch of the
		// writer's type holds it.
		for _, b := range r.branches {
			if b.kind != w.kind || b.name != w.name {
				continue
			}
			if b.kind == kNull {
				if rv != nil {
					t.Errorf("%s = %#v, want null", path, rv)
				}
				return
			}
			rm, ok := rv.(map[string]any)
			if !ok || len(rm) != 1 {
				t.Errorf("%s = %#v, want the union branch %s", path, rv, branchName(b))
				return
			}
			checkResolved(t, path+"."+branchName(b), w, b, wv, rm[branchName(b)])
			return
		}
		t.Errorf("%s: no reader branch for the writer's %v", path, w.kind)
		return
	}
	if !reflect.DeepEqual(wv, rv) {
		t.Errorf("%s = %#v, want the written %#v", path, rv, wv)
	}
}

// TestEveryVersionReadableByCurrent writes random records with every
// shipped schema version and reads them with the current version of the
// same name: through DecodeNative (fields kept, added fields defaulted, the
// result encodable with the current codec) and through the typed Unmarshal.
func TestEveryVersionReadableByCurrent(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	n := 200
	if testing.Short() {
		n = 40
	}
	for _, s := range Schemas() {
		cur := Current(s.Name)
		t.Run(strings.TrimPrefix(s.File, "avro/"), func(t *testing.T) {
			for i := range n {
				wv := randNative(rng, s.root, 0)
				b, err := s.Codec().BinaryFromNative(AppendHeader(nil, s.Fingerprint), wv)
				if err != nil {
					t.Fatalf("record %d: writer encode: %v", i, err)
				}
				name, rv, err := DecodeNative(b)
				if err != nil || name != s.Name {
					t.Fatalf("record %d: DecodeNative = %q, %v", i, name, err)
				}
				checkResolved(t, s.Name, s.root, cur.root, wv, rv)
				if _, err := cur.Codec().BinaryFromNative(nil, rv); err != nil {
					t.Fatalf("record %d: resolved native does not fit the current schema: %v", i, err)
				}
				switch s.Name {
				case NameExperience:
					var e Experience
					err = UnmarshalExperience(b, &e)
					if err == nil && s.Version == 1 && e.PolicyVersion != -1 {
						t.Fatalf("v1 record read with PolicyVersion %d, want -1", e.PolicyVersion)
					}
				case NameTaggedExperience:
					var tg TaggedExperience
					err = UnmarshalTaggedExperience(b, &tg)
					if err == nil && s.Version == 1 && tg.PolicyVersion != -1 {
						t.Fatalf("v1 record read with PolicyVersion %d, want -1", tg.PolicyVersion)
					}
				case NameTrainingMetrics:
					var m TrainingMetrics
					err = UnmarshalTrainingMetrics(b, &m)
				case NamePolicySnapshot:
					var p PolicySnapshot
					err = UnmarshalPolicySnapshot(b, &p)
				case NameDecision:
					var d Decision
					err = UnmarshalDecision(b, &d)
				case NameOutcome:
					var o Outcome
					err = UnmarshalOutcome(b, &o)
				case NameRecordedMessage:
					// Not a Kafka record: entries of recording files.
					var m RecordedMessage
					err = m.FromNative(rv)
				default:
					t.Fatalf("no typed decoder for %s", s.Name)
				}
				if err != nil {
					t.Fatalf("record %d: typed Unmarshal: %v", i, err)
				}
			}
		})
	}
}

// TestOldVersionTypedEqualsNative: a v1 TaggedExperience decodes to the same
// struct as its current-version re-encoding.
func TestOldVersionTypedEqualsCurrent(t *testing.T) {
	rng := rand.New(rand.NewPCG(23, 24))
	v1 := schemaVersion(t, NameTaggedExperience, 1)
	for range 50 {
		tg := randTagged(rng)
		native := tg.Native()
		delete(native["experience"].(map[string]any), "policy_version")
		b := encodeAs(t, v1, native)
		var got TaggedExperience
		if err := UnmarshalTaggedExperience(b, &got); err != nil {
			t.Fatal(err)
		}
		want := tg
		want.PolicyVersion = -1
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("v1 tagged\n got %+v\nwant %+v", got, want)
		}
	}
}

// TestResolve exercises the resolver on schema changes beyond the shipped
// ones: promotions, dropped fields, unions on either side, defaults of
// every kind, and the changes it must refuse.
func TestResolve(t *testing.T) {
	writer := `{"type":"record","name":"R","namespace":"t","fields":[
		{"name":"i","type":"int"},
		{"name":"l","type":"long"},
		{"name":"f","type":"float"},
		{"name":"s","type":"string"},
		{"name":"gone","type":"double"},
		{"name":"u","type":["null","int"]},
		{"name":"e","type":{"type":"enum","name":"E","symbols":["A","B"]}},
		{"name":"a","type":{"type":"array","items":"int"}},
		{"name":"ts","type":"long"}]}`
	reader := `{"type":"record","name":"R","namespace":"t","fields":[
		{"name":"i","type":"double"},
		{"name":"l","type":"float"},
		{"name":"f","type":"double"},
		{"name":"s","type":"bytes"},
		{"name":"u","type":["null","long"]},
		{"name":"e","type":{"type":"enum","name":"E","symbols":["B","A","C"]}},
		{"name":"a","type":{"type":"array","items":["null","long"]}},
		{"name":"ts","type":{"type":"long","logicalType":"timestamp-millis"}},
		{"name":"new_int","type":"int","default":7},
		{"name":"new_opt","type":["null","string"],"default":null},
		{"name":"new_str_first","type":["string","null"],"default":"x"},
		{"name":"new_ts","type":{"type":"long","logicalType":"timestamp-millis"},"default":1000},
		{"name":"new_bytes","type":"bytes","default":"\u00ff"},
		{"name":"new_rec","type":{"type":"record","name":"N","fields":[{"name":"x","type":"float","default":1.5},{"name":"y","type":"boolean"}]},"default":{"y":true}},
		{"name":"new_arr","type":{"type":"array","items":"E"},"default":["C"]},
		{"name":"new_map","type":{"type":"map","values":"int"},"default":{"k":1}}]}`
	w, err := parseSchema(writer)
	if err != nil {
		t.Fatal(err)
	}
	r, err := parseSchema(reader)
	if err != nil {
		t.Fatal(err)
	}
	wc, _ := goavro.NewCodec(writer)
	rc, err := goavro.NewCodec(reader)
	if err != nil {
		t.Fatal(err)
	}
	in := map[string]any{
		"i": int32(-3), "l": int64(1 << 40), "f": float32(0.25), "s": "hé", "gone": 9.5,
		"u": map[string]any{"int": int32(5)}, "e": "B", "a": []any{int32(1), int32(-2)}, "ts": int64(86_400_000),
	}
	body, err := wc.BinaryFromNative(nil, in)
	if err != nil {
		t.Fatal(err)
	}
	decoded, _, err := wc.NativeFromBinary(body)
	if err != nil {
		t.Fatal(err)
	}
	got, err := resolve(w, r, decoded)
	if err != nil {
		t.Fatalf("resolve: %v", err)
	}
	want := map[string]any{
		"i": float64(-3), "l": float32(1 << 40), "f": float64(0.25), "s": []byte("hé"),
		"u": map[string]any{"long": int64(5)}, "e": "B",
		"a":  []any{map[string]any{"long": int64(1)}, map[string]any{"long": int64(-2)}},
		"ts": time.UnixMilli(86_400_000).UTC(), "new_int": int32(7), "new_opt": nil,
		"new_str_first": map[string]any{"string": "x"}, "new_ts": time.UnixMilli(1000).UTC(),
		"new_bytes": []byte{0xff}, "new_rec": map[string]any{"x": float32(1.5), "y": true},
		"new_arr": []any{"C"}, "new_map": map[string]any{"k": int32(1)},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("resolve\n got %#v\nwant %#v", got, want)
	}
	if _, err := rc.BinaryFromNative(nil, got); err != nil {
		t.Errorf("resolved datum does not encode with the reader codec: %v", err)
	}

	refuse := []struct{ name, writer, reader string }{
		{"missing field without default",
			`{"type":"record","name":"R","fields":[]}`,
			`{"type":"record","name":"R","fields":[{"name":"x","type":"int"}]}`},
		{"narrowing long to int",
			`{"type":"record","name":"R","fields":[{"name":"x","type":"long"}]}`,
			`{"type":"record","name":"R","fields":[{"name":"x","type":"int"}]}`},
		{"renamed record",
			`{"type":"record","name":"R","fields":[]}`,
			`{"type":"record","name":"S","fields":[]}`},
		{"no matching union branch",
			`{"type":"record","name":"R","fields":[{"name":"x","type":"string"}]}`,
			`{"type":"record","name":"R","fields":[{"name":"x","type":["null","int"]}]}`},
		{"bad default",
			`{"type":"record","name":"R","fields":[]}`,
			`{"type":"record","name":"R","fields":[{"name":"x","type":"int","default":"seven"}]}`},
	}
	for _, c := range refuse {
		w, err1 := parseSchema(c.writer)
		r, err2 := parseSchema(c.reader)
		if err := errors.Join(err1, err2); err != nil {
			t.Fatal(err)
		}
		wc, _ := goavro.NewCodec(c.writer)
		v := randNative(rand.New(rand.NewPCG(1, 1)), w, 0)
		b, err := wc.BinaryFromNative(nil, v)
		if err != nil {
			t.Fatal(err)
		}
		native, _, _ := wc.NativeFromBinary(b)
		if got, err := resolve(w, r, native); err == nil {
			t.Errorf("%s: resolve = %#v, want an error", c.name, got)
		}
	}

	// An enum symbol the reader lacks is refused.
	ew, _ := parseSchema(`{"type":"enum","name":"E","symbols":["A","Z"]}`)
	er, _ := parseSchema(`{"type":"enum","name":"E","symbols":["A"]}`)
	if _, err := resolve(ew, er, "Z"); err == nil {
		t.Error("resolve accepted an enum symbol unknown to the reader")
	}
}

// TestTrainingMetricsV1ReadsWithoutOPE: a version-1 TrainingMetrics (no
// ope field) decodes to the struct it was written from with OPE nil, and
// the recorded v1 fixture of an aelp run still decodes.
func TestTrainingMetricsV1ReadsWithoutOPE(t *testing.T) {
	rng := rand.New(rand.NewPCG(25, 26))
	v1 := schemaVersion(t, NameTrainingMetrics, 1)
	for range 50 {
		m := randMetrics(rng)
		m.OPE = randOPE(rng)
		native := m.Native()
		delete(native, "ope")
		b := encodeAs(t, v1, native)
		var got TrainingMetrics
		if err := UnmarshalTrainingMetrics(b, &got); err != nil {
			t.Fatal(err)
		}
		want := m
		want.OPE, want.Tagging = nil, nil
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("v1 metrics\n got %+v\nwant %+v", got, want)
		}
	}
	recorded := fixture(t, "training-metrics.v1.bin", v1, nil)
	var m TrainingMetrics
	if err := UnmarshalTrainingMetrics(recorded, &m); err != nil || m.OPE != nil || m.ExperimentID == "" {
		t.Fatalf("recorded v1 metrics: %v, OPE %v, experiment %q", err, m.OPE, m.ExperimentID)
	}
}

// TestTrainingMetricsV2ReadsWithoutTagging: a version-2 TrainingMetrics (no
// tagging field) decodes to the struct it was written from with Tagging
// nil, its OPE kept, and the v2 fixture (v2FixtureMetrics encoded with the
// v2 schema; rewritten by -update) still decodes to it.
func TestTrainingMetricsV2ReadsWithoutTagging(t *testing.T) {
	rng := rand.New(rand.NewPCG(27, 28))
	v2 := schemaVersion(t, NameTrainingMetrics, 2)
	for range 50 {
		m := randMetrics(rng)
		m.OPE, m.Tagging = randOPE(rng), randTagging(rng)
		native := m.Native()
		delete(native, "tagging")
		b := encodeAs(t, v2, native)
		var got TrainingMetrics
		if err := UnmarshalTrainingMetrics(b, &got); err != nil {
			t.Fatal(err)
		}
		want := m
		want.Tagging = nil
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("v2 metrics\n got %+v\nwant %+v", got, want)
		}
	}
	recorded := fixture(t, "training-metrics.v2.bin", v2, func() map[string]any {
		m := v2FixtureMetrics()
		native := m.Native()
		delete(native, "tagging")
		return native
	})
	var m TrainingMetrics
	if err := UnmarshalTrainingMetrics(recorded, &m); err != nil || !reflect.DeepEqual(m, v2FixtureMetrics()) {
		t.Fatalf("v2 fixture: %v\n got %+v\nwant %+v", err, m, v2FixtureMetrics())
	}
}

// v2FixtureMetrics is the record of testdata/training-metrics.v2.bin: the
// figures of a learner's report after 100 updates with a held-back
// snapshot's off-policy evaluation (no tagging: version 2 has none).
func v2FixtureMetrics() TrainingMetrics {
	return TrainingMetrics{ExperimentID: "demo", LearnerID: "learner-0", Update: 100,
		Timestamp: time.Date(2026, 12, 1, 17, 40, 0, 0, time.UTC), EnableImportanceSampling: true,
		CrisisParentWeight: 5, RegularParentWeight: 1, CrisisParentRatioInBatch: 0.3, ExpectedCrisisRatio: 0.31,
		CrisisFractionInBuffer: 0.08, ImportanceWeightsMean: 1, ImportanceWeightsStd: 0.4, ImportanceWeightsMin: 0.3,
		ImportanceWeightsMax: 1.7, Beta: 0.45, PolicyLoss: -0.0007, ValueLoss: 10.9, Entropy: 1.38, ApproxKL: 0.00002,
		ClipFrac: 0.01, ExplainedVariance: 0.31, GradNorm: 0.5, LearningRate: 0.0003, IngestPerSec: 5000,
		SamplesPerSec: 20000, BufferSize: 15104, Updates: 100, ExperiencesIngested: 30000, ConsumerLag: 12, EpochsRun: 4,
		TagPrecision: ptr(0.596), TagRecall: ptr(0.945), MeanReturnCrisis: ptr(19.13), MeanReturnRegular: ptr(1.2),
		OPE: &OffPolicyEvaluation{PolicyVersion: 12, ServingVersion: -1, Estimator: "WPDIS", Confidence: 0.95,
			Journeys: 13381, Reason: "lcb-not-above-serving", Detail: "overall: lower bound 0.89 not above the serving policy's 1.386",
			Segments: []OffPolicySegment{
				{Segment: "all", Journeys: 13381, Estimate: 1.161, LCB: 0.89, UCB: 1.482, ESS: 1129, ServingLCB: ptr(1.386)},
				{Segment: "tag CRISIS_PARENT", Journeys: 1349, Estimate: 14.799, LCB: 12.771, UCB: 17.186, ESS: 47},
			}}}
}

// TestTrainingMetricsV3Tagging: the per-source tagging of version 3 round-
// trips, entry order and null figures kept, and nil stays nil.
func TestTrainingMetricsV3Tagging(t *testing.T) {
	m := TrainingMetrics{ExperimentID: "exp", Timestamp: time.UnixMilli(1_700_000_000_000).UTC()}
	m.Tagging = []TagSourceAccuracy{
		{Source: "LABEL", Records: 40, Precision: ptr(1.0), Recall: ptr(1.0), F1: ptr(1.0), Brier: ptr(0.0), ECE: ptr(0.0)},
		{Source: "DEFAULT", Records: 100, Recall: ptr(0.0), F1: ptr(0.0), Brier: ptr(0.04), ECE: ptr(0.01)},
	}
	for _, tagging := range [][]TagSourceAccuracy{m.Tagging, nil} {
		m.Tagging = tagging
		b, err := MarshalTrainingMetrics(nil, &m)
		if err != nil {
			t.Fatal(err)
		}
		if _, v, _ := Identify(b); v != 3 {
			t.Fatalf("written as version %d, want 3", v)
		}
		var got TrainingMetrics
		if err := UnmarshalTrainingMetrics(b, &got); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Fatalf("round trip\n got %+v\nwant %+v", got.Tagging, m.Tagging)
		}
	}
}
