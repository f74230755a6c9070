package learner

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/aelp/aelp/internal/kafkax"
	"github.com/aelp/aelp/internal/obs"
	"github.com/aelp/aelp/learner/ppo"
	"github.com/aelp/aelp/learner/replay"
	"github.com/aelp/aelp/schemas"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Config configures the learn role. Names in the original design are given
// in parentheses.
type Config struct {
	// Kafka is the connection.
	Kafka kafkax.Config
	// TaggedTopic is consumed (all partitions); MetricsTopic, PolicyTopic
	// and DeadLetterTopic are written. Defaults: the aelp.* topics.
	TaggedTopic, MetricsTopic, PolicyTopic, DeadLetterTopic string
	// ExperimentID (experiment_id) selects the records trained on; records
	// of other experiments are skipped. Required.
	ExperimentID string
	// LearnerID names this learner in metrics. Default "learner-1".
	LearnerID string
	// Replay configures the buffer: Capacity (replay_buffer_capacity),
	// CrisisWeight (crisis_parent_weight), Alpha
	// (importance_sampling_alpha), Beta0 (importance_sampling_beta),
	// MinCrisisRatio (min_crisis_parent_ratio), and Uniform = !enable_importance_sampling.
	Replay replay.Config
	// PPO configures the agent; ObsDim and NumActions must match the
	// records (StateDim and NumActions below).
	PPO ppo.Config
	// StateDim and NumActions validate records and size the networks.
	// Defaults 16 and 12.
	StateDim, NumActions int
	// MinBuffer is the number of items the buffer must hold before the
	// first update. Default 1000.
	MinBuffer int
	// BatchSize is the number of samples drawn from the buffer per update
	// (split into PPO minibatches). Default 256.
	BatchSize int
	// SamplesPerInsert is the rate limiter's target ratio of samples drawn
	// to items inserted, as Reverb's SampleToInsertRatio: training waits
	// when it is ahead of ingest, ingest waits when training lags (so the
	// buffer does not go stale unseen). Default 1.
	SamplesPerInsert float64
	// RateTolerance is how far, in samples, the ratio may drift either
	// way before one side waits. Default max(MinBuffer, 10·BatchSize)·SamplesPerInsert.
	RateTolerance float64
	// MetricsEvery, SnapshotEvery and CheckpointEvery are in updates.
	// Defaults 50, 100, 500.
	MetricsEvery, SnapshotEvery, CheckpointEvery int64
	// CheckpointPath is the checkpoint file; empty disables checkpoints.
	CheckpointPath string
	// Fresh starts from scratch even when CheckpointPath names a file;
	// without it a missing or corrupt checkpoint is an error.
	Fresh bool
	// FreshIfMissing starts from scratch when CheckpointPath does not exist
	// yet (a first deployment) and resumes from it when it does; a corrupt
	// checkpoint is still an error. It suits restarts by a supervisor.
	FreshIfMissing bool
	// Bounded reads up to the end offsets seen at start, trains until the
	// rate limiter has drawn SamplesPerInsert samples per item ingested
	// (and at least MinUpdates updates), writes the final checkpoint and
	// returns.
	Bounded bool
	// MinUpdates is the least number of updates a bounded run makes when
	// it has data. Default 0.
	MinUpdates int64
	// MaxUpdates stops training (and, bounded or not, returns) after this
	// many updates in total; 0 means no limit.
	MaxUpdates int64
	// Seed seeds the sampler and the agent's initialisation.
	Seed uint64
	// ProgressEvery is the interval of progress log lines. Default 10 s;
	// negative disables them.
	ProgressEvery time.Duration
	// Log receives progress and errors.
	Log zerolog.Logger
	// Registry, when set, receives the role's Prometheus metrics.
	Registry prometheus.Registerer
	// Health, when set, turns ready once the topics are reachable.
	Health *obs.Health
}

func (c *Config) setDefaults() {
	if c.TaggedTopic == "" {
		c.TaggedTopic = kafkax.TopicTagged
	}
	if c.MetricsTopic == "" {
		c.MetricsTopic = kafkax.TopicMetrics
	}
	if c.PolicyTopic == "" {
		c.PolicyTopic = kafkax.TopicPolicy
	}
	if c.DeadLetterTopic == "" {
		c.DeadLetterTopic = kafkax.TopicDeadLetter
	}
	if c.LearnerID == "" {
		c.LearnerID = "learner-1"
	}
	if c.Replay == (replay.Config{}) {
		c.Replay = DefaultReplay()
	}
	if c.StateDim == 0 {
		c.StateDim = 16
	}
	if c.NumActions == 0 {
		c.NumActions = 12
	}
	if c.PPO.ObsDim == 0 && c.PPO.NumActions == 0 {
		c.PPO = DefaultPPO(c.StateDim, c.NumActions)
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
	if c.RateTolerance == 0 {
		c.RateTolerance = math.Max(float64(c.MinBuffer), float64(10*c.BatchSize)) * c.SamplesPerInsert
	}
	if c.MetricsEvery == 0 {
		c.MetricsEvery = 50
	}
	if c.SnapshotEvery == 0 {
		c.SnapshotEvery = 100
	}
	if c.CheckpointEvery == 0 {
		c.CheckpointEvery = 500
	}
	if c.ProgressEvery == 0 {
		c.ProgressEvery = 10 * time.Second
	}
}

// DefaultReplay is the buffer configuration the learner uses by default:
// the design's values (capacity 50,000, crisis weight 5, α 0.6, β0 0.4,
// floor 0.05) with β annealed to 1 over 2,000 updates.
func DefaultReplay() replay.Config {
	c := replay.DefaultConfig()
	c.AnnealSteps = 2000
	return c
}

// DefaultPPO is the agent configuration the learner uses by default: the
// ppo package defaults with 2 epochs × 4 minibatches per update, each
// minibatch's gradient computed on 2 goroutines (a fixed count, not the
// machine's core count, so a seeded run does not depend on it).
func DefaultPPO(stateDim, numActions int) ppo.Config {
	c := ppo.DefaultConfig(stateDim, numActions)
	c.Epochs = 2
	c.Minibatches = 4
	c.Workers = 2
	return c
}

// WithDefaults returns c with the documented defaults filled in.
func (c Config) WithDefaults() Config { c.setDefaults(); return c }

// Validate reports the first invalid field.
func (c Config) Validate() error {
	c.setDefaults()
	switch {
	case c.ExperimentID == "":
		return errors.New("experiment id is empty")
	case c.PPO.ObsDim != c.StateDim || c.PPO.NumActions != c.NumActions:
		return fmt.Errorf("ppo network is %d×%d but records are %d×%d", c.PPO.ObsDim, c.PPO.NumActions, c.StateDim, c.NumActions)
	case c.MinBuffer < 1 || c.MinBuffer > c.Replay.Capacity:
		return fmt.Errorf("min buffer %d: must be in [1, replay_buffer_capacity %d]", c.MinBuffer, c.Replay.Capacity)
	case c.BatchSize < 1:
		return fmt.Errorf("batch size %d: must be at least 1", c.BatchSize)
	case !(c.SamplesPerInsert > 0) || math.IsInf(c.SamplesPerInsert, 0):
		return fmt.Errorf("samples per insert %v: must be positive", c.SamplesPerInsert)
	case !(c.RateTolerance > 0) || math.IsInf(c.RateTolerance, 0):
		return fmt.Errorf("rate tolerance %v: must be positive", c.RateTolerance)
	case c.MetricsEvery < 1 || c.SnapshotEvery < 1 || c.CheckpointEvery < 1:
		return errors.New("metrics, snapshot and checkpoint intervals must be at least 1 update")
	case c.MinUpdates < 0 || c.MaxUpdates < 0:
		return errors.New("min and max updates must not be negative")
	case !c.Fresh && c.CheckpointPath == "":
		return errors.New("no checkpoint path: give --checkpoint FILE, or --fresh to train without resuming")
	case c.FreshIfMissing && c.CheckpointPath == "":
		return errors.New("fresh-if-missing needs a checkpoint path")
	}
	if err := c.Replay.Validate(); err != nil {
		return err
	}
	if err := c.PPO.Validate(); err != nil {
		return err
	}
	return c.Kafka.Validate()
}

func (c Config) limits() schemas.Limits {
	return schemas.Limits{StateDim: c.StateDim, NumActions: c.NumActions}
}
