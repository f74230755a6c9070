package schemas

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// avroVectors are the cases of Apache Avro's share/test/data/schema-tests.txt
// (input, Parsing Canonical Form, and the fingerprint as the Java long the
// file prints; 0 where the file gives none). The Avro Java tests cross-check
// these fingerprints with a slow direct implementation.
var avroVectors = []struct {
	input, canonical string
	fingerprint      int64
}{
	{`"null"`, `"null"`, 7195948357588979594},
	{`{"type":"null"}`, `"null"`, 0},
	{`"boolean"`, `"boolean"`, -6970731678124411036},
	{`{"type":"boolean"}`, `"boolean"`, 0},
	{`"int"`, `"int"`, 8247732601305521295},
	{`{"type":"int"}`, `"int"`, 0},
	{`"long"`, `"long"`, -3434872931120570953},
	{`{"type":"long"}`, `"long"`, 0},
	{`"float"`, `"float"`, 5583340709985441680},
	{`{"type":"float"}`, `"float"`, 0},
	{`"double"`, `"double"`, -8181574048448539266},
	{`{"type":"double"}`, `"double"`, 0},
	{`"bytes"`, `"bytes"`, 5746618253357095269},
	{`{"type":"bytes"}`, `"bytes"`, 0},
	{`"string"`, `"string"`, -8142146995180207161},
	{`{"type":"string"}`, `"string"`, 0},
	{`[  ]`, `[]`, -1241056759729112623},
	{`[ "int"  ]`, `["int"]`, -5232228896498058493},
	{`[ "int" , {"type":"boolean"} ]`, `["int","boolean"]`, 5392556393470105090},
	{`{"fields":[], "type":"record", "name":"foo"}`, `{"name":"foo","type":"record","fields":[]}`, -4824392279771201922},
	{`{"fields":[], "type":"record", "name":"foo", "namespace":"x.y"}`, `{"name":"x.y.foo","type":"record","fields":[]}`, 5916914534497305771},
	{`{"fields":[], "type":"record", "name":"a.b.foo", "namespace":"x.y"}`, `{"name":"a.b.foo","type":"record","fields":[]}`, -4616218487480524110},
	{`{"fields":[], "type":"record", "name":"foo", "doc":"Useful info"}`, `{"name":"foo","type":"record","fields":[]}`, -4824392279771201922},
	{`{"fields":[], "type":"record", "name":"foo", "aliases":["foo","bar"]}`, `{"name":"foo","type":"record","fields":[]}`, -4824392279771201922},
	{`{"fields":[], "type":"record", "name":"foo", "doc":"foo", "aliases":["foo","bar"]}`, `{"name":"foo","type":"record","fields":[]}`, -4824392279771201922},
	{`{"fields":[{"type":{"type":"boolean"}, "name":"f1"}], "type":"record", "name":"foo"}`, `{"name":"foo","type":"record","fields":[{"name":"f1","type":"boolean"}]}`, 7843277075252814651},
	{`{ "fields":[{"type":"boolean", "aliases":[], "name":"f1", "default":"true"},
            {"order":"descending","name":"f2","doc":"Hello","type":"int"}],
  "type":"record", "name":"foo"
}`, `{"name":"foo","type":"record","fields":[{"name":"f1","type":"boolean"},{"name":"f2","type":"int"}]}`, -4860222112080293046},
	{`{"type":"enum", "name":"foo", "symbols":["A1"]}`, `{"name":"foo","type":"enum","symbols":["A1"]}`, -6342190197741309591},
	{`{"namespace":"x.y.z", "type":"enum", "name":"foo", "doc":"foo bar", "symbols":["A1", "A2"]}`, `{"name":"x.y.z.foo","type":"enum","symbols":["A1","A2"]}`, -4448647247586288245},
	{`{"name":"foo","type":"fixed","size":15}`, `{"name":"foo","type":"fixed","size":15}`, 1756455273707447556},
	{`{"namespace":"x.y.z", "type":"fixed", "name":"foo", "doc":"foo bar", "size":32}`, `{"name":"x.y.z.foo","type":"fixed","size":32}`, -3064184465700546786},
	{`{ "items":{"type":"null"}, "type":"array"}`, `{"type":"array","items":"null"}`, -589620603366471059},
	{`{ "values":"string", "type":"map"}`, `{"type":"map","values":"string"}`, -8732877298790414990},
	{`{"name":"PigValue","type":"record",
   "fields":[{"name":"value", "type":["null", "int", "long", "PigValue"]}]}`, `{"name":"PigValue","type":"record","fields":[{"name":"value","type":["null","int","long","PigValue"]}]}`, -1759257747318642341},
}

func TestCanonicalFormAvroVectors(t *testing.T) {
	for i, v := range avroVectors {
		got, err := CanonicalForm(v.input)
		if err != nil {
			t.Errorf("case %03d: CanonicalForm(%s): %v", i, v.input, err)
			continue
		}
		if got != v.canonical {
			t.Errorf("case %03d: CanonicalForm(%s)\n got %s\nwant %s", i, v.input, got, v.canonical)
		}
		if v.fingerprint == 0 {
			continue
		}
		if fp := Fingerprint64([]byte(got)); fp != uint64(v.fingerprint) {
			t.Errorf("case %03d: Fingerprint64(%s) = %d, want %d", i, got, int64(fp), v.fingerprint)
		}
	}
}

// bitwiseFingerprint is the CRC-64-AVRO written directly from the
// polynomial, one bit at a time, without a table: an independent
// implementation to compare the table-driven one against.
func bitwiseFingerprint(data []byte) uint64 {
	fp := uint64(0xc15d213aa4d7a795)
	for _, c := range data {
		fp ^= uint64(c)
		for range 8 {
			if fp&1 == 1 {
				fp = (fp >> 1) ^ 0xc15d213aa4d7a795
			} else {
				fp >>= 1
			}
		}
	}
	return fp
}

func TestFingerprint64MatchesBitwise(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	inputs := [][]byte{nil, {0}, {0xff}, []byte(`"int"`)}
	for _, s := range Schemas() {
		inputs = append(inputs, []byte(s.Canonical))
	}
	for range 500 {
		b := make([]byte, rng.IntN(300))
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		inputs = append(inputs, b)
	}
	for _, in := range inputs {
		if got, want := Fingerprint64(in), bitwiseFingerprint(in); got != want {
			t.Fatalf("Fingerprint64(%q) = %#x, bitwise %#x", in, got, want)
		}
	}
	if got := Fingerprint64(nil); got != 0xc15d213aa4d7a795 {
		t.Errorf("Fingerprint64(empty) = %#x, want EMPTY 0xc15d213aa4d7a795", got)
	}
}

func TestCanonicalFormCases(t *testing.T) {
	cases := []struct {
		name, input, want string
	}{
		{"logical long is stripped", `{"type":"long","logicalType":"timestamp-millis"}`, `"long"`},
		{"logical int is stripped", `{"type":"int","logicalType":"date"}`, `"int"`},
		{"decimal bytes", `{"type":"bytes","logicalType":"decimal","precision":4,"scale":2}`, `"bytes"`},
		{"record with logical types, docs and defaults", `{
			"type":"record","name":"R","namespace":"a.b","doc":"d",
			"fields":[
				{"name":"t","type":{"type":"long","logicalType":"timestamp-millis"},"doc":"x"},
				{"name":"v","type":"long","default":-1,"order":"ignore"}]}`,
			`{"name":"a.b.R","type":"record","fields":[{"name":"t","type":"long"},{"name":"v","type":"long"}]}`},
		{"nested names inherit the namespace", `{
			"type":"record","name":"Outer","namespace":"ns",
			"fields":[
				{"name":"e","type":{"type":"enum","name":"E","symbols":["A","B"]}},
				{"name":"f","type":{"type":"fixed","name":"other.F","size":4}},
				{"name":"r","type":{"type":"record","name":"Inner","namespace":"ins","fields":[
					{"name":"g","type":{"type":"fixed","name":"G","size":2}}]}},
				{"name":"e2","type":"E"},
				{"name":"g2","type":"ins.G"},
				{"name":"f2","type":{"type":"other.F"}}]}`,
			`{"name":"ns.Outer","type":"record","fields":[` +
				`{"name":"e","type":{"name":"ns.E","type":"enum","symbols":["A","B"]}},` +
				`{"name":"f","type":{"name":"other.F","type":"fixed","size":4}},` +
				`{"name":"r","type":{"name":"ins.Inner","type":"record","fields":[{"name":"g","type":{"name":"ins.G","type":"fixed","size":2}}]}},` +
				`{"name":"e2","type":"ns.E"},{"name":"g2","type":"ins.G"},{"name":"f2","type":"other.F"}]}`},
		{"arrays and maps of named types", `{"type":"record","name":"X","namespace":"n","fields":[
				{"name":"a","type":{"type":"array","items":{"type":"map","values":{"type":"enum","name":"S","symbols":["Z"],"default":"Z"}}}},
				{"name":"b","type":{"type":"map","values":["null","S",{"type":"array","items":"float"}]}}]}`,
			`{"name":"n.X","type":"record","fields":[` +
				`{"name":"a","type":{"type":"array","items":{"type":"map","values":{"name":"n.S","type":"enum","symbols":["Z"]}}}},` +
				`{"name":"b","type":{"type":"map","values":["null","n.S",{"type":"array","items":"float"}]}}]}`},
		{"explicit empty namespace", `{"type":"record","name":"R","namespace":"a","fields":[
				{"name":"x","type":{"type":"enum","name":"E","namespace":"","symbols":["A"]}}]}`,
			`{"name":"a.R","type":"record","fields":[{"name":"x","type":{"name":"E","type":"enum","symbols":["A"]}}]}`},
		{"error type", `{"type":"error","name":"Oops","fields":[]}`, `{"name":"Oops","type":"error","fields":[]}`},
		{"whitespace and unicode escapes", "{ \"type\" : \"enum\" ,\n \"name\" : \"E\", \"symbols\" : [ \"\\u0041\" ] }", `{"name":"E","type":"enum","symbols":["A"]}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := CanonicalForm(c.input)
			if err != nil {
				t.Fatalf("CanonicalForm: %v", err)
			}
			if got != c.want {
				t.Errorf("got  %s\nwant %s", got, c.want)
			}
		})
	}
}

func TestCanonicalFormRejects(t *testing.T) {
	for _, in := range []string{
		``, `{`, `"nosuchtype"`, `{"type":"record","fields":[]}`,
		`{"type":"record","name":"R"}`, `{"type":"enum","name":"E","symbols":[1]}`,
		`{"type":"fixed","name":"F"}`, `{"type":"fixed","name":"F","size":-1}`,
		`{"type":"array","items":"Undefined"}`, `{"type":7}`, `42`, `"int" "int"`,
		`{"type":"record","name":"R","fields":[{"name":"a","type":{"type":"record","name":"R","fields":[]}}]}`,
	} {
		if got, err := CanonicalForm(in); err == nil {
			t.Errorf("CanonicalForm(%q) = %q, want an error", in, got)
		}
	}
}

// shippedFingerprints pins every shipped schema file. A shipped .avsc must
// never change: records written with it carry its fingerprint and must stay
// readable. Evolve a schema by adding a new version file.
var shippedFingerprints = map[string]uint64{
	"avro/decision.v1.avsc":          0xa9ca8a2d9663a6a6,
	"avro/experience.v1.avsc":        0xb8c91bebd11147b9,
	"avro/experience.v2.avsc":        0x2fed1dc141c6e202,
	"avro/policy_snapshot.v1.avsc":   0x790f0342ee9cc810,
	"avro/outcome.v1.avsc":           0x90529acb104bc091,
	"avro/recorded_message.v1.avsc":  0xd3db2a2b60a52d69,
	"avro/recorded_message.v2.avsc":  0x2a45910bf14d8af7,
	"avro/tagged_experience.v1.avsc": 0x3b567128dd569b90,
	"avro/tagged_experience.v2.avsc": 0x030457be12d1ac8a,
	"avro/training_metrics.v1.avsc":  0x516f1c738a2c3bb8,
	"avro/training_metrics.v2.avsc":  0x5447b7bc3df00452,
	"avro/training_metrics.v3.avsc":  0x5941dfc5bb131bfa,
}

func TestShippedSchemas(t *testing.T) {
	all := Schemas()
	if len(all) != len(shippedFingerprints) {
		t.Errorf("%d shipped schemas, want %d (pin new versions in shippedFingerprints)", len(all), len(shippedFingerprints))
	}
	for _, s := range all {
		want, ok := shippedFingerprints[s.File]
		if !ok {
			t.Errorf("%s is not pinned in shippedFingerprints", s.File)
		} else if s.Fingerprint != want {
			t.Errorf("%s: fingerprint %#016x, pinned %#016x: shipped schemas must not change", s.File, s.Fingerprint, want)
		}
		if got := Fingerprint64([]byte(s.Canonical)); got != s.Fingerprint {
			t.Errorf("%s: Fingerprint %#x != Fingerprint64(Canonical) %#x", s.File, s.Fingerprint, got)
		}
		for _, attr := range []string{"logicalType", "doc", "default", "namespace", " "} {
			if strings.Contains(s.Canonical, attr) {
				t.Errorf("%s: canonical form contains %q: %s", s.File, attr, s.Canonical)
			}
		}
		if !strings.HasPrefix(s.Canonical, `{"name":"aelp.`) {
			t.Errorf("%s: canonical form does not start with the fullname: %.40s", s.File, s.Canonical)
		}
		if got, ok := Lookup(s.Fingerprint); !ok || got != s {
			t.Errorf("Lookup(%#x) = %v, %v", s.Fingerprint, got, ok)
		}
	}
	wantCurrent := map[string]int{NameExperience: 2, NameTaggedExperience: 2, NameTrainingMetrics: 3, NamePolicySnapshot: 1, NameRecordedMessage: 2, NameDecision: 1, NameOutcome: 1}
	for name, v := range wantCurrent {
		if s := Current(name); s == nil || s.Version != v {
			t.Errorf("Current(%s) = %+v, want version %d", name, s, v)
		}
	}
	if Current("aelp.Nope") != nil {
		t.Error("Current of an unknown name is not nil")
	}
	// goavro's own canonical form keeps {"type":"long"} for logical types,
	// so its fingerprint differs from the specification's; ours must not.
	exp := Current(NameExperience)
	if strings.Contains(exp.Canonical, "timestamp-millis") {
		t.Errorf("canonical form kept the logical type: %s", exp.Canonical)
	}
	if exp.Codec().Rabin == exp.Fingerprint {
		t.Logf("note: goavro's fingerprint agrees with the specification's for %s", exp.Name)
	}
}
