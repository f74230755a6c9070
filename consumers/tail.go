package consumers

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/aelp/aelp/internal/kafkax"
	"github.com/aelp/aelp/schemas"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
	"golang.org/x/sync/errgroup"
)

// TailFormat selects how Tail prints records.
type TailFormat int

// Tail output formats.
const (
	// TailJSON prints one JSON object per record and line (for jq).
	TailJSON TailFormat = iota + 1
	// TailTable prints one compact, aligned row per TrainingMetrics record
	// and one summary line per record of another schema.
	TailTable
)

// TailConfig configures Tail.
type TailConfig struct {
	// Kafka is the connection.
	Kafka kafkax.Config
	// Topic is followed on every partition. Default aelp.metrics.
	Topic string
	// Experiment, when set, keeps only records whose key equals it or whose
	// decoded value carries it as experiment_id (top level or in a nested
	// experience), so it works on the metrics topic (keyed by experiment)
	// and on the experience topics (keyed by user) alike.
	Experiment string
	// FromBeginning starts at the first offset of each partition. Without
	// it and without Since, Tail starts at the end: only new records.
	FromBeginning bool
	// Since starts at the first record of each partition whose timestamp is
	// at or after Now() − Since.
	Since time.Duration
	// Max, when > 0, stops Tail after printing that many records.
	Max int64
	// UntilEnd stops Tail at the end offsets seen at start.
	UntilEnd bool
	// Format is TailJSON (default) or TailTable.
	Format TailFormat
	// Out receives the output. Required.
	Out io.Writer
	// Now returns the current time (for Since). Default time.Now.
	Now func() time.Time
	// Log receives reader warnings.
	Log zerolog.Logger
}

func (c *TailConfig) setDefaults() {
	if c.Topic == "" {
		c.Topic = kafkax.TopicMetrics
	}
	if c.Format == 0 {
		c.Format = TailJSON
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Validate reports the first invalid field.
func (c TailConfig) Validate() error {
	c.setDefaults()
	switch {
	case c.Out == nil:
		return errors.New("tail: no output writer")
	case c.FromBeginning && c.Since != 0:
		return errors.New("tail: give --from-beginning or --since, not both")
	case c.Since < 0:
		return fmt.Errorf("tail: since %s: must not be negative", c.Since)
	case c.Max < 0:
		return fmt.Errorf("tail: max %d: must not be negative", c.Max)
	case c.Format != TailJSON && c.Format != TailTable:
		return fmt.Errorf("tail: unknown format %d", c.Format)
	}
	return c.Kafka.Validate()
}

// TailStats counts what Tail did.
type TailStats struct {
	// Printed is the number of records written to Out; Filtered those
	// read but dropped by the Experiment filter; Undecodable the printed
	// records whose value did not decode.
	Printed, Filtered, Undecodable int64
}

// errStop ends a scan early without an error.
var errStop = errors.New("stop")

// Tail follows every partition of cfg.Topic and prints each record,
// decoded with schemas.DecodeNative (undecodable values are shown as
// base64 with the error). It returns when ctx ends (a clean stop, nil
// error), after Max records, or with UntilEnd at the end offsets seen at
// start. Output is flushed record by record.
func Tail(ctx context.Context, cfg TailConfig) (TailStats, error) {
	cfg.setDefaults()
	var st TailStats
	if err := cfg.Validate(); err != nil {
		return st, err
	}
	offs, err := kafkax.ListOffsets(ctx, cfg.Kafka, cfg.Topic)
	if err != nil {
		return st, fmt.Errorf("tail: %w", err)
	}
	start := map[int]int64{}
	switch {
	case cfg.FromBeginning:
		start = offs.First
	case cfg.Since > 0:
		if start, err = kafkax.OffsetsForTime(ctx, cfg.Kafka, cfg.Topic, cfg.Now().Add(-cfg.Since)); err != nil {
			return st, fmt.Errorf("tail: %w", err)
		}
	default:
		start = offs.End
	}
	var end map[int]int64
	if cfg.UntilEnd {
		end = offs.End
	}
	table := &TableWriter{W: cfg.Out}
	var line []byte
	err = ReadPartitions(ctx, cfg.Kafka, cfg.Topic, start, end, cfg.Log, func(m kafka.Message) error {
		e := DecodeEntry(m)
		if cfg.Experiment != "" && !e.Matches(cfg.Experiment) {
			st.Filtered++
			return nil
		}
		if e.Err != nil {
			st.Undecodable++
		}
		var werr error
		if cfg.Format == TailTable {
			werr = table.Write(&e)
		} else {
			line, werr = AppendJSON(line[:0], &e)
			if werr == nil {
				line = append(line, '\n')
				_, werr = cfg.Out.Write(line)
			}
		}
		if werr != nil {
			return fmt.Errorf("tail: write: %w", werr)
		}
		st.Printed++
		if cfg.Max > 0 && st.Printed >= cfg.Max {
			return errStop
		}
		return nil
	})
	if err != nil && ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		return st, nil // stopped by the caller
	}
	return st, err
}

// ReadPartitions reads topic from start[p] on every partition p in start
// and calls fn with each record, on the calling goroutine, in offset order
// within a partition (partitions interleave). With end non-nil a partition
// is read up to end[p] (exclusive) and ReadPartitions returns nil once every
// partition is done; with end nil it follows the topic until ctx ends and
// returns ctx's error. fn returning an error stops the scan and that error
// is returned, except errStop, which stops it cleanly. Every reader
// goroutine has exited when it returns.
func ReadPartitions(ctx context.Context, cfg kafkax.Config, topic string, start, end map[int]int64, log zerolog.Logger,
	fn func(kafka.Message) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ch := make(chan kafka.Message, 1024)
	g, gctx := errgroup.WithContext(ctx)
	for p, s := range start {
		e, bounded := end[p]
		if end != nil && (!bounded || s >= e) {
			continue
		}
		g.Go(func() error {
			r, err := kafkax.NewPartitionReader(cfg, topic, p, s, kafkax.ReaderOptions{Logger: log})
			if err != nil {
				return err
			}
			defer r.Close()
			for {
				m, err := r.FetchMessage(gctx)
				if err != nil {
					if gctx.Err() != nil {
						return gctx.Err()
					}
					return fmt.Errorf("read %s/%d: %w", topic, p, cfg.Explain(err))
				}
				select {
				case ch <- m:
				case <-gctx.Done():
					return gctx.Err()
				}
				if end != nil && m.Offset+1 >= e {
					return nil
				}
			}
		})
	}
	var (
		wg   sync.WaitGroup
		gerr error
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		gerr = g.Wait()
		close(ch)
	}()
	var ferr error
	for m := range ch {
		if ferr != nil {
			continue // drain so the readers can exit
		}
		if ferr = fn(m); ferr != nil {
			cancel()
		}
	}
	wg.Wait()
	switch {
	case errors.Is(ferr, errStop):
		return nil
	case ferr != nil:
		return ferr
	case gerr != nil:
		return gerr
	}
	return nil
}

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
// schema_version, and value, the decoded record with unions flattened
// (null or the branch's value), timestamps as RFC 3339 strings, bytes as
// base64 and non-finite numbers as the strings "NaN", "+Inf", "-Inf". An
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
		j.Value = jsonValue(schemaTree(e.Schema), e.Native, map[string]any{})
	}
	b, err := json.Marshal(j)
	if err != nil {
		return dst, fmt.Errorf("encode json: %w", err)
	}
	return append(dst, b...), nil
}

var (
	treesMu sync.Mutex
	trees   = map[string]any{}
)

// schemaTree returns the parsed JSON of the current version of the named
// schema (nil when unknown), cached.
func schemaTree(name string) any {
	if name == "" {
		return nil
	}
	treesMu.Lock()
	defer treesMu.Unlock()
	if t, ok := trees[name]; ok {
		return t
	}
	var t any
	if s := schemas.Current(name); s != nil {
		if err := json.Unmarshal([]byte(s.JSON), &t); err != nil {
			t = nil
		}
	}
	trees[name] = t
	return t
}

// jsonValue converts goavro's native value v of schema s (parsed JSON;
// nil: unknown) to a value encoding/json can marshal, flattening unions.
// names collects the named types defined so far, for references.
func jsonValue(s any, v any, names map[string]any) any {
	switch st := s.(type) {
	case string:
		if def, ok := names[st]; ok {
			return jsonValue(def, v, names)
		}
	case []any: // a union: native is nil or {branch: value}
		if u, ok := v.(map[string]any); ok && len(u) == 1 {
			for branch, inner := range u {
				return jsonValue(unionBranch(st, branch), inner, names)
			}
		}
		return jsonValue(nil, v, names)
	case map[string]any:
		switch t, _ := st["type"].(string); t {
		case "record", "error":
			registerName(st, names)
			rec, ok := v.(map[string]any)
			if !ok {
				break
			}
			out := make(map[string]any, len(rec))
			fields, _ := st["fields"].([]any)
			for _, f := range fields {
				fm, _ := f.(map[string]any)
				n, _ := fm["name"].(string)
				if fv, ok := rec[n]; ok {
					out[n] = jsonValue(fm["type"], fv, names)
				}
			}
			for k, fv := range rec { // fields the schema tree lacks
				if _, ok := out[k]; !ok {
					out[k] = jsonValue(nil, fv, names)
				}
			}
			return out
		case "enum", "fixed":
			registerName(st, names)
		case "array":
			if a, ok := v.([]any); ok {
				out := make([]any, len(a))
				for i, x := range a {
					out[i] = jsonValue(st["items"], x, names)
				}
				return out
			}
		case "map":
			if m, ok := v.(map[string]any); ok {
				out := make(map[string]any, len(m))
				for k, x := range m {
					out[k] = jsonValue(st["values"], x, names)
				}
				return out
			}
		}
	}
	// Generic conversion: unknown schema or a primitive.
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
			out[i] = jsonValue(nil, y, names)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, y := range x {
			out[k] = jsonValue(nil, y, names)
		}
		return out
	}
	return v
}

// finiteJSON returns x, or its name when it is not finite (JSON has no
// NaN or infinities).
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

// registerName records a named type under its name and full name.
func registerName(st map[string]any, names map[string]any) {
	n, _ := st["name"].(string)
	if n == "" {
		return
	}
	names[n] = st
	if ns, _ := st["namespace"].(string); ns != "" && !strings.Contains(n, ".") {
		names[ns+"."+n] = st
	}
}

// unionBranch returns the member of union u that goavro names branch
// (a primitive's type name or a named type's full name), nil if none.
func unionBranch(u []any, branch string) any {
	for _, m := range u {
		switch mt := m.(type) {
		case string:
			if mt == branch || strings.HasSuffix(branch, "."+mt) {
				return mt
			}
		case map[string]any:
			n, _ := mt["name"].(string)
			t, _ := mt["type"].(string)
			if ns, _ := mt["namespace"].(string); ns != "" && n != "" {
				if ns+"."+n == branch {
					return mt
				}
			}
			if n == branch || (n == "" && t == branch) {
				return mt
			}
		}
	}
	return nil
}

// TableWriter prints entries as rows for a terminal: a header line (again
// every HeaderEvery TrainingMetrics rows) and one aligned row per
// TrainingMetrics record; other records get one "p<partition>@<offset>"
// summary line; headers, when present, follow in brackets.
type TableWriter struct {
	// W receives the rows.
	W io.Writer
	// HeaderEvery repeats the header after that many metrics rows.
	// Default 25.
	HeaderEvery int

	rows int
	buf  []byte
}

// metricsHeader and metricsRow share their column widths.
const metricsHeader = "TIME          EXPERIMENT       UPDATE   BUFFER  CRISIS%  BATCH%  EXPECT%   W_MEAN  W_MIN  W_MAX  BETA   POL_LOSS   VAL_LOSS  ENTROPY  APPROX_KL  CLIP  EXPL_VAR\n"

// Write prints one entry.
func (t *TableWriter) Write(e *TailEntry) error {
	t.buf = t.buf[:0]
	if e.Err == nil && e.Schema == schemas.NameTrainingMetrics {
		var m schemas.TrainingMetrics
		if err := m.FromNative(e.Native); err == nil {
			every := t.HeaderEvery
			if every <= 0 {
				every = 25
			}
			if t.rows%every == 0 {
				t.buf = append(t.buf, metricsHeader...)
			}
			t.rows++
			t.buf = AppendMetricsRow(t.buf, &m)
			t.buf = appendHeaders(t.buf, e.Message.Headers)
			t.buf = append(t.buf, '\n')
			_, err := t.W.Write(t.buf)
			return err
		}
	}
	t.buf = AppendSummary(t.buf, e)
	t.buf = append(t.buf, '\n')
	_, err := t.W.Write(t.buf)
	return err
}

// AppendMetricsRow appends one aligned table row for m (no newline), in
// the columns of the TableWriter's header: time of day (UTC), experiment
// (truncated to 16 characters), update, buffer size, crisis share of the
// buffer, measured and expected crisis share of the batch (percent), IS
// weight mean, min and max, β, policy and value loss, entropy, approx KL,
// clip fraction and explained variance.
func AppendMetricsRow(dst []byte, m *schemas.TrainingMetrics) []byte {
	exp := m.ExperimentID
	if len(exp) > 16 {
		exp = exp[:15] + "…"
	}
	return fmt.Appendf(dst, "%-12s  %-16s %6d %8d  %6.1f%%  %5.1f%%  %6.1f%%  %7.3f %6.3f %6.3f  %4.2f %10.4f %10.4f  %7.4f  %9.5f  %4.2f  %8.3f",
		m.Timestamp.UTC().Format("15:04:05.000"), exp, m.Update, m.BufferSize,
		100*m.CrisisFractionInBuffer, 100*m.CrisisParentRatioInBatch, 100*m.ExpectedCrisisRatio,
		m.ImportanceWeightsMean, m.ImportanceWeightsMin, m.ImportanceWeightsMax, m.Beta,
		m.PolicyLoss, m.ValueLoss, m.Entropy, m.ApproxKL, m.ClipFrac, m.ExplainedVariance)
}

// AppendSummary appends a one-line summary of any entry (no newline):
// "p<partition>@<offset> <time> key=<key> <schema> <fields>", the fields
// depending on the schema; an undecodable value shows the error and the
// value as base64 (cut at 64 characters); headers follow in brackets.
func AppendSummary(dst []byte, e *TailEntry) []byte {
	m := &e.Message
	dst = fmt.Appendf(dst, "p%d@%-6d %s key=%s ", m.Partition, m.Offset, m.Time.UTC().Format("15:04:05.000"), printable(m.Key))
	switch {
	case e.Err != nil:
		b64 := base64.StdEncoding.EncodeToString(m.Value)
		if len(b64) > 64 {
			b64 = b64[:64] + "…"
		}
		dst = fmt.Appendf(dst, "UNDECODABLE (%v) value=%s (%d bytes)", e.Err, b64, len(m.Value))
	default:
		dst = fmt.Appendf(dst, "%s v%d", shortName(e.Schema), e.Version)
		dst = appendFields(dst, e.Schema, e.Native)
	}
	return appendHeaders(dst, m.Headers)
}

func shortName(s string) string {
	if i := strings.LastIndexByte(s, '.'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// appendFields appends the fields worth a glance of a known schema.
func appendFields(dst []byte, schema string, n map[string]any) []byte {
	field := func(m map[string]any, k string) any {
		v := m[k]
		if f, ok := v.(float64); ok {
			return strconv.FormatFloat(f, 'g', 4, 64)
		}
		if t, ok := v.(time.Time); ok {
			return t.UTC().Format(time.RFC3339)
		}
		return v
	}
	exp := n
	if x, ok := n["experience"].(map[string]any); ok {
		exp = x
	}
	switch schema {
	case schemas.NameExperience, schemas.NameTaggedExperience:
		dst = fmt.Appendf(dst, " id=%v user=%v step=%v action=%v reward=%v value=%v done=%v",
			field(exp, "id"), field(exp, "user_id"), field(exp, "step"), field(exp, "action"),
			field(exp, "reward"), field(exp, "value"), field(exp, "done"))
		if schema == schemas.NameTaggedExperience {
			dst = fmt.Appendf(dst, " event_type=%v tag_source=%v tag_score=%v",
				field(n, "event_type"), field(n, "tag_source"), field(n, "tag_score"))
		}
	case schemas.NamePolicySnapshot:
		dst = fmt.Appendf(dst, " experiment=%v version=%v", field(n, "experiment_id"), field(n, "version"))
	default:
		keys := make([]string, 0, len(n))
		for k := range n {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			dst = fmt.Appendf(dst, " %s=%v", k, field(n, k))
		}
	}
	return dst
}

// appendHeaders appends " [k=v k=v]" (nothing without headers).
func appendHeaders(dst []byte, hs []kafka.Header) []byte {
	if len(hs) == 0 {
		return dst
	}
	dst = append(dst, " ["...)
	for i, h := range hs {
		if i > 0 {
			dst = append(dst, ' ')
		}
		dst = append(dst, h.Key...)
		dst = append(dst, '=')
		dst = append(dst, printable(h.Value)...)
	}
	return append(dst, ']')
}

// printable returns b as a quoted string when it holds spaces or is not
// UTF-8, as is otherwise; "-" for nil.
func printable(b []byte) string {
	if b == nil {
		return "-"
	}
	s := string(b)
	if !utf8.ValidString(s) || strings.ContainsAny(s, " \t\n\"") || s == "" {
		return strconv.Quote(s)
	}
	return s
}

// ReadMetrics returns the TrainingMetrics records of experiment (every
// experiment when empty) on topic, read from the beginning to the end
// offsets seen at the call, in offset order per partition. Records of
// other schemas and undecodable ones are counted in skipped.
func ReadMetrics(ctx context.Context, cfg kafkax.Config, topic, experiment string, log zerolog.Logger) (ms []schemas.TrainingMetrics, skipped int64, err error) {
	offs, err := kafkax.ListOffsets(ctx, cfg, topic)
	if err != nil {
		return nil, 0, fmt.Errorf("read metrics: %w", err)
	}
	err = ReadPartitions(ctx, cfg, topic, offs.First, offs.End, log, func(m kafka.Message) error {
		var tm schemas.TrainingMetrics
		if err := schemas.UnmarshalTrainingMetrics(m.Value, &tm); err != nil {
			skipped++
			return nil
		}
		if experiment == "" || tm.ExperimentID == experiment {
			ms = append(ms, tm)
		}
		return nil
	})
	if err != nil {
		return nil, skipped, fmt.Errorf("read metrics: %w", err)
	}
	return ms, skipped, nil
}
