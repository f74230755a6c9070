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
// (avro/recorded_message.v1.avsc), which `aelp replay` and any Avro tool
// read back.

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
	// Key is nil for a null key. Value is never null in version 1 of the
	// schema: a null value is written as an empty one.
	Key, Value []byte
	// Headers are the record's headers in order (a null header value is
	// written as an empty one).
	Headers []RecordedHeader
}

// RecordedHeader is one header of a RecordedMessage.
type RecordedHeader struct {
	Key   string
	Value []byte
}

// Native returns m in goavro's native form of RecordedMessage.
func (m *RecordedMessage) Native() map[string]any {
	var key any
	if m.Key != nil {
		key = goavro.Union("bytes", m.Key)
	}
	hs := make([]any, len(m.Headers))
	for i, h := range m.Headers {
		v := h.Value
		if v == nil {
			v = []byte{}
		}
		hs[i] = map[string]any{"key": h.Key, "value": v}
	}
	val := m.Value
	if val == nil {
		val = []byte{}
	}
	return map[string]any{
		"topic":     m.Topic,
		"partition": int32(m.Partition),
		"offset":    m.Offset,
		"timestamp": m.Time,
		"key":       key,
		"value":     val,
		"headers":   hs,
	}
}

// FromNative sets m from goavro's native form of RecordedMessage; a field
// missing or of the wrong type is an error naming it.
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
	switch k := n["key"].(type) {
	case nil:
	case map[string]any:
		b, ok := k["bytes"].([]byte)
		if !ok {
			return bad("key")
		}
		m.Key = b
	default:
		return bad("key")
	}
	if m.Value, ok = n["value"].([]byte); !ok {
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
		val, ok2 := hm["value"].([]byte)
		if !ok1 || !ok2 {
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
