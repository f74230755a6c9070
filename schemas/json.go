package schemas

import (
	"math"
	"time"
)

// JSONValue converts v, a value in goavro's native form of the current
// version of the named schema (as DecodeNative returns it), into one that
// encoding/json marshals the way a reader of JSON expects: unions
// flattened (null, or the branch's value without goavro's {"branch": value}
// wrapper), timestamps as RFC 3339 strings in UTC with milliseconds, bytes
// as base64 (encoding/json's form of []byte), and NaN and the infinities,
// which JSON lacks, as the strings "NaN", "+Inf" and "-Inf". Values the
// schema does not describe (an unknown name, fields it lacks) are converted
// the same way without it. v is not modified.
func JSONValue(name string, v any) any {
	var n *node
	if s := Current(name); s != nil {
		n = s.root
	}
	return jsonValue(n, v)
}

// jsonValue is JSONValue for schema node n (nil: unknown).
func jsonValue(n *node, v any) any {
	if n != nil {
		switch n.kind {
		case kUnion:
			if u, ok := v.(map[string]any); ok && len(u) == 1 {
				for branch, inner := range u {
					for _, b := range n.branches {
						if branchName(b) == branch {
							return jsonValue(b, inner)
						}
					}
					return jsonValue(nil, inner)
				}
			}
		case kRecord:
			if rec, ok := v.(map[string]any); ok {
				out := make(map[string]any, len(rec))
				for _, f := range n.fields {
					if fv, ok := rec[f.name]; ok {
						out[f.name] = jsonValue(f.typ, fv)
					}
				}
				for k, fv := range rec { // fields the schema lacks
					if _, ok := out[k]; !ok {
						out[k] = jsonValue(nil, fv)
					}
				}
				return out
			}
		case kArray:
			if a, ok := v.([]any); ok {
				out := make([]any, len(a))
				for i, x := range a {
					out[i] = jsonValue(n.items, x)
				}
				return out
			}
		case kMap:
			if m, ok := v.(map[string]any); ok {
				out := make(map[string]any, len(m))
				for k, x := range m {
					out[k] = jsonValue(n.values, x)
				}
				return out
			}
		}
	}
	// Without a schema, or a primitive.
	switch x := v.(type) {
	case float64:
		return finiteJSON(x)
	case float32:
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return finiteJSON(float64(x))
		}
		return x
	case time.Time:
		return x.UTC().Format("2006-01-02T15:04:05.000Z07:00")
	case []any:
		out := make([]any, len(x))
		for i, y := range x {
			out[i] = jsonValue(nil, y)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, y := range x {
			out[k] = jsonValue(nil, y)
		}
		return out
	}
	return v
}

// finiteJSON returns x, or its name when it is not finite.
func finiteJSON(x float64) any {
	switch {
	case math.IsNaN(x):
		return "NaN"
	case math.IsInf(x, 1):
		return "+Inf"
	case math.IsInf(x, -1):
		return "-Inf"
	}
	return x
}
