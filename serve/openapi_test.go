package serve

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

// openAPIDoc is the part of openapi.json the test reads.
type openAPIDoc struct {
	OpenAPI    string                                  `json:"openapi"`
	Paths      map[string]map[string]openAPIOp         `json:"paths"`
	Components struct{ Schemas map[string]jsonSchema } `json:"components"`
}

type openAPIOp struct {
	RequestBody *struct {
		Content map[string]struct{ Schema jsonSchema } `json:"content"`
	} `json:"requestBody"`
	Responses map[string]struct {
		Headers map[string]any                         `json:"headers"`
		Content map[string]struct{ Schema jsonSchema } `json:"content"`
	} `json:"responses"`
}

// jsonSchema is the subset of JSON Schema the document uses.
type jsonSchema struct {
	Ref                  string                `json:"$ref"`
	Type                 string                `json:"type"`
	Properties           map[string]jsonSchema `json:"properties"`
	Required             []string              `json:"required"`
	AdditionalProperties any                   `json:"additionalProperties"`
	Items                *jsonSchema           `json:"items"`
	Enum                 []string              `json:"enum"`
	Minimum              *float64              `json:"minimum"`
	MinLength            int                   `json:"minLength"`
}

func loadOpenAPI(t *testing.T) *openAPIDoc {
	t.Helper()
	var doc openAPIDoc
	if err := json.Unmarshal(OpenAPI, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi %q, want 3.x", doc.OpenAPI)
	}
	return &doc
}

func (d *openAPIDoc) resolve(s jsonSchema) jsonSchema {
	if name, ok := strings.CutPrefix(s.Ref, "#/components/schemas/"); ok {
		return d.Components.Schemas[name]
	}
	return s
}

// validate checks value v (decoded JSON) against schema s.
func (d *openAPIDoc) validate(s jsonSchema, v any, path string) error {
	s = d.resolve(s)
	switch s.Type {
	case "object":
		m, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: %T, want an object", path, v)
		}
		for _, r := range s.Required {
			if _, ok := m[r]; !ok {
				return fmt.Errorf("%s: required %q missing", path, r)
			}
		}
		for k, x := range m {
			ps, ok := s.Properties[k]
			if !ok {
				if s.AdditionalProperties == false {
					return fmt.Errorf("%s: property %q not in the schema", path, k)
				}
				if ap, isMap := s.AdditionalProperties.(map[string]any); isMap {
					b, _ := json.Marshal(ap)
					_ = json.Unmarshal(b, &ps)
				} else {
					continue
				}
			}
			if err := d.validate(ps, x, path+"."+k); err != nil {
				return err
			}
		}
	case "array":
		a, ok := v.([]any)
		if !ok {
			return fmt.Errorf("%s: %T, want an array", path, v)
		}
		for i, x := range a {
			if err := d.validate(*s.Items, x, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	case "string":
		str, ok := v.(string)
		if !ok || len(str) < s.MinLength || len(s.Enum) > 0 && !slices.Contains(s.Enum, str) {
			return fmt.Errorf("%s: %v does not fit a string schema %+v", path, v, s)
		}
	case "integer", "number":
		f, ok := v.(float64)
		if !ok || s.Type == "integer" && f != float64(int64(f)) || s.Minimum != nil && f < *s.Minimum {
			return fmt.Errorf("%s: %v is not a %s of the schema", path, v, s.Type)
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			return fmt.Errorf("%s: %v is not a boolean", path, v)
		}
	}
	return nil
}

// jsonFields returns a struct type's JSON names and those without
// omitempty.
func jsonFields(typ reflect.Type) (all, always []string) {
	for i := range typ.NumField() {
		name, opts, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
		all = append(all, name)
		if !strings.Contains(opts, "omitempty") {
			always = append(always, name)
		}
	}
	sort.Strings(all)
	sort.Strings(always)
	return all, always
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// apiTypes are each operation's request and 200 answer types.
var apiTypes = map[string][2]reflect.Type{
	"POST /v1/decide":   {reflect.TypeFor[DecideRequest](), reflect.TypeFor[DecideResponse]()},
	"POST /v1/activate": {reflect.TypeFor[ActivateRequest](), reflect.TypeFor[ActivateResponse]()},
	"POST /v1/outcome":  {reflect.TypeFor[OutcomeRequest](), reflect.TypeFor[OutcomeResponse]()},
	"GET /v1/policy":    {nil, reflect.TypeFor[PolicyResponse]()},
}

// TestOpenAPIDocumentsTheTypes: every API route is in the document and
// every operation of the document is a route (or /metrics, /healthz);
// each request schema's properties are the request type's JSON fields;
// each 200 schema's properties are the answer type's, required exactly
// the fields always written; the error schema is ErrorResponse's.
func TestOpenAPIDocumentsTheTypes(t *testing.T) {
	doc := loadOpenAPI(t)
	var routes, documented []string
	for _, r := range apiRoutes {
		routes = append(routes, r.method+" "+r.path)
	}
	routes = append(routes, "GET /metrics", "GET /healthz")
	for p, ops := range doc.Paths {
		for m := range ops {
			documented = append(documented, strings.ToUpper(m)+" "+p)
		}
	}
	sort.Strings(routes)
	sort.Strings(documented)
	if !slices.Equal(routes, documented) {
		t.Errorf("routes %v, documented %v", routes, documented)
	}
	for op, types := range apiTypes {
		method, path, _ := strings.Cut(op, " ")
		o := doc.Paths[path][strings.ToLower(method)]
		if types[0] != nil {
			if o.RequestBody == nil {
				t.Fatalf("%s: no request body documented", op)
			}
			s := doc.resolve(o.RequestBody.Content["application/json"].Schema)
			if all, _ := jsonFields(types[0]); !slices.Equal(all, keys(s.Properties)) {
				t.Errorf("%s request: %s has %v, the document %v", op, types[0], all, keys(s.Properties))
			}
			if s.AdditionalProperties != false {
				t.Errorf("%s request: the decoder refuses unknown fields; document additionalProperties: false", op)
			}
		}
		s := doc.resolve(o.Responses["200"].Content["application/json"].Schema)
		all, always := jsonFields(types[1])
		req := append([]string(nil), s.Required...)
		sort.Strings(req)
		if !slices.Equal(all, keys(s.Properties)) || !slices.Equal(always, req) {
			t.Errorf("%s 200: %s has %v (always %v), the document %v (required %v)", op, types[1], all, always, keys(s.Properties), req)
		}
	}
	es := doc.Components.Schemas["Error"]
	if all, always := jsonFields(reflect.TypeFor[ErrorResponse]()); !slices.Equal(all, keys(es.Properties)) || !slices.Equal(always, es.Required) {
		t.Errorf("Error schema %v (required %v); ErrorResponse has %v (always %v)", keys(es.Properties), es.Required, all, always)
	}
}

// TestOpenAPIAgainstHandlers runs every documented operation against a
// running server: each answer's status is documented for its operation
// and its body fits the documented schema; dropping a required request
// field gets 400 naming it, dropping an optional one still succeeds.
func TestOpenAPIAgainstHandlers(t *testing.T) {
	doc := loadOpenAPI(t)
	cfg, srv, _ := serveSnapshot(t, "openapi", 1, nil)
	state := randomState(rand.New(rand.NewPCG(2, 2)), cfg.StateDim)
	check := func(op string, code int, header http.Header, body []byte) {
		t.Helper()
		method, path, _ := strings.Cut(op, " ")
		r, ok := doc.Paths[path][strings.ToLower(method)].Responses[fmt.Sprint(code)]
		if !ok {
			t.Errorf("%s answered %d, not documented: %s", op, code, body)
			return
		}
		for h := range r.Headers {
			if header.Get(h) == "" {
				t.Errorf("%s %d: header %s documented, not sent", op, code, h)
			}
		}
		if ct, ok := r.Content["application/json"]; ok {
			var v any
			if err := json.Unmarshal(body, &v); err != nil {
				t.Errorf("%s %d: %v", op, code, err)
			} else if err := doc.validate(ct.Schema, v, op); err != nil {
				t.Errorf("%s %d: %v in %s", op, code, err, body)
			}
		}
	}
	do := func(op string, body map[string]any) (int, []byte) {
		t.Helper()
		method, path, _ := strings.Cut(op, " ")
		var b []byte
		if body != nil {
			b, _ = json.Marshal(body)
		}
		req, _ := http.NewRequest(method, srv.base+path, bytesReader(b))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out []byte
		out, _ = readAll(resp)
		check(op, resp.StatusCode, resp.Header, out)
		return resp.StatusCode, out
	}
	deferred := func() string {
		t.Helper()
		return decide(t, srv.base, DecideRequest{UserID: "u", State: state, Defer: true}).DecisionID
	}
	full := map[string]func() map[string]any{
		"POST /v1/decide": func() map[string]any {
			return map[string]any{"user_id": "u", "episode_id": "e", "step": 2, "state": state,
				"metadata": map[string]string{"k": "v"}, "value": 1.5, "defer": false}
		},
		"POST /v1/activate": func() map[string]any { return map[string]any{"decision_id": deferred()} },
		"POST /v1/outcome": func() map[string]any {
			return map[string]any{"outcome_id": "o", "decision_id": "d", "user_id": "u", "kind": "CLICK",
				"value": 1.0, "cost": 0.1, "timestamp": "2026-12-01T10:00:00Z", "metadata": map[string]string{}}
		},
	}
	for op, mk := range full {
		method, path, _ := strings.Cut(op, " ")
		s := doc.resolve(doc.Paths[path][strings.ToLower(method)].RequestBody.Content["application/json"].Schema)
		if code, body := do(op, mk()); code != http.StatusOK {
			t.Errorf("%s with every field: %d %s", op, code, body)
		}
		for _, field := range keys(s.Properties) {
			body := mk()
			delete(body, field)
			code, out := do(op, body)
			var er ErrorResponse
			_ = json.Unmarshal(out, &er)
			switch required := slices.Contains(s.Required, field); {
			case required && (code != http.StatusBadRequest || er.Field != field):
				t.Errorf("%s without required %s: %d %s; want 400 naming it", op, field, code, out)
			case !required && code != http.StatusOK:
				t.Errorf("%s without optional %s: %d %s", op, field, code, out)
			}
		}
		body := mk()
		body["not_in_the_schema"] = 1
		if code, out := do(op, body); code != http.StatusBadRequest {
			t.Errorf("%s with an unknown field: %d %s", op, code, out)
		}
	}
	do("POST /v1/activate", map[string]any{"decision_id": "unknown"}) // 404
	for _, op := range []string{"GET /v1/policy", "GET /v1/openapi.json", "GET /metrics", "GET /healthz"} {
		if code, body := do(op, nil); code != http.StatusOK {
			t.Errorf("%s: %d %s", op, code, body)
		}
	}
	// 503s, from a server with no policy and no log.
	idle := newTestServer(t, zerolog.Nop())
	for op, body := range map[string]string{"POST /v1/decide": `{"user_id":"u","state":` + stateJSON(16, -1, "") + `}`,
		"POST /v1/outcome": `{"decision_id":"d","user_id":"u","kind":"END"}`, "GET /v1/policy": ""} {
		method, path, _ := strings.Cut(op, " ")
		rec := httptest.NewRecorder()
		idle.Handler().ServeHTTP(rec, httptest.NewRequest(method, path, strings.NewReader(body)))
		if rec.Code != http.StatusServiceUnavailable {
			t.Errorf("%s on a server without policy or log: %d, want 503", op, rec.Code)
		}
		check(op, rec.Code, rec.Header(), rec.Body.Bytes())
	}
}
