package serve

import (
	"context"
	crand "crypto/rand"
	_ "embed"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aelp/aelp/internal/kafkax"
	"github.com/aelp/aelp/internal/lifecycle"
	"github.com/aelp/aelp/internal/obs"
	"github.com/aelp/aelp/learner/policy"
	"github.com/aelp/aelp/producers/sim"
	"github.com/aelp/aelp/schemas"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// OpenAPI is the API's OpenAPI 3 document, served at /v1/openapi.json.
//
//go:embed openapi.json
var OpenAPI []byte

// Server is the decision server role.
type Server struct {
	cfg      Config
	log      zerolog.Logger
	metrics  *metrics
	health   *obs.Health
	reg      *prometheus.Registry
	limits   limits
	actions  sim.Config // BidLevels and Creatives: the action layout
	policy   atomic.Pointer[servedPolicy]
	buf      atomic.Pointer[logBuffer]
	deferred *deferredSet
	handler  http.Handler
	addr     atomic.Pointer[string]

	rngs     sync.Pool // *rand.Rand
	seed     uint64
	rngSeq   atomic.Uint64
	idPrefix string
	idSeq    atomic.Uint64

	stats struct {
		decisions, deferredDropped, rejected atomic.Int64
		logged, logFailures                  [numTopics]atomic.Int64
	}
}

// Stats are the server's counts so far.
type Stats struct {
	// Decisions answered (deferred ones included).
	Decisions int64
	// LoggedDecisions and LoggedOutcomes were acknowledged by the broker.
	LoggedDecisions, LoggedOutcomes int64
	// LogFailures are records refused by the broker or not written before
	// the drain deadline.
	LogFailures int64
	// Rejected are the 503 answers (buffer full, no policy, …).
	Rejected int64
	// DeferredDropped are deferred decisions never activated: expired or
	// held at shutdown.
	DeferredDropped int64
	// PolicyVersion is the serving policy's version (−1: the logging
	// policy or none).
	PolicyVersion int64
}

// New validates cfg and returns the server (not yet running: see Run).
func New(cfg Config) (*Server, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("serve: %w", err)
	}
	s := &Server{cfg: cfg, log: cfg.Log, health: cfg.Health, reg: cfg.Registry,
		limits:   limits{stateDim: cfg.StateDim, kinds: cfg.OutcomeKinds},
		actions:  sim.Config{BidLevels: cfg.BidLevels, Creatives: cfg.Creatives},
		deferred: newDeferredSet(cfg.MaxDeferred, cfg.DeferTTL), seed: cfg.Seed}
	if s.health == nil {
		s.health = &obs.Health{}
	}
	if s.reg == nil {
		s.reg = prometheus.NewRegistry()
	}
	s.metrics = newMetrics(s.reg)
	var b [8]byte
	_, _ = crand.Read(b[:])
	s.idPrefix = hex.EncodeToString(b[:])
	if s.seed == 0 {
		s.seed = binary.LittleEndian.Uint64(b[:]) ^ 0x9e3779b97f4a7c15
	}
	s.rngs.New = func() any { return rand.New(rand.NewPCG(s.seed, splitmix(s.rngSeq.Add(1)))) }
	s.handler = s.routes()
	return s, nil
}

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// Handler returns the server's HTTP handler (the API, /metrics and
// /healthz). It answers 503 to decisions, activations and outcomes until
// Run has started the log.
func (s *Server) Handler() http.Handler { return s.handler }

// Addr returns the bound HTTP address once Run serves it ("" before).
func (s *Server) Addr() string {
	if a := s.addr.Load(); a != nil {
		return *a
	}
	return ""
}

// Stats returns the counts so far (safe while Run runs).
func (s *Server) Stats() Stats {
	st := Stats{Decisions: s.stats.decisions.Load(), LoggedDecisions: s.stats.logged[topicDecisions].Load(),
		LoggedOutcomes: s.stats.logged[topicOutcomes].Load(), Rejected: s.stats.rejected.Load(),
		DeferredDropped: s.stats.deferredDropped.Load(), PolicyVersion: LoggingVersion}
	for t := range numTopics {
		st.LogFailures += s.stats.logFailures[t].Load()
	}
	if p := s.policy.Load(); p != nil {
		st.PolicyVersion = p.version
	}
	return st
}

// newID returns a fresh id: kind, the process's random prefix, a sequence
// number.
func (s *Server) newID(kind string) string {
	return kind + s.idPrefix + "-" + strconv.FormatUint(s.idSeq.Add(1), 10)
}

// Run serves until ctx ends (SIGINT/SIGTERM), then drains: the HTTP API
// stops taking requests and finishes those in flight, every record in the
// log buffer is written and acknowledged (within ShutdownTimeout), the
// deferred decisions still held are dropped and counted, and the writers
// are closed. It returns nil after a clean stop, an error when a write
// failed for good or records could not be logged.
func (s *Server) Run(ctx context.Context) error {
	cfg := s.cfg
	var ws [numTopics]*kafkax.Writer
	return lifecycle.Run(ctx, lifecycle.Role{
		Name: "serve", Kafka: cfg.Kafka, Ready: lifecycle.ReadyOnCall,
		Topics: []kafkax.TopicSpec{
			{Name: cfg.DecisionsTopic, Partitions: cfg.Partitions}, {Name: cfg.OutcomesTopic, Partitions: cfg.Partitions},
			{Name: cfg.PolicyTopic, Partitions: 1, Compact: true},
		},
		HTTP:            &lifecycle.HTTP{Addr: cfg.Addr, Handler: s.handler},
		Run:             func(ctx context.Context, sc *lifecycle.Scope) error { return s.run(ctx, sc, &ws) },
		Drain:           func(context.Context) error { return s.drain(ws) },
		ShutdownTimeout: cfg.ShutdownTimeout, Health: s.health, Log: s.log,
	})
}

func (s *Server) run(ctx context.Context, sc *lifecycle.Scope, ws *[numTopics]*kafkax.Writer) error {
	cfg := s.cfg
	addr := sc.HTTPAddr()
	s.addr.Store(&addr)
	if ctx.Err() == nil {
		s.health.SetReady(false, "no policy snapshot of experiment "+cfg.ExperimentID+" loaded yet")
	}
	for t, topic := range [numTopics]string{cfg.DecisionsTopic, cfg.OutcomesTopic} {
		w, err := sc.Kafka().NewWriter(ctx, topic, kafkax.WriterOptions{BatchSize: partitionBatch(cfg.LogBatch), BatchTimeout: logLinger(cfg.LogSync), Logger: s.log})
		if err != nil {
			return fmt.Errorf("serve: %w", err)
		}
		ws[t] = w
	}
	buf := newLogBuffer(cfg.LogBuffer, cfg.LogBatch, cfg.Kafka, *ws, s.log, s.metrics, &s.stats.logged, &s.stats.logFailures)
	go buf.run(sc.DrainContext()) // returns once drain closes it (buf.close)
	s.buf.Store(buf)
	if cfg.AllowLoggingPolicy {
		s.policy.CompareAndSwap(nil, &servedPolicy{version: LoggingVersion, architecture: loggingArchitecture,
			loadedAt: time.Now(), policy: sim.Uniform{N: cfg.NumActions()}})
		sc.Ready()
	}
	s.log.Info().Str("experiment", cfg.ExperimentID).Str("addr", addr).Float64("epsilon", cfg.Epsilon).
		Float64("min_propensity", cfg.MinPropensity).Bool("log_sync", cfg.LogSync).Msg("serve started")
	sc.Go(func(ctx context.Context) error { s.followPolicy(ctx, sc); return nil })
	sc.Every(max(time.Second, min(cfg.DeferTTL/10, 10*time.Second)), s.expireDeferred)
	select {
	case <-ctx.Done():
		return nil
	case err := <-buf.fatal:
		return err
	}
}

// maxPartitionBatch bounds the records of one produce request (one
// partition's batch in kafka-go's writer). kafka-go allocates every
// partition batch at its full size (BatchSize messages of 152 bytes)
// however few records it gets: at 1,000 that was 152 kB per partition per
// write, some 450 MB/s of garbage at 5,000 decisions/s across 6
// partitions, which made the garbage collector run 15 times a second. A
// write of LogBatch records takes several batches per partition instead,
// sent one after another on the partition's connection.
const maxPartitionBatch = 32

// partitionBatch is the writers' BatchSize for a log batch of logBatch.
func partitionBatch(logBatch int) int { return min(logBatch, maxPartitionBatch) }

// logLinger is how long the writers wait for a partition's batch to
// fill (kafka-go's BatchTimeout). The log buffer writes one batch at a
// time, so this is also about how long records gather in the buffer
// between writes: 5 ms when the answers do not wait for the log — at
// 5,000 decisions/s some 25 records a write instead of 7, and a fifth of
// the produce requests (each one a round trip, lz4, and work for the
// broker) — and 1 ms with LogSync, whose answers wait for it.
func logLinger(logSync bool) time.Duration {
	if logSync {
		return time.Millisecond
	}
	return 5 * time.Millisecond
}

// followPolicy loads the newest snapshot of the experiment there is, then
// follows the policy topic and swaps in every newer one; the role is ready
// from the first policy loaded. It returns when ctx ends.
func (s *Server) followPolicy(ctx context.Context, sc *lifecycle.Scope) {
	cfg := s.cfg
	src := policy.Source{Kafka: cfg.Kafka, Topic: cfg.PolicyTopic, ExperimentID: cfg.ExperimentID, Log: s.log}
	use := func(snap *schemas.PolicySnapshot) {
		if cur := s.policy.Load(); cur != nil && snap.Version <= cur.version {
			return
		}
		p, err := loadSnapshot(snap, cfg.StateDim, cfg.NumActions(), time.Now())
		if err != nil {
			s.metrics.badSnapshots.Inc()
			s.log.Error().Err(err).Int64("version", snap.Version).Msg("policy snapshot unusable, keeping the current policy")
			return
		}
		s.policy.Store(p)
		s.metrics.swaps.Inc()
		s.metrics.policyVersion.Set(float64(p.version))
		s.log.Info().Int64("version", p.version).Msg("serving new policy snapshot")
		sc.Ready()
	}
	if latest, err := src.Latest(ctx); err != nil && ctx.Err() == nil {
		s.log.Warn().Err(err).Msg("reading the latest policy snapshot; following the topic")
	} else if latest != nil {
		use(latest)
	}
	if err := src.Follow(ctx, use); err != nil && ctx.Err() == nil {
		s.log.Error().Err(err).Msg("policy follower stopped; serving the last policy")
	}
}

func (s *Server) expireDeferred() {
	if n := s.deferred.expire(time.Now()); n > 0 {
		s.metrics.expired.WithLabelValues("expired").Add(float64(n))
		s.stats.deferredDropped.Add(int64(n))
	}
	s.metrics.deferred.Set(float64(s.deferred.len()))
}

// drain runs after the HTTP API has finished its requests: it drops the
// deferred decisions still held, writes every record in the log buffer
// and closes the writers.
func (s *Server) drain(ws [numTopics]*kafkax.Writer) error {
	if n := s.deferred.clear(); n > 0 {
		s.metrics.expired.WithLabelValues("shutdown").Add(float64(n))
		s.stats.deferredDropped.Add(int64(n))
		s.log.Warn().Int("deferred", n).Msg("deferred decisions never activated dropped at shutdown (not logged)")
	}
	s.metrics.deferred.Set(0)
	if buf := s.buf.Load(); buf != nil {
		buf.close()
	}
	var errs []error
	for _, w := range ws {
		if w != nil {
			if err := w.Close(); err != nil {
				errs = append(errs, fmt.Errorf("serve: close writer %s: %w", w.Topic, s.cfg.Kafka.Explain(err)))
			}
		}
	}
	st := s.Stats()
	s.log.Info().Int64("decisions", st.Decisions).Int64("logged_decisions", st.LoggedDecisions).
		Int64("logged_outcomes", st.LoggedOutcomes).Int64("log_failures", st.LogFailures).Int64("rejected", st.Rejected).
		Int64("deferred_dropped", st.DeferredDropped).Int64("policy_version", st.PolicyVersion).Msg("serve finished")
	if st.LogFailures > 0 {
		errs = append(errs, fmt.Errorf("serve: %d records were answered or accepted but not logged", st.LogFailures))
	}
	return errors.Join(errs...)
}

// decisionLimits returns the decision limits (for Validate).
func (s *Server) decisionLimits() schemas.Limits {
	return schemas.Limits{StateDim: s.cfg.StateDim, NumActions: s.cfg.NumActions()}
}

// retryAfter is the Retry-After header value.
func (s *Server) retryAfter() string {
	return strconv.Itoa(int(max(1, (s.cfg.RetryAfter+time.Second-1)/time.Second)))
}
