package schemas

import (
	"encoding/json"
	"math"
	"reflect"
	"testing"
	"time"
)

func TestJSONValue(t *testing.T) {
	prec := 0.75
	m := TrainingMetrics{ExperimentID: "e", LearnerID: "l", Update: 3, Timestamp: time.Date(2026, 5, 1, 10, 30, 15, 250e6, time.UTC),
		ExplainedVariance: math.NaN(), PolicyLoss: math.Inf(-1), TagPrecision: &prec}
	b, err := MarshalTrainingMetrics(nil, &m)
	if err != nil {
		t.Fatal(err)
	}
	name, native, err := DecodeNative(b)
	if err != nil {
		t.Fatal(err)
	}
	before, _ := json.Marshal(map[string]any{"precision": native["tag_precision"], "recall": native["tag_recall"]})
	out, err := json.Marshal(JSONValue(name, native))
	if err != nil {
		t.Fatalf("not marshalable: %v", err)
	}
	var got map[string]any
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{
		"experiment_id": "e", "update": 3.0, "timestamp": "2026-05-01T10:30:15.250Z",
		"explained_variance": "NaN", "policy_loss": "-Inf",
		"tag_precision": 0.75, // a union, flattened
		"tag_recall":    nil,
	} {
		if got[k] != want {
			t.Errorf("%s = %#v, want %#v", k, got[k], want)
		}
	}
	// The native value is not modified.
	after, _ := json.Marshal(map[string]any{"precision": native["tag_precision"], "recall": native["tag_recall"]})
	if string(before) != string(after) {
		t.Errorf("native changed: %s → %s", before, after)
	}
	// Without a schema: finite numbers kept, the rest named, nesting
	// followed; unions stay as goavro gives them.
	generic := JSONValue("aelp.Unknown", map[string]any{"x": []any{float32(1.5), math.Inf(1)}, "u": map[string]any{"double": 2.0}})
	want := map[string]any{"x": []any{float32(1.5), "+Inf"}, "u": map[string]any{"double": 2.0}}
	if !reflect.DeepEqual(generic, want) {
		t.Errorf("generic = %#v, want %#v", generic, want)
	}
}
