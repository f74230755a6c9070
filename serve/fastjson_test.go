package serve

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

// checkParseAgrees fails t when parseDecide accepts b but encoding/json
// (decodeJSON) refuses it or decodes it otherwise.
func checkParseAgrees(t *testing.T, b []byte) (fast bool) {
	t.Helper()
	var got DecideRequest
	if !parseDecide(b, &got, 4) {
		return false
	}
	var want DecideRequest
	if err := decodeJSON(bytes.NewReader(b), &want); err != nil {
		t.Fatalf("%q: the fast decoder accepted what encoding/json refuses (%v)", b, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%q: fast decoder %+v, encoding/json %+v", b, got, want)
	}
	for i := range got.State { // DeepEqual takes -0 for 0
		if math.Float64bits(got.State[i]) != math.Float64bits(want.State[i]) {
			t.Fatalf("%q: state %d: fast %v, encoding/json %v", b, i, got.State[i], want.State[i])
		}
	}
	return true
}

// TestParseDecideAgrees: the fast decoder takes the plain bodies and
// decodes them as encoding/json does, and leaves every other form to
// encoding/json.
func TestParseDecideAgrees(t *testing.T) {
	for _, tc := range []struct {
		body string
		fast bool
	}{
		{`{"user_id":"u","state":[1,2,3,4]}`, true},
		{" \t\r\n{ \"user_id\" : \"u\" , \"state\" : [ -0 , 1.5e3 , 2E-2 , 0.000001 ] } \n", true},
		{`{"user_id":"u","episode_id":"e","step":3,"state":[1,2,3,4],"metadata":{"a":"b","c":""},"value":-2.5,"defer":true}`, true},
		{`{"user_id":"u","state":[],"metadata":{},"defer":false}`, true},
		{`{}`, true},
		{`{"user_id":"ü€😀","state":[1e308,-1e-308,5e-324,123456789012345678901234567890]}`, true},
		{`{"user_id":"u","metadata":{"a":"1","a":"2"}}`, true}, // encoding/json keeps the last too
		{`{"user_id":"u","step":-2147483648}`, true},
		{`{"user_id":"u","step":2147483648}`, false}, // out of int32: encoding/json's error
		{`{"user_id":"u","step":1.0}`, false},
		{`{"user_id":"u","step":1e2}`, false},
		{`{"user_id":"u","state":[1e400]}`, false},
		{`{"user_id":"u\n"}`, false},
		{`{"user_id":"a\"b"}`, false},
		{`{"user_id":"\u0041"}`, false},
		{"{\"user_id\":\"\xff\"}", false},
		{`{"User_Id":"u"}`, false}, // encoding/json folds the case
		{`{"user_id":"u","user_id":"v"}`, false},
		{`{"user_id":null}`, false},
		{`{"state":null}`, false},
		{`{"metadata":null}`, false},
		{`{"defer":null}`, false},
		{`{"user_id":"u","timestamp":"2026-12-01T10:00:00Z"}`, false},
		{`{"user_id":"u","colour":"red"}`, false},
		{`{"user_id":"u"} {}`, false},
		{`{"user_id":"u",}`, false},
		{`{"state":[1,]}`, false},
		{`{"state":[01]}`, false},
		{`{"state":[.5]}`, false},
		{`{"state":[1.]}`, false},
		{`{"state":[-]}`, false},
		{`{"state":[1e]}`, false},
		{`{"state":[NaN]}`, false},
		{`{"state":["1"]}`, false},
		{`[1,2]`, false},
		{``, false},
		{`{"user_id":"u"`, false},
	} {
		if got := checkParseAgrees(t, []byte(tc.body)); got != tc.fast {
			t.Errorf("%q: fast decoder took it: %v, want %v", tc.body, got, tc.fast)
		}
	}
}

// TestDecideResponseEncoding: the decide answer's encoder writes the
// bytes json.Encoder writes, for probabilities of every magnitude and
// ids that need escaping.
func TestDecideResponseEncoding(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	special := []float64{0, math.Copysign(0, -1), 1, 0.5, 1e-6, 9.999999e-7, 1e-7, 1e21, 9.99999e20, 1e-300, 5e-324,
		math.MaxFloat64, 0.1 + 0.2, 1.0 / 3, 123456.789, 1e20, 1e-5}
	ids := []string{"d2f780d009f5d2dfa-1", "", "a<b>&c", `q"uote\`, "tab\t", "ü", "\u2028"}
	for i := range 2000 {
		probs := make([]float64, 1+rng.IntN(12))
		for j := range probs {
			switch rng.IntN(3) {
			case 0:
				probs[j] = special[rng.IntN(len(special))]
			case 1:
				probs[j] = rng.Float64()
			default:
				probs[j] = math.Exp(rng.NormFloat64()*30) * float64(1-2*rng.IntN(2))
			}
		}
		r := DecideResponse{DecisionID: ids[i%len(ids)], Action: rng.IntN(12), Bid: rng.IntN(4) - 1, Creative: rng.IntN(3),
			Probabilities: probs, Propensity: probs[0], PolicyVersion: rng.Int64N(1000) - 1, Deferred: i%2 == 0}
		if i == 7 {
			r.Probabilities = nil
		}
		var want bytes.Buffer
		if err := json.NewEncoder(&want).Encode(r); err != nil {
			t.Fatal(err)
		}
		got, ok := appendDecideResponse(nil, &r)
		if !ok || !bytes.Equal(got, want.Bytes()) {
			t.Fatalf("encoded\n%s\nencoding/json\n%s", got, want.Bytes())
		}
	}
	if _, ok := appendDecideResponse(nil, &DecideResponse{Probabilities: []float64{math.NaN()}}); ok {
		t.Error("a NaN probability encoded")
	}
}

// TestReadBodyPlainFormFromClients: what the Go client and the bench
// generator send (json.Marshal of a DecideRequest) is in the plain form.
func TestReadBodyPlainFormFromClients(t *testing.T) {
	b, err := json.Marshal(DecideRequest{UserID: "u-1", EpisodeID: "u-1:2", Step: 3, State: []float64{0.5, -1, 1e-9, 3},
		Metadata: map[string]string{"campaign": "crisis_support", "profile_keywords": "urgent,childcare"}, Value: 1.25})
	if err != nil {
		t.Fatal(err)
	}
	if !checkParseAgrees(t, b) {
		t.Errorf("%s: left to encoding/json", b)
	}
	if strings.Contains(string(b), "timestamp") {
		t.Fatal("test body carries a timestamp")
	}
}
