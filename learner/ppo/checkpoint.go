package ppo

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"math/rand/v2"
)

// Checkpoint layout (all integers little-endian):
//
//	magic "AELPPPO1" | uint32 format version
//	uint32 n, config as n bytes of JSON
//	int64 version | int64 updates | int64 adam step | float64 obs count
//	uint64 P, then P float64 each: params, Adam m, Adam v
//	uint64 D, then D float64 each: obs mean, obs var
//	uint32 CRC-32C of every preceding byte
const (
	ckptMagic   = "AELPPPO1"
	ckptVersion = 1
)

// ErrBadCheckpoint is wrapped by every error [Restore] returns.
var ErrBadCheckpoint = errors.New("bad ppo checkpoint")

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// MarshalCheckpoint returns the agent's full training state: config,
// parameters, Adam moments and step, normalisation statistics, version and
// update count, with a CRC-32C checksum. The rand source is not saved.
func (a *Agent) MarshalCheckpoint() ([]byte, error) {
	cj, err := json.Marshal(a.cfg)
	if err != nil {
		return nil, fmt.Errorf("marshal ppo checkpoint: %w", err)
	}
	p, d := len(a.params), a.cfg.ObsDim
	buf := make([]byte, 0, 8+4+4+len(cj)+32+8+24*p+8+16*d+4)
	buf = append(buf, ckptMagic...)
	buf = binary.LittleEndian.AppendUint32(buf, ckptVersion)
	buf = binary.LittleEndian.AppendUint32(buf, uint32(len(cj)))
	buf = append(buf, cj...)
	buf = binary.LittleEndian.AppendUint64(buf, uint64(a.version))
	buf = binary.LittleEndian.AppendUint64(buf, uint64(a.updates))
	buf = binary.LittleEndian.AppendUint64(buf, uint64(a.adamT))
	buf = binary.LittleEndian.AppendUint64(buf, math.Float64bits(a.norm.count))
	buf = binary.LittleEndian.AppendUint64(buf, uint64(p))
	buf = encodeFloats(buf, a.params)
	buf = encodeFloats(buf, a.adamM)
	buf = encodeFloats(buf, a.adamV)
	buf = binary.LittleEndian.AppendUint64(buf, uint64(d))
	buf = encodeFloats(buf, a.norm.mean)
	buf = encodeFloats(buf, a.norm.variance)
	return binary.LittleEndian.AppendUint32(buf, crc32.Checksum(buf, castagnoli)), nil
}

// Restore rebuilds an agent from [Agent.MarshalCheckpoint] output; rng
// drives its future minibatch shuffling. Truncated, corrupt or inconsistent
// data returns an error wrapping ErrBadCheckpoint, never a panic.
func Restore(data []byte, rng *rand.Rand) (*Agent, error) {
	if rng == nil {
		return nil, fmt.Errorf("restore ppo checkpoint: nil rand source")
	}
	if len(data) < len(ckptMagic)+4+4 {
		return nil, fmt.Errorf("%w: %d bytes is too short", ErrBadCheckpoint, len(data))
	}
	if string(data[:len(ckptMagic)]) != ckptMagic {
		return nil, fmt.Errorf("%w: bad magic", ErrBadCheckpoint)
	}
	body, sum := data[:len(data)-4], binary.LittleEndian.Uint32(data[len(data)-4:])
	if got := crc32.Checksum(body, castagnoli); got != sum {
		return nil, fmt.Errorf("%w: checksum %08x, want %08x", ErrBadCheckpoint, got, sum)
	}
	return decodeCheckpoint(body[len(ckptMagic):], rng)
}

// ckptReader reads little-endian fields, remembering the first error.
type ckptReader struct {
	b   []byte
	err error
}

func (r *ckptReader) take(n uint64, what string) []byte {
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)) {
		r.err = fmt.Errorf("%w: truncated at %s", ErrBadCheckpoint, what)
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *ckptReader) u32(what string) uint32 {
	if b := r.take(4, what); b != nil {
		return binary.LittleEndian.Uint32(b)
	}
	return 0
}

func (r *ckptReader) u64(what string) uint64 {
	if b := r.take(8, what); b != nil {
		return binary.LittleEndian.Uint64(b)
	}
	return 0
}

// floats reads exactly len(dst) float64 values.
func (r *ckptReader) floats(dst []float64, what string) {
	if b := r.take(8*uint64(len(dst)), what); b != nil {
		decodeFloats(dst, b)
	}
}

// decodeCheckpoint parses the bytes after the magic and before the
// checksum.
func decodeCheckpoint(b []byte, rng *rand.Rand) (*Agent, error) {
	r := &ckptReader{b: b}
	if v := r.u32("format version"); r.err == nil && v != ckptVersion {
		return nil, fmt.Errorf("%w: format version %d, want %d", ErrBadCheckpoint, v, ckptVersion)
	}
	cj := r.take(uint64(r.u32("config length")), "config")
	if r.err != nil {
		return nil, r.err
	}
	var cfg Config
	if err := json.Unmarshal(cj, &cfg); err != nil {
		return nil, fmt.Errorf("%w: config: %v", ErrBadCheckpoint, err)
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadCheckpoint, err)
	}
	// Check the size before allocating: a corrupt header must not make us
	// allocate what the data does not hold.
	np := uint64(paramCount(layerSizes(cfg.ObsDim, cfg.Hidden, cfg.NumActions)) +
		paramCount(layerSizes(cfg.ObsDim, cfg.Hidden, 1)))
	if want := 32 + 8 + 24*np + 8 + 16*uint64(cfg.ObsDim); uint64(len(r.b)) != want {
		return nil, fmt.Errorf("%w: %d bytes of state, config needs %d", ErrBadCheckpoint, len(r.b), want)
	}
	a := newAgent(cfg, rng)
	a.version = int64(r.u64("version"))
	a.updates = int64(r.u64("updates"))
	a.adamT = int64(r.u64("adam step"))
	a.norm.count = math.Float64frombits(r.u64("obs count"))
	if p := r.u64("param count"); r.err == nil && p != uint64(len(a.params)) {
		return nil, fmt.Errorf("%w: %d parameters, config needs %d", ErrBadCheckpoint, p, len(a.params))
	}
	r.floats(a.params, "params")
	r.floats(a.adamM, "adam m")
	r.floats(a.adamV, "adam v")
	if d := r.u64("obs dim"); r.err == nil && d != uint64(cfg.ObsDim) {
		return nil, fmt.Errorf("%w: normalisation width %d, obs dim %d", ErrBadCheckpoint, d, cfg.ObsDim)
	}
	r.floats(a.norm.mean, "obs mean")
	r.floats(a.norm.variance, "obs var")
	switch {
	case r.err != nil:
		return nil, r.err
	case len(r.b) != 0:
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrBadCheckpoint, len(r.b))
	case a.version < 0 || a.updates < 0 || a.adamT < 0:
		return nil, fmt.Errorf("%w: negative counter", ErrBadCheckpoint)
	case !(a.norm.count >= 0) || math.IsInf(a.norm.count, 1):
		return nil, fmt.Errorf("%w: observation count %v", ErrBadCheckpoint, a.norm.count)
	case !allFinite(a.params) || !allFinite(a.adamM) || !allFinite(a.adamV) ||
		!allFinite(a.norm.mean) || !allFinite(a.norm.variance):
		return nil, fmt.Errorf("%w: non-finite value", ErrBadCheckpoint)
	}
	for i, v := range a.adamV {
		if v < 0 {
			return nil, fmt.Errorf("%w: negative adam second moment at %d", ErrBadCheckpoint, i)
		}
	}
	for _, v := range a.norm.variance {
		if v < 0 {
			return nil, fmt.Errorf("%w: negative observation variance", ErrBadCheckpoint)
		}
	}
	return a, nil
}
