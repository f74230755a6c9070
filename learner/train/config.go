package train

import (
	"fmt"
	"math"

	"github.com/aelp/aelp/learner/ppo"
	"github.com/aelp/aelp/learner/replay"
	"github.com/aelp/aelp/schemas"
)

// PCG stream words: the agent's generator is rand.NewPCG(Config.Seed,
// agentStream) and the buffer's sampler rand.NewPCG(Config.Seed,
// bufferStream), so one seed gives two independent streams, the same in
// every caller (the learn role, the A/B experiment, the benchmarks).
const (
	agentStream  = 0x5eed_b0f
	bufferStream = 0xb0ff_e4
)

// Config configures a Trainer. The zero value of a field takes the default
// named in its comment (see DefaultConfig and WithDefaults).
type Config struct {
	// Replay configures the buffer: Capacity, CrisisWeight, Alpha,
	// Temperature, Beta0 and AnnealSteps, MinCrisisRatio, and Uniform to
	// sample uniformly. Default DefaultReplay().
	Replay replay.Config
	// PPO configures the agent; PPO.ObsDim is the width of the states
	// inserted and PPO.NumActions the number of actions. Default
	// DefaultPPO(16, 12).
	PPO ppo.Config
	// MinBuffer is the number of items the buffer must hold before the
	// first update. Default 1,000.
	MinBuffer int
	// BatchSize is the number of samples drawn per update (split into
	// PPO.Minibatches minibatches). Default 256.
	BatchSize int
	// SamplesPerInsert is the rate limiter's target ratio of samples drawn
	// to items inserted, as Reverb's SampleToInsertRatio: sampling waits
	// when it is ahead of inserting, inserting waits when sampling lags (so
	// that the buffer does not turn over unseen). Default 1.
	SamplesPerInsert float64
	// RateTolerance is how far, in samples, SamplesPerInsert·inserted −
	// sampled may drift either way before one side waits. 0 (the default)
	// derives it: max(MinBuffer, 10·BatchSize)·SamplesPerInsert (see
	// Tolerance).
	RateTolerance float64
	// MinUpdates is the least number of updates WantsMore asks for once no
	// more data will come (a bounded run). Default 0.
	MinUpdates int64
	// GroundTruthKey is the metadata key of the true segment (an EventType
	// symbol). Experiences that carry it feed the tag accuracy, the
	// per-segment returns and the batches' true crisis share; it is never
	// used to train. Default schemas.KeyTrueSegment.
	GroundTruthKey string
	// Seed seeds the agent's initialisation and minibatch order, and the
	// buffer's sampler (two PCG streams of the same seed).
	Seed uint64
	// SoftPriority gives an experience the priority w_c·p + w_r·(1 − p)
	// from its tag_score p (the tagger's calibrated P(crisis), clamped to
	// [0, 1]; 1 or 0 for a labelled one) instead of w_c or w_r by its hard
	// tag (w_c = Replay.CrisisWeight, w_r = Replay.RegularWeight). The
	// hard tag still chooses the item's stratum, so the crisis floor and
	// the batches' tagged crisis share are as before. Default false.
	SoftPriority bool
	// Adaptive makes the crisis weight follow the strata's TD errors (see
	// Adaptive). Default off, MaxWeight 14.6, Smoothing 100 updates.
	Adaptive Adaptive
}

// DefaultReplay is the buffer configuration of the learn role and the A/B
// experiment by default: the design's values (capacity 50,000, crisis
// weight 5, α 0.6, β0 0.4, floor 0.05) with β annealed to 1 over 2,000
// updates.
func DefaultReplay() replay.Config {
	c := replay.DefaultConfig()
	c.AnnealSteps = 2000
	return c
}

// DefaultPPO is the agent configuration of the learn role by default: the
// ppo package defaults with 2 epochs × 4 minibatches per update, computed
// on the calling goroutine (Workers 1). On the 2-core machine a second
// worker, which waits blocked between its tasks, made BenchmarkUpdate
// slower, idle or loaded (learner/ppo/README.md): the 25 hand-offs of an
// update cost more than the second worker gains. The results do not
// depend on the count (ppo.Config.Workers).
func DefaultPPO(stateDim, numActions int) ppo.Config {
	c := ppo.DefaultConfig(stateDim, numActions)
	c.Epochs = 2
	c.Minibatches = 4
	c.Workers = 1
	return c
}

// DefaultConfig returns the documented defaults (RateTolerance 0, derived).
func DefaultConfig() Config { return Config{}.WithDefaults() }

// WithDefaults returns c with the documented defaults in its zero fields.
// RateTolerance stays 0 when it is: it is derived when used (Tolerance).
func (c Config) WithDefaults() Config {
	if c.Replay == (replay.Config{}) {
		c.Replay = DefaultReplay()
	}
	if c.PPO.ObsDim == 0 && c.PPO.NumActions == 0 {
		c.PPO = DefaultPPO(16, 12)
	}
	if c.MinBuffer == 0 {
		c.MinBuffer = 1000
	}
	if c.BatchSize == 0 {
		c.BatchSize = 256
	}
	if c.SamplesPerInsert == 0 {
		c.SamplesPerInsert = 1
	}
	if c.GroundTruthKey == "" {
		c.GroundTruthKey = schemas.KeyTrueSegment
	}
	c.Adaptive = c.Adaptive.withDefaults()
	return c
}

// Tolerance returns the rate limiter's tolerance in samples: RateTolerance,
// or when it is 0, max(MinBuffer, 10·BatchSize)·SamplesPerInsert (ten
// batches, or the warm-up buffer when larger). Call it on a config with
// defaults.
func (c Config) Tolerance() float64 {
	if c.RateTolerance != 0 {
		return c.RateTolerance
	}
	return math.Max(float64(c.MinBuffer), float64(10*c.BatchSize)) * c.SamplesPerInsert
}

// Validate reports the first invalid field, after defaults.
func (c Config) Validate() error {
	c = c.WithDefaults()
	if err := c.Replay.Validate(); err != nil {
		return err
	}
	if err := c.PPO.Validate(); err != nil {
		return err
	}
	switch {
	case c.MinBuffer < 1 || c.MinBuffer > c.Replay.Capacity:
		return fmt.Errorf("min buffer %d: must be in [1, replay buffer capacity %d]", c.MinBuffer, c.Replay.Capacity)
	case c.BatchSize < 1:
		return fmt.Errorf("batch size %d: must be at least 1", c.BatchSize)
	case !(c.SamplesPerInsert > 0) || math.IsInf(c.SamplesPerInsert, 0):
		return fmt.Errorf("samples per insert %v: must be positive and finite", c.SamplesPerInsert)
	case !(c.RateTolerance >= 0) || math.IsInf(c.RateTolerance, 0):
		return fmt.Errorf("rate tolerance %v: must be 0 (derived) or positive and finite", c.RateTolerance)
	case c.MinUpdates < 0:
		return fmt.Errorf("min updates %d: must not be negative", c.MinUpdates)
	}
	return c.Adaptive.validate(c)
}
