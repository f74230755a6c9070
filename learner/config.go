package learner

import (
	"cmp"
	"errors"
	"fmt"
	"time"

	"github.com/aelp/aelp/internal/kafkax"
	"github.com/aelp/aelp/internal/lifecycle"
	"github.com/aelp/aelp/internal/obs"
	"github.com/aelp/aelp/learner/ppo"
	"github.com/aelp/aelp/learner/replay"
	"github.com/aelp/aelp/learner/train"
	"github.com/aelp/aelp/producers/sim"
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
	// and DeadLetterTopic are written, and CandidatesTopic, with
	// OPE.Promote lcb, takes the snapshots the gate held back. Defaults:
	// the aelp.* topics.
	TaggedTopic, MetricsTopic, PolicyTopic, DeadLetterTopic, CandidatesTopic string
	// ExperimentID (experiment_id) selects the records trained on; records
	// of other experiments are skipped. Required.
	ExperimentID string
	// LearnerID names this learner in metrics. Default "learner-1".
	LearnerID string
	// Replay configures the buffer: Capacity (replay_buffer_capacity),
	// CrisisWeight (crisis_parent_weight), Alpha
	// (importance_sampling_alpha), Beta0 (importance_sampling_beta),
	// MinCrisisRatio (min_crisis_parent_ratio), and Uniform = !enable_importance_sampling.
	// Default DefaultReplay().
	Replay replay.Config
	// Adaptive makes the crisis weight follow the tagged strata's TD
	// errors, starting from Replay.CrisisWeight, within [1,
	// Adaptive.MaxWeight] (train.Adaptive describes the rule). Default off,
	// max 14.6, smoothing 100 updates.
	Adaptive train.Adaptive
	// PPO configures the agent; ObsDim and NumActions must match the
	// records (StateDim and NumActions below). Default
	// DefaultPPO(StateDim, NumActions).
	PPO ppo.Config
	// StateDim and NumActions validate records and size the networks.
	// Defaults 16 and 12.
	StateDim, NumActions int
	// MinBuffer is the number of items the buffer must hold before the
	// first update. Default 1000 (train.DefaultConfig).
	MinBuffer int
	// BatchSize is the number of samples drawn from the buffer per update
	// (split into PPO minibatches). Default 256 (train.DefaultConfig).
	BatchSize int
	// SamplesPerInsert is the rate limiter's target ratio of samples drawn
	// to items inserted, as Reverb's SampleToInsertRatio: training waits
	// when it is ahead of ingest, ingest waits when training lags (so the
	// buffer does not go stale unseen). Default 1.
	SamplesPerInsert float64
	// RateTolerance is how far, in samples, the ratio may drift either
	// way before one side waits. 0 (the default) derives it:
	// max(MinBuffer, 10·BatchSize)·SamplesPerInsert (train.Config.Tolerance).
	RateTolerance float64
	// GroundTruthKey is the metadata key of the true segment, read only to
	// report the tag accuracy and the mean return per segment. Default
	// schemas.KeyTrueSegment.
	GroundTruthKey string
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
	// Seed seeds the sampler and the agent's initialisation (two PCG
	// streams of it, as train.Config.Seed).
	Seed uint64
	// ProgressEvery is the interval of progress log lines. Default 10 s;
	// negative disables them.
	ProgressEvery time.Duration
	// Log receives progress and errors.
	Log zerolog.Logger
	// Registry, when set, receives the role's Prometheus metrics.
	Registry prometheus.Registerer
	// ShutdownTimeout is how long a stopped learner has to finish the
	// records in hand and publish and write its final figures, snapshot and
	// checkpoint (lifecycle.Role). Default lifecycle.DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
	// Health, when set, turns ready once the tagged topic's offsets are
	// listed.
	Health *obs.Health
	// OPE holds out users for off-policy evaluation of every snapshot and
	// gates their promotion (OPEConfig). Default DefaultOPEConfig(): none
	// held out, every snapshot promoted.
	OPE OPEConfig
}

// DefaultConfig returns the learn role's defaults: the aelp topics,
// learner id learner-1, records of the default simulator's shape
// (sim.DefaultConfig: 16 state values, 12 actions) and DefaultPPO for it,
// the training core's defaults (train.DefaultConfig: DefaultReplay, a
// buffer of 1,000 before the first update, batches of 256, one sample per
// insert, the ground truth under schemas.KeyTrueSegment), metrics every 50
// updates, a snapshot every 100, a checkpoint every 500, progress every
// 10 s, seed 1, lifecycle.DefaultShutdownTimeout and DefaultOPEConfig (no
// user held out, every snapshot promoted). Seed, whose zero value
// is a seed, is left alone by setDefaults; every other zero field takes
// the value given here.
func DefaultConfig() Config {
	sc := sim.DefaultConfig()
	t := train.DefaultConfig()
	return Config{
		TaggedTopic: kafkax.TopicTagged, MetricsTopic: kafkax.TopicMetrics, PolicyTopic: kafkax.TopicPolicy,
		DeadLetterTopic: kafkax.TopicDeadLetter, CandidatesTopic: kafkax.TopicCandidates, LearnerID: "learner-1",
		Replay: t.Replay, Adaptive: t.Adaptive, PPO: DefaultPPO(sc.StateDim, sc.NumActions()), StateDim: sc.StateDim, NumActions: sc.NumActions(),
		MinBuffer: t.MinBuffer, BatchSize: t.BatchSize, SamplesPerInsert: t.SamplesPerInsert, RateTolerance: t.RateTolerance,
		GroundTruthKey: t.GroundTruthKey, MetricsEvery: 50, SnapshotEvery: 100, CheckpointEvery: 500,
		Seed: 1, ProgressEvery: 10 * time.Second, ShutdownTimeout: lifecycle.DefaultShutdownTimeout,
		OPE: DefaultOPEConfig(),
	}
}

func (c *Config) setDefaults() {
	d := DefaultConfig()
	c.TaggedTopic = cmp.Or(c.TaggedTopic, d.TaggedTopic)
	c.MetricsTopic = cmp.Or(c.MetricsTopic, d.MetricsTopic)
	c.PolicyTopic = cmp.Or(c.PolicyTopic, d.PolicyTopic)
	c.DeadLetterTopic = cmp.Or(c.DeadLetterTopic, d.DeadLetterTopic)
	c.CandidatesTopic = cmp.Or(c.CandidatesTopic, d.CandidatesTopic)
	c.OPE.setDefaults()
	c.LearnerID = cmp.Or(c.LearnerID, d.LearnerID)
	c.StateDim = cmp.Or(c.StateDim, d.StateDim)
	c.NumActions = cmp.Or(c.NumActions, d.NumActions)
	if c.PPO.ObsDim == 0 && c.PPO.NumActions == 0 {
		c.PPO = DefaultPPO(c.StateDim, c.NumActions)
	}
	// The training core fills its own fields, from its defaults.
	t := c.TrainConfig().WithDefaults()
	c.Replay, c.MinBuffer, c.BatchSize, c.SamplesPerInsert = t.Replay, t.MinBuffer, t.BatchSize, t.SamplesPerInsert
	c.GroundTruthKey, c.Adaptive = t.GroundTruthKey, t.Adaptive
	c.MetricsEvery = cmp.Or(c.MetricsEvery, d.MetricsEvery)
	c.SnapshotEvery = cmp.Or(c.SnapshotEvery, d.SnapshotEvery)
	c.CheckpointEvery = cmp.Or(c.CheckpointEvery, d.CheckpointEvery)
	c.ProgressEvery = cmp.Or(c.ProgressEvery, d.ProgressEvery)
	c.ShutdownTimeout = cmp.Or(c.ShutdownTimeout, d.ShutdownTimeout)
}

// DefaultReplay is the buffer configuration the learner uses by default,
// train.DefaultReplay: the design's values (capacity 50,000, crisis weight
// 5, α 0.6, β0 0.4, floor 0.05) with β annealed to 1 over 2,000 updates.
func DefaultReplay() replay.Config { return train.DefaultReplay() }

// DefaultPPO is the agent configuration the learner uses by default,
// train.DefaultPPO: the ppo package defaults with 2 epochs × 4
// minibatches per update, each minibatch's gradient computed on 2
// goroutines (a fixed count, so a seeded run does not depend on the
// machine).
func DefaultPPO(stateDim, numActions int) ppo.Config { return train.DefaultPPO(stateDim, numActions) }

// TrainConfig returns the training core's configuration of the learn role:
// its buffer, agent, rate limiter, ground-truth key and seed.
func (c Config) TrainConfig() train.Config {
	return train.Config{
		Replay: c.Replay, PPO: c.PPO, MinBuffer: c.MinBuffer, BatchSize: c.BatchSize,
		SamplesPerInsert: c.SamplesPerInsert, RateTolerance: c.RateTolerance, MinUpdates: c.MinUpdates,
		GroundTruthKey: c.GroundTruthKey, Seed: c.Seed, Adaptive: c.Adaptive,
	}
}

// WithDefaults returns c with the documented defaults filled in.
func (c Config) WithDefaults() Config { c.setDefaults(); return c }

// ErrNoCheckpoint is returned by Config.Validate when the learner has
// neither a checkpoint path nor Fresh: it could not resume, nor save.
var ErrNoCheckpoint = errors.New("no checkpoint path, and not fresh")

// Validate reports the first invalid field.
func (c Config) Validate() error {
	c.setDefaults()
	switch {
	case c.ExperimentID == "":
		return errors.New("experiment id is empty")
	case c.PPO.ObsDim != c.StateDim || c.PPO.NumActions != c.NumActions:
		return fmt.Errorf("ppo network is %d×%d but records are %d×%d", c.PPO.ObsDim, c.PPO.NumActions, c.StateDim, c.NumActions)
	case c.MetricsEvery < 1 || c.SnapshotEvery < 1 || c.CheckpointEvery < 1:
		return errors.New("metrics, snapshot and checkpoint intervals must be at least 1 update")
	case c.MaxUpdates < 0:
		return fmt.Errorf("max updates %d: must not be negative", c.MaxUpdates)
	case !c.Fresh && c.CheckpointPath == "":
		return ErrNoCheckpoint
	case c.FreshIfMissing && c.CheckpointPath == "":
		return errors.New("fresh-if-missing needs a checkpoint path")
	case c.ShutdownTimeout < 0:
		return fmt.Errorf("shutdown timeout %s: must not be negative", c.ShutdownTimeout)
	}
	if err := c.TrainConfig().Validate(); err != nil {
		return err
	}
	if err := c.OPE.Validate(); err != nil {
		return err
	}
	if c.OPE.Promote == PromoteLCB && c.CandidatesTopic == c.PolicyTopic {
		return fmt.Errorf("candidates topic %s is the policy topic: held-back snapshots would be served", c.CandidatesTopic)
	}
	return c.Kafka.Validate()
}

func (c Config) limits() schemas.Limits {
	return schemas.Limits{StateDim: c.StateDim, NumActions: c.NumActions}
}
