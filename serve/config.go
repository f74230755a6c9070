package serve

import (
	"cmp"
	"errors"
	"fmt"
	"time"

	"github.com/aelp/aelp/internal/kafkax"
	"github.com/aelp/aelp/internal/lifecycle"
	"github.com/aelp/aelp/internal/obs"
	"github.com/aelp/aelp/producers/sim"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Known outcome kinds: the ones aelp join treats specially, and CLICK.
var defaultKinds = []string{"IMPRESSION", "CLICK", "CONVERSION", "END"}

// Config configures the decision server (`aelp serve`).
type Config struct {
	// Kafka is the connection.
	Kafka kafkax.Config
	// Addr is the HTTP listen address of the API, /metrics and /healthz
	// (":8080", "127.0.0.1:0"). Default ":8080".
	Addr string
	// ExperimentID names the experiment: the policy snapshots followed
	// (the policy topic's key) and the decisions' experiment_id. Required.
	ExperimentID string
	// PolicyTopic is followed for snapshots (default aelp.policy);
	// DecisionsTopic and OutcomesTopic receive the logged records (default
	// aelp.decisions and aelp.outcomes, keyed by user id).
	PolicyTopic, DecisionsTopic, OutcomesTopic string
	// Partitions of the decisions and outcomes topics when they are
	// created. Default 6.
	Partitions int
	// StateDim is the state width a request must carry and a snapshot must
	// take. Default 16 (the simulator's).
	StateDim int
	// BidLevels and Creatives lay out the actions as the simulator does
	// (action = bid·Creatives + creative, sim.Config.Decode). Default 4
	// and 3.
	BidLevels, Creatives int
	// Epsilon is the exploration share ε: the served distribution is
	// (1 − ε)·π + ε/K before the floor. Default 0.05; in [0, 1].
	Epsilon float64
	// MinPropensity is the floor every action's served probability is
	// raised to (by more uniform mixing, see Mix). Default 0; at most 1/K.
	MinPropensity float64
	// AllowLoggingPolicy serves the uniform logging policy (version −1)
	// until the first snapshot is loaded; without it the server is not
	// ready and refuses decisions (503) until then.
	AllowLoggingPolicy bool
	// LogSync answers a decision, activation or outcome only once the
	// broker has acknowledged its record (acks=all). Default false: the
	// record is queued in the log buffer and the answer sent at once.
	LogSync bool
	// LogBuffer is the number of records the log buffer holds; a request
	// that finds it full gets 503 with Retry-After. Default 10,000.
	LogBuffer int
	// LogBatch is the most records one write to the broker carries.
	// Default 1,000.
	LogBatch int
	// MaxBody is the largest request body read, in bytes; a longer one is
	// refused (400, field "body") without being read further. Default
	// 65,536.
	MaxBody int64
	// MaxDeferred bounds the deferred decisions awaiting activation; a
	// deferred decide that finds it full gets 503. Default 100,000.
	MaxDeferred int
	// DeferTTL is how long a deferred decision waits for its activation;
	// then it is dropped, counted and never logged. Default 10m.
	DeferTTL time.Duration
	// OutcomeKinds are the outcome kinds accepted; others get 400.
	// Default IMPRESSION, CLICK, CONVERSION, END.
	OutcomeKinds []string
	// RetryAfter is the Retry-After of a 503. Default 1s.
	RetryAfter time.Duration
	// Seed seeds the action sampling (0: a random seed).
	Seed uint64
	// Log, Registry, ShutdownTimeout and Health as for the other roles;
	// Registry is also what /metrics serves (a fresh one when nil).
	Log             zerolog.Logger
	Registry        *prometheus.Registry
	ShutdownTimeout time.Duration
	Health          *obs.Health
}

// DefaultConfig returns the server's defaults (ExperimentID unset).
func DefaultConfig() Config {
	s := sim.DefaultConfig()
	return Config{
		Kafka: kafkax.DefaultConfig(), Addr: ":8080",
		PolicyTopic: kafkax.TopicPolicy, DecisionsTopic: kafkax.TopicDecisions, OutcomesTopic: kafkax.TopicOutcomes,
		Partitions: 6, StateDim: s.StateDim, BidLevels: s.BidLevels, Creatives: s.Creatives,
		Epsilon: 0.05, LogBuffer: 10000, LogBatch: 1000, MaxBody: 64 << 10,
		MaxDeferred: 100000, DeferTTL: 10 * time.Minute, OutcomeKinds: append([]string(nil), defaultKinds...),
		RetryAfter: time.Second, ShutdownTimeout: lifecycle.DefaultShutdownTimeout,
	}
}

func (c *Config) setDefaults() {
	d := DefaultConfig()
	c.Addr = cmp.Or(c.Addr, d.Addr)
	c.PolicyTopic = cmp.Or(c.PolicyTopic, d.PolicyTopic)
	c.DecisionsTopic = cmp.Or(c.DecisionsTopic, d.DecisionsTopic)
	c.OutcomesTopic = cmp.Or(c.OutcomesTopic, d.OutcomesTopic)
	c.Partitions = cmp.Or(c.Partitions, d.Partitions)
	c.StateDim = cmp.Or(c.StateDim, d.StateDim)
	c.BidLevels = cmp.Or(c.BidLevels, d.BidLevels)
	c.Creatives = cmp.Or(c.Creatives, d.Creatives)
	c.LogBuffer = cmp.Or(c.LogBuffer, d.LogBuffer)
	c.LogBatch = cmp.Or(c.LogBatch, d.LogBatch)
	c.MaxBody = cmp.Or(c.MaxBody, d.MaxBody)
	c.MaxDeferred = cmp.Or(c.MaxDeferred, d.MaxDeferred)
	c.DeferTTL = cmp.Or(c.DeferTTL, d.DeferTTL)
	if len(c.OutcomeKinds) == 0 {
		c.OutcomeKinds = d.OutcomeKinds
	}
	c.RetryAfter = cmp.Or(c.RetryAfter, d.RetryAfter)
	c.ShutdownTimeout = cmp.Or(c.ShutdownTimeout, d.ShutdownTimeout)
}

// NumActions returns BidLevels × Creatives.
func (c Config) NumActions() int { return c.BidLevels * c.Creatives }

// ErrNoExperiment is returned by Validate without an experiment id.
var ErrNoExperiment = errors.New("no experiment id")

// Validate reports the first invalid field (zero fields take their
// defaults first).
func (c Config) Validate() error {
	c.setDefaults()
	k := c.NumActions()
	switch {
	case c.ExperimentID == "":
		return ErrNoExperiment
	case c.StateDim < 1 || c.BidLevels < 1 || c.Creatives < 1 || k < 2:
		return fmt.Errorf("state dim %d, %d bid levels × %d creatives: need a state and at least 2 actions", c.StateDim, c.BidLevels, c.Creatives)
	case !(c.Epsilon >= 0 && c.Epsilon <= 1):
		return fmt.Errorf("epsilon %v: must be in [0, 1]", c.Epsilon)
	case !(c.MinPropensity >= 0 && c.MinPropensity <= 1/float64(k)):
		return fmt.Errorf("min propensity %v: must be in [0, 1/%d actions]", c.MinPropensity, k)
	case c.LogBuffer < 1 || c.LogBatch < 1 || c.MaxBody < 1 || c.MaxDeferred < 1:
		return fmt.Errorf("log buffer %d, log batch %d, max body %d, max deferred %d: must be positive", c.LogBuffer, c.LogBatch, c.MaxBody, c.MaxDeferred)
	case c.DeferTTL < 0 || c.RetryAfter < 0 || c.ShutdownTimeout < 0:
		return fmt.Errorf("defer ttl %s, retry after %s, shutdown timeout %s: must not be negative", c.DeferTTL, c.RetryAfter, c.ShutdownTimeout)
	case c.Partitions < 1:
		return fmt.Errorf("partitions %d: must be positive", c.Partitions)
	case c.DecisionsTopic == c.OutcomesTopic:
		return fmt.Errorf("decisions and outcomes topics are both %s", c.DecisionsTopic)
	}
	for _, kind := range c.OutcomeKinds {
		if kind == "" {
			return errors.New("outcome kinds: an empty kind")
		}
	}
	return c.Kafka.Validate()
}
