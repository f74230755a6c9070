package serve

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aelp/aelp/schemas"
	"github.com/rs/zerolog"
)

// stateJSON is a JSON array of n numbers, the i-th replaced by bad when
// i ≥ 0.
func stateJSON(n, i int, bad string) string {
	parts := make([]string, n)
	for j := range parts {
		parts[j] = fmt.Sprintf("%d.5", j)
		if j == i {
			parts[j] = bad
		}
	}
	return "[" + strings.Join(parts, ",") + "]"
}

// newTestServer is a server that is not running: its handler decodes and
// refuses bad requests without Kafka.
func newTestServer(t *testing.T, log zerolog.Logger) *Server {
	t.Helper()
	cfg := DefaultConfig()
	cfg.ExperimentID, cfg.Log = "decode", log
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestBadRequests: each bad request gets 400 with a JSON error naming the
// field, and no log line at info level.
func TestBadRequests(t *testing.T) {
	var logs bytes.Buffer
	s := newTestServer(t, zerolog.New(&logs).Level(zerolog.InfoLevel))
	good := stateJSON(16, -1, "")
	big := `{"user_id":"u","state":` + good + `,"metadata":{"k":"` + strings.Repeat("x", 70<<10) + `"}}`
	for _, tc := range []struct{ name, path, body, field string }{
		{"malformed", "/v1/decide", `{"user_id":"u",`, "body"},
		{"not JSON", "/v1/decide", `user_id=u`, "body"},
		{"empty body", "/v1/decide", ``, "body"},
		{"an array", "/v1/decide", `[1,2]`, "body"},
		{"trailing data", "/v1/decide", `{"user_id":"u","state":` + good + `} {}`, "body"},
		{"NaN literal", "/v1/decide", `{"user_id":"u","state":` + stateJSON(16, 3, "NaN") + `}`, "body"},
		{"no user", "/v1/decide", `{"state":` + good + `}`, "user_id"},
		{"empty user", "/v1/decide", `{"user_id":"","state":` + good + `}`, "user_id"},
		{"user a number", "/v1/decide", `{"user_id":7,"state":` + good + `}`, "user_id"},
		{"no state", "/v1/decide", `{"user_id":"u"}`, "state"},
		{"state too short", "/v1/decide", `{"user_id":"u","state":` + stateJSON(15, -1, "") + `}`, "state"},
		{"state too long", "/v1/decide", `{"user_id":"u","state":` + stateJSON(17, -1, "") + `}`, "state"},
		{"state overflows float64", "/v1/decide", `{"user_id":"u","state":` + stateJSON(16, 2, "1e400") + `}`, "state"},
		{"state overflows float32", "/v1/decide", `{"user_id":"u","state":` + stateJSON(16, 2, "1e39") + `}`, "state"},
		{"state a string", "/v1/decide", `{"user_id":"u","state":` + stateJSON(16, 0, `"x"`) + `}`, "state"},
		{"negative step", "/v1/decide", `{"user_id":"u","step":-1,"state":` + good + `}`, "step"},
		{"step overflows", "/v1/decide", `{"user_id":"u","step":1e10,"state":` + good + `}`, "step"},
		{"metadata not strings", "/v1/decide", `{"user_id":"u","metadata":{"a":1},"state":` + good + `}`, "metadata"},
		{"value overflows", "/v1/decide", `{"user_id":"u","value":-1e999,"state":` + good + `}`, "value"},
		{"unknown field", "/v1/decide", `{"user_id":"u","colour":"red","state":` + good + `}`, "colour"},
		{"body over max-body", "/v1/decide", big, "body"},
		{"activate without id", "/v1/activate", `{}`, "decision_id"},
		{"activate unknown field", "/v1/activate", `{"decision_id":"d","when":1}`, "when"},
		{"outcome unknown kind", "/v1/outcome", `{"decision_id":"d","user_id":"u","kind":"PURCHASE"}`, "kind"},
		{"outcome lower-case kind", "/v1/outcome", `{"decision_id":"d","user_id":"u","kind":"click"}`, "kind"},
		{"outcome no kind", "/v1/outcome", `{"decision_id":"d","user_id":"u"}`, "kind"},
		{"outcome no decision", "/v1/outcome", `{"user_id":"u","kind":"CLICK"}`, "decision_id"},
		{"outcome no user", "/v1/outcome", `{"decision_id":"d","kind":"CLICK"}`, "user_id"},
		{"outcome negative cost", "/v1/outcome", `{"decision_id":"d","user_id":"u","kind":"IMPRESSION","cost":-0.5}`, "cost"},
		{"outcome value overflows", "/v1/outcome", `{"decision_id":"d","user_id":"u","kind":"CONVERSION","value":1e309}`, "value"},
		{"outcome bad time", "/v1/outcome", `{"decision_id":"d","user_id":"u","kind":"END","timestamp":"yesterday"}`, "timestamp"},
		{"outcome time a number", "/v1/outcome", `{"decision_id":"d","user_id":"u","kind":"END","timestamp":5}`, "timestamp"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, tc.path, strings.NewReader(tc.body)))
			var er ErrorResponse
			if err := json.Unmarshal(rec.Body.Bytes(), &er); err != nil {
				t.Fatalf("answer %d %q is not a JSON error: %v", rec.Code, rec.Body, err)
			}
			if rec.Code != http.StatusBadRequest || er.Field != tc.field || er.Error == "" {
				t.Errorf("got %d field %q error %q; want 400 naming %q", rec.Code, er.Field, er.Error, tc.field)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
		})
	}
	if logs.Len() > 0 {
		t.Errorf("bad requests logged at info level:\n%s", logs.String())
	}
}

// countingReader is an endless body that counts the bytes read from it.
type countingReader struct{ n, limit int64 }

func (c *countingReader) Read(p []byte) (int, error) {
	if c.n >= c.limit {
		return 0, io.EOF
	}
	k := min(int64(len(p)), c.limit-c.n)
	for i := range p[:k] {
		p[i] = ' ' // JSON whitespace: a decoder reading it all would accept it
	}
	if c.n == 0 && k > 0 {
		p[0] = '{'
	}
	c.n += k
	return int(k), nil
}

// TestLargeBodyNotReadWhole: a 10 MB body is refused (400, field body)
// after reading at most --max-body + 1 bytes of it.
func TestLargeBodyNotReadWhole(t *testing.T) {
	s := newTestServer(t, zerolog.Nop())
	for _, path := range []string{"/v1/decide", "/v1/activate", "/v1/outcome"} {
		body := &countingReader{limit: 10 << 20}
		req := httptest.NewRequest(http.MethodPost, path, body)
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, req)
		var er ErrorResponse
		_ = json.Unmarshal(rec.Body.Bytes(), &er)
		if rec.Code != http.StatusBadRequest || er.Field != "body" || !strings.Contains(er.Error, "larger than") {
			t.Errorf("%s: %d %+v; want 400 on the body's size", path, rec.Code, er)
		}
		if max := s.cfg.MaxBody + 1; body.n > max {
			t.Errorf("%s: read %d bytes of the 10 MB body, want at most %d", path, body.n, max)
		}
	}
}

// TestMix: the served distribution sums to 1, keeps every action at or
// above the floor (within rounding) and the policy's order of the actions,
// and is the policy's own bit for bit
// at ε = 0 when no action is below the floor.
func TestMix(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	for range 1000 {
		k := 2 + rng.IntN(20)
		pi := make([]float64, k)
		sum := 0.0
		for a := range pi {
			pi[a] = rng.ExpFloat64() * float64(rng.IntN(2)) // some zeros
			sum += pi[a]
		}
		if sum == 0 {
			pi[0], sum = 1, 1
		}
		for a := range pi {
			pi[a] /= sum
		}
		eps, floor := rng.Float64()*0.3, rng.Float64()/float64(k)
		q := append([]float64(nil), pi...)
		Mix(q, eps, floor)
		total := 0.0
		for a := range q {
			total += q[a]
			if q[a] < floor*(1-1e-9) {
				t.Fatalf("Mix(%v, ε=%v, floor=%v)[%d] = %v below the floor", pi, eps, floor, a, q[a])
			}
			for b := range q {
				if pi[a] > pi[b] && q[a] < q[b] {
					t.Fatalf("Mix reversed the order of actions %d and %d: %v → %v", a, b, pi, q)
				}
			}
		}
		if math.Abs(total-1) > 1e-9 {
			t.Fatalf("Mix sums to %v", total)
		}
		same := append([]float64(nil), pi...)
		Mix(same, 0, 0)
		for a := range same {
			if math.Float64bits(same[a]) != math.Float64bits(pi[a]) {
				t.Fatalf("Mix(ε=0, floor=0) changed action %d: %v → %v", a, pi[a], same[a])
			}
		}
	}
}

// TestSample: the inverse-CDF draw never picks an action of probability 0
// and its frequencies follow q (5σ).
func TestSample(t *testing.T) {
	q := []float64{0.5, 0, 0.3, 0.2, 0}
	rng := rand.New(rand.NewPCG(1, 1))
	const n = 100000
	counts := make([]int, len(q))
	for range n {
		counts[sample(q, rng)]++
	}
	for a, p := range q {
		sd := math.Sqrt(n * p * (1 - p))
		if math.Abs(float64(counts[a])-n*p) > 5*sd || p == 0 && counts[a] > 0 {
			t.Errorf("action %d drawn %d times of %d, want %v·n", a, counts[a], n, p)
		}
	}
}

// TestDeferredSet: a decision activated before its TTL is taken once;
// expired ones are dropped and counted by expire, never taken; a full set
// refuses; clear drops the rest.
func TestDeferredSet(t *testing.T) {
	t0 := time.Unix(1000, 0)
	s := newDeferredSet(3, time.Minute)
	for i, id := range []string{"a", "b", "c"} {
		if !s.add(&schemas.Decision{DecisionID: id}, t0.Add(time.Duration(i)*time.Second)) {
			t.Fatalf("add %s refused", id)
		}
	}
	if s.add(&schemas.Decision{DecisionID: "d"}, t0) {
		t.Error("a full set took a fourth decision")
	}
	if d, ok := s.take("b", t0.Add(30*time.Second)); !ok || d.DecisionID != "b" {
		t.Errorf("take b = %v, %v", d, ok)
	}
	if _, ok := s.take("b", t0.Add(31*time.Second)); ok {
		t.Error("b taken twice")
	}
	if _, ok := s.take("a", t0.Add(time.Minute)); ok {
		t.Error("a taken at its expiry")
	}
	if n := s.expire(t0.Add(time.Minute + 500*time.Millisecond)); n != 1 || s.len() != 1 {
		t.Errorf("expire dropped %d, %d left; want 1 dropped (a), 1 left (c)", n, s.len())
	}
	if !s.putBack(&schemas.Decision{DecisionID: "b"}, t0.Add(2*time.Minute)) {
		t.Error("putBack refused")
	}
	if n := s.expire(t0.Add(2*time.Minute + time.Second)); n != 1 {
		t.Errorf("expire dropped %d, want 1 (c)", n)
	}
	if _, ok := s.take("b", t0.Add(2*time.Minute+2*time.Second)); !ok {
		t.Error("b, put back with a fresh TTL, not taken")
	}
	s.add(&schemas.Decision{DecisionID: "e"}, t0)
	if n := s.clear(); n != 1 || s.len() != 0 {
		t.Errorf("clear dropped %d, %d left", n, s.len())
	}
}

// FuzzDecodeDecide: the decoder never panics; it either refuses with a 400
// naming a field, or returns a request with a user, a state of the
// configured width whose elements are finite float32 values, and a step ≥ 0.
func FuzzDecodeDecide(f *testing.F) {
	for _, s := range []string{
		`{"user_id":"u","state":` + stateJSON(4, -1, "") + `}`,
		`{"user_id":"u","episode_id":"e","step":3,"state":` + stateJSON(4, -1, "") + `,"metadata":{"a":"b"},"value":2.5,"defer":true}`,
		`{"user_id":"u","state":` + stateJSON(4, 1, "1e39") + `}`,
		`{"user_id":"u","state":[1,2,3]}`, `{`, `[]`, `null`, `{"user_id":null}`, `{"state":null}`, "",
		` {"user_id":"u","state":[-0,1e3,2E-2,0.5],"metadata":{},"defer":false} `, `{"user_id":"u","user_id":"v"}`,
		`{"User_ID":"u"}`, `{"user_id":"\u0041","state":[1,2,3,4]}`, `{"user_id":"u","step":2147483648}`,
	} {
		f.Add([]byte(s))
	}
	l := limits{stateDim: 4, kinds: defaultKinds}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkParseAgrees(t, b) // the fast decoder takes only what encoding/json decodes the same
		r, err := decodeDecide(bytes.NewReader(b), l)
		if err != nil {
			if err.Status != http.StatusBadRequest || err.Field == "" || err.Msg == "" {
				t.Fatalf("error %+v: want a 400 naming a field", err)
			}
			return
		}
		if r.UserID == "" || len(r.State) != 4 || r.Step < 0 {
			t.Fatalf("accepted %+v", r)
		}
		for _, x := range r.State {
			if f := float64(float32(x)); math.IsInf(f, 0) || math.IsNaN(f) {
				t.Fatalf("accepted a state element %v", x)
			}
		}
	})
}

// FuzzDecodeOutcome: the outcome decoder never panics; what it accepts has
// a decision, a user, a known kind and a finite cost ≥ 0.
func FuzzDecodeOutcome(f *testing.F) {
	for _, s := range []string{
		`{"decision_id":"d","user_id":"u","kind":"CLICK"}`,
		`{"outcome_id":"o","decision_id":"d","user_id":"u","kind":"CONVERSION","value":3,"cost":0,"timestamp":"2026-12-01T10:00:00Z","metadata":{}}`,
		`{"decision_id":"d","user_id":"u","kind":"CLICK","cost":-1}`, `{"timestamp":"x"}`,
	} {
		f.Add([]byte(s))
	}
	l := limits{stateDim: 4, kinds: defaultKinds}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeOutcome(bytes.NewReader(b), l)
		if err != nil {
			if err.Status != http.StatusBadRequest || err.Field == "" {
				t.Fatalf("error %+v: want a 400 naming a field", err)
			}
			return
		}
		o := schemas.Outcome{DecisionID: r.DecisionID, UserID: r.UserID, Kind: r.Kind, Value: r.Value, Cost: r.Cost}
		if r.DecisionID == "" || o.Validate() != nil {
			t.Fatalf("accepted %+v", r)
		}
	})
}
