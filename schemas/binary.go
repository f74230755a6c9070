package schemas

import (
	"encoding/binary"
	"math"
	"slices"
	"strings"
	"time"
)

// Avro binary primitives: zig-zag varints, length-prefixed bytes, IEEE 754
// little-endian floats, block-encoded arrays and maps.

func appendLong(dst []byte, v int64) []byte {
	u := uint64(v<<1) ^ uint64(v>>63) // zig-zag
	for u >= 0x80 {
		dst = append(dst, byte(u)|0x80)
		u >>= 7
	}
	return append(dst, byte(u))
}

func appendInt(dst []byte, v int32) []byte { return appendLong(dst, int64(v)) }

func appendString(dst []byte, s string) []byte {
	dst = appendLong(dst, int64(len(s)))
	return append(dst, s...)
}

func appendDouble(dst []byte, f float64) []byte {
	return binary.LittleEndian.AppendUint64(dst, math.Float64bits(f))
}

func appendBool(dst []byte, v bool) []byte {
	if v {
		return append(dst, 1)
	}
	return append(dst, 0)
}

// appendMillis writes t as a timestamp-millis long, t.Unix()*1000 +
// t.Nanosecond()/1e6 (floor towards the past), the same value as goavro.
func appendMillis(dst []byte, t time.Time) []byte { return appendLong(dst, t.UnixMilli()) }

// appendFloatArray writes one block of len(v) floats and the terminating 0.
func appendFloatArray(dst []byte, v []float32) []byte {
	if len(v) > 0 {
		dst = appendLong(dst, int64(len(v)))
		for _, f := range v {
			dst = binary.LittleEndian.AppendUint32(dst, math.Float32bits(f))
		}
	}
	return append(dst, 0)
}

// appendStringMap writes one block with the entries in sorted key order, so
// that equal maps encode to equal bytes, and the terminating 0.
func appendStringMap(dst []byte, m map[string]string) []byte {
	if len(m) == 0 {
		return append(dst, 0)
	}
	dst = appendLong(dst, int64(len(m)))
	if len(m) == 1 {
		for k, v := range m {
			dst = appendString(appendString(dst, k), v)
		}
		return append(dst, 0)
	}
	var stack [16]string
	keys := stack[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		dst = appendString(appendString(dst, k), m[k])
	}
	return append(dst, 0)
}

// decoder reads Avro binary from b. The first error sticks: later reads
// return zero values, so callers check d.err once at the end.
type decoder struct {
	b   []byte
	i   int
	err error
}

func (d *decoder) fail(err error) {
	if d.err == nil {
		d.err = err
	}
	d.i = len(d.b)
}

func (d *decoder) remaining() int { return len(d.b) - d.i }

// varint reads an unsigned base-128 varint of at most maxBytes bytes whose
// value has at most bits significant bits.
func (d *decoder) varint(maxBytes int, bits uint) uint64 {
	var u uint64
	var shift uint
	for n := 0; ; n++ {
		if d.i >= len(d.b) {
			d.fail(ErrTruncated)
			return 0
		}
		c := d.b[d.i]
		d.i++
		u |= uint64(c&0x7f) << shift
		if c < 0x80 {
			if bits < 64 && u>>bits != 0 || n == maxBytes-1 && bits == 64 && c > 1 {
				d.fail(badBody("varint overflows %d bits", bits))
				return 0
			}
			return u
		}
		if n == maxBytes-1 {
			d.fail(badBody("varint longer than %d bytes", maxBytes))
			return 0
		}
		shift += 7
	}
}

func (d *decoder) long() int64 {
	u := d.varint(10, 64)
	return int64(u>>1) ^ -int64(u&1)
}

func (d *decoder) int() int32 {
	u := uint32(d.varint(5, 32))
	return int32(u>>1) ^ -int32(u&1)
}

func (d *decoder) millis() time.Time { return time.UnixMilli(d.long()).UTC() }

func (d *decoder) bool() bool {
	if d.i >= len(d.b) {
		d.fail(ErrTruncated)
		return false
	}
	c := d.b[d.i]
	d.i++
	if c > 1 {
		d.fail(badBody("boolean byte %d", c))
		return false
	}
	return c == 1
}

func (d *decoder) double() float64 {
	if d.remaining() < 8 {
		d.fail(ErrTruncated)
		return 0
	}
	v := math.Float64frombits(binary.LittleEndian.Uint64(d.b[d.i:]))
	d.i += 8
	return v
}

func (d *decoder) skipN(n int) {
	if d.remaining() < n {
		d.fail(ErrTruncated)
		return
	}
	d.i += n
}

// bytes returns the next length-prefixed byte string, aliasing d.b.
func (d *decoder) bytes() []byte {
	n := d.long()
	if d.err != nil {
		return nil
	}
	if n < 0 {
		d.fail(badBody("negative length %d", n))
		return nil
	}
	if int64(d.remaining()) < n {
		d.fail(ErrTruncated)
		return nil
	}
	b := d.b[d.i : d.i+int(n)]
	d.i += int(n)
	return b
}

// blockCount reads an array or map block header: a count, and, when the
// count is negative, its absolute value followed by the block's byte size
// (which is read and ignored). minItemSize is the least number of bytes an
// item takes; a count that cannot fit in the remaining bytes is truncation.
func (d *decoder) blockCount(minItemSize int) int {
	c := d.long()
	if d.err != nil {
		return 0
	}
	if c < 0 {
		if c == math.MinInt64 {
			d.fail(badBody("block count %d", c))
			return 0
		}
		c = -c
		if size := d.long(); size < 0 {
			d.fail(badBody("negative block size %d", size))
			return 0
		}
	}
	switch {
	case minItemSize > 0 && c > int64(d.remaining()/minItemSize):
		d.fail(ErrTruncated)
		return 0
	case minItemSize == 0 && c > 1<<16:
		d.fail(badBody("block of %d zero-size items", c))
		return 0
	}
	return int(c)
}

// floatArray reads an array<float>; an empty array is nil.
func (d *decoder) floatArray() []float32 {
	var out []float32
	for {
		n := d.blockCount(4)
		if n == 0 {
			return out
		}
		if out == nil {
			out = make([]float32, 0, n)
		}
		for range n {
			out = append(out, math.Float32frombits(binary.LittleEndian.Uint32(d.b[d.i:])))
			d.i += 4
		}
	}
}

// strings4 reads four consecutive strings into one allocation.
func (d *decoder) strings4() (a, b, c, e string) {
	var parts [4][]byte
	total := 0
	for k := range parts {
		parts[k] = d.bytes()
		total += len(parts[k])
	}
	if d.err != nil || total == 0 {
		return "", "", "", ""
	}
	var sb strings.Builder
	sb.Grow(total)
	for _, p := range parts {
		sb.Write(p)
	}
	s := sb.String()
	l0, l1, l2 := len(parts[0]), len(parts[1]), len(parts[2])
	return s[:l0], s[l0 : l0+l1], s[l0+l1 : l0+l1+l2], s[l0+l1+l2:]
}

// stringMap reads a map<string>; an empty map is nil. All keys and values
// share one allocation. A duplicate key is a bad body, as in goavro.
func (d *decoder) stringMap() map[string]string {
	start := d.i
	count, total := 0, 0
	for { // first pass: validate, count entries and string bytes
		n := d.blockCount(2)
		if n == 0 {
			break
		}
		for range n {
			total += len(d.bytes())
			total += len(d.bytes())
		}
		count += n
	}
	if d.err != nil || count == 0 {
		return nil
	}
	end := d.i
	var sb strings.Builder
	sb.Grow(total)
	d.i = start
	// The offsets of the entries' strings in s; a record's few metadata
	// entries fit the array on the stack (no allocation per record).
	var small [33]int
	offs := append(small[:0], 0)
	for { // second pass over validated bytes: concatenate
		n := d.blockCount(2)
		if n == 0 {
			break
		}
		for range 2 * n {
			sb.Write(d.bytes())
			offs = append(offs, sb.Len())
		}
	}
	s := sb.String()
	m := make(map[string]string, count)
	for k := 0; k < 2*count; k += 2 {
		key := s[offs[k]:offs[k+1]]
		if _, dup := m[key]; dup {
			d.fail(badBody("duplicate map key %q", key))
			return nil
		}
		m[key] = s[offs[k+1]:offs[k+2]]
	}
	d.i = end
	return m
}

// maxDepth bounds the nesting the body validator follows in recursive schemas.
const maxDepth = 64

// skip validates and skips one datum of schema n without allocating. It
// runs before goavro decodes a body, so that goavro only ever sees
// well-formed bodies whose block counts fit the remaining bytes (goavro
// allocates ahead for a block count it has not checked against the input).
func (d *decoder) skip(n *node, depth int) {
	if depth > maxDepth {
		d.fail(badBody("nesting deeper than %d", maxDepth))
		return
	}
	switch n.kind {
	case kNull:
	case kBoolean:
		d.bool()
	case kInt:
		d.int()
	case kLong:
		d.long()
	case kFloat:
		d.skipN(4)
	case kDouble:
		d.skipN(8)
	case kBytes, kString:
		d.bytes()
	case kFixed:
		d.skipN(n.size)
	case kEnum:
		if i := d.long(); d.err == nil && (i < 0 || i >= int64(len(n.symbols))) {
			d.fail(badBody("enum %s index %d out of range", n.name, i))
		}
	case kUnion:
		i := d.long()
		if d.err != nil {
			return
		}
		if i < 0 || i >= int64(len(n.branches)) {
			d.fail(badBody("union index %d out of range", i))
			return
		}
		d.skip(n.branches[i], depth+1)
	case kRecord:
		for _, f := range n.fields {
			d.skip(f.typ, depth+1)
			if d.err != nil {
				return
			}
		}
	case kArray, kMap:
		item, keySize := n.items, 0
		if n.kind == kMap {
			item, keySize = n.values, 1 // a key is at least its length byte
		}
		minSize := minSizeOf(item, 0) + keySize
		for d.err == nil {
			c := d.blockCount(minSize)
			if c == 0 {
				return
			}
			for range c {
				if n.kind == kMap {
					d.bytes()
				}
				d.skip(item, depth+1)
				if d.err != nil {
					return
				}
			}
		}
	}
}

// minSizeOf is the least number of bytes a datum of schema n takes.
func minSizeOf(n *node, depth int) int {
	if depth > maxDepth {
		return 0
	}
	switch n.kind {
	case kNull:
		return 0
	case kFloat:
		return 4
	case kDouble:
		return 8
	case kFixed:
		return n.size
	case kRecord:
		s := 0
		for _, f := range n.fields {
			s += minSizeOf(f.typ, depth+1)
		}
		return s
	default: // every other datum starts with at least one varint byte
		return 1
	}
}

// validateBody checks that body is exactly one well-formed datum of n.
func validateBody(n *node, body []byte) error {
	d := decoder{b: body}
	d.skip(n, 0)
	if d.err != nil {
		return d.err
	}
	if d.remaining() != 0 {
		return badBody("%d trailing bytes", d.remaining())
	}
	return nil
}
