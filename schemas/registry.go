package schemas

import (
	"embed"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/linkedin/goavro/v2"
)

// Full names of the shipped record schemas.
const (
	NameExperience       = "aelp.Experience"
	NameTaggedExperience = "aelp.TaggedExperience"
	NameTrainingMetrics  = "aelp.TrainingMetrics"
	NamePolicySnapshot   = "aelp.PolicySnapshot"
	NameRecordedMessage  = "aelp.RecordedMessage"
	NameDecision         = "aelp.Decision"
	NameOutcome          = "aelp.Outcome"
)

//go:embed avro/*.avsc
var avscFS embed.FS

// Schema is one shipped version of a record schema. A Schema is immutable
// and safe for concurrent use.
type Schema struct {
	// Name is the schema's fullname, e.g. "aelp.Experience".
	Name string
	// Version is the version from the file name (experience.v2.avsc → 2).
	Version int
	// File is the embedded file's path, e.g. "avro/experience.v2.avsc".
	File string
	// JSON is the schema text as shipped.
	JSON string
	// Canonical is the schema's Parsing Canonical Form.
	Canonical string
	// Fingerprint is the CRC-64-AVRO fingerprint of Canonical, the value
	// the single-object encoding writes after the magic bytes.
	Fingerprint uint64

	codec *goavro.Codec
	root  *node
}

// Codec returns the goavro codec of the schema (for OCF files, textual
// Avro or debugging). Codecs are safe for concurrent use.
func (s *Schema) Codec() *goavro.Codec { return s.codec }

// registry holds every shipped schema version; built once at init and
// read-only afterwards.
var registry = mustLoadRegistry()

type registryT struct {
	all           []*Schema            // sorted by name, then version
	byFingerprint map[uint64]*Schema   // every version
	current       map[string]*Schema   // the highest version per name
	versions      map[string][]*Schema // every version per name, ascending
}

func mustLoadRegistry() *registryT {
	r, err := loadRegistry()
	if err != nil {
		panic("schemas: embedded schemas are broken: " + err.Error())
	}
	return r
}

func loadRegistry() (*registryT, error) {
	files, err := avscFS.ReadDir("avro")
	if err != nil {
		return nil, err
	}
	r := &registryT{
		byFingerprint: make(map[uint64]*Schema),
		current:       make(map[string]*Schema),
		versions:      make(map[string][]*Schema),
	}
	for _, f := range files {
		file := path.Join("avro", f.Name())
		version, err := versionFromFile(f.Name())
		if err != nil {
			return nil, err
		}
		text, err := avscFS.ReadFile(file)
		if err != nil {
			return nil, err
		}
		s, err := newSchema(file, version, string(text))
		if err != nil {
			return nil, err
		}
		if other, dup := r.byFingerprint[s.Fingerprint]; dup {
			return nil, fmt.Errorf("%s and %s have the same fingerprint %#016x", file, other.File, s.Fingerprint)
		}
		for _, other := range r.versions[s.Name] {
			if other.Version == version {
				return nil, fmt.Errorf("%s and %s are both version %d of %s", file, other.File, version, s.Name)
			}
		}
		r.all = append(r.all, s)
		r.byFingerprint[s.Fingerprint] = s
		r.versions[s.Name] = append(r.versions[s.Name], s)
	}
	slices.SortFunc(r.all, func(a, b *Schema) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return a.Version - b.Version
	})
	for name, vs := range r.versions {
		slices.SortFunc(vs, func(a, b *Schema) int { return a.Version - b.Version })
		r.current[name] = vs[len(vs)-1]
	}
	for _, name := range []string{NameExperience, NameTaggedExperience, NameTrainingMetrics, NamePolicySnapshot, NameRecordedMessage, NameDecision, NameOutcome} {
		if r.current[name] == nil {
			return nil, fmt.Errorf("no schema for %s", name)
		}
	}
	return r, nil
}

// versionFromFile parses "experience.v2.avsc" into 2.
func versionFromFile(name string) (int, error) {
	base := strings.TrimSuffix(name, ".avsc")
	i := strings.LastIndex(base, ".v")
	if i < 0 {
		return 0, fmt.Errorf("%s: file name lacks a .vN version", name)
	}
	v, err := strconv.Atoi(base[i+2:])
	if err != nil || v < 1 {
		return 0, fmt.Errorf("%s: bad version %q", name, base[i+2:])
	}
	return v, nil
}

func newSchema(file string, version int, text string) (*Schema, error) {
	root, err := parseSchema(text)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if root.kind != kRecord {
		return nil, fmt.Errorf("%s: top-level type is %s, want record", file, kindNames[root.kind])
	}
	codec, err := goavro.NewCodec(text)
	if err != nil {
		return nil, fmt.Errorf("%s: goavro: %w", file, err)
	}
	canonical := root.canonical()
	return &Schema{
		Name:        root.name,
		Version:     version,
		File:        file,
		JSON:        text,
		Canonical:   canonical,
		Fingerprint: Fingerprint64([]byte(canonical)),
		codec:       codec,
		root:        root,
	}, nil
}

// Schemas returns every shipped schema version, sorted by name and version.
// The slice is a copy; the Schemas are shared and must not be modified.
func Schemas() []*Schema { return slices.Clone(registry.all) }

// Current returns the current (highest) version of the named schema, or nil
// for an unknown name.
func Current(name string) *Schema { return registry.current[name] }

// Lookup returns the shipped schema with the given fingerprint.
func Lookup(fingerprint uint64) (*Schema, bool) {
	s, ok := registry.byFingerprint[fingerprint]
	return s, ok
}
