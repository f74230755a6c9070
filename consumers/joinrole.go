package consumers

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/aelp/aelp/consumers/join"
	"github.com/aelp/aelp/internal/kafkax"
	"github.com/aelp/aelp/internal/lifecycle"
	"github.com/aelp/aelp/internal/obs"
	"github.com/aelp/aelp/schemas"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
)

// JoinConfig configures the join role (`aelp join`).
type JoinConfig struct {
	// Kafka is the connection.
	Kafka kafkax.Config
	// DecisionsTopic and OutcomesTopic are read (co-partitioned; Run
	// refuses topics of different partition counts). Default
	// aelp.decisions and aelp.outcomes.
	DecisionsTopic, OutcomesTopic string
	// OutTopic receives the Experience records (default
	// aelp.experiences.raw), LateTopic the late and unmatched outcomes with
	// their reason in the aelp.error header (default aelp.outcomes.late),
	// DeadLetterTopic the records that fail to decode or validate (default
	// aelp.deadletter).
	OutTopic, LateTopic, DeadLetterTopic string
	// Group is the consumer group. Default aelp-join.
	Group string
	// Join configures the join core (windows, grace, idle advance,
	// backward window, default reward, max pending, limits).
	Join join.Config
	// Tick is how often the watermarks move without traffic and safe
	// offsets are committed. Default 200ms.
	Tick time.Duration
	// Partitions of the topics created when missing. Default 6.
	Partitions int
	// Log, Registry, ShutdownTimeout and Health as for the other roles.
	Log             zerolog.Logger
	Registry        prometheus.Registerer
	ShutdownTimeout time.Duration
	Health          *obs.Health
}

// DefaultJoinConfig returns the join role's defaults.
func DefaultJoinConfig() JoinConfig {
	return JoinConfig{
		DecisionsTopic: kafkax.TopicDecisions, OutcomesTopic: kafkax.TopicOutcomes, OutTopic: kafkax.TopicRaw,
		LateTopic: kafkax.TopicOutcomesLate, DeadLetterTopic: kafkax.TopicDeadLetter, Group: "aelp-join",
		Join: join.Config{}.WithDefaults(), Tick: 200 * time.Millisecond, Partitions: 6,
		ShutdownTimeout: lifecycle.DefaultShutdownTimeout,
	}
}

func (c *JoinConfig) setDefaults() {
	d := DefaultJoinConfig()
	c.DecisionsTopic = cmp.Or(c.DecisionsTopic, d.DecisionsTopic)
	c.OutcomesTopic = cmp.Or(c.OutcomesTopic, d.OutcomesTopic)
	c.OutTopic = cmp.Or(c.OutTopic, d.OutTopic)
	c.LateTopic = cmp.Or(c.LateTopic, d.LateTopic)
	c.DeadLetterTopic = cmp.Or(c.DeadLetterTopic, d.DeadLetterTopic)
	c.Group = cmp.Or(c.Group, d.Group)
	c.Join = c.Join.WithDefaults()
	c.Tick = cmp.Or(c.Tick, d.Tick)
	c.Partitions = cmp.Or(c.Partitions, d.Partitions)
	c.ShutdownTimeout = cmp.Or(c.ShutdownTimeout, d.ShutdownTimeout)
}

// Validate reports the first invalid field.
func (c JoinConfig) Validate() error {
	c.setDefaults()
	if c.DecisionsTopic == c.OutcomesTopic {
		return fmt.Errorf("decisions and outcomes topics are both %s", c.DecisionsTopic)
	}
	if c.Tick < 0 || c.ShutdownTimeout < 0 {
		return fmt.Errorf("tick %s, shutdown timeout %s: must not be negative", c.Tick, c.ShutdownTimeout)
	}
	if err := c.Join.Validate(); err != nil {
		return err
	}
	return c.Kafka.Validate()
}

// ErrNotCoPartitioned is returned by Run when the decisions and outcomes
// topics have different partition counts: a user's decisions and outcomes
// would not meet in one partition.
var ErrNotCoPartitioned = errors.New("decisions and outcomes topics are not co-partitioned")

// JoinStats are the join role's figures.
type JoinStats struct {
	// Core are the join core's counters.
	Core join.Stats
	// Written experiences and late outcomes acknowledged; DeadLettered
	// records.
	Written, LateWritten, DeadLettered int64
	// DeadLetterReasons counts dead letters by reason.
	DeadLetterReasons map[string]int64
	// EventLatency and WallLatency are the sums of decision event time →
	// emission watermark and decision read → emission wall time over the
	// Written experiences (divide by Written).
	EventLatency, WallLatency time.Duration
	// WatermarkLag is wall now − watermark per partition, at the last tick.
	WatermarkLag map[int32]time.Duration
	// Read counts the records read: [0] decisions, [1] outcomes.
	Read [2]int64
}

// Joiner is the join role.
type Joiner struct {
	cfg     JoinConfig
	log     zerolog.Logger
	metrics *joinMetrics
	flush   chan struct{}
	once    sync.Once

	mu    sync.Mutex
	stats JoinStats
}

// NewJoiner validates cfg and returns the role.
func NewJoiner(cfg JoinConfig) (*Joiner, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("join: %w", err)
	}
	return &Joiner{cfg: cfg, log: cfg.Log, metrics: newJoinMetrics(cfg.Registry), flush: make(chan struct{}),
		stats: JoinStats{DeadLetterReasons: map[string]int64{}, WatermarkLag: map[int32]time.Duration{}}}, nil
}

// Flush tells a running joiner that its input has ended: every open
// window is closed (the watermark goes to +∞, as at the end of a bounded
// input). Safe from any goroutine, more than once.
func (j *Joiner) Flush() { j.once.Do(func() { close(j.flush) }) }

// Stats returns the figures so far (safe while Run runs).
func (j *Joiner) Stats() JoinStats {
	j.mu.Lock()
	defer j.mu.Unlock()
	s := j.stats
	s.DeadLetterReasons = make(map[string]int64, len(j.stats.DeadLetterReasons))
	for k, v := range j.stats.DeadLetterReasons {
		s.DeadLetterReasons[k] = v
	}
	s.WatermarkLag = make(map[int32]time.Duration, len(j.stats.WatermarkLag))
	for k, v := range j.stats.WatermarkLag {
		s.WatermarkLag[k] = v
	}
	return s
}

// Run joins until ctx ends, then drains (writes what it produced, commits
// the safe offsets). It refuses topics of different partition counts.
func (j *Joiner) Run(ctx context.Context) error {
	cfg := j.cfg
	var jc *joinConn
	return lifecycle.Run(ctx, lifecycle.Role{
		Name: "join", Kafka: cfg.Kafka,
		Topics: []kafkax.TopicSpec{
			{Name: cfg.DecisionsTopic, Partitions: cfg.Partitions}, {Name: cfg.OutcomesTopic, Partitions: cfg.Partitions},
			{Name: cfg.OutTopic, Partitions: cfg.Partitions}, {Name: cfg.LateTopic, Partitions: cfg.Partitions},
			{Name: cfg.DeadLetterTopic, Partitions: 1},
		},
		Run: func(ctx context.Context, sc *lifecycle.Scope) error {
			var err error
			if jc, err = j.open(ctx); err != nil {
				return err
			}
			return j.loop(ctx, sc, jc)
		},
		Drain: func(dctx context.Context) error {
			if jc == nil {
				return nil
			}
			// Write what the core produced, commit the safe offsets.
			return errors.Join(j.publish(dctx, jc), jc.close())
		},
		ShutdownTimeout: cfg.ShutdownTimeout, Health: cfg.Health, Log: j.log,
	})
}

// joinConn is a running joiner's reader, writers and core.
type joinConn struct {
	r              *kafka.Reader
	out, late, dlq *kafka.Writer
	core           *join.Core
	pend           batch
	committed      map[string]map[int]int64
}

// batch is what the core and the decoder produced since the last write.
type batch struct {
	out, late, dead []kafka.Message
	emitted         []join.Emitted
}

func (j *Joiner) open(ctx context.Context) (*joinConn, error) {
	cfg := j.cfg
	dp, err := kafkax.Partitions(ctx, cfg.Kafka, cfg.DecisionsTopic)
	if err != nil {
		return nil, fmt.Errorf("join: %w", err)
	}
	op, err := kafkax.Partitions(ctx, cfg.Kafka, cfg.OutcomesTopic)
	if err != nil {
		return nil, fmt.Errorf("join: %w", err)
	}
	if len(dp) != len(op) {
		return nil, fmt.Errorf("join: %w: %s has %d partitions, %s has %d; give both the same count (keyed by user id with the same partitioner)",
			ErrNotCoPartitioned, cfg.DecisionsTopic, len(dp), cfg.OutcomesTopic, len(op))
	}
	core, err := join.New(cfg.Join)
	if err != nil {
		return nil, err
	}
	jc := &joinConn{core: core, committed: map[string]map[int]int64{}}
	if jc.r, err = kafkax.NewMultiGroupReader(cfg.Kafka, []string{cfg.DecisionsTopic, cfg.OutcomesTopic}, cfg.Group, kafkax.ReaderOptions{Logger: j.log}); err != nil {
		return nil, err
	}
	for _, w := range []struct {
		p     **kafka.Writer
		topic string
	}{{&jc.out, cfg.OutTopic}, {&jc.late, cfg.LateTopic}, {&jc.dlq, cfg.DeadLetterTopic}} {
		if *w.p, err = kafkax.NewWriter(cfg.Kafka, w.topic, kafkax.WriterOptions{}); err != nil {
			return nil, errors.Join(err, jc.close())
		}
	}
	j.log.Info().Str("decisions", cfg.DecisionsTopic).Str("outcomes", cfg.OutcomesTopic).Int("partitions", len(dp)).
		Str("windows", cfg.Join.Windows.String()).Dur("grace", cfg.Join.Grace).Dur("idle_advance", cfg.Join.IdleAdvance).
		Msg("join started")
	return jc, nil
}

func (jc *joinConn) close() error {
	var errs []error
	for _, c := range []interface{ Close() error }{jc.r, jc.out, jc.late, jc.dlq} {
		if c != nil && !isNilWriter(c) {
			errs = append(errs, c.Close())
		}
	}
	return errors.Join(errs...)
}

func isNilWriter(c any) bool {
	w, ok := c.(*kafka.Writer)
	return ok && w == nil
}

// loop feeds fetched records to the core, moves the watermarks every
// Tick, writes what the core produced and commits the safe offsets.
func (j *Joiner) loop(ctx context.Context, sc *lifecycle.Scope, jc *joinConn) error {
	msgs := make(chan kafka.Message, 256)
	sc.Go(func(ctx context.Context) error {
		defer close(msgs)
		for {
			m, err := kafkax.FetchRetry(ctx, j.cfg.Kafka, jc.r, j.log)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
			select {
			case msgs <- m:
			case <-ctx.Done():
				return nil
			}
		}
	})
	tick := time.NewTicker(j.cfg.Tick)
	defer tick.Stop()
	flush := j.flush
	for {
		// Back pressure: at MaxPending stop reading until windows close
		// (the core's watermark then moves by idle advance).
		in := msgs
		if jc.core.Full() {
			in = nil
		}
		select {
		case <-ctx.Done():
			return nil
		case m, ok := <-in:
			if !ok {
				return nil // the fetcher stopped: ctx ended or it failed (its error is the scope's)
			}
			j.add(jc, m, time.Now())
			if len(jc.pend.out)+len(jc.pend.late)+len(jc.pend.dead) < 512 {
				continue
			}
		case <-flush:
			jc.core.Flush()
			flush = nil
		case <-tick.C:
			jc.core.Advance(time.Now())
		}
		if err := j.publish(ctx, jc); err != nil {
			if ctx.Err() != nil {
				return nil // the drain writes and commits what is left
			}
			return err
		}
	}
}

// add decodes one record and hands it to the core; what fails goes to the
// dead-letter batch with its reason.
func (j *Joiner) add(jc *joinConn, m kafka.Message, now time.Time) {
	var err error
	if m.Topic == j.cfg.DecisionsTopic {
		var d schemas.Decision
		if err = schemas.UnmarshalDecision(m.Value, &d); err == nil {
			err = jc.core.AddDecision(int32(m.Partition), m.Offset, &d, now)
		}
	} else {
		var o schemas.Outcome
		if err = schemas.UnmarshalOutcome(m.Value, &o); err == nil {
			err = jc.core.AddOutcome(int32(m.Partition), m.Offset, &o, now)
		}
	}
	j.mu.Lock()
	if m.Topic == j.cfg.DecisionsTopic {
		j.stats.Read[0]++
	} else {
		j.stats.Read[1]++
	}
	j.mu.Unlock()
	if err != nil {
		reason := schemas.Reason(err)
		jc.pend.dead = append(jc.pend.dead, kafkax.DeadLetter(m, reason))
		j.metrics.deadLetters.WithLabelValues(reason).Inc()
	}
}

// publish turns the core's output into records, writes them (retrying
// until acknowledged) and commits the safe offsets.
func (j *Joiner) publish(ctx context.Context, jc *joinConn) error {
	out, late := jc.core.Take()
	now := time.Now()
	for i := range out {
		e := &out[i]
		val, err := schemas.MarshalExperience(nil, &e.Experience)
		if err != nil {
			return fmt.Errorf("join: encode experience: %w", err)
		}
		jc.pend.out = append(jc.pend.out, kafka.Message{Key: []byte(e.Experience.UserID), Value: val, Time: e.Experience.Timestamp})
		jc.pend.emitted = append(jc.pend.emitted, *e)
	}
	for i := range late {
		l := &late[i]
		val, err := schemas.MarshalOutcome(nil, &l.Outcome)
		if err != nil {
			return fmt.Errorf("join: encode outcome: %w", err)
		}
		jc.pend.late = append(jc.pend.late, kafka.Message{Key: []byte(l.Outcome.UserID), Value: val, Time: l.Outcome.Timestamp,
			Headers: []kafka.Header{{Key: "aelp.error", Value: []byte(l.Reason)},
				{Key: "aelp.source.topic", Value: []byte(j.cfg.OutcomesTopic)},
				{Key: "aelp.source.partition", Value: []byte(strconv.Itoa(int(l.Partition)))},
				{Key: "aelp.source.offset", Value: []byte(strconv.FormatInt(l.Offset, 10))}}})
		j.metrics.late.WithLabelValues(l.Reason).Inc()
	}
	for _, w := range []struct {
		w    *kafka.Writer
		msgs []kafka.Message
	}{{jc.out, jc.pend.out}, {jc.late, jc.pend.late}, {jc.dlq, jc.pend.dead}} {
		if len(w.msgs) > 0 {
			if err := kafkax.WriteAll(ctx, j.cfg.Kafka, w.w, j.log, w.msgs); err != nil {
				return err
			}
		}
	}
	j.account(jc, now)
	return jc.commit(ctx, j)
}

// account counts a written batch and updates the metrics.
func (j *Joiner) account(jc *joinConn, now time.Time) {
	st := jc.core.Stats()
	j.mu.Lock()
	defer j.mu.Unlock()
	j.stats.Core = st
	j.stats.Written += int64(len(jc.pend.out))
	j.stats.LateWritten += int64(len(jc.pend.late))
	j.stats.DeadLettered += int64(len(jc.pend.dead))
	for _, m := range jc.pend.dead {
		for _, h := range m.Headers {
			if h.Key == "aelp.error" {
				j.stats.DeadLetterReasons[string(h.Value)]++
			}
		}
	}
	for i := range jc.pend.emitted {
		e := &jc.pend.emitted[i]
		wall := now.Sub(e.Arrived)
		j.stats.WallLatency += wall
		j.metrics.wallLatency.Observe(wall.Seconds())
		if !e.Watermark.IsZero() {
			ev := e.Watermark.Sub(e.Experience.Timestamp)
			j.stats.EventLatency += ev
			j.metrics.eventLatency.Observe(ev.Seconds())
		}
		if e.Default {
			j.metrics.defaultReward.Inc()
		}
	}
	j.metrics.written.Add(float64(len(jc.pend.out)))
	j.metrics.pending.Set(float64(st.Pending))
	j.metrics.held.Set(float64(st.Held))
	for _, p := range jc.core.Partitions() {
		if wm, _, ok := jc.core.Watermark(p); ok && !wm.IsZero() {
			lag := now.Sub(wm)
			j.stats.WatermarkLag[p] = lag
			j.metrics.watermarkLag.WithLabelValues(strconv.Itoa(int(p))).Set(lag.Seconds())
		}
	}
	clear(jc.pend.out)
	clear(jc.pend.late)
	clear(jc.pend.dead)
	jc.pend = batch{out: jc.pend.out[:0], late: jc.pend.late[:0], dead: jc.pend.dead[:0], emitted: jc.pend.emitted[:0]}
}

// commit commits every partition's safe offsets that moved.
func (jc *joinConn) commit(ctx context.Context, j *Joiner) error {
	var msgs []kafka.Message
	for _, p := range jc.core.Partitions() {
		off, _ := jc.core.SafeOffsets(p)
		for _, c := range []struct {
			topic string
			next  int64
		}{{j.cfg.DecisionsTopic, off.Decisions}, {j.cfg.OutcomesTopic, off.Outcomes}} {
			if c.next <= 0 || jc.committed[c.topic][int(p)] >= c.next {
				continue
			}
			// CommitMessages commits the message's offset + 1.
			msgs = append(msgs, kafka.Message{Topic: c.topic, Partition: int(p), Offset: c.next - 1})
		}
	}
	if len(msgs) == 0 {
		return nil
	}
	if err := jc.r.CommitMessages(ctx, msgs...); err != nil {
		return fmt.Errorf("join: commit: %w", j.cfg.Kafka.Explain(err))
	}
	for _, m := range msgs {
		if jc.committed[m.Topic] == nil {
			jc.committed[m.Topic] = map[int]int64{}
		}
		jc.committed[m.Topic][m.Partition] = m.Offset + 1
	}
	return nil
}

type joinMetrics struct {
	written, defaultReward    prometheus.Counter
	late, deadLetters         *prometheus.CounterVec
	pending, held             prometheus.Gauge
	watermarkLag              *prometheus.GaugeVec
	eventLatency, wallLatency prometheus.Histogram
}

func newJoinMetrics(reg prometheus.Registerer) *joinMetrics {
	m := &joinMetrics{
		written: prometheus.NewCounter(prometheus.CounterOpts{Name: "aelp_join_experiences_total", Help: "Experiences written."}),
		defaultReward: prometheus.NewCounter(prometheus.CounterOpts{Name: "aelp_join_default_reward_total",
			Help: "Experiences of decisions no outcome was attributed to (default reward)."}),
		late: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "aelp_join_late_outcomes_total",
			Help: "Outcomes written to the late topic, by reason (late, outside-window, unmatched)."}, []string{"reason"}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "aelp_join_dead_letters_total",
			Help: "Records sent to the dead-letter topic, by reason."}, []string{"reason"}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{Name: "aelp_join_pending_decisions", Help: "Open decisions."}),
		held:    prometheus.NewGauge(prometheus.GaugeOpts{Name: "aelp_join_held_outcomes", Help: "Outcomes waiting for their decision."}),
		watermarkLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "aelp_join_watermark_lag_seconds",
			Help: "Wall-clock now minus the partition's watermark."}, []string{"partition"}),
		eventLatency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "aelp_join_event_latency_seconds",
			Help: "Decision event time to the watermark that emitted it.", Buckets: prometheus.ExponentialBuckets(1, 2, 20)}),
		wallLatency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "aelp_join_wall_latency_seconds",
			Help: "Decision read to its experience written, wall time.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 24)}),
	}
	if reg != nil {
		reg.MustRegister(m.written, m.defaultReward, m.late, m.deadLetters, m.pending, m.held, m.watermarkLag, m.eventLatency, m.wallLatency)
	}
	return m
}
