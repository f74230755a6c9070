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
	// Isolation is kafkax.ReadCommitted (the default: records of aborted
	// transactions are never joined) or kafkax.ReadUncommitted.
	Isolation kafkax.Isolation
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
	// emission watermark over the EventLatencyN experiences a watermark
	// emitted (not those a Flush did), and of decision read → emission
	// wall time over the Written experiences.
	EventLatency, WallLatency time.Duration
	EventLatencyN             int64
	// WatermarkLag is wall now − watermark per partition, at the last tick.
	WatermarkLag map[int32]time.Duration
	// Read counts the records read: [0] decisions, [1] outcomes.
	Read [2]int64
	// Paused counts the times the decisions topic was paused because the
	// core held MaxPending open decisions (back pressure).
	Paused int64
}

// Joiner is the join role.
type Joiner struct {
	cfg     JoinConfig
	log     zerolog.Logger
	metrics *joinMetrics
	// flushed is cancelled by Flush: it ends the loop's poll and, once,
	// closes every window.
	flushed context.Context
	flush   context.CancelFunc

	mu    sync.Mutex
	stats JoinStats
}

// NewJoiner validates cfg and returns the role.
func NewJoiner(cfg JoinConfig) (*Joiner, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("join: %w", err)
	}
	j := &Joiner{cfg: cfg, log: cfg.Log, metrics: newJoinMetrics(cfg.Registry),
		stats: JoinStats{DeadLetterReasons: map[string]int64{}, WatermarkLag: map[int32]time.Duration{}}}
	j.flushed, j.flush = context.WithCancel(context.Background())
	return j, nil
}

// Config returns the role's configuration, with its defaults.
func (j *Joiner) Config() JoinConfig { return j.cfg }

// Flush tells a running joiner that its input has ended: every open
// window is closed (the watermark goes to +∞, as at the end of a bounded
// input). Safe from any goroutine, more than once.
func (j *Joiner) Flush() { j.flush() }

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

// Run joins until ctx ends: it reads both topics as one member of the
// consumer group, feeds the core, moves the watermarks every Tick, writes
// what the core emits and, once it is acknowledged, commits each
// partition's safe offsets (below the oldest record an open window still
// needs), while the member holds the partitions. At shutdown it writes and
// commits the batch in hand within ShutdownTimeout and leaves the group;
// the open windows are not emitted: their records are above the committed
// offsets, and the next member rebuilds them. It refuses topics of
// different partition counts.
func (j *Joiner) Run(ctx context.Context) error {
	cfg := j.cfg
	jc := &joinConn{revoked: map[int32]bool{}, committed: map[string]map[int]int64{}}
	return lifecycle.Run(ctx, lifecycle.Role{
		Name: "join", Kafka: cfg.Kafka, Ready: lifecycle.ReadyOnCall,
		Topics: []kafkax.TopicSpec{
			{Name: cfg.DecisionsTopic, Partitions: cfg.Partitions}, {Name: cfg.OutcomesTopic, Partitions: cfg.Partitions},
			{Name: cfg.OutTopic, Partitions: cfg.Partitions}, {Name: cfg.LateTopic, Partitions: cfg.Partitions},
			{Name: cfg.DeadLetterTopic, Partitions: 1},
		},
		Run: func(ctx context.Context, sc *lifecycle.Scope) error {
			if err := j.open(ctx, sc, jc); err != nil {
				return err
			}
			return j.loop(ctx, sc.DrainContext(), jc)
		},
		Drain:           func(dctx context.Context) error { return jc.close(dctx, j.cfg.Kafka) },
		ShutdownTimeout: cfg.ShutdownTimeout, Health: cfg.Health, Log: j.log,
	})
}

// joinConn is a running joiner's group consumer, writers and core.
type joinConn struct {
	r              *kafkax.GroupConsumer
	out, late, dlq *kafkax.Writer
	core           *join.Core
	polled         kafkax.GroupBatch
	pend           batch
	committed      map[string]map[int]int64
	paused         bool

	mu      sync.Mutex
	revoked map[int32]bool // partitions given up, for the loop to drop
}

// batch is what the core and the decoder produced since the last write.
// Its slices are reused from batch to batch: out's values are slices of
// arena, which is only overwritten once they are acknowledged.
type batch struct {
	out, late, dead []kafka.Message
	emitted         []join.Emitted
	lateIn          []join.Late
	arena           []byte
}

// open checks co-partitioning and opens the core, the group consumer and
// the writers. The role turns ready once the consumer joined the group.
func (j *Joiner) open(ctx context.Context, sc *lifecycle.Scope, jc *joinConn) error {
	cfg := j.cfg
	dp, err := sc.Kafka().Partitions(ctx, cfg.DecisionsTopic)
	if err != nil {
		return fmt.Errorf("join: %w", err)
	}
	op, err := sc.Kafka().Partitions(ctx, cfg.OutcomesTopic)
	if err != nil {
		return fmt.Errorf("join: %w", err)
	}
	if len(dp) != len(op) {
		return fmt.Errorf("join: %w: %s has %d partitions, %s has %d; give both the same count (keyed by user id with the same partitioner)",
			ErrNotCoPartitioned, cfg.DecisionsTopic, len(dp), cfg.OutcomesTopic, len(op))
	}
	if jc.core, err = join.New(cfg.Join); err != nil {
		return err
	}
	if jc.r, err = kafkax.NewGroupConsumer(cfg.Kafka, cfg.Group, []string{cfg.DecisionsTopic, cfg.OutcomesTopic},
		kafkax.GroupOptions{Isolation: cfg.Isolation, Logger: j.log, OnRevoked: jc.onRevoked}); err != nil {
		return fmt.Errorf("join: %w", err)
	}
	sc.ReadyOn(jc.r.Joined())
	for _, w := range []struct {
		p     **kafkax.Writer
		topic string
		batch int
	}{{&jc.out, cfg.OutTopic, 0}, {&jc.late, cfg.LateTopic, 0}, {&jc.dlq, cfg.DeadLetterTopic, 100}} {
		if *w.p, err = sc.Kafka().NewWriter(ctx, w.topic, kafkax.WriterOptions{BatchSize: w.batch, Logger: j.log}); err != nil {
			return fmt.Errorf("join: %w", err)
		}
	}
	j.log.Info().Str("group", cfg.Group).Str("decisions", cfg.DecisionsTopic).Str("outcomes", cfg.OutcomesTopic).Int("partitions", len(dp)).
		Str("windows", cfg.Join.Windows.String()).Dur("grace", cfg.Join.Grace).Dur("idle_advance", cfg.Join.IdleAdvance).
		Str("isolation", cfg.Isolation.String()).Msg("join started")
	return nil
}

// onRevoked notes the partitions the member gave up (kgo's goroutine).
func (jc *joinConn) onRevoked(r map[string][]int) {
	jc.mu.Lock()
	defer jc.mu.Unlock()
	for _, ps := range r {
		for _, p := range ps {
			jc.revoked[int32(p)] = true
		}
	}
}

// dropRevoked forgets the state of the partitions given up: whoever reads
// them next starts at their committed safe offsets and rebuilds it.
func (j *Joiner) dropRevoked(jc *joinConn) {
	jc.mu.Lock()
	defer jc.mu.Unlock()
	for p := range jc.revoked {
		jc.core.Drop(p)
		for _, t := range []string{j.cfg.DecisionsTopic, j.cfg.OutcomesTopic} {
			delete(jc.committed[t], int(p))
		}
		j.mu.Lock()
		delete(j.stats.WatermarkLag, p)
		j.mu.Unlock()
		j.metrics.watermarkLag.DeleteLabelValues(strconv.Itoa(int(p)))
		j.metrics.dropped.Inc()
	}
	clear(jc.revoked)
}

// close flushes the writers and leaves the group.
func (jc *joinConn) close(ctx context.Context, k kafkax.Config) error {
	var errs []error
	for _, w := range []*kafkax.Writer{jc.out, jc.late, jc.dlq} {
		if w != nil {
			if err := w.Close(); err != nil {
				errs = append(errs, fmt.Errorf("join: close writer: %w", k.Explain(err)))
			}
		}
	}
	if jc.r != nil {
		if err := jc.r.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("join: %w", err))
		}
	}
	return errors.Join(errs...)
}

// joinBatchMax bounds the records of one poll; joinBatchWait is how long
// a poll that got records gathers more (the aggregator's default batch
// wait): a batch is cut by size or by that wait, and only a poll without
// any record waits the whole Tick.
const (
	joinBatchMax  = 4096
	joinBatchWait = 20 * time.Millisecond
)

// loop polls for up to Tick (a Flush ends the poll at once), feeds the
// records to the core, moves the watermarks, writes what the core produced
// and commits the safe offsets (with finish, which outlives ctx by the
// shutdown timeout), then lets a waiting rebalance go on. While the core is Full the decisions topic is
// paused (back pressure): outcomes and the idle advance keep the watermark
// moving until windows close.
func (j *Joiner) loop(ctx, finish context.Context, jc *joinConn) error {
	flush := j.flushed.Done()
	for {
		j.backPressure(jc)
		jc.polled.Reset()
		pctx, cancel := context.WithTimeout(ctx, j.cfg.Tick)
		stop := func() bool { return false }
		if flush != nil {
			stop = context.AfterFunc(j.flushed, cancel)
		}
		err := jc.r.Gather(pctx, &jc.polled, joinBatchMax, min(joinBatchWait, j.cfg.Tick))
		stop()
		cancel()
		j.dropRevoked(jc)
		if err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
			jc.r.AllowRebalance()
			return fmt.Errorf("join: %w", err)
		}
		now := time.Now()
		var read [2]int64
		for i := range jc.polled.Messages {
			j.add(jc, &jc.polled.Messages[i], now, &read)
		}
		j.mu.Lock()
		j.stats.Read[0] += read[0]
		j.stats.Read[1] += read[1]
		j.mu.Unlock()
		j.skipped(jc, now)
		select {
		case <-flush:
			jc.core.Flush()
			flush = nil
		default:
			jc.core.Advance(now)
		}
		err = j.publish(finish, jc)
		jc.r.AllowRebalance()
		if err != nil {
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

// skipped moves the core's read positions past what the batch read
// without a record to add (transaction markers, aborted records), so the
// safe offsets, and with them the group's commits, reach the end of a log
// that ends on a marker.
func (j *Joiner) skipped(jc *joinConn, now time.Time) {
	for topic, ps := range jc.polled.Positions() {
		in := join.Outcomes
		if topic == j.cfg.DecisionsTopic {
			in = join.Decisions
		}
		for p, next := range ps {
			jc.core.Skip(int32(p), in, next, now)
		}
	}
}

// backPressure pauses the decisions topic while the core is Full and
// resumes it once it is not.
func (j *Joiner) backPressure(jc *joinConn) {
	full := jc.core.Full()
	if full == jc.paused {
		return
	}
	jc.paused = full
	if full {
		jc.r.PauseTopics(j.cfg.DecisionsTopic)
		j.metrics.paused.Set(1)
		j.mu.Lock()
		j.stats.Paused++
		j.mu.Unlock()
		j.log.Warn().Int("pending", jc.core.Stats().Pending).Int("max_pending", j.cfg.Join.MaxPending).
			Msg("join: pending decisions at the bound, decisions paused until windows close")
		return
	}
	jc.r.ResumeTopics(j.cfg.DecisionsTopic)
	j.metrics.paused.Set(0)
}

// add decodes one record and hands it to the core, counting it in read
// ([0] decisions, [1] outcomes); what fails goes to the dead-letter batch
// with its reason.
func (j *Joiner) add(jc *joinConn, m *kafka.Message, now time.Time, read *[2]int64) {
	var err error
	in := join.Outcomes
	if m.Topic == j.cfg.DecisionsTopic {
		in = join.Decisions
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
	read[in]++
	if err != nil {
		reason := schemas.Reason(err)
		jc.pend.dead = append(jc.pend.dead, kafkax.DeadLetter(*m, reason))
	}
}

// publish turns the core's output into records, writes them (retrying
// until acknowledged; a record a topic refuses for good is dead-lettered,
// a dead letter the dead-letter topic refuses is logged and dropped) and
// commits the safe offsets.
func (j *Joiner) publish(ctx context.Context, jc *joinConn) error {
	if err := j.encode(jc); err != nil {
		return err
	}
	for _, w := range []struct {
		w    *kafkax.Writer
		msgs []kafka.Message
		what string
	}{{jc.out, jc.pend.out, "experiences"}, {jc.late, jc.pend.late, "late outcomes"}} {
		err := kafkax.WriteAll(ctx, j.cfg.Kafka, w.w, j.log, w.msgs)
		if re, ok := errors.AsType[*kafkax.RefusedError](err); ok {
			for _, r := range re.Records {
				jc.pend.dead = append(jc.pend.dead, j.refused(jc, w.w == jc.out, r))
			}
			err = nil
		}
		if err != nil {
			return fmt.Errorf("join: write %s: %w", w.what, err)
		}
	}
	err := kafkax.WriteAll(ctx, j.cfg.Kafka, jc.dlq, j.log, jc.pend.dead)
	if re, ok := errors.AsType[*kafkax.RefusedError](err); ok {
		for _, r := range re.Records {
			src := kafkax.DeadLetterSource(jc.pend.dead[r.Index])
			j.log.Error().Err(r.Err).Str("source_topic", src.Topic).Int("source_partition", src.Partition).
				Int64("source_offset", src.Offset).Str("reason", src.Reason).
				Msg("the dead-letter topic refused a dead letter; it is dropped (still in its input topic at its offset)")
		}
		err = nil
	}
	if err != nil {
		return fmt.Errorf("join: write dead letters: %w", err)
	}
	j.account(jc, time.Now())
	return j.commit(ctx, jc)
}

// refused returns the dead letter of an output record its topic refused
// for good: the record, with the reason and the input record it came from
// (an experience's decision, a late outcome's outcome).
func (j *Joiner) refused(jc *joinConn, experience bool, r kafkax.RefusedRecord) kafka.Message {
	if experience {
		m, e := jc.pend.out[r.Index], &jc.pend.emitted[r.Index]
		m.Topic, m.Partition, m.Offset = j.cfg.DecisionsTopic, int(e.Partition), e.Offset
		return kafkax.DeadLetter(m, kafkax.RefusalReason(r.Err))
	}
	m := jc.pend.late[r.Index]
	src := kafkax.DeadLetterSource(m)
	m.Headers = nil
	m.Topic, m.Partition, m.Offset = src.Topic, src.Partition, src.Offset
	return kafkax.DeadLetter(m, kafkax.RefusalReason(r.Err))
}

// encode appends the core's new experiences and late outcomes to the
// pending batch as records.
func (j *Joiner) encode(jc *joinConn) error {
	n0, l0 := len(jc.pend.emitted), len(jc.pend.lateIn)
	jc.pend.emitted, jc.pend.lateIn = jc.core.TakeAppend(jc.pend.emitted, jc.pend.lateIn)
	for i := n0; i < len(jc.pend.emitted); i++ {
		e := &jc.pend.emitted[i]
		start := len(jc.pend.arena)
		var err error
		if jc.pend.arena, err = schemas.MarshalExperience(jc.pend.arena, &e.Experience); err != nil {
			return fmt.Errorf("join: encode experience: %w", err)
		}
		end := len(jc.pend.arena)
		jc.pend.out = append(jc.pend.out, kafka.Message{Key: []byte(e.Experience.UserID), Value: jc.pend.arena[start:end:end],
			Time: e.Experience.Timestamp})
	}
	for i := l0; i < len(jc.pend.lateIn); i++ {
		l := &jc.pend.lateIn[i]
		val, err := schemas.MarshalOutcome(nil, &l.Outcome)
		if err != nil {
			return fmt.Errorf("join: encode outcome: %w", err)
		}
		jc.pend.late = append(jc.pend.late, kafka.Message{Key: []byte(l.Outcome.UserID), Value: val, Time: l.Outcome.Timestamp,
			Headers: []kafka.Header{{Key: kafkax.HeaderError, Value: []byte(l.Reason)},
				{Key: kafkax.HeaderSourceTopic, Value: []byte(j.cfg.OutcomesTopic)},
				{Key: kafkax.HeaderSourcePartition, Value: []byte(strconv.Itoa(int(l.Partition)))},
				{Key: kafkax.HeaderSourceOffset, Value: []byte(strconv.FormatInt(l.Offset, 10))}}})
		j.metrics.late.WithLabelValues(l.Reason).Inc()
	}
	return nil
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
			if h.Key == kafkax.HeaderError {
				j.stats.DeadLetterReasons[string(h.Value)]++
				j.metrics.deadLetters.WithLabelValues(string(h.Value)).Inc()
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
			j.stats.EventLatencyN++
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
	clear(jc.pend.emitted)
	clear(jc.pend.lateIn)
	jc.pend = batch{out: jc.pend.out[:0], late: jc.pend.late[:0], dead: jc.pend.dead[:0], emitted: jc.pend.emitted[:0],
		lateIn: jc.pend.lateIn[:0], arena: jc.pend.arena[:0]}
}

// commit commits every partition's safe offsets that moved: every record
// below them is processed and its output acknowledged, and no open window
// needs it. A commit the group refuses (the member lost the partitions:
// their next owner reads from the offsets committed before, duplicates but
// no loss) is logged and skipped; so is one that failed on shutdown.
func (j *Joiner) commit(ctx context.Context, jc *joinConn) error {
	offs := map[string]map[int]int64{}
	for _, p := range jc.core.Partitions() {
		off, _ := jc.core.SafeOffsets(p)
		for _, c := range []struct {
			topic string
			next  int64
		}{{j.cfg.DecisionsTopic, off.Decisions}, {j.cfg.OutcomesTopic, off.Outcomes}} {
			if c.next <= 0 {
				continue
			}
			if done, ok := jc.committed[c.topic][int(p)]; ok && done >= c.next {
				continue
			}
			if offs[c.topic] == nil {
				offs[c.topic] = map[int]int64{}
			}
			offs[c.topic][int(p)] = c.next
		}
	}
	if len(offs) == 0 {
		return nil
	}
	err := kafkax.Retry(ctx, j.log, "commit offsets", func(c context.Context) error {
		err := jc.r.CommitOffsets(c, offs)
		if errors.Is(err, kafkax.ErrCommitRefused) {
			return kafkax.Permanent(err)
		}
		return err
	})
	switch {
	case errors.Is(err, kafkax.ErrCommitRefused):
		j.metrics.commitFailures.Inc()
		j.log.Warn().Err(err).Msg("join: commit refused after a rebalance; the partitions' next owner re-reads from the offsets committed before")
		return nil
	case err != nil && ctx.Err() != nil:
		return fmt.Errorf("join: commit on shutdown: %w", err)
	case err != nil:
		return fmt.Errorf("join: commit: %w", err)
	}
	for t, ps := range offs {
		if jc.committed[t] == nil {
			jc.committed[t] = map[int]int64{}
		}
		for p, o := range ps {
			jc.committed[t][p] = o
		}
	}
	return nil
}

type joinMetrics struct {
	written, defaultReward    prometheus.Counter
	dropped, commitFailures   prometheus.Counter
	late, deadLetters         *prometheus.CounterVec
	pending, held, paused     prometheus.Gauge
	watermarkLag              *prometheus.GaugeVec
	eventLatency, wallLatency prometheus.Histogram
}

func newJoinMetrics(reg prometheus.Registerer) *joinMetrics {
	f := obs.NewMetrics(reg)
	return &joinMetrics{
		written: f.Counter("aelp_join_experiences_total", "Experiences written."),
		defaultReward: f.Counter("aelp_join_default_reward_total",
			"Experiences of decisions no outcome was attributed to (default reward)."),
		late: f.CounterVec("aelp_join_late_outcomes_total",
			"Outcomes written to the late topic, by reason (late, outside-window, unmatched).", "reason"),
		deadLetters: f.CounterVec("aelp_join_dead_letters_total",
			"Records sent to the dead-letter topic, by reason.", "reason"),
		dropped: f.Counter("aelp_join_partitions_dropped_total",
			"Partitions whose join state was dropped when the group revoked them (rebuilt from the committed offsets)."),
		commitFailures: f.Counter("aelp_join_commit_failures_total",
			"Offset commits the group refused after a rebalance."),
		paused: f.Gauge("aelp_join_decisions_paused",
			"1 while the decisions topic is paused because the open decisions reached --max-pending."),
		pending: f.Gauge("aelp_join_pending_decisions", "Open decisions."),
		held:    f.Gauge("aelp_join_held_outcomes", "Outcomes waiting for their decision."),
		watermarkLag: f.GaugeVec("aelp_join_watermark_lag_seconds",
			"Wall-clock now minus the partition's watermark.", "partition"),
		eventLatency: f.Histogram("aelp_join_event_latency_seconds",
			"Decision event time to the watermark that emitted it.", prometheus.ExponentialBuckets(1, 2, 20)),
		wallLatency: f.Histogram("aelp_join_wall_latency_seconds",
			"Decision read to its experience written, wall time.", prometheus.ExponentialBuckets(0.001, 2, 24)),
	}
}
