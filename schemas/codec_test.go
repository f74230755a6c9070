package schemas

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
)

func TestExperienceRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 500 {
		roundTrip(t, i, []byte("existing"), randExperience(rng), MarshalExperience, UnmarshalExperience)
	}
}

func TestTaggedExperienceRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for i := range 500 {
		roundTrip(t, i, nil, randTagged(rng), MarshalTaggedExperience, UnmarshalTaggedExperience)
	}
}

func TestTrainingMetricsRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for i := range 200 {
		roundTrip(t, i, nil, randMetrics(rng), MarshalTrainingMetrics, UnmarshalTrainingMetrics)
	}
}

func TestPolicySnapshotRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	for i := range 200 {
		want := randSnapshot(rng)
		b, got := roundTrip(t, i, nil, want, MarshalPolicySnapshot, UnmarshalPolicySnapshot)
		if len(got.Params) > 0 {
			// Params must be a copy: clobbering the input leaves it intact.
			clear(b)
			if !bytes.Equal(got.Params, want.Params) {
				t.Fatal("Params changed when the input buffer was overwritten")
			}
		}
	}
}

// TestSpecialFloatsRoundTrip: NaN and ±Inf are encodable (Validate, not the
// codec, rejects them) and keep their bits.
func TestSpecialFloatsRoundTrip(t *testing.T) {
	nan32 := math.Float32frombits(0x7fc00001)
	e := Experience{
		ID: "x", State: []float32{nan32, float32(math.Inf(-1)), -0}, Reward: math.NaN(),
		Value: math.Inf(1), BehaviorLogProb: math.Copysign(0, -1), Timestamp: time.UnixMilli(0).UTC(),
	}
	b, _ := MarshalExperience(nil, &e)
	var got Experience
	if err := UnmarshalExperience(b, &got); err != nil {
		t.Fatal(err)
	}
	if math.Float32bits(got.State[0]) != 0x7fc00001 || !math.IsInf(float64(got.State[1]), -1) ||
		!math.IsNaN(got.Reward) || !math.IsInf(got.Value, 1) || !math.Signbit(got.BehaviorLogProb) {
		t.Errorf("special floats changed: %+v", got)
	}
}

// goavroBody encodes native with the current goavro codec of name.
func goavroBody(t *testing.T, name string, native map[string]any) []byte {
	t.Helper()
	b, err := Current(name).Codec().BinaryFromNative(nil, native)
	if err != nil {
		t.Fatalf("goavro BinaryFromNative: %v", err)
	}
	return b
}

// TestHandCodecMatchesGoavro is the property test of the hand-written
// codec: on many random records its body is byte-identical to goavro's
// BinaryFromNative (goavro writes map entries in Go's random map order, so
// identity is asserted for records with at most one metadata entry; for
// larger maps goavro's bytes must decode to the same record, and goavro must
// decode ours to the same native); and the hand decoder reads goavro's
// bytes into the same struct as goavro's decoder + FromNative.
func TestHandCodecMatchesGoavro(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	identical := 0
	for i := range 2000 {
		tagged := randTagged(rng)
		for _, name := range []string{NameExperience, NameTaggedExperience} {
			var mine []byte
			var native map[string]any
			if name == NameExperience {
				mine, _ = MarshalExperience(nil, &tagged.Experience)
				native = tagged.Experience.Native()
			} else {
				var err error
				if mine, err = MarshalTaggedExperience(nil, &tagged); err != nil {
					t.Fatal(err)
				}
				native = tagged.Native()
			}
			body := mine[HeaderLen:]
			theirs := goavroBody(t, name, native)
			if len(tagged.Metadata) <= 1 {
				identical++
				if !bytes.Equal(body, theirs) {
					t.Fatalf("record %d %s: hand body != goavro body\nhand   %x\ngoavro %x", i, name, body, theirs)
				}
			} else if len(body) != len(theirs) {
				t.Fatalf("record %d %s: hand body %d bytes, goavro %d", i, name, len(body), len(theirs))
			}
			// goavro reads the hand-written bytes back to the same native.
			back, rest, err := Current(name).Codec().NativeFromBinary(body)
			if err != nil || len(rest) != 0 {
				t.Fatalf("record %d %s: goavro cannot read the hand body: %v (%d left)", i, name, err, len(rest))
			}
			var viaGoavro TaggedExperience
			if name == NameExperience {
				err = viaGoavro.Experience.FromNative(back.(map[string]any))
			} else {
				err = viaGoavro.FromNative(back.(map[string]any))
			}
			if err != nil {
				t.Fatal(err)
			}
			// The hand decoder reads goavro's bytes to the same struct.
			framed := AppendHeader(nil, Current(name).Fingerprint)
			framed = append(framed, theirs...)
			var viaHand TaggedExperience
			if name == NameExperience {
				err = UnmarshalExperience(framed, &viaHand.Experience)
			} else {
				err = UnmarshalTaggedExperience(framed, &viaHand)
			}
			if err != nil {
				t.Fatalf("record %d %s: hand decoder cannot read goavro's body: %v", i, name, err)
			}
			if !reflect.DeepEqual(viaHand, viaGoavro) {
				t.Fatalf("record %d %s: hand decoder and goavro disagree\nhand   %+v\ngoavro %+v", i, name, viaHand, viaGoavro)
			}
		}
	}
	if identical < 1000 {
		t.Errorf("only %d byte-identity comparisons; the generator should give more", identical)
	}
}

// TestNativeMatchesGoavroDecode: DecodeNative of a current record equals
// goavro's own decode of the body.
func TestNativeMatchesGoavroDecode(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	for range 50 {
		tg := randTagged(rng)
		b, _ := MarshalTaggedExperience(nil, &tg)
		name, native, err := DecodeNative(b)
		if err != nil || name != NameTaggedExperience {
			t.Fatalf("DecodeNative = %q, %v", name, err)
		}
		want, _, _ := Current(name).Codec().NativeFromBinary(b[HeaderLen:])
		if !reflect.DeepEqual(native, want) {
			t.Fatalf("DecodeNative\n got %v\nwant %v", native, want)
		}
	}
}

func TestHeaderBytes(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	e, tg, m, p := randExperience(rng), randTagged(rng), randMetrics(rng), randSnapshot(rng)
	eb, _ := MarshalExperience(nil, &e)
	tb, _ := MarshalTaggedExperience(nil, &tg)
	mb, _ := MarshalTrainingMetrics(nil, &m)
	pb, _ := MarshalPolicySnapshot(nil, &p)
	for _, c := range []struct {
		name    string
		version int
		b       []byte
	}{
		{NameExperience, 2, eb}, {NameTaggedExperience, 2, tb},
		{NameTrainingMetrics, 3, mb}, {NamePolicySnapshot, 1, pb},
	} {
		if c.b[0] != 0xC3 || c.b[1] != 0x01 {
			t.Errorf("%s: magic % x, want c3 01", c.name, c.b[:2])
		}
		if got, want := binary.LittleEndian.Uint64(c.b[2:10]), Current(c.name).Fingerprint; got != want {
			t.Errorf("%s: header fingerprint %#x, want %#x", c.name, got, want)
		}
		name, version, err := Identify(c.b)
		if err != nil || name != c.name || version != c.version {
			t.Errorf("Identify = %q, %d, %v; want %q, %d", name, version, err, c.name, c.version)
		}
		if name, _, err := DecodeNative(c.b); err != nil || name != c.name {
			t.Errorf("DecodeNative = %q, %v; want %q", name, err, c.name)
		}
	}
	// The Experience header spelled out: c3 01 and the fingerprint LE.
	fp := Current(NameExperience).Fingerprint
	want := []byte{0xC3, 0x01, byte(fp), byte(fp >> 8), byte(fp >> 16), byte(fp >> 24), byte(fp >> 32), byte(fp >> 40), byte(fp >> 48), byte(fp >> 56)}
	if !bytes.Equal(eb[:HeaderLen], want) {
		t.Errorf("header % x, want % x", eb[:HeaderLen], want)
	}
}

func TestMarshalRejectsUnknownEnums(t *testing.T) {
	for _, tg := range []TaggedExperience{{EventType: 2}, {EventType: -1}, {TagSource: 4}, {TagSource: -1}} {
		if b, err := MarshalTaggedExperience([]byte("x"), &tg); err == nil || string(b) != "x" {
			t.Errorf("MarshalTaggedExperience(%v, %v) = %q, %v; want dst unchanged and an error", tg.EventType, tg.TagSource, b, err)
		}
	}
}

// experienceFrame frames hand-built body pieces with the current Experience
// header, so that tests can corrupt individual fields.
func experienceFrame(body ...[]byte) []byte {
	b := AppendHeader(nil, Current(NameExperience).Fingerprint)
	for _, p := range body {
		b = append(b, p...)
	}
	return b
}

func TestDecodeErrors(t *testing.T) {
	rng := rand.New(rand.NewPCG(17, 18))
	e := randExperience(rng)
	e.Metadata = map[string]string{"a": "1", "b": "2"}
	good, _ := MarshalExperience(nil, &e)
	tg := randTagged(rng)
	goodTagged, _ := MarshalTaggedExperience(nil, &tg)
	m := randMetrics(rng)
	goodMetrics, _ := MarshalTrainingMetrics(nil, &m)

	// Body pieces of a minimal record: 4 empty strings, step, ts, empty state,
	// action, logprob, policy_version, reward, empty next_state.
	head := []byte{0, 0, 0, 0, 0, 0, 0, 0}
	head = append(head, make([]byte, 8)...) // behavior_logprob
	head = append(head, 1)                  // policy_version -1
	head = append(head, make([]byte, 8)...) // reward
	head = append(head, 0)                  // next_state
	tail := append([]byte{0}, make([]byte, 8)...)

	unknownFP := AppendHeader(nil, 0x0123456789abcdef)
	dupKey := experienceFrame(head, tail, []byte{4, 2, 'k', 2, 'v', 2, 'k', 2, 'w', 0})
	minimal := experienceFrame(head, tail, []byte{0})
	var minimalExp Experience
	if err := UnmarshalExperience(minimal, &minimalExp); err != nil {
		t.Fatalf("the minimal hand-built record does not decode: %v", err)
	}
	overlongInt := experienceFrame([]byte{0, 0, 0, 0, 0x80, 0x80, 0x80, 0x80, 0x80, 0})
	bigInt := experienceFrame([]byte{0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x1f})
	negLen := experienceFrame([]byte{3})
	hugeArray := experienceFrame([]byte{0, 0, 0, 0, 0, 0, 0xfe, 0xff, 0xff, 0xff, 0x0f})
	badBool := experienceFrame(head, []byte{2}, make([]byte, 8), []byte{0})
	// A tagged record whose body ends event_type (1 byte), tag_source (1),
	// tag_score (8), tagged_at (1: the epoch is 0).
	tgEnum := TaggedExperience{Experience: minimalExp, TaggedAt: time.UnixMilli(0)}
	tgBytes, _ := MarshalTaggedExperience(nil, &tgEnum)
	tagBadEnum := bytes.Clone(tgBytes)
	tagBadEnum[len(tagBadEnum)-11] = 4 // event_type index 2
	tagBadSource := bytes.Clone(tgBytes)
	tagBadSource[len(tagBadSource)-10] = 8 // tag_source index 4
	v1 := Current(NameExperience)
	for _, s := range Schemas() {
		if s.Name == NameExperience && s.Version == 1 {
			v1 = s
		}
	}
	v1Trunc := append(AppendHeader(nil, v1.Fingerprint), 2, 'x')

	type decodeFn func([]byte) error
	exp := func(b []byte) error { var e Experience; return UnmarshalExperience(b, &e) }
	tagged := func(b []byte) error { var t TaggedExperience; return UnmarshalTaggedExperience(b, &t) }
	metrics := func(b []byte) error { var m TrainingMetrics; return UnmarshalTrainingMetrics(b, &m) }
	snapshot := func(b []byte) error { var p PolicySnapshot; return UnmarshalPolicySnapshot(b, &p) }
	native := func(b []byte) error { _, _, err := DecodeNative(b); return err }
	identify := func(b []byte) error { _, _, err := Identify(b); return err }

	cases := []struct {
		name   string
		fn     decodeFn
		in     []byte
		sent   error
		reason string
	}{
		{"empty", exp, nil, ErrTruncated, "truncated"},
		{"one magic byte", exp, []byte{0xC3}, ErrTruncated, "truncated"},
		{"short header", identify, good[:9], ErrTruncated, "truncated"},
		{"wrong first byte", exp, []byte{0}, ErrBadMagic, "bad-magic"},
		{"confluent framing", exp, append([]byte{0, 0, 0, 0, 1}, good[HeaderLen:]...), ErrBadMagic, "bad-magic"},
		{"wrong second byte", tagged, append([]byte{0xC3, 0x02}, goodTagged[2:]...), ErrBadMagic, "bad-magic"},
		{"unknown fingerprint", exp, unknownFP, ErrUnknownSchema, "unknown-schema"},
		{"unknown fingerprint native", native, append(unknownFP, 0), ErrUnknownSchema, "unknown-schema"},
		{"experience as tagged", tagged, good, ErrUnknownSchema, "unknown-schema"},
		{"tagged as experience", exp, goodTagged, ErrUnknownSchema, "unknown-schema"},
		{"metrics as snapshot", snapshot, goodMetrics, ErrUnknownSchema, "unknown-schema"},
		{"trailing byte", exp, append(bytes.Clone(good), 0), ErrBadBody, "bad-body"},
		{"trailing byte tagged", tagged, append(bytes.Clone(goodTagged), 0), ErrBadBody, "bad-body"},
		{"trailing byte metrics", metrics, append(bytes.Clone(goodMetrics), 0), ErrBadBody, "bad-body"},
		{"trailing byte native", native, append(bytes.Clone(goodMetrics), 0), ErrBadBody, "bad-body"},
		{"duplicate map key", exp, dupKey, ErrBadBody, "bad-body"},
		{"overlong int varint", exp, overlongInt, ErrBadBody, "bad-body"},
		{"int overflows 32 bits", exp, bigInt, ErrBadBody, "bad-body"},
		{"negative string length", exp, negLen, ErrBadBody, "bad-body"},
		{"array longer than the input", exp, hugeArray, ErrTruncated, "truncated"},
		{"boolean byte 2", exp, badBool, ErrBadBody, "bad-body"},
		{"event_type index 2", tagged, tagBadEnum, ErrBadBody, "bad-body"},
		{"tag_source index 4", tagged, tagBadSource, ErrBadBody, "bad-body"},
		{"v1 truncated", exp, v1Trunc, ErrTruncated, "truncated"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.fn(c.in)
			if !errors.Is(err, c.sent) {
				t.Fatalf("error %v, want %v", err, c.sent)
			}
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("error %T is not a *DecodeError", err)
			}
			if got := Reason(err); got != c.reason {
				t.Errorf("Reason = %q, want %q", got, c.reason)
			}
			if len(c.in) >= HeaderLen && errors.Is(err, ErrBadBody) {
				if want := binary.LittleEndian.Uint64(c.in[2:10]); de.Fingerprint != want {
					t.Errorf("DecodeError.Fingerprint = %#x, want %#x", de.Fingerprint, want)
				}
			}
		})
	}

	// Every strict prefix of a valid record is truncated, for every decoder.
	mb, _ := MarshalPolicySnapshot(nil, &PolicySnapshot{Params: []byte("abc"), ObsMean: []float64{1}, ObsVar: []float64{2}})
	for _, c := range []struct {
		name string
		fn   decodeFn
		b    []byte
	}{{"experience", exp, good}, {"tagged", tagged, goodTagged}, {"metrics", metrics, goodMetrics}, {"snapshot", snapshot, mb}, {"native", native, goodTagged}} {
		for n := range len(c.b) {
			if err := c.fn(c.b[:n]); !errors.Is(err, ErrTruncated) {
				t.Fatalf("%s prefix of %d/%d bytes: error %v, want truncated", c.name, n, len(c.b), err)
			}
		}
	}
}

func TestUnmarshalOverwrites(t *testing.T) {
	e := Experience{ID: "old", Metadata: map[string]string{"stale": "1"}, State: []float32{1}}
	b, _ := MarshalExperience(nil, &Experience{ID: "new"})
	if err := UnmarshalExperience(b, &e); err != nil {
		t.Fatal(err)
	}
	if e.ID != "new" || e.Metadata != nil || e.State != nil {
		t.Errorf("Unmarshal kept old fields: %+v", e)
	}
	if err := UnmarshalExperience([]byte{1}, &e); err == nil || !reflect.DeepEqual(e, Experience{}) {
		t.Errorf("failed Unmarshal left %+v, want the zero Experience", e)
	}
}

func TestZeroTimeRoundTrip(t *testing.T) {
	var e Experience
	b, _ := MarshalExperience(nil, &e)
	var got Experience
	if err := UnmarshalExperience(b, &got); err != nil {
		t.Fatal(err)
	}
	if !got.Timestamp.Equal(time.Time{}) {
		t.Errorf("zero Timestamp decoded as %v", got.Timestamp)
	}
}

func TestEnums(t *testing.T) {
	for _, c := range []struct {
		et   EventType
		want string
	}{{EventRegular, "REGULAR_PARENT"}, {EventCrisis, "CRISIS_PARENT"}, {5, "EventType(5)"}} {
		if got := c.et.String(); got != c.want {
			t.Errorf("EventType(%d).String() = %q, want %q", c.et, got, c.want)
		}
		if got, err := ParseEventType(c.want); c.et.valid() && (err != nil || got != c.et) {
			t.Errorf("ParseEventType(%q) = %v, %v", c.want, got, err)
		}
	}
	if _, err := ParseEventType("crisis_parent"); err == nil {
		t.Error("ParseEventType accepted a lower-case symbol")
	}
	for _, c := range []struct {
		ts   TagSource
		want string
	}{{TagDefault, "DEFAULT"}, {TagLabel, "LABEL"}, {TagMetadata, "METADATA"}, {TagValue, "VALUE"}, {-1, "TagSource(-1)"}} {
		if got := c.ts.String(); got != c.want {
			t.Errorf("TagSource(%d).String() = %q, want %q", c.ts, got, c.want)
		}
		if got, err := ParseTagSource(c.want); c.ts.valid() && (err != nil || got != c.ts) {
			t.Errorf("ParseTagSource(%q) = %v, %v", c.want, got, err)
		}
	}
	if _, err := ParseTagSource("NOPE"); err == nil {
		t.Error("ParseTagSource accepted NOPE")
	}
	if EventType(0) != EventRegular || TagSource(0) != TagDefault {
		t.Error("zero values are not EventRegular and TagDefault")
	}
}

func TestValidate(t *testing.T) {
	base := func() TaggedExperience {
		return TaggedExperience{
			Experience: Experience{
				ID: "id", ExperimentID: "exp", EpisodeID: "ep", UserID: "u",
				State: []float32{0, 1, 2}, NextState: []float32{1, 2, 3},
				Action: 1, BehaviorLogProb: -0.7, PolicyVersion: -1, Reward: 1, Value: 2,
			},
			EventType: EventCrisis, TagSource: TagLabel, TagScore: 0.9,
		}
	}
	lim := Limits{StateDim: 3, NumActions: 4}
	cases := []struct {
		name  string
		mod   func(*TaggedExperience)
		lim   Limits
		field string // "" = valid
	}{
		{"valid", func(*TaggedExperience) {}, lim, ""},
		{"valid unchecked limits", func(t *TaggedExperience) { t.State = nil; t.Action = 99 }, Limits{}, ""},
		{"logprob zero", func(t *TaggedExperience) { t.BehaviorLogProb = 0 }, lim, ""},
		{"empty episode id is allowed", func(t *TaggedExperience) { t.EpisodeID = "" }, lim, ""},
		{"empty id", func(t *TaggedExperience) { t.ID = "" }, lim, "id"},
		{"empty experiment", func(t *TaggedExperience) { t.ExperimentID = "" }, lim, "experiment_id"},
		{"empty user", func(t *TaggedExperience) { t.UserID = "" }, lim, "user_id"},
		{"narrow state", func(t *TaggedExperience) { t.State = t.State[:2] }, lim, "state"},
		{"NaN state", func(t *TaggedExperience) { t.State[1] = float32(math.NaN()) }, lim, "state"},
		{"Inf state unchecked width", func(t *TaggedExperience) { t.State = []float32{float32(math.Inf(1))} }, Limits{}, "state"},
		{"wide next_state", func(t *TaggedExperience) { t.NextState = append(t.NextState, 0) }, lim, "next_state"},
		{"Inf next_state", func(t *TaggedExperience) { t.NextState[0] = float32(math.Inf(-1)) }, lim, "next_state"},
		{"action = NumActions", func(t *TaggedExperience) { t.Action = 4 }, lim, "action"},
		{"negative action", func(t *TaggedExperience) { t.Action = -1 }, Limits{}, "action"},
		{"positive logprob", func(t *TaggedExperience) { t.BehaviorLogProb = 0.1 }, lim, "behavior_logprob"},
		{"NaN logprob", func(t *TaggedExperience) { t.BehaviorLogProb = math.NaN() }, lim, "behavior_logprob"},
		{"-Inf logprob", func(t *TaggedExperience) { t.BehaviorLogProb = math.Inf(-1) }, lim, "behavior_logprob"},
		{"policy version -2", func(t *TaggedExperience) { t.PolicyVersion = -2 }, lim, "policy_version"},
		{"NaN reward", func(t *TaggedExperience) { t.Reward = math.NaN() }, lim, "reward"},
		{"Inf reward", func(t *TaggedExperience) { t.Reward = math.Inf(1) }, lim, "reward"},
		{"NaN value", func(t *TaggedExperience) { t.Value = math.NaN() }, lim, "value"},
		{"unknown event type", func(t *TaggedExperience) { t.EventType = 3 }, lim, "event_type"},
		{"unknown tag source", func(t *TaggedExperience) { t.TagSource = 9 }, lim, "tag_source"},
		{"NaN tag score", func(t *TaggedExperience) { t.TagScore = math.NaN() }, lim, "tag_score"},
		{"first failure wins", func(t *TaggedExperience) { t.ID = ""; t.Reward = math.NaN() }, lim, "id"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tg := base()
			c.mod(&tg)
			err := tg.Validate(c.lim)
			if c.field == "" {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			var ve *ValidationError
			if !errors.As(err, &ve) || ve.Field != c.field {
				t.Fatalf("Validate = %v, want a *ValidationError on %q", err, c.field)
			}
			if got, want := Reason(fmt.Errorf("consume: %w", err)), "invalid:"+c.field; got != want {
				t.Errorf("Reason = %q, want %q", got, want)
			}
			// Fields of the experience fail the same way on the plain Experience.
			if c.field != "event_type" && c.field != "tag_source" && c.field != "tag_score" {
				if err := tg.Experience.Validate(c.lim); !errors.As(err, &ve) || ve.Field != c.field {
					t.Errorf("Experience.Validate = %v, want %q", err, c.field)
				}
			}
		})
	}
}

func TestReason(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{nil, ""},
		{errors.New("broker down"), "error"},
		{&ValidationError{Field: "reward"}, "invalid:reward"},
		{&DecodeError{Op: "x", Err: fmt.Errorf("%w: detail", ErrBadBody)}, "bad-body"},
		{fmt.Errorf("wrapped: %w", &DecodeError{Err: ErrUnknownSchema}), "unknown-schema"},
		{ErrTruncated, "truncated"},
		{ErrBadMagic, "bad-magic"},
	} {
		if got := Reason(c.err); got != c.want {
			t.Errorf("Reason(%v) = %q, want %q", c.err, got, c.want)
		}
	}
	err := &DecodeError{Op: "decode experience", Fingerprint: 0xab, Err: ErrTruncated}
	if got, want := err.Error(), "decode experience: fingerprint 0x00000000000000ab: truncated"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if got, want := (&ValidationError{Field: "state", Reason: "width 2, want 3"}).Error(), "invalid state: width 2, want 3"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}
