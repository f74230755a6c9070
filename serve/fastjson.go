package serve

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"strconv"
	"sync"
	"unicode/utf8"
	"unsafe"
)

// The decide endpoint's own JSON: a decode of the request and an encode of
// the answer that allocate only what the request keeps (its strings, state
// and metadata), for the one endpoint an ad server calls at its own rate.
// encoding/json's reflection cost a decision about 60 % of its handler's
// CPU time and 30 allocations (BenchmarkDecide). Both are exact: the fast
// decoder accepts only the plain form of a request — the field names as
// documented, each once, strings without escapes, numbers that are in
// range, no nulls, no timestamp — and gives what encoding/json gives for
// it; anything else goes to encoding/json (decodeJSON), which names the
// field at fault as before (FuzzDecodeDecide checks that the two agree on
// every body the fast one accepts). The encoder writes the bytes
// json.Encoder writes (TestDecideResponseEncoding).

// bodyPool holds request body buffers.
var bodyPool = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

// maxPooledBody is the largest buffer put back in bodyPool.
const maxPooledBody = 64 << 10

// readBody reads body whole into buf (grown as needed). A body over the
// http.MaxBytesReader's limit is refused as too large, having read at
// most the limit + 1 bytes.
func readBody(body io.Reader, buf []byte) ([]byte, *RequestError) {
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		switch {
		case err == io.EOF:
			return buf, nil
		case err != nil:
			if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
				return buf, tooLarge(mbe)
			}
			return buf, badField("body", "reading the body: %v", err)
		}
	}
}

// decideParser is the fast decoder's position in a body.
type decideParser struct {
	b []byte
	i int
}

func (p *decideParser) space() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// take skips white space and the byte c, reporting whether it was there.
func (p *decideParser) take(c byte) bool {
	p.space()
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

// word takes the literal w (true, false) after white space.
func (p *decideParser) word(w string) bool {
	p.space()
	if bytes.HasPrefix(p.b[p.i:], []byte(w)) {
		p.i += len(w)
		return true
	}
	return false
}

// str takes a string without escapes or control characters, of valid
// UTF-8 (what encoding/json keeps byte for byte), and returns its bytes.
func (p *decideParser) str() ([]byte, bool) {
	if !p.take('"') {
		return nil, false
	}
	start := p.i
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			s := p.b[start:p.i]
			p.i++
			return s, utf8.Valid(s)
		case c == '\\' || c < 0x20:
			return nil, false
		}
		p.i++
	}
	return nil, false
}

// number takes a JSON number and returns its text and whether it is an
// integer (no fraction, no exponent).
func (p *decideParser) number() (text []byte, integer, ok bool) {
	p.space()
	b, start := p.b, p.i
	i := start
	digits := func() bool {
		j := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		return i > j
	}
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		digits()
	default:
		return nil, false, false
	}
	integer = true
	if i < len(b) && b[i] == '.' {
		i++
		if !digits() {
			return nil, false, false
		}
		integer = false
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if !digits() {
			return nil, false, false
		}
		integer = false
	}
	p.i = i
	return b[start:i], integer, true
}

// float takes a number within float64's range.
func (p *decideParser) float() (float64, bool) {
	t, _, ok := p.number()
	if !ok {
		return 0, false
	}
	x, err := strconv.ParseFloat(unsafe.String(unsafe.SliceData(t), len(t)), 64)
	return x, err == nil
}

// Fields of a decide request, as bits of what parseDecide has seen.
const (
	seenUser = 1 << iota
	seenEpisode
	seenStep
	seenState
	seenMetadata
	seenValue
	seenDefer
)

// parseDecide decodes b into r when b is a decide request in the plain
// form (see above) and reports whether it did; when it reports false r
// is to be discarded and b decoded by encoding/json. stateDim is the
// state's expected width (its capacity).
func parseDecide(b []byte, r *DecideRequest, stateDim int) bool {
	p := decideParser{b: b}
	if !p.take('{') {
		return false
	}
	seen := 0
	if !p.take('}') {
		for {
			key, ok := p.str()
			if !ok || !p.take(':') {
				return false
			}
			bit, ok := p.field(key, r, stateDim)
			if !ok || seen&bit != 0 { // a bad value, or a field given twice
				return false
			}
			seen |= bit
			if p.take('}') {
				break
			}
			if !p.take(',') {
				return false
			}
		}
	}
	p.space()
	return p.i == len(p.b)
}

// field parses the value of the field named key into r and returns the
// field's bit; ok is false for a field it leaves to encoding/json
// (timestamp, an unknown field, another spelling) or a value it cannot take.
func (p *decideParser) field(key []byte, r *DecideRequest, stateDim int) (bit int, ok bool) {
	switch string(key) {
	case "user_id":
		s, ok := p.str()
		r.UserID = string(s)
		return seenUser, ok
	case "episode_id":
		s, ok := p.str()
		r.EpisodeID = string(s)
		return seenEpisode, ok
	case "step":
		t, integer, ok := p.number()
		if !ok || !integer {
			return seenStep, false
		}
		n, err := strconv.ParseInt(unsafe.String(unsafe.SliceData(t), len(t)), 10, 32)
		r.Step = int32(n)
		return seenStep, err == nil
	case "state":
		r.State = make([]float64, 0, stateDim)
		return seenState, p.floats(&r.State)
	case "metadata":
		r.Metadata = map[string]string{}
		return seenMetadata, p.stringMap(r.Metadata)
	case "value":
		x, ok := p.float()
		r.Value = x
		return seenValue, ok
	case "defer":
		switch {
		case p.word("true"):
			r.Defer = true
		case p.word("false"):
			r.Defer = false
		default:
			return seenDefer, false
		}
		return seenDefer, true
	}
	return 0, false
}

// floats parses a JSON array of numbers, appending them to *xs.
func (p *decideParser) floats(xs *[]float64) bool {
	if !p.take('[') {
		return false
	}
	if p.take(']') {
		return true
	}
	for {
		x, ok := p.float()
		if !ok {
			return false
		}
		*xs = append(*xs, x)
		if p.take(']') {
			return true
		}
		if !p.take(',') {
			return false
		}
	}
}

// stringMap parses a JSON object of string values into m.
func (p *decideParser) stringMap(m map[string]string) bool {
	if !p.take('{') {
		return false
	}
	if p.take('}') {
		return true
	}
	for {
		k, ok := p.str()
		if !ok || !p.take(':') {
			return false
		}
		v, ok := p.str()
		if !ok {
			return false
		}
		m[string(k)] = string(v)
		if p.take('}') {
			return true
		}
		if !p.take(',') {
			return false
		}
	}
}

// appendDecideResponse appends r as json.Encoder.Encode writes it (a
// newline after the object); ok is false when it cannot (a probability
// that is not finite: encoding/json refuses it too).
func appendDecideResponse(b []byte, r *DecideResponse) (_ []byte, ok bool) {
	b = append(b, `{"decision_id":`...)
	b = appendJSONString(b, r.DecisionID)
	b = append(b, `,"action":`...)
	b = strconv.AppendInt(b, int64(r.Action), 10)
	b = append(b, `,"bid":`...)
	b = strconv.AppendInt(b, int64(r.Bid), 10)
	b = append(b, `,"creative":`...)
	b = strconv.AppendInt(b, int64(r.Creative), 10)
	b = append(b, `,"probabilities":`...)
	if r.Probabilities == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, x := range r.Probabilities {
			if i > 0 {
				b = append(b, ',')
			}
			if b, ok = appendJSONFloat(b, x); !ok {
				return b, false
			}
		}
		b = append(b, ']')
	}
	b = append(b, `,"propensity":`...)
	if b, ok = appendJSONFloat(b, r.Propensity); !ok {
		return b, false
	}
	b = append(b, `,"policy_version":`...)
	b = strconv.AppendInt(b, r.PolicyVersion, 10)
	b = append(b, `,"deferred":`...)
	b = strconv.AppendBool(b, r.Deferred)
	return append(b, "}\n"...), true
}

// appendJSONFloat appends x as encoding/json writes a float64: the
// shortest decimal that reads back as x, in exponent form below 1e-6 and
// from 1e21 on, with a one-digit negative exponent unpadded.
func appendJSONFloat(b []byte, x float64) ([]byte, bool) {
	if math.IsInf(x, 0) || math.IsNaN(x) {
		return b, false
	}
	format := byte('f')
	if abs := math.Abs(x); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, x, format, -1, 64)
	if format == 'e' {
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b, true
}

// appendJSONString appends s quoted as encoding/json writes it (HTML
// characters escaped, as json.Encoder does by default).
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always encodes
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// jsonContentType is the Content-Type header's value (shared: net/http
// only reads it).
var jsonContentType = []string{"application/json"}

// respPool holds answer buffers.
var respPool = sync.Pool{New: func() any { b := make([]byte, 0, 1<<10); return &b }}

// writeDecide writes the 200 answer of a decision.
func writeDecide(w http.ResponseWriter, r *DecideResponse) {
	bp := respPool.Get().(*[]byte)
	b, ok := appendDecideResponse((*bp)[:0], r)
	if !ok {
		respPool.Put(bp)
		writeJSON(w, http.StatusOK, r)
		return
	}
	w.Header()["Content-Type"] = jsonContentType
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
	*bp = b[:0]
	respPool.Put(bp)
}
