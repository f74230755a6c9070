package schemas

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// kind is an Avro type.
type kind uint8

const (
	kNull kind = iota
	kBoolean
	kInt
	kLong
	kFloat
	kDouble
	kBytes
	kString
	kRecord
	kEnum
	kFixed
	kArray
	kMap
	kUnion
)

var primitiveKinds = map[string]kind{
	"null": kNull, "boolean": kBoolean, "int": kInt, "long": kLong,
	"float": kFloat, "double": kDouble, "bytes": kBytes, "string": kString,
}

var kindNames = [...]string{
	kNull: "null", kBoolean: "boolean", kInt: "int", kLong: "long", kFloat: "float",
	kDouble: "double", kBytes: "bytes", kString: "string", kRecord: "record",
	kEnum: "enum", kFixed: "fixed", kArray: "array", kMap: "map", kUnion: "union",
}

// node is a parsed Avro schema. Named types are parsed once; references to
// them point at the same node, so recursive schemas are cyclic graphs.
type node struct {
	kind     kind
	name     string // fullname of a record, enum or fixed
	recType  string // "record" or "error"
	logical  string // logicalType attribute of a primitive, if any
	fields   []field
	symbols  []string
	items    *node // array
	values   *node // map
	branches []*node
	size     int // fixed
}

// field is one field of a record schema.
type field struct {
	name       string
	typ        *node
	def        any // the JSON default (json.Number for numbers)
	hasDefault bool
}

// parseSchema parses an Avro schema in JSON form, resolving every name to its
// fullname as the Avro specification's "Names" section prescribes.
func parseSchema(schema string) (*node, error) {
	dec := json.NewDecoder(strings.NewReader(schema))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("parse schema: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("parse schema: trailing data after the schema")
	}
	p := parser{names: make(map[string]*node)}
	return p.parse(v, "")
}

type parser struct {
	names map[string]*node
}

func (p *parser) parse(v any, ns string) (*node, error) {
	switch t := v.(type) {
	case string:
		if k, ok := primitiveKinds[t]; ok {
			return &node{kind: k}, nil
		}
		return p.lookup(t, ns)
	case []any:
		n := &node{kind: kUnion, branches: make([]*node, 0, len(t))}
		for i, b := range t {
			bn, err := p.parse(b, ns)
			if err != nil {
				return nil, fmt.Errorf("union branch %d: %w", i, err)
			}
			n.branches = append(n.branches, bn)
		}
		return n, nil
	case map[string]any:
		switch ty := t["type"].(type) {
		case string:
			if k, ok := primitiveKinds[ty]; ok {
				lt, _ := t["logicalType"].(string)
				return &node{kind: k, logical: lt}, nil
			}
			switch ty {
			case "record", "error", "enum", "fixed":
				return p.parseNamed(t, ty, ns)
			case "array":
				items, err := p.parse(t["items"], ns)
				if err != nil {
					return nil, fmt.Errorf("array items: %w", err)
				}
				return &node{kind: kArray, items: items}, nil
			case "map":
				values, err := p.parse(t["values"], ns)
				if err != nil {
					return nil, fmt.Errorf("map values: %w", err)
				}
				return &node{kind: kMap, values: values}, nil
			default:
				return p.lookup(ty, ns)
			}
		case map[string]any, []any:
			return p.parse(ty, ns)
		default:
			return nil, fmt.Errorf("schema object without a valid type: %v", t["type"])
		}
	default:
		return nil, fmt.Errorf("schema is neither a string, an array nor an object: %T", v)
	}
}

// lookup resolves a reference to a previously defined named type.
func (p *parser) lookup(name, ns string) (*node, error) {
	full := name
	if !strings.Contains(name, ".") && ns != "" {
		full = ns + "." + name
	}
	if n, ok := p.names[full]; ok {
		return n, nil
	}
	if n, ok := p.names[name]; ok { // a name in the null namespace
		return n, nil
	}
	return nil, fmt.Errorf("unknown type %q", name)
}

func (p *parser) parseNamed(t map[string]any, ty, ns string) (*node, error) {
	name, ok := t["name"].(string)
	if !ok || name == "" {
		return nil, fmt.Errorf("%s without a name", ty)
	}
	full, newNS := name, ns
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		newNS = name[:i]
	} else {
		if nsAttr, ok := t["namespace"].(string); ok {
			newNS = nsAttr
		}
		if newNS != "" {
			full = newNS + "." + name
		}
	}
	if _, dup := p.names[full]; dup {
		return nil, fmt.Errorf("type %q defined twice", full)
	}
	n := &node{name: full}
	p.names[full] = n // before the fields: records may refer to themselves
	switch ty {
	case "record", "error":
		n.kind, n.recType = kRecord, ty
		fs, ok := t["fields"].([]any)
		if !ok {
			return nil, fmt.Errorf("record %q without a fields array", full)
		}
		for i, f := range fs {
			fm, ok := f.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("record %q field %d is not an object", full, i)
			}
			fname, ok := fm["name"].(string)
			if !ok || fname == "" {
				return nil, fmt.Errorf("record %q field %d without a name", full, i)
			}
			ft, err := p.parse(fm["type"], newNS)
			if err != nil {
				return nil, fmt.Errorf("record %q field %q: %w", full, fname, err)
			}
			def, hasDefault := fm["default"]
			n.fields = append(n.fields, field{name: fname, typ: ft, def: def, hasDefault: hasDefault})
		}
	case "enum":
		n.kind = kEnum
		syms, ok := t["symbols"].([]any)
		if !ok {
			return nil, fmt.Errorf("enum %q without a symbols array", full)
		}
		for _, s := range syms {
			str, ok := s.(string)
			if !ok {
				return nil, fmt.Errorf("enum %q has a non-string symbol", full)
			}
			n.symbols = append(n.symbols, str)
		}
	case "fixed":
		n.kind = kFixed
		num, ok := t["size"].(json.Number)
		if !ok {
			return nil, fmt.Errorf("fixed %q without a size", full)
		}
		size, err := strconv.Atoi(num.String())
		if err != nil || size < 0 {
			return nil, fmt.Errorf("fixed %q: invalid size %s", full, num)
		}
		n.size = size
	}
	return n, nil
}

// CanonicalForm returns the Parsing Canonical Form of an Avro schema, as the
// Avro specification's "Transforming into Parsing Canonical Form" defines it
// (PRIMITIVES, FULLNAMES, STRIP, ORDER, STRINGS, INTEGERS, WHITESPACE) and as
// Apache Avro Java's SchemaNormalization computes it: only the attributes
// type, name, fields, symbols, items, values and size survive, in that order
// (name first), so logicalType, doc, default, aliases and namespace are
// dropped, {"type":"long","logicalType":"timestamp-millis"} becomes "long",
// and every name is a fullname.
func CanonicalForm(schema string) (string, error) {
	n, err := parseSchema(schema)
	if err != nil {
		return "", err
	}
	return n.canonical(), nil
}

func (n *node) canonical() string {
	var b strings.Builder
	n.writeCanonical(&b, make(map[*node]bool))
	return b.String()
}

func (n *node) writeCanonical(b *strings.Builder, seen map[*node]bool) {
	switch n.kind {
	case kRecord, kEnum, kFixed:
		if seen[n] {
			writeJSONString(b, n.name)
			return
		}
		seen[n] = true
		b.WriteString(`{"name":`)
		writeJSONString(b, n.name)
		b.WriteString(`,"type":`)
		switch n.kind {
		case kRecord:
			writeJSONString(b, n.recType)
			b.WriteString(`,"fields":[`)
			for i, f := range n.fields {
				if i > 0 {
					b.WriteByte(',')
				}
				b.WriteString(`{"name":`)
				writeJSONString(b, f.name)
				b.WriteString(`,"type":`)
				f.typ.writeCanonical(b, seen)
				b.WriteByte('}')
			}
			b.WriteString("]}")
		case kEnum:
			b.WriteString(`"enum","symbols":[`)
			for i, s := range n.symbols {
				if i > 0 {
					b.WriteByte(',')
				}
				writeJSONString(b, s)
			}
			b.WriteString("]}")
		case kFixed:
			b.WriteString(`"fixed","size":`)
			b.WriteString(strconv.Itoa(n.size))
			b.WriteByte('}')
		}
	case kArray:
		b.WriteString(`{"type":"array","items":`)
		n.items.writeCanonical(b, seen)
		b.WriteByte('}')
	case kMap:
		b.WriteString(`{"type":"map","values":`)
		n.values.writeCanonical(b, seen)
		b.WriteByte('}')
	case kUnion:
		b.WriteByte('[')
		for i, br := range n.branches {
			if i > 0 {
				b.WriteByte(',')
			}
			br.writeCanonical(b, seen)
		}
		b.WriteByte(']')
	default:
		writeJSONString(b, kindNames[n.kind])
	}
}

// writeJSONString writes s as a JSON string with UTF-8 kept literal (the
// STRINGS rule): only the quote, the backslash and control characters are
// escaped.
func writeJSONString(b *strings.Builder, s string) {
	const hex = "0123456789abcdef"
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20:
			b.WriteString(`\u00`)
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&0xf])
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
}

// rabinEmpty is the CRC-64-AVRO fingerprint of the empty string, the
// polynomial's seed value given by the Avro specification.
const rabinEmpty = 0xc15d213aa4d7a795

// rabinTable[i] is the fingerprint contribution of the byte i:
// fp = i; 8 times: fp = (fp >> 1) ^ (EMPTY & -(fp & 1)).
var rabinTable = func() (t [256]uint64) {
	for i := range t {
		fp := uint64(i)
		for range 8 {
			fp = (fp >> 1) ^ (rabinEmpty & -(fp & 1))
		}
		t[i] = fp
	}
	return t
}()

// Fingerprint64 returns the CRC-64-AVRO (Rabin) fingerprint of data, the
// table-driven algorithm of the Avro specification:
// fp = EMPTY; for each byte b: fp = (fp >> 8) ^ table[(fp ^ b) & 0xff].
// Applied to a schema's Parsing Canonical Form it gives the schema
// fingerprint of the single-object encoding.
func Fingerprint64(data []byte) uint64 {
	fp := uint64(rabinEmpty)
	for _, c := range data {
		fp = (fp >> 8) ^ rabinTable[byte(fp)^c]
	}
	return fp
}
