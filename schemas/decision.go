package schemas

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"
)

// Outcome kinds aelp's producers write and aelp join treats specially. Any
// other non-empty kind is accepted and joined like CLICK.
const (
	// KindImpression is an impression won; Cost is its price.
	KindImpression = "IMPRESSION"
	// KindClick is a click on the ad.
	KindClick = "CLICK"
	// KindConversion is a conversion; Value is its worth.
	KindConversion = "CONVERSION"
	// KindEnd ends the user's journey: the decision it belongs to is done.
	KindEnd = "END"
)

// Decision is one decision of a live ad system (aelp.Decision, current
// version 1), logged when it acts. Empty arrays and maps decode as nil;
// timestamps have millisecond precision and decode in UTC.
type Decision struct {
	DecisionID, ExperimentID, UserID, EpisodeID string
	Step                                        int32
	// Timestamp is the decision's event time.
	Timestamp time.Time
	State     []float32
	Action    int32
	// BehaviorLogProb is log μ(a|s) of the policy that acted (≤ 0).
	BehaviorLogProb float64
	// ActionProbs is the distribution the action was drawn from; nil when
	// the producer did not write it (Avro null).
	ActionProbs []float64
	// PolicyVersion is the acting policy's version, -1 for a logging or
	// heuristic policy.
	PolicyVersion int64
	// Value is the producer's estimate of the decision's worth.
	Value    float64
	Metadata map[string]string
}

// Outcome is one outcome of a decision (aelp.Outcome, current version 1).
type Outcome struct {
	// OutcomeID makes duplicates detectable; may be empty.
	OutcomeID string
	// DecisionID names the decision; empty means the user's latest
	// decision at or before Timestamp.
	DecisionID string
	UserID     string
	// Timestamp is the outcome's event time.
	Timestamp time.Time
	// Kind is KindImpression, KindClick, KindConversion, KindEnd or another
	// kind of the producer's.
	Kind string
	// Value is money earned and Cost money spent (≥ 0).
	Value, Cost float64
	Metadata    map[string]string
}

// probTolerance bounds |Σ ActionProbs − 1| and |log p[action] −
// BehaviorLogProb| for a valid decision.
const probTolerance = 1e-6

// Validate reports the first invalid field as a *ValidationError, checking
// in this order: decision_id, experiment_id and user_id non-empty; state of
// width l.StateDim (when set) with finite elements; action ≥ 0 and <
// l.NumActions (when set); behavior_logprob finite and ≤ 0; action_probs,
// when present, of length l.NumActions (when set), each finite and ≥ 0,
// summing to 1 within 1e-6, with the action inside the distribution
// (p[action] > 0 and |log p[action] − behavior_logprob| ≤ 1e-6);
// policy_version ≥ -1; value finite.
func (d *Decision) Validate(l Limits) error {
	switch {
	case d.DecisionID == "":
		return invalid("decision_id", "empty")
	case d.ExperimentID == "":
		return invalid("experiment_id", "empty")
	case d.UserID == "":
		return invalid("user_id", "empty")
	}
	if err := checkVector("state", d.State, l.StateDim); err != nil {
		return err
	}
	switch {
	case d.Action < 0 || l.NumActions > 0 && int(d.Action) >= l.NumActions:
		return invalid("action", fmt.Sprintf("%d out of [0, %d)", d.Action, l.NumActions))
	case !finite(d.BehaviorLogProb) || d.BehaviorLogProb > 0:
		return invalid("behavior_logprob", fmt.Sprintf("%v is not a finite log-probability ≤ 0", d.BehaviorLogProb))
	}
	if d.ActionProbs != nil {
		if err := d.checkProbs(l); err != nil {
			return err
		}
	}
	switch {
	case d.PolicyVersion < -1:
		return invalid("policy_version", fmt.Sprintf("%d < -1", d.PolicyVersion))
	case !finite(d.Value):
		return invalid("value", fmt.Sprintf("%v", d.Value))
	}
	return nil
}

func (d *Decision) checkProbs(l Limits) error {
	p := d.ActionProbs
	if l.NumActions > 0 && len(p) != l.NumActions {
		return invalid("action_probs", fmt.Sprintf("length %d, want %d", len(p), l.NumActions))
	}
	sum := 0.0
	for i, q := range p {
		if !finite(q) || q < 0 {
			return invalid("action_probs", fmt.Sprintf("element %d is %v", i, q))
		}
		sum += q
	}
	if math.Abs(sum-1) > probTolerance {
		return invalid("action_probs", fmt.Sprintf("sum %v, want 1", sum))
	}
	if int(d.Action) >= len(p) || p[d.Action] == 0 {
		return invalid("action", fmt.Sprintf("action %d outside the distribution (%d actions, its probability 0)", d.Action, len(p)))
	}
	if lp := math.Log(p[d.Action]); math.Abs(lp-d.BehaviorLogProb) > probTolerance {
		return invalid("behavior_logprob", fmt.Sprintf("%v, but log action_probs[%d] = %v", d.BehaviorLogProb, d.Action, lp))
	}
	return nil
}

// Validate reports the first invalid field as a *ValidationError: user_id
// and kind non-empty; value finite; cost finite and ≥ 0.
func (o *Outcome) Validate() error {
	switch {
	case o.UserID == "":
		return invalid("user_id", "empty")
	case o.Kind == "":
		return invalid("kind", "empty")
	case !finite(o.Value):
		return invalid("value", fmt.Sprintf("%v", o.Value))
	case !finite(o.Cost) || o.Cost < 0:
		return invalid("cost", fmt.Sprintf("%v is not a finite cost ≥ 0", o.Cost))
	}
	return nil
}

// MarshalDecision appends the single-object encoding of d (current schema
// version) to dst. Metadata entries are written in key order.
func MarshalDecision(dst []byte, d *Decision) ([]byte, error) {
	dst = AppendHeader(dst, registry.current[NameDecision].Fingerprint)
	dst = appendString(dst, d.DecisionID)
	dst = appendString(dst, d.ExperimentID)
	dst = appendString(dst, d.UserID)
	dst = appendString(dst, d.EpisodeID)
	dst = appendInt(dst, d.Step)
	dst = appendMillis(dst, d.Timestamp)
	dst = appendFloatArray(dst, d.State)
	dst = appendInt(dst, d.Action)
	dst = appendDouble(dst, d.BehaviorLogProb)
	if d.ActionProbs == nil {
		dst = appendLong(dst, 0) // union branch null
	} else {
		dst = appendLong(dst, 1)
		dst = appendDoubleArray(dst, d.ActionProbs)
	}
	dst = appendLong(dst, d.PolicyVersion)
	dst = appendDouble(dst, d.Value)
	return appendStringMap(dst, d.Metadata), nil
}

// UnmarshalDecision decodes a single-object encoded Decision of any shipped
// version into d, overwriting every field. It does not validate; call
// d.Validate. Errors are *DecodeError; on error d is left zeroed. A present
// but empty action_probs array decodes as an empty, non-nil slice.
func UnmarshalDecision(b []byte, d *Decision) error {
	const op = "decode decision"
	*d = Decision{}
	s, body, err := readHeaderFor(op, NameDecision, b)
	if err != nil {
		return err
	}
	if s != registry.current[NameDecision] {
		native, err := decodeBody(op, s, body)
		if err == nil {
			err = d.FromNative(native)
		}
		if err != nil {
			*d = Decision{}
			return asDecodeError(op, s, err)
		}
		return nil
	}
	r := decoder{b: body}
	d.DecisionID, d.ExperimentID, d.UserID, d.EpisodeID = r.strings4()
	d.Step = r.int()
	d.Timestamp = r.millis()
	d.State = r.floatArray()
	d.Action = r.int()
	d.BehaviorLogProb = r.double()
	switch branch := r.long(); {
	case r.err != nil:
	case branch == 1:
		if d.ActionProbs = r.doubleArray(); d.ActionProbs == nil && r.err == nil {
			d.ActionProbs = []float64{}
		}
	case branch != 0:
		r.fail(badBody("action_probs union branch %d", branch))
	}
	d.PolicyVersion = r.long()
	d.Value = r.double()
	d.Metadata = r.stringMap()
	if err := finish(&r); err != nil {
		*d = Decision{}
		return &DecodeError{Op: op, Fingerprint: s.Fingerprint, Err: err}
	}
	return nil
}

// MarshalOutcome appends the single-object encoding of o (current schema
// version) to dst. Metadata entries are written in key order.
func MarshalOutcome(dst []byte, o *Outcome) ([]byte, error) {
	dst = AppendHeader(dst, registry.current[NameOutcome].Fingerprint)
	dst = appendString(dst, o.OutcomeID)
	dst = appendString(dst, o.DecisionID)
	dst = appendString(dst, o.UserID)
	dst = appendMillis(dst, o.Timestamp)
	dst = appendString(dst, o.Kind)
	dst = appendDouble(dst, o.Value)
	dst = appendDouble(dst, o.Cost)
	return appendStringMap(dst, o.Metadata), nil
}

// UnmarshalOutcome decodes a single-object encoded Outcome of any shipped
// version into o, overwriting every field. It does not validate; call
// o.Validate. Errors are *DecodeError; on error o is left zeroed.
func UnmarshalOutcome(b []byte, o *Outcome) error {
	const op = "decode outcome"
	*o = Outcome{}
	s, body, err := readHeaderFor(op, NameOutcome, b)
	if err != nil {
		return err
	}
	if s != registry.current[NameOutcome] {
		native, err := decodeBody(op, s, body)
		if err == nil {
			err = o.FromNative(native)
		}
		if err != nil {
			*o = Outcome{}
			return asDecodeError(op, s, err)
		}
		return nil
	}
	r := decoder{b: body}
	o.OutcomeID, o.DecisionID, o.UserID = r.strings3()
	o.Timestamp = r.millis()
	o.Kind = string(r.bytes())
	o.Value = r.double()
	o.Cost = r.double()
	o.Metadata = r.stringMap()
	if err := finish(&r); err != nil {
		*o = Outcome{}
		return &DecodeError{Op: op, Fingerprint: s.Fingerprint, Err: err}
	}
	return nil
}

// appendDoubleArray writes one block of len(v) doubles and the
// terminating 0.
func appendDoubleArray(dst []byte, v []float64) []byte {
	if len(v) > 0 {
		dst = appendLong(dst, int64(len(v)))
		for _, f := range v {
			dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(f))
		}
	}
	return append(dst, 0)
}

// doubleArray reads an array<double>; an empty array is nil.
func (d *decoder) doubleArray() []float64 {
	var out []float64
	for {
		n := d.blockCount(8)
		if n == 0 {
			return out
		}
		if out == nil {
			out = make([]float64, 0, n)
		}
		for range n {
			out = append(out, math.Float64frombits(binary.LittleEndian.Uint64(d.b[d.i:])))
			d.i += 8
		}
	}
}

// strings3 reads three consecutive strings into one allocation.
func (d *decoder) strings3() (a, b, c string) {
	p0, p1, p2 := d.bytes(), d.bytes(), d.bytes()
	if d.err != nil {
		return "", "", ""
	}
	s := string(p0) + string(p1) + string(p2)
	l0, l1 := len(p0), len(p1)
	return s[:l0], s[l0 : l0+l1], s[l0+l1:]
}

// Native returns d in goavro's native form of the current Decision schema.
func (d *Decision) Native() map[string]any {
	var probs any
	if d.ActionProbs != nil {
		probs = map[string]any{"array": floats64Native(d.ActionProbs)}
	}
	return map[string]any{
		"decision_id":      d.DecisionID,
		"experiment_id":    d.ExperimentID,
		"user_id":          d.UserID,
		"episode_id":       d.EpisodeID,
		"step":             d.Step,
		"timestamp":        d.Timestamp,
		"state":            floats32Native(d.State),
		"action":           d.Action,
		"behavior_logprob": d.BehaviorLogProb,
		"action_probs":     probs,
		"policy_version":   d.PolicyVersion,
		"value":            d.Value,
		"metadata":         stringMapNative(d.Metadata),
	}
}

// FromNative sets d from goavro's native form of the current Decision
// schema; a missing field or a value of the wrong Go type is an error.
func (d *Decision) FromNative(native map[string]any) error {
	r := nativeReader{m: native}
	out := Decision{
		DecisionID:      r.str("decision_id"),
		ExperimentID:    r.str("experiment_id"),
		UserID:          r.str("user_id"),
		EpisodeID:       r.str("episode_id"),
		Step:            r.i32("step"),
		Timestamp:       r.time("timestamp"),
		State:           r.floats32("state"),
		Action:          r.i32("action"),
		BehaviorLogProb: r.f64("behavior_logprob"),
		PolicyVersion:   r.i64("policy_version"),
		Value:           r.f64("value"),
		Metadata:        r.strMap("metadata"),
	}
	if r.err == nil {
		switch u := native["action_probs"].(type) {
		case nil:
		case map[string]any:
			inner := nativeReader{m: u}
			if out.ActionProbs = inner.floats64("array"); out.ActionProbs == nil && inner.err == nil {
				out.ActionProbs = []float64{}
			}
			r.err = inner.err
		default:
			r.err = fmt.Errorf("field %q: native %T is not a null or array union value", "action_probs", u)
		}
	}
	if r.err != nil {
		*d = Decision{}
		return fmt.Errorf("decision from native: %w", r.err)
	}
	*d = out
	return nil
}

// Native returns o in goavro's native form of the current Outcome schema.
func (o *Outcome) Native() map[string]any {
	return map[string]any{
		"outcome_id":  o.OutcomeID,
		"decision_id": o.DecisionID,
		"user_id":     o.UserID,
		"timestamp":   o.Timestamp,
		"kind":        o.Kind,
		"value":       o.Value,
		"cost":        o.Cost,
		"metadata":    stringMapNative(o.Metadata),
	}
}

// FromNative sets o from goavro's native form of the current Outcome
// schema; a missing field or a value of the wrong Go type is an error.
func (o *Outcome) FromNative(native map[string]any) error {
	r := nativeReader{m: native}
	out := Outcome{
		OutcomeID:  r.str("outcome_id"),
		DecisionID: r.str("decision_id"),
		UserID:     r.str("user_id"),
		Timestamp:  r.time("timestamp"),
		Kind:       r.str("kind"),
		Value:      r.f64("value"),
		Cost:       r.f64("cost"),
		Metadata:   r.strMap("metadata"),
	}
	if r.err != nil {
		*o = Outcome{}
		return fmt.Errorf("outcome from native: %w", r.err)
	}
	*o = out
	return nil
}
