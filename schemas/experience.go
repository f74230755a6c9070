package schemas

import (
	"fmt"
	"math"
	"time"
)

// EventType is the aggregator's segment tag of an experience.
type EventType int8

// Event types; the zero value is a regular parent.
const (
	// EventRegular is the Avro symbol REGULAR_PARENT.
	EventRegular EventType = 0
	// EventCrisis is the Avro symbol CRISIS_PARENT.
	EventCrisis EventType = 1
)

// eventTypeAvro maps EventType to its Avro enum index (symbols
// CRISIS_PARENT, REGULAR_PARENT) and back.
var (
	eventTypeSymbols = [...]string{EventRegular: "REGULAR_PARENT", EventCrisis: "CRISIS_PARENT"}
	eventTypeToIndex = [...]int64{EventRegular: 1, EventCrisis: 0}
	eventTypeOfIndex = [...]EventType{0: EventCrisis, 1: EventRegular}
)

// String returns the Avro symbol, e.g. "CRISIS_PARENT".
func (t EventType) String() string {
	if t.valid() {
		return eventTypeSymbols[t]
	}
	return fmt.Sprintf("EventType(%d)", int8(t))
}

func (t EventType) valid() bool { return t == EventRegular || t == EventCrisis }

// ParseEventType parses an Avro symbol ("CRISIS_PARENT", "REGULAR_PARENT").
func ParseEventType(s string) (EventType, error) {
	for i, sym := range eventTypeSymbols {
		if sym == s {
			return EventType(i), nil
		}
	}
	return 0, fmt.Errorf("parse event type: unknown symbol %q", s)
}

// TagSource is the classifier rule that decided an experience's EventType.
type TagSource int8

// Tag sources; the zero value is the default rule.
const (
	// TagDefault is the Avro symbol DEFAULT: no rule matched, regular parent.
	TagDefault TagSource = iota
	// TagLabel is the Avro symbol LABEL: an explicit event_type in metadata.
	TagLabel
	// TagMetadata is the Avro symbol METADATA: keywords, behaviour, campaign.
	TagMetadata
	// TagValue is the Avro symbol VALUE: value above the running percentile.
	TagValue
)

// tagSource tables; Avro symbols are LABEL, METADATA, VALUE, DEFAULT.
var (
	tagSourceSymbols = [...]string{TagDefault: "DEFAULT", TagLabel: "LABEL", TagMetadata: "METADATA", TagValue: "VALUE"}
	tagSourceToIndex = [...]int64{TagDefault: 3, TagLabel: 0, TagMetadata: 1, TagValue: 2}
	tagSourceOfIndex = [...]TagSource{TagLabel, TagMetadata, TagValue, TagDefault}
)

// String returns the Avro symbol, e.g. "LABEL".
func (s TagSource) String() string {
	if s.valid() {
		return tagSourceSymbols[s]
	}
	return fmt.Sprintf("TagSource(%d)", int8(s))
}

func (s TagSource) valid() bool { return s >= TagDefault && s <= TagValue }

// ParseTagSource parses an Avro symbol ("LABEL", "METADATA", "VALUE",
// "DEFAULT").
func ParseTagSource(s string) (TagSource, error) {
	for i, sym := range tagSourceSymbols {
		if sym == s {
			return TagSource(i), nil
		}
	}
	return 0, fmt.Errorf("parse tag source: unknown symbol %q", s)
}

// Experience is one transition (aelp.Experience, current version 2). Empty
// arrays and maps decode as nil; timestamps have millisecond precision and
// decode in UTC.
type Experience struct {
	ID, ExperimentID, EpisodeID, UserID string
	Step                                int32
	Timestamp                           time.Time
	State                               []float32
	Action                              int32
	// BehaviorLogProb is log μ(a|s) of the policy that acted (≤ 0).
	BehaviorLogProb float64
	// PolicyVersion is the acting policy's version; -1 for a logging or
	// heuristic policy and for records written with schema version 1.
	PolicyVersion int64
	Reward        float64
	NextState     []float32
	Done          bool
	// Value is the producer's estimate of the experience's worth.
	Value    float64
	Metadata map[string]string
}

// TaggedExperience is an Experience with the aggregator's tag
// (aelp.TaggedExperience, current version 2).
type TaggedExperience struct {
	Experience
	EventType EventType
	TagSource TagSource
	TagScore  float64
	TaggedAt  time.Time
}

// Limits are the environment's dimensions that Validate checks; a zero (or
// negative) field is not checked.
type Limits struct {
	// StateDim is the required length of State and NextState.
	StateDim int
	// NumActions bounds Action to [0, NumActions).
	NumActions int
}

func invalid(field, reason string) error { return &ValidationError{Field: field, Reason: reason} }

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

func checkVector(field string, v []float32, dim int) error {
	if dim > 0 && len(v) != dim {
		return invalid(field, fmt.Sprintf("width %d, want %d", len(v), dim))
	}
	for i, f := range v {
		if !finite(float64(f)) {
			return invalid(field, fmt.Sprintf("element %d is %v", i, f))
		}
	}
	return nil
}

// Validate reports the first invalid field as a *ValidationError, checking
// in this order: id, experiment_id and user_id non-empty; state and
// next_state of width l.StateDim (when set) with finite elements; action ≥ 0
// and < l.NumActions (when set); behavior_logprob finite and ≤ 0;
// policy_version ≥ -1; reward and value finite.
func (e *Experience) Validate(l Limits) error {
	switch {
	case e.ID == "":
		return invalid("id", "empty")
	case e.ExperimentID == "":
		return invalid("experiment_id", "empty")
	case e.UserID == "":
		return invalid("user_id", "empty")
	}
	if err := checkVector("state", e.State, l.StateDim); err != nil {
		return err
	}
	if err := checkVector("next_state", e.NextState, l.StateDim); err != nil {
		return err
	}
	switch {
	case e.Action < 0 || l.NumActions > 0 && int(e.Action) >= l.NumActions:
		return invalid("action", fmt.Sprintf("%d out of [0, %d)", e.Action, l.NumActions))
	case !finite(e.BehaviorLogProb) || e.BehaviorLogProb > 0:
		return invalid("behavior_logprob", fmt.Sprintf("%v is not a finite log-probability ≤ 0", e.BehaviorLogProb))
	case e.PolicyVersion < -1:
		return invalid("policy_version", fmt.Sprintf("%d < -1", e.PolicyVersion))
	case !finite(e.Reward):
		return invalid("reward", fmt.Sprintf("%v", e.Reward))
	case !finite(e.Value):
		return invalid("value", fmt.Sprintf("%v", e.Value))
	}
	return nil
}

// Validate checks the experience as Experience.Validate does, then
// event_type and tag_source (known values) and tag_score (finite).
func (t *TaggedExperience) Validate(l Limits) error {
	if err := t.Experience.Validate(l); err != nil {
		return err
	}
	switch {
	case !t.EventType.valid():
		return invalid("event_type", fmt.Sprintf("unknown value %d", t.EventType))
	case !t.TagSource.valid():
		return invalid("tag_source", fmt.Sprintf("unknown value %d", t.TagSource))
	case !finite(t.TagScore):
		return invalid("tag_score", fmt.Sprintf("%v", t.TagScore))
	}
	return nil
}

// Marshal and Unmarshal of the current versions use a hand-written codec of
// the Avro binary encoding (proved byte-identical to goavro's by the tests);
// records of older versions are decoded by goavro with the writer schema and
// resolved to the current one.

// MarshalExperience appends the single-object encoding of e (current
// schema version) to dst. Metadata entries are written in key order, so
// equal experiences encode to equal bytes.
func MarshalExperience(dst []byte, e *Experience) ([]byte, error) {
	dst = AppendHeader(dst, registry.current[NameExperience].Fingerprint)
	return appendExperienceBody(dst, e), nil
}

func appendExperienceBody(dst []byte, e *Experience) []byte {
	dst = appendString(dst, e.ID)
	dst = appendString(dst, e.ExperimentID)
	dst = appendString(dst, e.EpisodeID)
	dst = appendString(dst, e.UserID)
	dst = appendInt(dst, e.Step)
	dst = appendMillis(dst, e.Timestamp)
	dst = appendFloatArray(dst, e.State)
	dst = appendInt(dst, e.Action)
	dst = appendDouble(dst, e.BehaviorLogProb)
	dst = appendLong(dst, e.PolicyVersion)
	dst = appendDouble(dst, e.Reward)
	dst = appendFloatArray(dst, e.NextState)
	dst = appendBool(dst, e.Done)
	dst = appendDouble(dst, e.Value)
	return appendStringMap(dst, e.Metadata)
}

func (d *decoder) experience(e *Experience) {
	e.ID, e.ExperimentID, e.EpisodeID, e.UserID = d.strings4()
	e.Step = d.int()
	e.Timestamp = d.millis()
	e.State = d.floatArray()
	e.Action = d.int()
	e.BehaviorLogProb = d.double()
	e.PolicyVersion = d.long()
	e.Reward = d.double()
	e.NextState = d.floatArray()
	e.Done = d.bool()
	e.Value = d.double()
	e.Metadata = d.stringMap()
}

// UnmarshalExperience decodes a single-object encoded Experience of any
// shipped version into e, overwriting every field. It does not validate; call
// e.Validate. Errors are *DecodeError; on error e is left zeroed.
func UnmarshalExperience(b []byte, e *Experience) error {
	const op = "decode experience"
	*e = Experience{}
	s, body, err := readHeaderFor(op, NameExperience, b)
	if err != nil {
		return err
	}
	if s != registry.current[NameExperience] {
		native, err := decodeBody(op, s, body)
		if err == nil {
			err = e.FromNative(native)
		}
		if err != nil {
			*e = Experience{}
			return asDecodeError(op, s, err)
		}
		return nil
	}
	d := decoder{b: body}
	d.experience(e)
	if err := finish(&d); err != nil {
		*e = Experience{}
		return &DecodeError{Op: op, Fingerprint: s.Fingerprint, Err: err}
	}
	return nil
}

// MarshalTaggedExperience appends the single-object encoding of t (current
// schema version) to dst. An EventType or TagSource outside the declared
// constants is an error.
func MarshalTaggedExperience(dst []byte, t *TaggedExperience) ([]byte, error) {
	if !t.EventType.valid() {
		return dst, fmt.Errorf("encode tagged experience: unknown event type %d", t.EventType)
	}
	if !t.TagSource.valid() {
		return dst, fmt.Errorf("encode tagged experience: unknown tag source %d", t.TagSource)
	}
	dst = AppendHeader(dst, registry.current[NameTaggedExperience].Fingerprint)
	dst = appendExperienceBody(dst, &t.Experience)
	dst = appendLong(dst, eventTypeToIndex[t.EventType])
	dst = appendLong(dst, tagSourceToIndex[t.TagSource])
	dst = appendDouble(dst, t.TagScore)
	return appendMillis(dst, t.TaggedAt), nil
}

// UnmarshalTaggedExperience decodes a single-object encoded TaggedExperience
// of any shipped version into t, overwriting every field. It does not
// validate; call t.Validate. Errors are *DecodeError; on error t is left
// zeroed.
func UnmarshalTaggedExperience(b []byte, t *TaggedExperience) error {
	const op = "decode tagged experience"
	*t = TaggedExperience{}
	s, body, err := readHeaderFor(op, NameTaggedExperience, b)
	if err != nil {
		return err
	}
	if s != registry.current[NameTaggedExperience] {
		native, err := decodeBody(op, s, body)
		if err == nil {
			err = t.FromNative(native)
		}
		if err != nil {
			*t = TaggedExperience{}
			return asDecodeError(op, s, err)
		}
		return nil
	}
	d := decoder{b: body}
	d.experience(&t.Experience)
	if i := d.long(); d.err == nil {
		if i < 0 || i >= int64(len(eventTypeOfIndex)) {
			d.fail(badBody("event_type index %d out of range", i))
		} else {
			t.EventType = eventTypeOfIndex[i]
		}
	}
	if i := d.long(); d.err == nil {
		if i < 0 || i >= int64(len(tagSourceOfIndex)) {
			d.fail(badBody("tag_source index %d out of range", i))
		} else {
			t.TagSource = tagSourceOfIndex[i]
		}
	}
	t.TagScore = d.double()
	t.TaggedAt = d.millis()
	if err := finish(&d); err != nil {
		*t = TaggedExperience{}
		return &DecodeError{Op: op, Fingerprint: s.Fingerprint, Err: err}
	}
	return nil
}

// finish returns the decoder's error, or a bad body for trailing bytes.
func finish(d *decoder) error {
	if d.err != nil {
		return d.err
	}
	if d.remaining() != 0 {
		return badBody("%d trailing bytes", d.remaining())
	}
	return nil
}

// asDecodeError wraps err in a *DecodeError unless it already is one; a
// native-conversion failure is a bad body.
func asDecodeError(op string, s *Schema, err error) error {
	if _, ok := err.(*DecodeError); ok {
		return err
	}
	return &DecodeError{Op: op, Fingerprint: s.Fingerprint, Err: badBody("%v", err)}
}
