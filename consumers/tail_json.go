package consumers

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"unicode/utf8"

	"github.com/aelp/aelp/schemas"
	"github.com/segmentio/kafka-go"
)

// The entries Tail prints and their JSON form.

// TailEntry is one record as Tail shows it: the message and its decoded
// value (or the decode error).
type TailEntry struct {
	// Message is the record as fetched.
	Message kafka.Message
	// Schema and Version name the writer schema ("aelp.TrainingMetrics", 1)
	// when the header is known.
	Schema  string
	Version int
	// Native is the value in goavro's native form of the current version
	// of Schema; nil when Err is set.
	Native map[string]any
	// Err is the decode error, if any.
	Err error
}

// DecodeEntry decodes m's value with schemas.DecodeNative.
func DecodeEntry(m kafka.Message) TailEntry {
	e := TailEntry{Message: m}
	if name, v, err := schemas.Identify(m.Value); err == nil {
		e.Schema, e.Version = name, v
	}
	_, e.Native, e.Err = schemas.DecodeNative(m.Value)
	return e
}

// Matches reports whether the entry belongs to experiment id: its key is
// id, or its value's experiment_id (top level or in experience) is id.
func (e *TailEntry) Matches(id string) bool {
	if string(e.Message.Key) == id {
		return true
	}
	if e.Native == nil {
		return false
	}
	if s, ok := e.Native["experiment_id"].(string); ok {
		return s == id
	}
	if x, ok := e.Native["experience"].(map[string]any); ok {
		s, _ := x["experiment_id"].(string)
		return s == id
	}
	return false
}

// jsonEntry is the JSON form of a TailEntry.
type jsonEntry struct {
	Topic         string       `json:"topic"`
	Partition     int          `json:"partition"`
	Offset        int64        `json:"offset"`
	Timestamp     string       `json:"timestamp"`
	Key           *string      `json:"key"`
	KeyBase64     string       `json:"key_base64,omitempty"`
	Headers       []jsonHeader `json:"headers"`
	Schema        string       `json:"schema,omitempty"`
	SchemaVersion int          `json:"schema_version,omitempty"`
	Value         any          `json:"value,omitempty"`
	Error         string       `json:"error,omitempty"`
	ValueBase64   string       `json:"value_base64,omitempty"`
}

type jsonHeader struct {
	Key         string `json:"key"`
	Value       string `json:"value,omitempty"`
	ValueBase64 string `json:"value_base64,omitempty"`
}

// AppendJSON appends e as one JSON object (no newline) to dst: topic,
// partition, offset, timestamp (RFC 3339, UTC, milliseconds), key (a
// string, or null, or key_base64 when not UTF-8), headers (an array of
// {key, value} in order, value_base64 when not UTF-8), schema and
// schema_version, and value, the decoded record as schemas.JSONValue
// gives it (unions flattened, timestamps as RFC 3339 strings, bytes as
// base64, non-finite numbers as the strings "NaN", "+Inf", "-Inf"). An
// undecodable value gives error and value_base64 instead of value.
func AppendJSON(dst []byte, e *TailEntry) ([]byte, error) {
	m := &e.Message
	j := jsonEntry{Topic: m.Topic, Partition: m.Partition, Offset: m.Offset,
		Timestamp: m.Time.UTC().Format("2006-01-02T15:04:05.000Z07:00"),
		Headers:   make([]jsonHeader, 0, len(m.Headers)), Schema: e.Schema, SchemaVersion: e.Version}
	if m.Key != nil {
		if utf8.Valid(m.Key) {
			k := string(m.Key)
			j.Key = &k
		} else {
			j.KeyBase64 = base64.StdEncoding.EncodeToString(m.Key)
		}
	}
	for _, h := range m.Headers {
		jh := jsonHeader{Key: h.Key}
		if utf8.Valid(h.Value) {
			jh.Value = string(h.Value)
		} else {
			jh.ValueBase64 = base64.StdEncoding.EncodeToString(h.Value)
		}
		j.Headers = append(j.Headers, jh)
	}
	if e.Err != nil {
		j.Error = e.Err.Error()
		j.ValueBase64 = base64.StdEncoding.EncodeToString(m.Value)
	} else {
		j.Value = schemas.JSONValue(e.Schema, e.Native)
	}
	b, err := json.Marshal(j)
	if err != nil {
		return dst, fmt.Errorf("encode json: %w", err)
	}
	return append(dst, b...), nil
}
