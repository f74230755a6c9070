package schemas

import (
	"fmt"
	"time"
)

// Conversion between the typed structs and goavro's native form of the
// current schema versions: records are map[string]any, int → int32,
// long → int64, float → float32, arrays → []any, maps → map[string]any,
// enums → their symbol, timestamp-millis → time.Time, a ["null","double"]
// union → nil or map[string]any{"double": x}.

// Native returns e in goavro's native form of the current Experience schema.
func (e *Experience) Native() map[string]any {
	return map[string]any{
		"id":               e.ID,
		"experiment_id":    e.ExperimentID,
		"episode_id":       e.EpisodeID,
		"user_id":          e.UserID,
		"step":             e.Step,
		"timestamp":        e.Timestamp,
		"state":            floats32Native(e.State),
		"action":           e.Action,
		"behavior_logprob": e.BehaviorLogProb,
		"policy_version":   e.PolicyVersion,
		"reward":           e.Reward,
		"next_state":       floats32Native(e.NextState),
		"done":             e.Done,
		"value":            e.Value,
		"metadata":         stringMapNative(e.Metadata),
	}
}

// FromNative sets e from goavro's native form of the current Experience
// schema; a missing field or a value of the wrong Go type is an error.
func (e *Experience) FromNative(native map[string]any) error {
	r := nativeReader{m: native}
	*e = Experience{
		ID:              r.str("id"),
		ExperimentID:    r.str("experiment_id"),
		EpisodeID:       r.str("episode_id"),
		UserID:          r.str("user_id"),
		Step:            r.i32("step"),
		Timestamp:       r.time("timestamp"),
		State:           r.floats32("state"),
		Action:          r.i32("action"),
		BehaviorLogProb: r.f64("behavior_logprob"),
		PolicyVersion:   r.i64("policy_version"),
		Reward:          r.f64("reward"),
		NextState:       r.floats32("next_state"),
		Done:            r.boolean("done"),
		Value:           r.f64("value"),
		Metadata:        r.strMap("metadata"),
	}
	if r.err != nil {
		*e = Experience{}
		return fmt.Errorf("experience from native: %w", r.err)
	}
	return nil
}

// Native returns t in goavro's native form of the current TaggedExperience
// schema. Unknown EventType or TagSource values give symbols goavro rejects.
func (t *TaggedExperience) Native() map[string]any {
	return map[string]any{
		"experience": t.Experience.Native(),
		"event_type": t.EventType.String(),
		"tag_source": t.TagSource.String(),
		"tag_score":  t.TagScore,
		"tagged_at":  t.TaggedAt,
	}
}

// FromNative sets t from goavro's native form of the current
// TaggedExperience schema.
func (t *TaggedExperience) FromNative(native map[string]any) error {
	r := nativeReader{m: native}
	exp := r.record("experience")
	et, ets := EventType(0), r.str("event_type")
	ts, tss := TagSource(0), r.str("tag_source")
	score, at := r.f64("tag_score"), r.time("tagged_at")
	err := r.err
	if err == nil {
		et, err = ParseEventType(ets)
	}
	if err == nil {
		ts, err = ParseTagSource(tss)
	}
	if err == nil {
		err = t.Experience.FromNative(exp)
	}
	if err != nil {
		*t = TaggedExperience{}
		return fmt.Errorf("tagged experience from native: %w", err)
	}
	t.EventType, t.TagSource, t.TagScore, t.TaggedAt = et, ts, score, at
	return nil
}

func floats32Native(v []float32) []any {
	out := make([]any, len(v))
	for i, f := range v {
		out[i] = f
	}
	return out
}

func floats64Native(v []float64) []any {
	out := make([]any, len(v))
	for i, f := range v {
		out[i] = f
	}
	return out
}

func stringMapNative(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func optionalNative(p *float64) any {
	if p == nil {
		return nil
	}
	return map[string]any{"double": *p}
}

// nativeReader reads typed fields from a native record; the first error
// sticks and later reads return zero values.
type nativeReader struct {
	m   map[string]any
	err error
}

func get[T any](r *nativeReader, key string) (T, bool) {
	var zero T
	if r.err != nil {
		return zero, false
	}
	v, present := r.m[key]
	if !present {
		r.err = fmt.Errorf("field %q missing", key)
		return zero, false
	}
	t, ok := v.(T)
	if !ok {
		r.err = fmt.Errorf("field %q: native %T, want %T", key, v, zero)
		return zero, false
	}
	return t, true
}

func (r *nativeReader) str(k string) string     { v, _ := get[string](r, k); return v }
func (r *nativeReader) i32(k string) int32      { v, _ := get[int32](r, k); return v }
func (r *nativeReader) i64(k string) int64      { v, _ := get[int64](r, k); return v }
func (r *nativeReader) f64(k string) float64    { v, _ := get[float64](r, k); return v }
func (r *nativeReader) boolean(k string) bool   { v, _ := get[bool](r, k); return v }
func (r *nativeReader) time(k string) time.Time { v, _ := get[time.Time](r, k); return v }
func (r *nativeReader) record(k string) map[string]any {
	v, _ := get[map[string]any](r, k)
	return v
}

// bytes returns a copy: goavro's native bytes alias the decoded buffer.
func (r *nativeReader) bytes(k string) []byte {
	v, ok := get[[]byte](r, k)
	if !ok || len(v) == 0 {
		return nil
	}
	return append([]byte(nil), v...)
}

func (r *nativeReader) floats32(k string) []float32 { return nativeSlice[float32](r, k) }

func (r *nativeReader) floats64(k string) []float64 { return nativeSlice[float64](r, k) }

// nativeSlice reads the array field k whose items are natively of type T.
func nativeSlice[T any](r *nativeReader, k string) []T {
	items, ok := get[[]any](r, k)
	if !ok || len(items) == 0 {
		return nil
	}
	out := make([]T, len(items))
	for i, it := range items {
		f, ok := it.(T)
		if !ok {
			var want T
			r.err = fmt.Errorf("field %q item %d: native %T, want %T", k, i, it, want)
			return nil
		}
		out[i] = f
	}
	return out
}

func (r *nativeReader) strMap(k string) map[string]string {
	m, ok := get[map[string]any](r, k)
	if !ok || len(m) == 0 {
		return nil
	}
	out := make(map[string]string, len(m))
	for key, v := range m {
		s, ok := v.(string)
		if !ok {
			r.err = fmt.Errorf("field %q key %q: native %T, want string", k, key, v)
			return nil
		}
		out[key] = s
	}
	return out
}

// optF64 reads a ["null","double"] union.
func (r *nativeReader) optF64(k string) *float64 {
	if r.err != nil {
		return nil
	}
	v, present := r.m[k]
	if !present {
		r.err = fmt.Errorf("field %q missing", k)
		return nil
	}
	if v == nil {
		return nil
	}
	u, ok := v.(map[string]any)
	if f, isF := u["double"].(float64); ok && isF && len(u) == 1 {
		return &f
	}
	r.err = fmt.Errorf("field %q: native %v is not a null or double union value", k, v)
	return nil
}
