package schemas

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// Writer→reader schema resolution on goavro's native form, per the Avro
// specification's "Schema Resolution": record fields are matched by name,
// writer fields the reader lacks are dropped, reader fields the writer lacks
// take the reader's default; enums by symbol; unions by the first matching
// branch; the numeric promotions int→long→float→double and string↔bytes.
// goavro decodes with one schema only, so old records are decoded with their
// writer codec and then resolved with resolve.

// resolve converts v, a native datum of writer schema w, into the native form
// of reader schema r.
func resolve(w, r *node, v any) (any, error) {
	return resolveDepth(w, r, v, 0)
}

func resolveDepth(w, r *node, v any, depth int) (any, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("nesting deeper than %d", maxDepth)
	}
	if w.kind == kUnion {
		bw, bv, err := unionBranch(w, v)
		if err != nil {
			return nil, err
		}
		return resolveDepth(bw, r, bv, depth+1)
	}
	if r.kind == kUnion {
		return resolveToUnion(w, r, v, depth)
	}
	if !matches(w, r) {
		return nil, fmt.Errorf("writer type %s does not resolve to reader type %s", typeName(w), typeName(r))
	}
	switch r.kind {
	case kRecord:
		return resolveRecord(w, r, v, depth)
	case kEnum:
		s, ok := v.(string)
		if !ok || !slices.Contains(r.symbols, s) {
			return nil, fmt.Errorf("enum %s: symbol %v unknown to the reader", r.name, v)
		}
		return s, nil
	case kArray:
		items, ok := v.([]any)
		if !ok {
			return nil, fmt.Errorf("array: native %T", v)
		}
		out := make([]any, len(items))
		for i, it := range items {
			x, err := resolveDepth(w.items, r.items, it, depth+1)
			if err != nil {
				return nil, err
			}
			out[i] = x
		}
		return out, nil
	case kMap:
		vals, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("map: native %T", v)
		}
		out := make(map[string]any, len(vals))
		for k, it := range vals {
			x, err := resolveDepth(w.values, r.values, it, depth+1)
			if err != nil {
				return nil, err
			}
			out[k] = x
		}
		return out, nil
	default:
		return promote(w, r, v)
	}
}

// resolveToUnion resolves v, of the non-union writer type w, to the first
// branch of the reader union r that w matches.
func resolveToUnion(w, r *node, v any, depth int) (any, error) {
	for _, br := range r.branches {
		if !matches(w, br) {
			continue
		}
		out, err := resolveDepth(w, br, v, depth+1)
		if err != nil {
			return nil, err
		}
		if br.kind == kNull {
			return nil, nil
		}
		return map[string]any{branchName(br): out}, nil
	}
	return nil, fmt.Errorf("writer type %s matches no branch of the reader union", typeName(w))
}

// resolveRecord resolves the record v of writer record w to reader record
// r: fields by name, a reader field the writer lacks from its default,
// writer fields the reader lacks dropped.
func resolveRecord(w, r *node, v any, depth int) (any, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("record %s: native %T", r.name, v)
	}
	out := make(map[string]any, len(r.fields))
	for _, rf := range r.fields {
		i := slices.IndexFunc(w.fields, func(wf field) bool { return wf.name == rf.name })
		if i < 0 {
			if !rf.hasDefault {
				return nil, fmt.Errorf("record %s: reader field %q is not written and has no default", r.name, rf.name)
			}
			d, err := defaultNative(rf.typ, rf.def, depth+1)
			if err != nil {
				return nil, fmt.Errorf("record %s field %q default: %w", r.name, rf.name, err)
			}
			out[rf.name] = d
			continue
		}
		fv, err := resolveDepth(w.fields[i].typ, rf.typ, m[rf.name], depth+1)
		if err != nil {
			return nil, fmt.Errorf("record %s field %q: %w", r.name, rf.name, err)
		}
		out[rf.name] = fv
	}
	return out, nil
}

// matches reports whether writer type w can be read as reader type r
// (neither being a union).
func matches(w, r *node) bool {
	switch {
	case w.kind == kUnion || r.kind == kUnion:
		return false
	case w.kind == r.kind:
		if w.kind == kRecord || w.kind == kEnum || w.kind == kFixed {
			return w.name == r.name && (w.kind != kFixed || w.size == r.size)
		}
		if w.kind == kArray {
			return matches(w.items, r.items) || r.items.kind == kUnion || w.items.kind == kUnion
		}
		if w.kind == kMap {
			return matches(w.values, r.values) || r.values.kind == kUnion || w.values.kind == kUnion
		}
		return true
	}
	switch w.kind {
	case kInt:
		return r.kind == kLong || r.kind == kFloat || r.kind == kDouble
	case kLong:
		return r.kind == kFloat || r.kind == kDouble
	case kFloat:
		return r.kind == kDouble
	case kString:
		return r.kind == kBytes
	case kBytes:
		return r.kind == kString
	}
	return false
}

// promote converts a primitive native value of w into the native type of r.
func promote(w, r *node, v any) (any, error) {
	// Strip goavro's logical-type natives down to the underlying value.
	if t, ok := v.(time.Time); ok {
		if w.logical != "timestamp-millis" {
			return nil, fmt.Errorf("unsupported logical type %q", w.logical)
		}
		if r.kind == kLong && r.logical == w.logical {
			return t, nil
		}
		v = t.UnixMilli()
	}
	var out any
	switch r.kind {
	case kLong:
		switch x := v.(type) {
		case int32:
			out = int64(x)
		case int64:
			out = x
		}
	case kFloat:
		switch x := v.(type) {
		case int32:
			out = float32(x)
		case int64:
			out = float32(x)
		case float32:
			out = x
		}
	case kDouble:
		switch x := v.(type) {
		case int32:
			out = float64(x)
		case int64:
			out = float64(x)
		case float32:
			out = float64(x)
		case float64:
			out = x
		}
	case kString:
		switch x := v.(type) {
		case string:
			out = x
		case []byte:
			out = string(x)
		}
	case kBytes:
		switch x := v.(type) {
		case string:
			out = []byte(x)
		case []byte:
			out = x
		}
	default:
		out = v
	}
	if out == nil && r.kind != kNull {
		return nil, fmt.Errorf("cannot read native %T as %s", v, typeName(r))
	}
	if r.logical == "timestamp-millis" && r.kind == kLong {
		return time.UnixMilli(out.(int64)).UTC(), nil
	}
	if r.logical != "" && r.logical != w.logical {
		return nil, fmt.Errorf("unsupported logical type change %q → %q", w.logical, r.logical)
	}
	return out, nil
}

// unionBranch finds the branch of union u that goavro's native value v
// (nil or a one-entry map keyed by the branch name) belongs to.
func unionBranch(u *node, v any) (*node, any, error) {
	if v == nil {
		for _, b := range u.branches {
			if b.kind == kNull {
				return b, nil, nil
			}
		}
		return nil, nil, fmt.Errorf("nil for a union without null")
	}
	m, ok := v.(map[string]any)
	if !ok || len(m) != 1 {
		return nil, nil, fmt.Errorf("union native %T is not a one-entry map", v)
	}
	for k, x := range m {
		for _, b := range u.branches {
			if branchName(b) == k {
				return b, x, nil
			}
		}
		return nil, nil, fmt.Errorf("union has no branch %q", k)
	}
	panic("unreachable")
}

// branchName is the key goavro uses for a union branch's native value.
func branchName(n *node) string {
	switch n.kind {
	case kRecord, kEnum, kFixed:
		return n.name
	}
	switch n.logical {
	case "timestamp-millis", "timestamp-micros", "time-micros":
		if n.kind == kLong {
			return "long." + n.logical
		}
	case "time-millis", "date":
		if n.kind == kInt {
			return "int." + n.logical
		}
	}
	return kindNames[n.kind]
}

func typeName(n *node) string {
	if n.name != "" {
		return n.name
	}
	return kindNames[n.kind]
}

// defaultNative converts a field default from its JSON form into goavro's
// native form for schema n (for a union, the default belongs to the first
// branch).
func defaultNative(n *node, def any, depth int) (any, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("nesting deeper than %d", maxDepth)
	}
	bad := func() (any, error) { return nil, fmt.Errorf("default %v is not a valid %s", def, typeName(n)) }
	switch n.kind {
	case kNull:
		if def != nil {
			return bad()
		}
		return nil, nil
	case kBoolean:
		if b, ok := def.(bool); ok {
			return b, nil
		}
		return bad()
	case kInt, kLong, kFloat, kDouble:
		if x, ok := defaultNumber(n, def); ok {
			return x, nil
		}
		return bad()
	case kString, kEnum:
		s, ok := def.(string)
		if !ok || n.kind == kEnum && !slices.Contains(n.symbols, s) {
			return bad()
		}
		return s, nil
	case kBytes, kFixed:
		if b, ok := defaultBytes(n, def); ok {
			return b, nil
		}
		return bad()
	case kArray:
		items, ok := def.([]any)
		if !ok {
			return bad()
		}
		out := make([]any, len(items))
		for i, it := range items {
			x, err := defaultNative(n.items, it, depth+1)
			if err != nil {
				return nil, err
			}
			out[i] = x
		}
		return out, nil
	case kMap:
		vals, ok := def.(map[string]any)
		if !ok {
			return bad()
		}
		out := make(map[string]any, len(vals))
		for k, it := range vals {
			x, err := defaultNative(n.values, it, depth+1)
			if err != nil {
				return nil, err
			}
			out[k] = x
		}
		return out, nil
	case kRecord:
		return defaultRecord(n, def, depth, bad)
	case kUnion:
		if len(n.branches) == 0 {
			return bad()
		}
		first := n.branches[0]
		x, err := defaultNative(first, def, depth+1)
		if err != nil || first.kind == kNull {
			return x, err
		}
		return map[string]any{branchName(first): x}, nil
	}
	return bad()
}

// defaultNumber converts the JSON number def to n's numeric type (ok is
// false when it is not one, or out of an int's range).
func defaultNumber(n *node, def any) (any, bool) {
	num, ok := def.(json.Number)
	if !ok {
		return nil, false
	}
	switch n.kind {
	case kInt:
		i, err := num.Int64()
		if err != nil || int64(int32(i)) != i {
			return nil, false
		}
		return int32(i), true
	case kLong:
		i, err := num.Int64()
		if err != nil {
			return nil, false
		}
		if n.logical == "timestamp-millis" {
			return time.UnixMilli(i).UTC(), true
		}
		return i, true
	case kFloat:
		f, err := num.Float64()
		if err != nil {
			return nil, false
		}
		return float32(f), true
	default:
		f, err := num.Float64()
		if err != nil {
			return nil, false
		}
		return f, true
	}
}

// defaultBytes converts the JSON string def of a bytes or fixed type, whose
// code points 0–255 are the bytes (ok is false otherwise, or for a fixed of
// another size).
func defaultBytes(n *node, def any) ([]byte, bool) {
	s, ok := def.(string)
	if !ok {
		return nil, false
	}
	b := make([]byte, 0, len(s))
	for _, r := range s {
		if r > 255 {
			return nil, false
		}
		b = append(b, byte(r))
	}
	if n.kind == kFixed && len(b) != n.size {
		return nil, false
	}
	return b, true
}

// defaultRecord converts the JSON object def of record n, a field it lacks
// taking the field's own default; bad is the error of an invalid def.
func defaultRecord(n *node, def any, depth int, bad func() (any, error)) (any, error) {
	vals, ok := def.(map[string]any)
	if !ok {
		return bad()
	}
	out := make(map[string]any, len(n.fields))
	for _, f := range n.fields {
		fv, present := vals[f.name]
		if !present {
			if !f.hasDefault {
				return bad()
			}
			fv = f.def
		}
		x, err := defaultNative(f.typ, fv, depth+1)
		if err != nil {
			return nil, err
		}
		out[f.name] = x
	}
	return out, nil
}
