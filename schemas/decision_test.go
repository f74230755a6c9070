package schemas

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
)

// randDecision returns a random decision: empty arrays and maps are nil, as
// the decoder returns them; ActionProbs is nil, empty or a distribution.
func randDecision(rng *rand.Rand) Decision {
	dim := []int{0, 1, 4, 32}[rng.IntN(4)]
	d := Decision{
		DecisionID:      fmt.Sprintf("d-%d", rng.Uint64()),
		ExperimentID:    randString(rng, 12),
		UserID:          randString(rng, 12),
		EpisodeID:       randString(rng, 12),
		Step:            int32(rng.Uint32()),
		Timestamp:       randMillis(rng),
		State:           randFloats(rng, dim),
		Action:          int32(rng.Uint32()),
		BehaviorLogProb: -rng.ExpFloat64(),
		PolicyVersion:   int64(rng.Uint64()),
		Value:           rng.NormFloat64(),
	}
	switch rng.IntN(3) {
	case 1:
		d.ActionProbs = []float64{}
	case 2:
		d.ActionProbs = make([]float64, 1+rng.IntN(12))
		for i := range d.ActionProbs {
			d.ActionProbs[i] = rng.Float64()
		}
	}
	d.Metadata = randMetadata(rng)
	return d
}

// randMetadata returns no metadata or one or three random entries.
func randMetadata(rng *rand.Rand) map[string]string {
	return randMap(rng, []int{0, 1, 1, 3}[rng.IntN(4)])
}

func randOutcome(rng *rand.Rand) Outcome {
	return Outcome{
		OutcomeID:  randString(rng, 10),
		DecisionID: randString(rng, 12),
		UserID:     randString(rng, 12),
		Timestamp:  randMillis(rng),
		Kind:       []string{KindImpression, KindClick, KindConversion, KindEnd, "", "VIEW"}[rng.IntN(6)],
		Value:      rng.NormFloat64() * 100,
		Cost:       rng.ExpFloat64(),
		Metadata:   randMetadata(rng),
	}
}

// TestDecisionOutcomeRoundTrip: Unmarshal∘Marshal is the identity, Marshal
// appends to dst, and goavro's decoder reads the hand-written body to the
// same record.
func TestDecisionOutcomeRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(41, 42))
	for i := range 1000 {
		roundTrip(t, i, []byte("x"), randDecision(rng), MarshalDecision, UnmarshalDecision)
		roundTrip(t, i, nil, randOutcome(rng), MarshalOutcome, UnmarshalOutcome)
	}
}

// TestDecisionOutcomeHandCodecMatchesGoavro: with at most one metadata
// entry (goavro writes maps in random order) the hand-written body is
// byte-identical to goavro's; always, goavro reads the hand body to the
// same struct and the hand decoder reads goavro's body to the same struct.
func TestDecisionOutcomeHandCodecMatchesGoavro(t *testing.T) {
	rng := rand.New(rand.NewPCG(43, 44))
	identical := 0
	for i := range 2000 {
		d, o := randDecision(rng), randOutcome(rng)
		for _, c := range []struct {
			name   string
			mine   func() []byte
			native map[string]any
			md     int
			back   func(map[string]any) (any, error)
			hand   func([]byte) (any, error)
			want   any
		}{
			{NameDecision, func() []byte { b, _ := MarshalDecision(nil, &d); return b }, d.Native(), len(d.Metadata),
				func(n map[string]any) (any, error) { var x Decision; err := x.FromNative(n); return x, err },
				func(b []byte) (any, error) { var x Decision; err := UnmarshalDecision(b, &x); return x, err }, d},
			{NameOutcome, func() []byte { b, _ := MarshalOutcome(nil, &o); return b }, o.Native(), len(o.Metadata),
				func(n map[string]any) (any, error) { var x Outcome; err := x.FromNative(n); return x, err },
				func(b []byte) (any, error) { var x Outcome; err := UnmarshalOutcome(b, &x); return x, err }, o},
		} {
			body := c.mine()[HeaderLen:]
			theirs := goavroBody(t, c.name, c.native)
			if c.md <= 1 {
				identical++
				if !bytes.Equal(body, theirs) {
					t.Fatalf("record %d %s: hand body != goavro body\nhand   %x\ngoavro %x", i, c.name, body, theirs)
				}
			}
			native, rest, err := Current(c.name).Codec().NativeFromBinary(body)
			if err != nil || len(rest) != 0 {
				t.Fatalf("record %d %s: goavro cannot read the hand body: %v", i, c.name, err)
			}
			viaGoavro, err := c.back(native.(map[string]any))
			if err != nil {
				t.Fatal(err)
			}
			viaHand, err := c.hand(append(AppendHeader(nil, Current(c.name).Fingerprint), theirs...))
			if err != nil {
				t.Fatalf("record %d %s: hand decoder cannot read goavro's body: %v", i, c.name, err)
			}
			if !reflect.DeepEqual(viaHand, viaGoavro) || !reflect.DeepEqual(viaHand, c.want) {
				t.Fatalf("record %d %s: decoders disagree\nhand   %+v\ngoavro %+v\nwant   %+v", i, c.name, viaHand, viaGoavro, c.want)
			}
		}
	}
	if identical < 1000 {
		t.Errorf("only %d byte-identity comparisons", identical)
	}
}

// TestDecisionOutcomeDecodeErrors: every proper prefix is truncation, a
// trailing byte and an unknown union branch are bad bodies, another
// record's fingerprint is an unknown schema; a failed decode zeroes its
// destination.
func TestDecisionOutcomeDecodeErrors(t *testing.T) {
	rng := rand.New(rand.NewPCG(45, 46))
	d := randDecision(rng)
	d.ActionProbs = []float64{0.5, 0.5}
	o := randOutcome(rng)
	db, _ := MarshalDecision(nil, &d)
	ob, _ := MarshalOutcome(nil, &o)
	for n := range len(db) {
		var x Decision
		if err := UnmarshalDecision(db[:n], &x); !errors.Is(err, ErrTruncated) {
			t.Fatalf("decision prefix %d/%d: %v, want truncated", n, len(db), err)
		}
	}
	for n := range len(ob) {
		var x Outcome
		if err := UnmarshalOutcome(ob[:n], &x); !errors.Is(err, ErrTruncated) {
			t.Fatalf("outcome prefix %d/%d: %v, want truncated", n, len(ob), err)
		}
	}
	sentinel := Decision{DecisionID: "stale"}
	if err := UnmarshalDecision(append(bytes.Clone(db), 0), &sentinel); !errors.Is(err, ErrBadBody) || !reflect.DeepEqual(sentinel, Decision{}) {
		t.Errorf("trailing byte: %v, destination %+v", err, sentinel)
	}
	// The union index follows state, action and behavior_logprob; branch 2
	// does not exist.
	minimal := Decision{Timestamp: time.UnixMilli(0)}
	mb, _ := MarshalDecision(nil, &minimal)
	idx := HeaderLen + 4 + 1 + 1 + 1 + 1 + 8 // 4 empty strings, step, ts, state, action, logprob
	if mb[idx] != 0 {
		t.Fatalf("byte %d is %d, want the null branch 0", idx, mb[idx])
	}
	mb[idx] = 4 // zig-zag 2
	var x Decision
	if err := UnmarshalDecision(mb, &x); !errors.Is(err, ErrBadBody) {
		t.Errorf("union branch 2: %v, want bad body", err)
	}
	if err := UnmarshalOutcome(db, &Outcome{}); !errors.Is(err, ErrUnknownSchema) {
		t.Errorf("outcome from a decision's bytes: %v, want unknown schema", err)
	}
	if err := UnmarshalDecision(ob, &x); !errors.Is(err, ErrUnknownSchema) {
		t.Errorf("decision from an outcome's bytes: %v, want unknown schema", err)
	}
}

func TestDecisionValidate(t *testing.T) {
	base := func() Decision {
		return Decision{
			DecisionID: "d", ExperimentID: "exp", UserID: "u", EpisodeID: "e", Step: 2,
			Timestamp: time.UnixMilli(1000).UTC(), State: []float32{0, 1, 2}, Action: 1,
			BehaviorLogProb: math.Log(0.25), ActionProbs: []float64{0.25, 0.25, 0.5, 0}, PolicyVersion: -1,
		}
	}
	lim := Limits{StateDim: 3, NumActions: 4}
	for _, c := range []struct {
		name  string
		mod   func(*Decision)
		lim   Limits
		field string
	}{
		{"valid", func(*Decision) {}, lim, ""},
		{"no probs", func(d *Decision) { d.ActionProbs = nil }, lim, ""},
		{"unchecked limits", func(d *Decision) {
			d.State = nil
			d.ActionProbs = []float64{0.5, 0.5}
			d.BehaviorLogProb = math.Log(0.5)
		}, Limits{}, ""},
		{"empty id", func(d *Decision) { d.DecisionID = "" }, lim, "decision_id"},
		{"empty experiment", func(d *Decision) { d.ExperimentID = "" }, lim, "experiment_id"},
		{"empty user", func(d *Decision) { d.UserID = "" }, lim, "user_id"},
		{"wrong state width", func(d *Decision) { d.State = d.State[:2] }, lim, "state"},
		{"NaN state", func(d *Decision) { d.State[0] = float32(math.NaN()) }, lim, "state"},
		{"action = NumActions", func(d *Decision) { d.Action = 4 }, lim, "action"},
		{"negative action", func(d *Decision) { d.Action = -1 }, Limits{}, "action"},
		{"action of probability 0", func(d *Decision) { d.Action = 3; d.BehaviorLogProb = -1 }, lim, "action"},
		{"action beyond the distribution", func(d *Decision) { d.Action = 2; d.ActionProbs = []float64{0.5, 0.5} }, Limits{}, "action"},
		{"probs of the wrong length", func(d *Decision) { d.ActionProbs = []float64{0.5, 0.5} }, lim, "action_probs"},
		{"probs not summing to 1", func(d *Decision) { d.ActionProbs[2] = 0.4 }, lim, "action_probs"},
		{"negative prob", func(d *Decision) { d.ActionProbs[2], d.ActionProbs[3] = 0.75, -0.25 }, lim, "action_probs"},
		{"NaN prob", func(d *Decision) { d.ActionProbs[3] = math.NaN() }, lim, "action_probs"},
		{"logprob disagrees with probs", func(d *Decision) { d.BehaviorLogProb = math.Log(0.5) }, lim, "behavior_logprob"},
		{"positive logprob", func(d *Decision) { d.BehaviorLogProb = 0.1 }, lim, "behavior_logprob"},
		{"policy version -2", func(d *Decision) { d.PolicyVersion = -2 }, lim, "policy_version"},
		{"Inf value", func(d *Decision) { d.Value = math.Inf(1) }, lim, "value"},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := base()
			c.mod(&d)
			checkField(t, d.Validate(c.lim), c.field)
		})
	}
}

func TestOutcomeValidate(t *testing.T) {
	for _, c := range []struct {
		name  string
		mod   func(*Outcome)
		field string
	}{
		{"valid", func(*Outcome) {}, ""},
		{"empty decision id is allowed", func(o *Outcome) { o.DecisionID = "" }, ""},
		{"empty user", func(o *Outcome) { o.UserID = "" }, "user_id"},
		{"empty kind", func(o *Outcome) { o.Kind = "" }, "kind"},
		{"NaN value", func(o *Outcome) { o.Value = math.NaN() }, "value"},
		{"negative value is a refund", func(o *Outcome) { o.Value = -3 }, ""},
		{"negative cost", func(o *Outcome) { o.Cost = -0.01 }, "cost"},
		{"Inf cost", func(o *Outcome) { o.Cost = math.Inf(1) }, "cost"},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := Outcome{DecisionID: "d", UserID: "u", Kind: KindConversion, Value: 10, Cost: 1}
			c.mod(&o)
			checkField(t, o.Validate(), c.field)
		})
	}
}

func checkField(t *testing.T, err error, field string) {
	t.Helper()
	if field == "" {
		if err != nil {
			t.Fatalf("Validate = %v, want nil", err)
		}
		return
	}
	var ve *ValidationError
	if !errors.As(err, &ve) || ve.Field != field {
		t.Fatalf("Validate = %v, want a *ValidationError on %q", err, field)
	}
	if got, want := Reason(err), "invalid:"+field; got != want {
		t.Errorf("Reason = %q, want %q", got, want)
	}
}
