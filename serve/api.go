package serve

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strings"
	"time"
)

// DecideRequest is the body of POST /v1/decide.
type DecideRequest struct {
	// UserID is the user; the decision's Kafka key. Required.
	UserID string `json:"user_id"`
	// EpisodeID groups a user's decisions into one journey. Default the
	// user id.
	EpisodeID string `json:"episode_id,omitempty"`
	// Step is the decision's index in its episode. Default 0.
	Step int32 `json:"step,omitempty"`
	// State is the observation, Config.StateDim finite numbers (in the
	// float32 range: they are logged as float32). Required.
	State []float64 `json:"state"`
	// Metadata is logged with the decision (profile keywords, campaign,
	// the aggregator's inputs).
	Metadata map[string]string `json:"metadata,omitempty"`
	// Value is the ad server's estimate of the decision's worth (the
	// aggregator's VALUE rule). Default 0.
	Value float64 `json:"value,omitempty"`
	// Defer holds the decision until POST /v1/activate; it is logged only
	// then (an impression actually shown).
	Defer bool `json:"defer,omitempty"`
	// Timestamp is the decision's event time (RFC 3339), for a client
	// with its own clock (a simulator, a replay). Default the time the
	// server received it; an activation sets the activation's time.
	Timestamp *time.Time `json:"timestamp,omitempty"`
}

// DecideResponse is the answer of POST /v1/decide.
type DecideResponse struct {
	// DecisionID names the decision (outcomes, activation).
	DecisionID string `json:"decision_id"`
	// Action is the action index, Bid·Creatives + Creative.
	Action int `json:"action"`
	// Bid is the bid level, Creative the creative of Action.
	Bid      int `json:"bid"`
	Creative int `json:"creative"`
	// Probabilities is the distribution Action was drawn from: the
	// policy's, mixed with exploration and the propensity floor.
	Probabilities []float64 `json:"probabilities"`
	// Propensity is Probabilities[Action].
	Propensity float64 `json:"propensity"`
	// PolicyVersion is the version of the policy that acted (−1: the
	// logging policy).
	PolicyVersion int64 `json:"policy_version"`
	// Deferred is true when the decision awaits POST /v1/activate.
	Deferred bool `json:"deferred"`
}

// ActivateRequest is the body of POST /v1/activate.
type ActivateRequest struct {
	// DecisionID is a deferred decision's id. Required.
	DecisionID string `json:"decision_id"`
}

// ActivateResponse is the answer of POST /v1/activate.
type ActivateResponse struct {
	DecisionID string `json:"decision_id"`
	// Logged is true: the decision was handed to the log (acknowledged
	// with LogSync).
	Logged bool `json:"logged"`
}

// OutcomeRequest is the body of POST /v1/outcome.
type OutcomeRequest struct {
	// OutcomeID makes a retried post detectable as a duplicate (the join
	// counts one outcome id once). Default a fresh id.
	OutcomeID string `json:"outcome_id,omitempty"`
	// DecisionID names the decision. Required.
	DecisionID string `json:"decision_id"`
	// UserID is the decision's user; the Kafka key. Required.
	UserID string `json:"user_id"`
	// Kind is one of Config.OutcomeKinds. Required.
	Kind string `json:"kind"`
	// Value is money earned, Cost money spent (finite, cost ≥ 0).
	Value float64 `json:"value,omitempty"`
	Cost  float64 `json:"cost,omitempty"`
	// Timestamp is the outcome's event time (RFC 3339). Default the time
	// the server received it.
	Timestamp *time.Time `json:"timestamp,omitempty"`
	// Metadata is logged with the outcome.
	Metadata map[string]string `json:"metadata,omitempty"`
}

// OutcomeResponse is the answer of POST /v1/outcome.
type OutcomeResponse struct {
	OutcomeID string `json:"outcome_id"`
}

// PolicyResponse is the answer of GET /v1/policy.
type PolicyResponse struct {
	// Version is the serving policy's version (−1: the logging policy).
	Version int64 `json:"version"`
	// Architecture is the snapshot's architecture string ("uniform" for
	// the logging policy).
	Architecture string `json:"architecture"`
	// LoadedAt is when the server started serving it.
	LoadedAt time.Time `json:"loaded_at"`
	// Epsilon and MinPropensity are the exploration mixed in.
	Epsilon       float64 `json:"epsilon"`
	MinPropensity float64 `json:"min_propensity"`
	// StateDim and NumActions are the request and answer widths.
	StateDim   int `json:"state_dim"`
	NumActions int `json:"num_actions"`
}

// ErrorResponse is the body of every 4xx and 5xx answer.
type ErrorResponse struct {
	// Error says what is wrong.
	Error string `json:"error"`
	// Field names the request field at fault ("body" for the body as a
	// whole); empty when the error is not about the request.
	Field string `json:"field,omitempty"`
}

// RequestError is a request the server refuses: Status is the HTTP status
// (400 for a bad request), Field the field at fault.
type RequestError struct {
	Status int
	Field  string
	Msg    string
}

func (e *RequestError) Error() string {
	if e.Field == "" {
		return e.Msg
	}
	return e.Field + ": " + e.Msg
}

func badField(field, format string, a ...any) *RequestError {
	return &RequestError{Status: http.StatusBadRequest, Field: field, Msg: fmt.Sprintf(format, a...)}
}

// decodeJSON decodes one JSON object from body into dst, refusing unknown
// fields and trailing data; every error is a *RequestError naming the
// field ("body" for the body as a whole).
func decodeJSON(body io.Reader, dst any) *RequestError {
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	err := dec.Decode(dst)
	if err == nil {
		if _, terr := dec.Token(); terr != io.EOF {
			if mbe := (*http.MaxBytesError)(nil); errors.As(terr, &mbe) {
				return tooLarge(mbe)
			}
			return badField("body", "trailing data after the JSON object")
		}
		return nil
	}
	var (
		syn *json.SyntaxError
		typ *json.UnmarshalTypeError
		mbe *http.MaxBytesError
	)
	switch {
	case errors.As(err, &mbe):
		return tooLarge(mbe)
	case errors.As(err, &syn):
		return badField("body", "malformed JSON at byte %d: %v", syn.Offset, syn)
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			field = "body"
		}
		return badField(field, "%s is not a valid %s", typ.Value, jsonType(typ.Type.String()))
	case errors.Is(err, io.EOF):
		return badField("body", "empty body: want a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badField("body", "truncated JSON")
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		if name = strings.TrimSuffix(strings.TrimPrefix(name, `"`), `"`); name != "" {
			return badField(name, "unknown field")
		}
		return badField("body", `unknown field ""`)
	}
	var tse *time.ParseError
	if errors.As(err, &tse) || strings.HasPrefix(err.Error(), "Time.UnmarshalJSON") {
		return badField("timestamp", "not an RFC 3339 time string")
	}
	return badField("body", "%v", err)
}

func tooLarge(e *http.MaxBytesError) *RequestError {
	return badField("body", "body larger than %d bytes", e.Limit)
}

// jsonType names a Go type as JSON would.
func jsonType(goType string) string {
	switch {
	case strings.HasPrefix(goType, "int"), strings.HasPrefix(goType, "uint"):
		return "integer in range"
	case strings.HasPrefix(goType, "float"):
		return "finite number"
	case goType == "string":
		return "string"
	case goType == "bool":
		return "boolean"
	case strings.HasPrefix(goType, "map"):
		return "object of strings"
	case strings.HasPrefix(goType, "[]"):
		return "array"
	}
	return goType
}

// limits are what a request is checked against.
type limits struct {
	stateDim int
	kinds    []string
}

// decodeDecide decodes and checks a decide request: user_id non-empty,
// step ≥ 0, state of width l.stateDim with finite elements in the float32
// range, value finite.
//
// The body is read whole (at most the MaxBytesReader's limit + 1 bytes)
// and decoded by parseDecide when it is in the plain form, by
// encoding/json otherwise (and for every error).
func decodeDecide(body io.Reader, l limits) (DecideRequest, *RequestError) {
	bp := bodyPool.Get().(*[]byte)
	b, rerr := readBody(body, (*bp)[:0])
	defer func() {
		if cap(b) <= maxPooledBody {
			*bp = b[:0]
			bodyPool.Put(bp)
		}
	}()
	if rerr != nil {
		return DecideRequest{}, rerr
	}
	var r DecideRequest
	if !parseDecide(b, &r, l.stateDim) {
		r = DecideRequest{}
		if err := decodeJSON(bytes.NewReader(b), &r); err != nil {
			return DecideRequest{}, err
		}
	}
	switch {
	case r.UserID == "":
		return r, badField("user_id", "required, non-empty")
	case r.Step < 0:
		return r, badField("step", "%d: must not be negative", r.Step)
	case r.State == nil:
		return r, badField("state", "required: an array of %d numbers", l.stateDim)
	case len(r.State) != l.stateDim:
		return r, badField("state", "%d elements, want %d", len(r.State), l.stateDim)
	}
	for i, x := range r.State {
		if f := float32(x); math.IsInf(float64(f), 0) || math.IsNaN(x) {
			return r, badField("state", "element %d (%v) is not a finite float32", i, x)
		}
	}
	return r, nil
}

// decodeActivate decodes and checks an activate request.
func decodeActivate(body io.Reader) (ActivateRequest, *RequestError) {
	var r ActivateRequest
	if err := decodeJSON(body, &r); err != nil {
		return ActivateRequest{}, err
	}
	if r.DecisionID == "" {
		return r, badField("decision_id", "required, non-empty")
	}
	return r, nil
}

// decodeOutcome decodes and checks an outcome request: decision_id,
// user_id and kind non-empty, kind among l.kinds, cost ≥ 0.
func decodeOutcome(body io.Reader, l limits) (OutcomeRequest, *RequestError) {
	var r OutcomeRequest
	if err := decodeJSON(body, &r); err != nil {
		return OutcomeRequest{}, err
	}
	switch {
	case r.DecisionID == "":
		return r, badField("decision_id", "required, non-empty")
	case r.UserID == "":
		return r, badField("user_id", "required, non-empty")
	case r.Kind == "":
		return r, badField("kind", "required: one of %s", strings.Join(l.kinds, ", "))
	case !slices.Contains(l.kinds, r.Kind):
		return r, badField("kind", "unknown kind %q: want one of %s", r.Kind, strings.Join(l.kinds, ", "))
	case r.Cost < 0:
		return r, badField("cost", "%v: must not be negative", r.Cost)
	}
	return r, nil
}

// writeJSON writes v with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	_ = json.NewEncoder(&buf).Encode(v) // the API's types always encode
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}
