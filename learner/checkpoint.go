package learner

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/aelp/aelp/learner/train"
)

// Checkpoint is the learner's saved state: the PPO agent's full training
// state (parameters, Adam moments, normaliser, version, update count),
// the β schedule position, the rate limiter's counters, the adaptive
// crisis weight's state, and the next offset to read per partition of the
// tagged topic.
type Checkpoint struct {
	// ExperimentID and LearnerID identify the run.
	ExperimentID, LearnerID string
	// TaggedTopic is the topic the offsets refer to. A learner resumes
	// only a checkpoint of its own experiment and tagged topic.
	TaggedTopic string
	// Offsets is the next offset to read, per partition.
	Offsets map[int]int64
	// BetaStep is the replay buffer's annealing step.
	BetaStep int64
	// Sampled and Inserted are the rate limiter's counters.
	Sampled, Inserted int64
	// PolicyVersion is the version of the last published snapshot.
	PolicyVersion int64
	// CreatedAt is when it was written.
	CreatedAt time.Time
	// Agent is ppo.Agent.MarshalCheckpoint output.
	Agent []byte
	// Adaptive is the adaptive crisis weight's state (train.Counters):
	// nil when the learner ran without the rule, and in checkpoints
	// written before it was kept.
	Adaptive *train.AdaptiveState
}

// File layout: "AELPCKPT" | uint32 format 1 | uint32 n | n bytes JSON
// header | uint64 m | m bytes agent | uint32 CRC-32C of all before.
// Optional state is an optional header field (omitted when absent), so
// format 1 still holds: a file without it decodes as before, and a reader
// that does not know it ignores it.
const ckptMagic = "AELPCKPT"

// ErrCheckpoint is wrapped by every error reading a checkpoint returns.
var ErrCheckpoint = errors.New("bad checkpoint")

type ckptHeader struct {
	ExperimentID  string           `json:"experiment_id"`
	LearnerID     string           `json:"learner_id"`
	TaggedTopic   string           `json:"tagged_topic"`
	Offsets       map[string]int64 `json:"offsets"`
	BetaStep      int64            `json:"beta_step"`
	Sampled       int64            `json:"sampled"`
	Inserted      int64            `json:"inserted"`
	PolicyVersion int64            `json:"policy_version"`
	CreatedAt     time.Time        `json:"created_at"`
	Adaptive      *ckptAdaptive    `json:"adaptive,omitempty"`
}

// ckptAdaptive is train.AdaptiveState in the header.
type ckptAdaptive struct {
	Weight         float64 `json:"crisis_weight"`
	RegularMSE     float64 `json:"regular_mse"`
	CrisisMSE      float64 `json:"crisis_mse"`
	RegularStarted bool    `json:"regular_started"`
	CrisisStarted  bool    `json:"crisis_started"`
}

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// Marshal encodes the checkpoint with a checksum.
func (c *Checkpoint) Marshal() ([]byte, error) {
	h := ckptHeader{ExperimentID: c.ExperimentID, LearnerID: c.LearnerID, TaggedTopic: c.TaggedTopic,
		Offsets: map[string]int64{}, BetaStep: c.BetaStep, Sampled: c.Sampled, Inserted: c.Inserted,
		PolicyVersion: c.PolicyVersion, CreatedAt: c.CreatedAt}
	for p, o := range c.Offsets {
		h.Offsets[strconv.Itoa(p)] = o
	}
	if a := c.Adaptive; a != nil {
		h.Adaptive = &ckptAdaptive{Weight: a.Weight, RegularMSE: a.RegularMSE, CrisisMSE: a.CrisisMSE,
			RegularStarted: a.RegularStarted, CrisisStarted: a.CrisisStarted}
	}
	hj, err := json.Marshal(h)
	if err != nil {
		return nil, fmt.Errorf("encode checkpoint: %w", err)
	}
	b := make([]byte, 0, 8+8+len(hj)+8+len(c.Agent)+4)
	b = append(b, ckptMagic...)
	b = binary.LittleEndian.AppendUint32(b, 1)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(hj)))
	b = append(b, hj...)
	b = binary.LittleEndian.AppendUint64(b, uint64(len(c.Agent)))
	b = append(b, c.Agent...)
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, crcTable)), nil
}

// UnmarshalCheckpoint decodes Marshal output; truncation or corruption is
// an error wrapping ErrCheckpoint, never a panic.
func UnmarshalCheckpoint(b []byte) (*Checkpoint, error) {
	bad := func(format string, a ...any) (*Checkpoint, error) {
		return nil, fmt.Errorf("%w: "+format, append([]any{ErrCheckpoint}, a...)...)
	}
	if len(b) < 8+8+8+4 || string(b[:8]) != ckptMagic {
		return bad("not an aelp checkpoint")
	}
	body, sum := b[:len(b)-4], binary.LittleEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(body, crcTable) != sum {
		return bad("checksum mismatch (truncated or corrupted file)")
	}
	if v := binary.LittleEndian.Uint32(b[8:]); v != 1 {
		return bad("format version %d, want 1", v)
	}
	n := uint64(binary.LittleEndian.Uint32(b[12:]))
	rest := body[16:]
	if n > uint64(len(rest)) {
		return bad("header length %d exceeds file", n)
	}
	var h ckptHeader
	if err := json.Unmarshal(rest[:n], &h); err != nil {
		return bad("header: %v", err)
	}
	rest = rest[n:]
	if len(rest) < 8 {
		return bad("truncated before agent state")
	}
	m := binary.LittleEndian.Uint64(rest)
	rest = rest[8:]
	if m != uint64(len(rest)) {
		return bad("agent state is %d bytes, header says %d", len(rest), m)
	}
	c := &Checkpoint{ExperimentID: h.ExperimentID, LearnerID: h.LearnerID, TaggedTopic: h.TaggedTopic,
		Offsets: map[int]int64{}, BetaStep: h.BetaStep, Sampled: h.Sampled, Inserted: h.Inserted,
		PolicyVersion: h.PolicyVersion, CreatedAt: h.CreatedAt, Agent: append([]byte(nil), rest...)}
	for k, o := range h.Offsets {
		// Only the key Marshal writes: "01" or "+1" would name partition 1
		// a second time, and which offset won would depend on map order.
		p, err := strconv.Atoi(k)
		if err != nil || p < 0 || strconv.Itoa(p) != k || o < 0 {
			return bad("offset %q: %d (want a partition number in plain decimal and an offset ≥ 0)", k, o)
		}
		c.Offsets[p] = o
	}
	if a := h.Adaptive; a != nil {
		c.Adaptive = &train.AdaptiveState{Weight: a.Weight, RegularMSE: a.RegularMSE, CrisisMSE: a.CrisisMSE,
			RegularStarted: a.RegularStarted, CrisisStarted: a.CrisisStarted}
		if err := c.Adaptive.Validate(); err != nil {
			return bad("%v", err)
		}
	}
	return c, nil
}

// ReadCheckpoint reads and decodes the checkpoint at path. A missing file
// is an error that says so and wraps fs.ErrNotExist.
func ReadCheckpoint(path string) (*Checkpoint, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, &notExistError{path: path, err: err}
	}
	if err != nil {
		return nil, fmt.Errorf("read checkpoint: %w", err)
	}
	c, err := UnmarshalCheckpoint(b)
	if err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w", path, err)
	}
	return c, nil
}

// notExistError is ReadCheckpoint's error for a missing file: it says so,
// and unwraps to the *fs.PathError, so errors.Is(err, fs.ErrNotExist).
type notExistError struct {
	path string
	err  error
}

func (e *notExistError) Error() string { return "checkpoint " + e.path + " does not exist" }

func (e *notExistError) Unwrap() error { return e.err }

// WriteCheckpoint writes c to path atomically: a temporary file in the same
// directory, fsynced, renamed over path, and the directory fsynced, so a
// crash leaves either the old or the new checkpoint, never a torn one.
func WriteCheckpoint(path string, c *Checkpoint) error {
	b, err := c.Marshal()
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write checkpoint: %w", err)
	}
	f, err := os.CreateTemp(dir, filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write checkpoint: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after the rename
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("write checkpoint: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("write checkpoint: sync: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write checkpoint: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write checkpoint: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// checkpoint writes the learner's state (a no-op without a path).
func (l *Learner) checkpoint() error {
	if l.cfg.CheckpointPath == "" {
		return nil
	}
	agent, err := l.tr.Agent().MarshalCheckpoint()
	if err != nil {
		return fmt.Errorf("learn: checkpoint: %w", err)
	}
	tc := l.tr.Counters()
	c := &Checkpoint{ExperimentID: l.cfg.ExperimentID, LearnerID: l.cfg.LearnerID, TaggedTopic: l.cfg.TaggedTopic,
		Offsets: map[int]int64{}, BetaStep: tc.BetaStep, Sampled: tc.Sampled, Inserted: tc.Inserted,
		PolicyVersion: l.Stats().PolicyVersion, CreatedAt: time.Now(), Agent: agent, Adaptive: tc.Adaptive}
	for p, o := range l.offsets {
		c.Offsets[p] = o
	}
	start := time.Now()
	if err := WriteCheckpoint(l.cfg.CheckpointPath, c); err != nil {
		return fmt.Errorf("learn: %w", err)
	}
	l.metrics.checkpoints.Inc()
	l.log.Debug().Str("path", l.cfg.CheckpointPath).Int64("updates", l.tr.Agent().Updates()).
		Dur("took", time.Since(start).Round(time.Millisecond)).Msg("checkpoint written")
	return nil
}
