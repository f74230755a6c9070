package producers

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aelp/aelp/internal/kafkax"
	"github.com/aelp/aelp/internal/lifecycle"
	"github.com/aelp/aelp/internal/obs"
	"github.com/aelp/aelp/learner/policy"
	"github.com/aelp/aelp/learner/ppo"
	"github.com/aelp/aelp/producers/sim"
	"github.com/aelp/aelp/schemas"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
	"golang.org/x/sync/errgroup"
)

// SimulateConfig configures the simulate role.
type SimulateConfig struct {
	// Kafka is the connection.
	Kafka kafkax.Config
	// Topic receives the Experience records. Default aelp.experiences.raw.
	Topic string
	// PolicyTopic carries PolicySnapshot records; the newest for
	// ExperimentID becomes the behaviour policy. Default aelp.policy.
	PolicyTopic string
	// ExperimentID tags every record and selects policy snapshots. Required.
	ExperimentID string
	// Users, when > 0, bounds the run: that many users' journeys are
	// published, flushed, and Run returns.
	Users int64
	// Rate, when > 0, caps the experiences published per second over all
	// workers. With Users == 0 the role runs until its context ends.
	Rate float64
	// Workers is the number of simulator goroutines. Default 2.
	Workers int
	// Seed makes the simulated stream reproducible: the same seed gives
	// the same users and transitions under the same policy.
	Seed uint64
	// Sim is the simulator model's configuration. Default sim.DefaultConfig().
	Sim sim.Config
	// FollowPolicy makes the simulators act with the newest policy
	// snapshot (the default in the CLI); false keeps the uniform logging
	// policy throughout.
	FollowPolicy bool
	// Partitions of the topics created when missing. Default 6.
	Partitions int
	// BatchRecords is how many records a worker hands the writer at once.
	// Default 512.
	BatchRecords int
	// ProgressEvery is the interval of progress log lines. Default 10 s;
	// negative disables them.
	ProgressEvery time.Duration
	// Pace, when set, is called by each worker before it simulates the
	// next batch of users and may block (returning nil) to hold the
	// simulators back, e.g. to keep them within reach of an in-process
	// learner; an error stops the worker.
	Pace func(ctx context.Context) error
	// Log receives progress and errors.
	Log zerolog.Logger
	// Registry, when set, receives the role's Prometheus metrics.
	Registry prometheus.Registerer
	// ShutdownTimeout is how long a stopped simulator has to flush what it
	// simulated (lifecycle.Role). Default lifecycle.DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
	// Health, when set, turns ready once the topics are reachable.
	Health *obs.Health
}

// DefaultSimulateConfig returns the simulate role's defaults: the aelp
// topics, 2 workers, seed 1, sim.DefaultConfig(), acting with the newest
// policy snapshot, 6 partitions, batches of 512 records, progress every
// 10 s and lifecycle.DefaultShutdownTimeout. Seed and FollowPolicy, whose
// zero values mean something, are left alone by setDefaults; every other
// zero field takes the value given here.
func DefaultSimulateConfig() SimulateConfig {
	return SimulateConfig{
		Topic: kafkax.TopicRaw, PolicyTopic: kafkax.TopicPolicy, Workers: 2, Seed: 1, Sim: sim.DefaultConfig(),
		FollowPolicy: true, Partitions: 6, BatchRecords: 512, ProgressEvery: 10 * time.Second,
		ShutdownTimeout: lifecycle.DefaultShutdownTimeout,
	}
}

func (c *SimulateConfig) setDefaults() {
	d := DefaultSimulateConfig()
	c.Topic = cmp.Or(c.Topic, d.Topic)
	c.PolicyTopic = cmp.Or(c.PolicyTopic, d.PolicyTopic)
	c.Workers = cmp.Or(c.Workers, d.Workers)
	c.Sim = cmp.Or(c.Sim, d.Sim)
	c.Partitions = cmp.Or(c.Partitions, d.Partitions)
	c.BatchRecords = cmp.Or(c.BatchRecords, d.BatchRecords)
	c.ProgressEvery = cmp.Or(c.ProgressEvery, d.ProgressEvery)
	c.ShutdownTimeout = cmp.Or(c.ShutdownTimeout, d.ShutdownTimeout)
}

// ErrUnbounded is returned by SimulateConfig.Validate when neither Users
// nor Rate is set: nothing would bound the run or its rate.
var ErrUnbounded = errors.New("neither a number of users (bounded) nor a rate (runs until stopped)")

// Validate reports the first invalid field.
func (c SimulateConfig) Validate() error {
	c.setDefaults()
	switch {
	case c.ExperimentID == "":
		return errors.New("experiment id is empty")
	case c.Users < 0:
		return fmt.Errorf("users %d: must not be negative", c.Users)
	case c.Rate < 0 || math.IsNaN(c.Rate) || math.IsInf(c.Rate, 0):
		return fmt.Errorf("rate %v: must be a positive number", c.Rate)
	case c.Users == 0 && c.Rate == 0:
		return ErrUnbounded
	case c.Workers < 1:
		return fmt.Errorf("workers %d: must be at least 1", c.Workers)
	case c.BatchRecords < 1:
		return fmt.Errorf("batch records %d: must be at least 1", c.BatchRecords)
	}
	if err := c.Sim.Validate(); err != nil {
		return fmt.Errorf("simulator: %w", err)
	}
	if c.ShutdownTimeout < 0 {
		return fmt.Errorf("shutdown timeout %s: must not be negative", c.ShutdownTimeout)
	}
	return c.Kafka.Validate()
}

// SegmentStats are the episode outcomes of one segment under the acting
// policies.
type SegmentStats struct {
	// Episodes and Conversions count finished journeys and those that
	// converted.
	Episodes, Conversions int64
	// ReturnSum is the sum of episode returns (mean = ReturnSum/Episodes).
	ReturnSum float64
}

// MeanReturn is the mean episode return (0 with no episodes).
func (s SegmentStats) MeanReturn() float64 {
	if s.Episodes == 0 {
		return 0
	}
	return s.ReturnSum / float64(s.Episodes)
}

// ConversionRate is the share of journeys that converted.
func (s SegmentStats) ConversionRate() float64 {
	if s.Episodes == 0 {
		return 0
	}
	return float64(s.Conversions) / float64(s.Episodes)
}

// SimulateReport summarises what a simulate run published. Every count is
// of records acknowledged by the broker.
type SimulateReport struct {
	// Users is the number of journeys whose records were all acknowledged.
	Users int64
	// Experiences is the number of acknowledged Experience records.
	Experiences int64
	// Crisis and Regular are the per-segment outcomes.
	Crisis, Regular SegmentStats
	// PolicyVersion is the newest policy version acted with (−1: logging).
	PolicyVersion int64
	// Elapsed is the run time.
	Elapsed time.Duration
}

// Simulator is the simulate role: K workers simulate user journeys with the
// current behaviour policy and publish them.
type Simulator struct {
	cfg     SimulateConfig
	log     zerolog.Logger
	runID   string
	metrics *simMetrics

	nextUser  atomic.Int64
	users     atomic.Int64
	records   atomic.Int64
	policy    atomic.Pointer[actingPolicy]
	actedWith atomic.Int64

	mu       sync.Mutex
	start    time.Time
	segments [2]SegmentStats // [0] regular, [1] crisis
}

// NewSimulator validates cfg and returns the role, ready to Run.
func NewSimulator(cfg SimulateConfig) (*Simulator, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("simulate: %w", err)
	}
	var rid [4]byte
	if _, err := rand.Read(rid[:]); err != nil {
		return nil, fmt.Errorf("simulate: run id: %w", err)
	}
	s := &Simulator{cfg: cfg, log: cfg.Log, runID: hex.EncodeToString(rid[:]), metrics: newSimMetrics(cfg.Registry)}
	s.actedWith.Store(-1)
	return s, nil
}

// Stats returns the report so far (safe to call while Run runs).
func (s *Simulator) Stats() SimulateReport {
	s.mu.Lock()
	r := SimulateReport{Crisis: s.segments[1], Regular: s.segments[0]}
	start := s.start
	s.mu.Unlock()
	r.Users = s.users.Load()
	r.Experiences = s.records.Load()
	r.PolicyVersion = s.actedWith.Load()
	if !start.IsZero() {
		r.Elapsed = time.Since(start)
	}
	return r
}

// Run publishes until the bound is reached or ctx ends, then flushes every
// record already simulated (within ShutdownTimeout of a stop) and returns
// the report. Cancelling ctx is the clean way to stop an unbounded run.
func (s *Simulator) Run(ctx context.Context) (SimulateReport, error) {
	cfg := s.cfg
	s.mu.Lock()
	s.start = time.Now()
	s.mu.Unlock()
	var w *kafkax.Writer
	err := lifecycle.Run(ctx, lifecycle.Role{
		Name: "simulate", Kafka: cfg.Kafka,
		Topics: []kafkax.TopicSpec{
			{Name: cfg.Topic, Partitions: cfg.Partitions},
			{Name: cfg.PolicyTopic, Partitions: 1, Compact: true},
		},
		Run:             func(ctx context.Context, sc *lifecycle.Scope) error { return s.run(ctx, sc, &w) },
		Drain:           func(context.Context) error { return s.drain(w) },
		ShutdownTimeout: cfg.ShutdownTimeout, Health: cfg.Health, Log: s.log,
	})
	return s.Stats(), err
}

// run starts the policy watcher and the progress log in the role's scope,
// then the workers, and waits for the workers.
func (s *Simulator) run(ctx context.Context, sc *lifecycle.Scope, wp **kafkax.Writer) error {
	cfg := s.cfg
	w, err := sc.Kafka().NewWriter(ctx, cfg.Topic, kafkax.WriterOptions{Logger: s.log})
	if err != nil {
		return fmt.Errorf("simulate: %w", err)
	}
	*wp = w
	s.log.Info().Str("experiment", cfg.ExperimentID).Str("topic", cfg.Topic).Int64("users", cfg.Users).
		Float64("rate", cfg.Rate).Int("workers", cfg.Workers).Uint64("seed", cfg.Seed).Str("run_id", s.runID).
		Msg("simulate started")
	if cfg.FollowPolicy {
		sc.Go(func(ctx context.Context) error { s.watchPolicy(ctx); return nil })
	}
	sc.Every(cfg.ProgressEvery, s.progressLogger())
	// Workers stop generating when ctx ends, but flush what they hold with
	// the drain context, which outlives ctx by ShutdownTimeout.
	g, gctx := errgroup.WithContext(ctx)
	for i := 0; i < cfg.Workers; i++ {
		g.Go(func() error { return s.worker(gctx, sc.DrainContext(), w, i) })
	}
	werr := g.Wait()
	if werr != nil && ctx.Err() != nil && errors.Is(werr, context.Canceled) {
		werr = nil // a requested stop, with everything simulated flushed
	}
	return werr
}

// drain closes the writer (flushing it) and logs the report.
func (s *Simulator) drain(w *kafkax.Writer) error {
	var err error
	if w != nil {
		if cerr := w.Close(); cerr != nil {
			err = fmt.Errorf("simulate: close writer: %w", s.cfg.Kafka.Explain(cerr))
		}
	}
	rep := s.Stats()
	s.log.Info().Int64("users", rep.Users).Int64("experiences", rep.Experiences).
		Dur("elapsed", rep.Elapsed.Round(time.Millisecond)).Int64("policy_version", rep.PolicyVersion).
		Msg("simulate finished")
	return err
}

// worker simulates journeys and writes them in batches. It returns when the
// bound is reached, ctx ends, or a write fails for good; what it simulated
// is flushed with flushCtx.
func (s *Simulator) worker(ctx, flushCtx context.Context, w *kafkax.Writer, idx int) error {
	cfg := s.cfg
	wk, err := s.newWorker(w, idx)
	if err != nil {
		return err
	}
	for ctx.Err() == nil {
		if cfg.Pace != nil && len(wk.batch) == 0 {
			if err := cfg.Pace(ctx); err != nil {
				if ctx.Err() != nil {
					break
				}
				return err
			}
		}
		if cfg.Users > 0 && s.nextUser.Add(1) > cfg.Users {
			break
		}
		wk.swapPolicy()
		wk.simulateUser()
		if len(wk.batch) >= cfg.BatchRecords {
			if err := wk.flush(flushCtx); err != nil {
				return err
			}
			wk.throttle(ctx)
		}
	}
	return wk.flush(flushCtx)
}

// simWorker is the state of one simulator goroutine.
type simWorker struct {
	s     *Simulator
	w     *kafkax.Writer
	model *sim.Sim

	batch   []kafka.Message
	pending [2]SegmentStats // of the users in batch: [0] regular, [1] crisis
	users   int64           // users in batch

	exp      schemas.Experience
	seq      uint64
	idPrefix string
	idBuf    []byte
	emit     func(*sim.Transition) // encode, bound once

	logging sim.Uniform
	acting  sim.Policy
	version int64 // of acting; −1: the logging policy

	perWorker float64 // records per second; 0: no cap
	started   time.Time
	sent      int64
}

func (s *Simulator) newWorker(w *kafkax.Writer, idx int) (*simWorker, error) {
	cfg := s.cfg
	model, err := sim.New(cfg.Sim, cfg.Seed, uint64(idx))
	if err != nil {
		return nil, err
	}
	wk := &simWorker{s: s, w: w, model: model,
		batch:    make([]kafka.Message, 0, cfg.BatchRecords+cfg.Sim.MaxSteps),
		idPrefix: cfg.ExperimentID + "-" + s.runID + "-" + strconv.Itoa(idx) + "-",
		logging:  sim.Uniform{N: cfg.Sim.NumActions()}, version: -1,
		perWorker: cfg.Rate / float64(cfg.Workers), started: time.Now()}
	wk.acting = wk.logging
	wk.idBuf = make([]byte, 0, len(wk.idPrefix)+20)
	wk.exp.ExperimentID = cfg.ExperimentID
	wk.emit = wk.encode
	return wk, nil
}

// swapPolicy starts acting with the newest policy the watcher loaded.
func (wk *simWorker) swapPolicy() {
	ap := wk.s.policy.Load()
	if ap == nil || ap.version == wk.version {
		return
	}
	wk.acting, wk.version = ap.policy, ap.version
	wk.s.actedWith.Store(ap.version)
	wk.s.metrics.policyVersion.Set(float64(ap.version))
}

// simulateUser runs one user's journey, appending its records to the batch.
func (wk *simWorker) simulateUser() {
	res := wk.model.RunEpisode(wk.acting, wk.emit)
	seg := 0
	if res.Crisis {
		seg = 1
	}
	wk.pending[seg].Episodes++
	wk.pending[seg].ReturnSum += res.Return
	if res.Converted {
		wk.pending[seg].Conversions++
	}
	wk.s.metrics.observeEpisode(res.Crisis, res.Return, res.Converted)
	wk.users++
}

// encode appends the record of one transition to the batch.
func (wk *simWorker) encode(tr *sim.Transition) {
	wk.seq++
	wk.idBuf = strconv.AppendUint(append(wk.idBuf[:0], wk.idPrefix...), wk.seq, 10)
	FillExperience(&wk.exp, tr, string(wk.idBuf), wk.version, time.Now())
	val, err := schemas.MarshalExperience(nil, &wk.exp)
	if err != nil {
		// The model produced something the schema rejects: a bug, not bad
		// input; count it and keep going.
		wk.s.metrics.encodeErrors.Inc()
		wk.s.log.Error().Err(err).Msg("encode experience")
		return
	}
	wk.batch = append(wk.batch, kafka.Message{Key: []byte(tr.UserID), Value: val, Time: wk.exp.Timestamp})
}

// flush writes the batch, retrying until it is acknowledged, then counts
// its records, users and episode outcomes.
func (wk *simWorker) flush(ctx context.Context) error {
	if len(wk.batch) == 0 {
		return nil
	}
	s := wk.s
	if err := kafkax.WriteAll(ctx, s.cfg.Kafka, wk.w, s.log, wk.batch); err != nil {
		return err
	}
	s.records.Add(int64(len(wk.batch)))
	s.users.Add(wk.users)
	s.metrics.records.Add(float64(len(wk.batch)))
	s.mu.Lock()
	for i := range wk.pending {
		s.segments[i].Episodes += wk.pending[i].Episodes
		s.segments[i].Conversions += wk.pending[i].Conversions
		s.segments[i].ReturnSum += wk.pending[i].ReturnSum
	}
	s.mu.Unlock()
	wk.sent += int64(len(wk.batch))
	clear(wk.batch)
	wk.batch, wk.users, wk.pending = wk.batch[:0], 0, [2]SegmentStats{}
	return nil
}

// throttle holds the worker to its share of the rate: it sleeps until
// sent/rate seconds have passed since it started (or ctx ends).
func (wk *simWorker) throttle(ctx context.Context) {
	if wk.perWorker <= 0 {
		return
	}
	due := wk.started.Add(time.Duration(float64(wk.sent) / wk.perWorker * float64(time.Second)))
	if d := time.Until(due); d > 0 {
		select {
		case <-ctx.Done():
		case <-time.After(d):
		}
	}
}

// actingPolicy is a policy snapshot loaded for the workers: decoded and
// loaded once by the watcher, shared by every worker (ppo.Policy is safe
// for concurrent use).
type actingPolicy struct {
	version int64
	policy  *ppo.Policy
}

// watchPolicy follows the policy topic from its beginning and hands the
// newest snapshot of our experiment that fits the simulator to the
// workers. It returns when ctx ends.
func (s *Simulator) watchPolicy(ctx context.Context) {
	cfg := s.cfg
	src := policy.Source{Kafka: cfg.Kafka, Topic: cfg.PolicyTopic, ExperimentID: cfg.ExperimentID, Log: s.log}
	err := src.Follow(ctx, func(p *schemas.PolicySnapshot) {
		if p.Version <= s.policyVersion() {
			return
		}
		pol, err := loadSnapshot(p, cfg.Sim)
		if err != nil {
			s.log.Error().Err(err).Int64("version", p.Version).Msg("policy snapshot unusable, keeping the current policy")
			return
		}
		s.policy.Store(&actingPolicy{version: p.Version, policy: pol})
		s.log.Info().Int64("version", p.Version).Msg("acting with new policy snapshot")
	})
	if err != nil && ctx.Err() == nil {
		s.log.Error().Err(err).Msg("policy watcher stopped; acting with the last policy")
	}
}

func (s *Simulator) policyVersion() int64 {
	if p := s.policy.Load(); p != nil {
		return p.version
	}
	return -1
}

// loadSnapshot loads p's network and checks that it fits the simulator.
func loadSnapshot(p *schemas.PolicySnapshot, c sim.Config) (*ppo.Policy, error) {
	pol, err := ppo.LoadPolicy(p.Architecture, p.Params, p.ObsMean, p.ObsVar, p.ObsCount)
	if err != nil {
		return nil, err
	}
	if pol.ObsDim() != c.StateDim || pol.NumActions() != c.NumActions() {
		return nil, fmt.Errorf("policy is %d inputs × %d actions, simulator is %d × %d",
			pol.ObsDim(), pol.NumActions(), c.StateDim, c.NumActions())
	}
	return pol, nil
}

// progressLogger returns the progress log line's function: the counts,
// the rate since the previous line and the outcomes per segment.
func (s *Simulator) progressLogger() func() {
	var last int64
	lastT := time.Now()
	return func() {
		now := time.Now()
		r := s.Stats()
		rate := float64(r.Experiences-last) / now.Sub(lastT).Seconds()
		last, lastT = r.Experiences, now
		s.log.Info().Int64("users", r.Users).Int64("experiences", r.Experiences).Float64("per_sec", math.Round(rate)).
			Int64("policy_version", r.PolicyVersion).
			Float64("crisis_return", r.Crisis.MeanReturn()).Float64("crisis_conversion", r.Crisis.ConversionRate()).
			Float64("regular_return", r.Regular.MeanReturn()).Float64("regular_conversion", r.Regular.ConversionRate()).
			Msg("simulate progress")
	}
}
