package schemas

import (
	"encoding/binary"
	"fmt"
	"io"
	"strings"
)

// Single-object encoding (Avro specification): the two marker bytes C3 01,
// the writer schema's CRC-64-AVRO fingerprint as 8 little-endian bytes, then
// the Avro binary datum.
const (
	// Magic0 and Magic1 are the single-object marker bytes.
	Magic0, Magic1 = 0xC3, 0x01
	// HeaderLen is the length of the single-object header.
	HeaderLen = 10
)

// AppendHeader appends the single-object header for the schema with the
// given fingerprint to dst.
func AppendHeader(dst []byte, fingerprint uint64) []byte {
	dst = append(dst, Magic0, Magic1)
	return binary.LittleEndian.AppendUint64(dst, fingerprint)
}

// readHeader splits a single-object value into its writer schema and body.
func readHeader(op string, b []byte) (*Schema, []byte, error) {
	if len(b) >= 2 && (b[0] != Magic0 || b[1] != Magic1) || len(b) == 1 && b[0] != Magic0 {
		return nil, nil, &DecodeError{Op: op, Err: ErrBadMagic}
	}
	if len(b) < HeaderLen {
		return nil, nil, &DecodeError{Op: op, Err: fmt.Errorf("%w: %d-byte value is shorter than the %d-byte header", ErrTruncated, len(b), HeaderLen)}
	}
	fp := binary.LittleEndian.Uint64(b[2:HeaderLen])
	s, ok := registry.byFingerprint[fp]
	if !ok {
		return nil, nil, &DecodeError{Op: op, Fingerprint: fp, Err: ErrUnknownSchema}
	}
	return s, b[HeaderLen:], nil
}

// readHeaderFor is readHeader for a caller that expects the named record.
func readHeaderFor(op, name string, b []byte) (*Schema, []byte, error) {
	s, body, err := readHeader(op, b)
	if err != nil {
		return nil, nil, err
	}
	if s.Name != name {
		return nil, nil, &DecodeError{Op: op, Fingerprint: s.Fingerprint,
			Err: fmt.Errorf("%w: writer schema is %s v%d, want %s", ErrUnknownSchema, s.Name, s.Version, name)}
	}
	return s, body, nil
}

// Identify reads the header of a single-object value and names its writer
// schema, e.g. ("aelp.Experience", 2). It does not look at the body.
func Identify(b []byte) (name string, version int, err error) {
	s, _, err := readHeader("identify", b)
	if err != nil {
		return "", 0, err
	}
	return s.Name, s.Version, nil
}

// DecodeNative decodes a single-object value of any shipped schema into
// goavro's native form of the current (reader) version of that schema:
// records as map[string]any, timestamps as time.Time, unions as nil or a
// one-entry map. Records written with an older version are resolved, so
// fields added since carry their defaults. Meant for tools (tail, JSON).
func DecodeNative(b []byte) (name string, native map[string]any, err error) {
	s, body, err := readHeader("decode", b)
	if err != nil {
		return "", nil, err
	}
	native, err = decodeBody("decode", s, body)
	if err != nil {
		return "", nil, err
	}
	return s.Name, native, nil
}

// decodeBody decodes body, written with s, into the native form of the
// current version of s.Name.
func decodeBody(op string, s *Schema, body []byte) (map[string]any, error) {
	fail := func(err error) (map[string]any, error) {
		return nil, &DecodeError{Op: op, Fingerprint: s.Fingerprint, Err: err}
	}
	if err := validateBody(s.root, body); err != nil {
		return fail(err)
	}
	v, rest, err := s.codec.NativeFromBinary(body)
	if err != nil {
		if strings.Contains(err.Error(), io.ErrShortBuffer.Error()) {
			return fail(fmt.Errorf("%w: %v", ErrTruncated, err))
		}
		return fail(badBody("%v", err))
	}
	if len(rest) != 0 {
		return fail(badBody("%d trailing bytes", len(rest)))
	}
	if cur := registry.current[s.Name]; cur != s {
		if v, err = resolve(s.root, cur.root, v); err != nil {
			return fail(badBody("resolve v%d to v%d: %v", s.Version, cur.Version, err))
		}
	}
	m, ok := v.(map[string]any)
	if !ok {
		return fail(badBody("native %T is not a record", v))
	}
	return m, nil
}

// encodeNative appends the single-object encoding of native under the
// current version of the named schema.
func encodeNative(dst []byte, name string, native map[string]any) ([]byte, error) {
	s := registry.current[name]
	n := len(dst)
	out, err := s.codec.BinaryFromNative(AppendHeader(dst, s.Fingerprint), native)
	if err != nil {
		return dst[:n], err
	}
	return out, nil
}
