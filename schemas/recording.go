package schemas

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/linkedin/goavro/v2"
)

// Recordings: `aelp record` writes the records of a topic to an Avro
// object container file (OCF) of RecordedMessage entries
// (avro/recorded_message.v2.avsc), which `aelp replay` and any Avro tool
// read back. Version 2 keeps null and empty apart for keys, values and
// header values; files of version 1 (whose value and header values could
// not be null) stay readable.

// Metadata keys of a recording's container file header.
const (
	// MetaSourceTopic is the recorded topic.
	MetaSourceTopic = "aelp.source.topic"
	// MetaSourcePartitions is the recorded topic's partition count
	// (decimal), used by replay to create the target topic.
	MetaSourcePartitions = "aelp.source.partitions"
)

// RecordedMessage is one entry of a recording: a Kafka record and where it
// was read.
type RecordedMessage struct {
	// Topic, Partition and Offset are where the record was read.
	Topic     string
	Partition int
	Offset    int64
	// Time is the record's timestamp (millisecond precision).
	Time time.Time
	// Key and Value are nil when null (a null value is a tombstone) and
	// non-nil when empty. Entries of version-1 files never have a null
	// Value: that version wrote a null value as an empty one.
	Key, Value []byte
	// Headers are the record's headers in order.
	Headers []RecordedHeader
}

// RecordedHeader is one header of a RecordedMessage.
type RecordedHeader struct {
	Key string
	// Value is nil when null, non-nil when empty (never nil in entries of
	// version-1 files).
	Value []byte
}

// nullableBytes returns b as goavro's native form of ["null", "bytes"].
func nullableBytes(b []byte) any {
	if b == nil {
		return nil
	}
	return goavro.Union("bytes", b)
}

// fromNullableBytes reads a bytes field of any version: ["null", "bytes"]
// in goavro's native form (nil, or {"bytes": b}) or plain bytes. An empty
// value comes back non-nil.
func fromNullableBytes(v any) ([]byte, bool) {
	switch v := v.(type) {
	case nil:
		return nil, true
	case []byte:
		if v == nil {
			v = []byte{}
		}
		return v, true
	case map[string]any:
		b, ok := v["bytes"].([]byte)
		if !ok || len(v) != 1 {
			return nil, false
		}
		if b == nil {
			b = []byte{}
		}
		return b, true
	}
	return nil, false
}

// Native returns m in goavro's native form of the current RecordedMessage.
func (m *RecordedMessage) Native() map[string]any {
	hs := make([]any, len(m.Headers))
	for i, h := range m.Headers {
		hs[i] = map[string]any{"key": h.Key, "value": nullableBytes(h.Value)}
	}
	return map[string]any{
		"topic":     m.Topic,
		"partition": int32(m.Partition),
		"offset":    m.Offset,
		"timestamp": m.Time,
		"key":       nullableBytes(m.Key),
		"value":     nullableBytes(m.Value),
		"headers":   hs,
	}
}

// FromNative sets m from goavro's native form of RecordedMessage, of any
// version (or of another schema with its fields); a field missing or of
// the wrong type is an error naming it.
func (m *RecordedMessage) FromNative(v any) error {
	n, ok := v.(map[string]any)
	if !ok {
		return fmt.Errorf("recording entry is %T, not a record", v)
	}
	bad := func(field string) error {
		return fmt.Errorf("recording entry field %q missing or of the wrong type (not an aelp recording?)", field)
	}
	*m = RecordedMessage{}
	if m.Topic, ok = n["topic"].(string); !ok {
		return bad("topic")
	}
	p, ok := n["partition"].(int32)
	if !ok {
		return bad("partition")
	}
	m.Partition = int(p)
	if m.Offset, ok = n["offset"].(int64); !ok {
		return bad("offset")
	}
	if m.Time, ok = n["timestamp"].(time.Time); !ok {
		return bad("timestamp")
	}
	if m.Key, ok = fromNullableBytes(n["key"]); !ok {
		return bad("key")
	}
	// A missing key is a null key (its default), a missing value is not.
	if _, ok = n["value"]; !ok {
		return bad("value")
	}
	if m.Value, ok = fromNullableBytes(n["value"]); !ok {
		return bad("value")
	}
	hs, ok := n["headers"].([]any)
	if !ok {
		return bad("headers")
	}
	if len(hs) > 0 {
		m.Headers = make([]RecordedHeader, len(hs))
	}
	for i, h := range hs {
		hm, ok := h.(map[string]any)
		if !ok {
			return bad("headers")
		}
		k, ok1 := hm["key"].(string)
		_, present := hm["value"]
		val, ok2 := fromNullableBytes(hm["value"])
		if !ok1 || !present || !ok2 {
			return bad("headers")
		}
		m.Headers[i] = RecordedHeader{Key: k, Value: val}
	}
	return nil
}

// RecordingOptions configures NewRecordingWriter.
type RecordingOptions struct {
	// Codec is the container blocks' codec: "null", "deflate" or "snappy".
	// Default deflate.
	Codec string
	// BlockRecords is the number of entries per block. Default 1000.
	BlockRecords int
	// SourceTopic and SourcePartitions go into the file's metadata.
	SourceTopic      string
	SourcePartitions int
}

// RecordingWriter writes a recording. Entries are buffered and written a
// block at a time; what was written up to the last block is a valid file.
type RecordingWriter struct {
	ocf     *goavro.OCFWriter
	block   []any
	written int64
}

// RecordingSchema returns the schema of the entries a RecordingWriter
// writes (the current version of aelp.RecordedMessage).
func RecordingSchema() *Schema { return Current(NameRecordedMessage) }

// NewRecordingWriter writes the container file header to w. w must be
// empty: goavro appends to an *os.File that is not.
func NewRecordingWriter(w io.Writer, opt RecordingOptions) (*RecordingWriter, error) {
	if opt.Codec == "" {
		opt.Codec = goavro.CompressionDeflateLabel
	}
	if opt.BlockRecords <= 0 {
		opt.BlockRecords = 1000
	}
	ocf, err := goavro.NewOCFWriter(goavro.OCFConfig{
		W: w, Schema: strings.TrimSpace(RecordingSchema().JSON), CompressionName: opt.Codec,
		MetaData: map[string][]byte{
			MetaSourceTopic:      []byte(opt.SourceTopic),
			MetaSourcePartitions: []byte(strconv.Itoa(opt.SourcePartitions)),
		},
	})
	if err != nil {
		return nil, fmt.Errorf("write recording: %w", err)
	}
	return &RecordingWriter{ocf: ocf, block: make([]any, 0, opt.BlockRecords)}, nil
}

// Write buffers m, writing a block when it is full.
func (w *RecordingWriter) Write(m *RecordedMessage) error {
	w.block = append(w.block, m.Native())
	if len(w.block) == cap(w.block) {
		return w.Flush()
	}
	return nil
}

// Flush writes the buffered entries as a block.
func (w *RecordingWriter) Flush() error {
	if len(w.block) == 0 {
		return nil
	}
	if err := w.ocf.Append(w.block); err != nil {
		return fmt.Errorf("write recording block: %w", err)
	}
	w.written += int64(len(w.block))
	clear(w.block)
	w.block = w.block[:0]
	return nil
}

// Written returns the number of entries written in blocks so far.
func (w *RecordingWriter) Written() int64 { return w.written }

// Buffered returns the number of entries not yet written.
func (w *RecordingWriter) Buffered() int { return len(w.block) }

// RecordingReader reads the entries of a recording (or of any container
// file whose schema has RecordedMessage's fields). It reads untrusted
// files safely: damaged or hostile input gives an error, and memory grows
// with the bytes read, not with the sizes the file claims.
type RecordingReader struct {
	c *containerReader
}

// NewRecordingReader reads the container file header from r.
func NewRecordingReader(r io.Reader) (*RecordingReader, error) {
	c, err := newContainerReader(r)
	if err != nil {
		return nil, fmt.Errorf("read recording: %w", err)
	}
	return &RecordingReader{c: c}, nil
}

// SourceTopic returns the recorded topic from the file's metadata ("" when
// absent).
func (r *RecordingReader) SourceTopic() string { return string(r.c.meta[MetaSourceTopic]) }

// SourcePartitions returns the recorded topic's partition count from the
// file's metadata (0 when absent or invalid).
func (r *RecordingReader) SourcePartitions() int {
	n, err := strconv.Atoi(string(r.c.meta[MetaSourcePartitions]))
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// Next returns the next entry; io.EOF after the last one.
func (r *RecordingReader) Next() (RecordedMessage, error) {
	var m RecordedMessage
	v, err := r.c.next()
	if errors.Is(err, io.EOF) {
		return m, io.EOF
	}
	if err != nil {
		return m, fmt.Errorf("read recording: %w", err)
	}
	if err := m.FromNative(v); err != nil {
		return RecordedMessage{}, fmt.Errorf("read recording: %w", err)
	}
	return m, nil
}
