package consumers

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"sync"
	"time"

	"github.com/aelp/aelp/consumers/classify"
	"github.com/aelp/aelp/internal/kafkax"
	"github.com/aelp/aelp/internal/lifecycle"
	"github.com/aelp/aelp/internal/obs"
	"github.com/aelp/aelp/producers/sim"
	"github.com/aelp/aelp/schemas"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
)

// AggregateConfig configures the aggregator role.
type AggregateConfig struct {
	// Kafka is the connection.
	Kafka kafkax.Config
	// InTopic is read (default aelp.experiences.raw), OutTopic written
	// (default aelp.experiences.tagged), DeadLetterTopic receives records
	// that fail to decode or validate (default aelp.deadletter).
	InTopic, OutTopic, DeadLetterTopic string
	// Group is the consumer group; instances with the same group share the
	// partitions, and a new one resumes from the group's committed offsets.
	// Default aelp-aggregator, which aelp run uses too: tagging does not
	// depend on the experiment, so one group per pair of topics tags each
	// record once, whichever process does it.
	Group string
	// Isolation is kafkax.ReadCommitted (the default: records of aborted
	// transactions are skipped) or kafkax.ReadUncommitted. Transaction
	// markers are never read as records either way.
	Isolation kafkax.Isolation
	// Classifier configures the crisis-parent rules.
	Classifier classify.Config
	// TaggerStatePath, when set, is the file that keeps the learned
	// tagger's state (classify.Classifier.AppendState) across restarts:
	// NewAggregator loads it when it exists (a missing file is a first
	// start; one that does not decode is an error), and Run saves it
	// atomically after a commit once TaggerStateEvery has passed since
	// the last save, and when it stops. A restart, a crash included,
	// resumes with what was learned up to the last save.
	TaggerStatePath string
	// TaggerStateEvery is the least time between two saves of the
	// tagger's state while Run runs. Default 10 s.
	TaggerStateEvery time.Duration
	// Limits validates records (state width, action count); zero fields
	// are unchecked.
	Limits schemas.Limits
	// Partitions of the topics created when missing. Default 6.
	Partitions int
	// BatchMax is the most records processed, produced and committed as
	// one unit. Default 2000.
	BatchMax int
	// BatchWait is how long a batch waits for more records once it has
	// one. Default 20 ms.
	BatchWait time.Duration
	// ProgressEvery is the interval of progress and accuracy log lines.
	// Default 10 s; negative disables them.
	ProgressEvery time.Duration
	// Log receives progress and errors.
	Log zerolog.Logger
	// Registry, when set, receives the role's Prometheus metrics.
	Registry prometheus.Registerer
	// ShutdownTimeout is how long a stopped aggregator has to produce and
	// commit the batch in hand and leave the group (lifecycle.Role).
	// Default lifecycle.DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
	// Health, when set, turns ready once the aggregator has joined its
	// consumer group (its first assignment, an empty one included), and not
	// ready again from the stop on.
	Health *obs.Health
}

// DefaultAggregateConfig returns the aggregator's defaults: the aelp
// topics, group aelp-aggregator, classify.DefaultConfig(), 6 partitions,
// batches of up to 2,000 records gathered for 20 ms, progress every 10 s,
// lifecycle.DefaultShutdownTimeout, and the limits of the default simulator
// (sim.DefaultConfig: 16 state values, 12 actions). The zero value of
// Limits, which checks nothing, is left alone by setDefaults; every other
// zero field takes the value given here.
func DefaultAggregateConfig() AggregateConfig {
	sc := sim.DefaultConfig()
	return AggregateConfig{
		InTopic: kafkax.TopicRaw, OutTopic: kafkax.TopicTagged, DeadLetterTopic: kafkax.TopicDeadLetter,
		Group: "aelp-aggregator", Classifier: classify.DefaultConfig(),
		Limits:     schemas.Limits{StateDim: sc.StateDim, NumActions: sc.NumActions()},
		Partitions: 6, BatchMax: 2000, BatchWait: 20 * time.Millisecond, ProgressEvery: 10 * time.Second,
		ShutdownTimeout: lifecycle.DefaultShutdownTimeout, TaggerStateEvery: 10 * time.Second,
	}
}

func (c *AggregateConfig) setDefaults() {
	d := DefaultAggregateConfig()
	c.InTopic = cmp.Or(c.InTopic, d.InTopic)
	c.OutTopic = cmp.Or(c.OutTopic, d.OutTopic)
	c.DeadLetterTopic = cmp.Or(c.DeadLetterTopic, d.DeadLetterTopic)
	c.Group = cmp.Or(c.Group, d.Group)
	if c.Classifier.LabelKey == "" && c.Classifier.Keywords == nil {
		c.Classifier = d.Classifier
	}
	c.Partitions = cmp.Or(c.Partitions, d.Partitions)
	c.BatchMax = cmp.Or(c.BatchMax, d.BatchMax)
	c.TaggerStateEvery = cmp.Or(c.TaggerStateEvery, d.TaggerStateEvery)
	c.BatchWait = cmp.Or(c.BatchWait, d.BatchWait)
	c.ProgressEvery = cmp.Or(c.ProgressEvery, d.ProgressEvery)
	c.ShutdownTimeout = cmp.Or(c.ShutdownTimeout, d.ShutdownTimeout)
}

// Validate reports the first invalid field.
func (c AggregateConfig) Validate() error {
	c.setDefaults()
	if c.InTopic == c.OutTopic {
		return fmt.Errorf("input and output topic are both %q", c.InTopic)
	}
	if c.BatchMax < 1 {
		return fmt.Errorf("batch max %d: must be at least 1", c.BatchMax)
	}
	if c.ShutdownTimeout < 0 {
		return fmt.Errorf("shutdown timeout %s: must not be negative", c.ShutdownTimeout)
	}
	if c.TaggerStateEvery < 0 {
		return fmt.Errorf("tagger state interval %s: must not be negative", c.TaggerStateEvery)
	}
	if err := c.Classifier.Validate(); err != nil {
		return err
	}
	return c.Kafka.Validate()
}

// AggregateStats are the aggregator's counts so far.
type AggregateStats struct {
	// In is records read, Tagged records published to the output topic,
	// DeadLettered records sent to the dead-letter topic, Dropped dead
	// letters the dead-letter topic refused (too large for it: logged,
	// not kept); committed records are In once their batch commit
	// succeeded.
	In, Tagged, DeadLettered, Dropped, Committed int64
	// BySource counts tags per source; Crisis counts crisis tags.
	BySource [classify.NumSources]int64
	Crisis   int64
	// DeadLetterReasons counts dead-lettered records by reason.
	DeadLetterReasons map[string]int64
	// Accuracy is the tagging accuracy against ground truth, when the
	// records carry it.
	Accuracy classify.Report
	// TaggerLabelled is the number of labelled records the learned
	// tagger has trained on, TaggerResumed of them from the state loaded
	// at start (AggregateConfig.TaggerStatePath).
	TaggerLabelled, TaggerResumed int64
	// TaggerHeldOut is the learned model's calibration on the labelled
	// records, each predicted before the model trained on it
	// (classify.Classifier.HeldOut), and TaggerThreshold its decision
	// threshold now.
	TaggerHeldOut   classify.Calibration
	TaggerThreshold float64
}

// Aggregator is the aggregator role.
type Aggregator struct {
	cfg     AggregateConfig
	log     zerolog.Logger
	cls     *classify.Classifier
	metrics *aggMetrics

	mu    sync.Mutex
	stats AggregateStats
	acc   classify.Accuracy

	// stateSaved is when the tagger's state was last saved (Run's loop).
	stateSaved time.Time

	// crashBeforeCommit, set by tests, is asked after each batch's outputs
	// are acknowledged; true makes the loop stop there without committing,
	// as a process killed at that point would.
	crashBeforeCommit func() bool
	// dump, set by tests, receives the goroutine dump of a shutdown that
	// times out (default os.Stderr).
	dump io.Writer
}

// errCrashed is returned by Run when crashBeforeCommit stopped it.
var errCrashed = errors.New("aggregate: stopped before commit (test crash)")

// NewAggregator validates cfg and returns the role, ready to Run.
func NewAggregator(cfg AggregateConfig) (*Aggregator, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("aggregate: %w", err)
	}
	if err := loadTaggerState(cfg.TaggerStatePath, &cfg.Classifier); err != nil {
		return nil, fmt.Errorf("aggregate: %w", err)
	}
	cls, err := classify.New(cfg.Classifier)
	if err != nil {
		return nil, fmt.Errorf("aggregate: tagger state %s: %w", cfg.TaggerStatePath, err)
	}
	cfg.Classifier.State = nil
	return &Aggregator{cfg: cfg, log: cfg.Log, cls: cls, metrics: newAggMetrics(cfg.Registry),
		stats: AggregateStats{DeadLetterReasons: map[string]int64{},
			TaggerLabelled: cls.Labelled(), TaggerResumed: cls.Labelled()}}, nil
}

// Stats returns a snapshot of the counts (safe while Run runs).
func (a *Aggregator) Stats() AggregateStats {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.stats
	s.DeadLetterReasons = make(map[string]int64, len(a.stats.DeadLetterReasons))
	for k, v := range a.stats.DeadLetterReasons {
		s.DeadLetterReasons[k] = v
	}
	s.Accuracy = a.acc.Report()
	return s
}

// Config returns the aggregator's configuration, defaults applied.
func (a *Aggregator) Config() AggregateConfig { return a.cfg }

// Run consumes until ctx ends. Each batch is classified, its tagged and
// dead-letter records are acknowledged by the broker (acks=all), and only
// then are its input offsets committed, one past the last record of every
// partition, while the member still holds the batch's partitions (a
// rebalance waits for the commit): at-least-once. On shutdown it stops
// fetching, finishes and commits the batch in hand within ShutdownTimeout,
// and leaves the group (lifecycle.Run). A broker outage is retried with
// backoff; only a refused credential or a denied operation, a failed final
// commit or a shutdown past its timeout is returned.
func (a *Aggregator) Run(ctx context.Context) error {
	cfg := a.cfg
	var c aggClients
	err := lifecycle.Run(ctx, lifecycle.Role{
		Name: "aggregate", Kafka: cfg.Kafka, Ready: lifecycle.ReadyOnCall,
		Topics: []kafkax.TopicSpec{
			{Name: cfg.InTopic, Partitions: cfg.Partitions},
			{Name: cfg.OutTopic, Partitions: cfg.Partitions},
			{Name: cfg.DeadLetterTopic, Partitions: 1},
		},
		Run:             func(ctx context.Context, s *lifecycle.Scope) error { return a.run(ctx, s, &c) },
		Drain:           func(ctx context.Context) error { return a.drain(ctx, &c) },
		ShutdownTimeout: cfg.ShutdownTimeout, Health: cfg.Health, Log: a.log, Dump: a.dump,
	})
	if errors.Is(err, errCrashed) {
		return err // a crashed process saves nothing
	}
	return errors.Join(err, a.saveTaggerState())
}

// aggClients are the group consumer and the writers of one Run.
type aggClients struct {
	r        *kafkax.GroupConsumer
	out, dlq *kafkax.Writer
}

// run opens the clients and runs the loop. The role turns ready once the
// consumer has joined the group.
func (a *Aggregator) run(ctx context.Context, s *lifecycle.Scope, c *aggClients) error {
	cfg := a.cfg
	var err error
	if c.r, err = kafkax.NewGroupConsumer(cfg.Kafka, cfg.Group, []string{cfg.InTopic},
		kafkax.GroupOptions{Isolation: cfg.Isolation, Logger: a.log}); err != nil {
		return fmt.Errorf("aggregate: %w", err)
	}
	s.ReadyOn(c.r.Joined())
	if c.out, err = s.Kafka().NewWriter(ctx, cfg.OutTopic, kafkax.WriterOptions{Logger: a.log}); err != nil {
		return fmt.Errorf("aggregate: %w", err)
	}
	if c.dlq, err = s.Kafka().NewWriter(ctx, cfg.DeadLetterTopic, kafkax.WriterOptions{BatchSize: 100, Logger: a.log}); err != nil {
		return fmt.Errorf("aggregate: %w", err)
	}
	a.log.Info().Str("group", cfg.Group).Str("in", cfg.InTopic).Str("out", cfg.OutTopic).
		Str("isolation", cfg.Isolation.String()).Msg("aggregate started")
	s.Every(cfg.ProgressEvery, a.logProgress)
	// The batch in hand is produced and committed with the drain context,
	// which outlives ctx by ShutdownTimeout.
	return a.loop(ctx, s.DrainContext(), c)
}

// drain closes the writers (flushing them) and leaves the group, then logs
// the final figures.
func (a *Aggregator) drain(ctx context.Context, c *aggClients) error {
	var err error
	if c.out != nil {
		if cerr := c.out.Close(); cerr != nil {
			err = fmt.Errorf("aggregate: close writer: %w", a.cfg.Kafka.Explain(cerr))
		}
	}
	if c.dlq != nil {
		if cerr := c.dlq.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("aggregate: close dead-letter writer: %w", a.cfg.Kafka.Explain(cerr))
		}
	}
	if c.r != nil {
		if cerr := c.r.Close(ctx); cerr != nil && err == nil {
			err = fmt.Errorf("aggregate: %w", cerr)
		}
	}
	s := a.Stats()
	a.metrics.setAccuracy(s.Accuracy)
	ov := s.Accuracy.Overall
	a.log.Info().Int64("in", s.In).Int64("tagged", s.Tagged).Int64("dead_lettered", s.DeadLettered).
		Int64("committed", s.Committed).Float64("precision", round3(ov.Precision)).Float64("recall", round3(ov.Recall)).
		Float64("f1", round3(ov.F1)).Msg("aggregate stopped")
	return err
}

// loop polls, processes, publishes and commits batches until ctx ends.
func (a *Aggregator) loop(ctx, finishCtx context.Context, c *aggClients) error {
	cfg := a.cfg
	b := newAggBatch(cfg.BatchMax)
	for {
		if err := b.gather(ctx, c.r, cfg.BatchMax, cfg.BatchWait); err != nil {
			c.r.AllowRebalance()
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("aggregate: %w", err)
		}
		// A batch of transaction markers only has no record to process,
		// but its offsets are committed all the same.
		if len(b.in) > 0 {
			a.processBatch(b)
			if err := a.publish(finishCtx, c, b); err != nil {
				return err
			}
			if a.crashBeforeCommit != nil && a.crashBeforeCommit() {
				return errCrashed
			}
		}
		if err := a.commit(finishCtx, c.r, b); err != nil {
			return err
		}
		a.saveTaggerStateEvery()
		if ctx.Err() != nil {
			return nil
		}
	}
}

// aggBatch is one batch: the records polled, and the tagged and dead-letter
// records made of them; from[i] is the index in `in` of tagged[i]. Its
// slices are reused from batch to batch.
type aggBatch struct {
	polled           kafkax.GroupBatch
	in, tagged, dead []kafka.Message // in: polled.Messages
	from             []int
}

func newAggBatch(max int) *aggBatch {
	return &aggBatch{polled: kafkax.GroupBatch{Messages: make([]kafka.Message, 0, max)},
		tagged: make([]kafka.Message, 0, max), dead: make([]kafka.Message, 0, 16), from: make([]int, 0, max)}
}

// gather polls a new batch: it waits for the first records (until ctx
// ends), then adds what arrives within wait, up to max records.
func (b *aggBatch) gather(ctx context.Context, r *kafkax.GroupConsumer, max int, wait time.Duration) error {
	b.polled.Reset()
	err := r.Gather(ctx, &b.polled, max, wait)
	b.in = b.polled.Messages
	return err
}

// processBatch classifies the batch into its tagged and dead-letter
// records and merges its tally.
func (a *Aggregator) processBatch(b *aggBatch) {
	b.tagged, b.dead, b.from = b.tagged[:0], b.dead[:0], b.from[:0]
	// One output buffer per batch (the writer may hold the values until
	// WriteAll returns; a new one next batch keeps them untouched).
	size := 0
	for i := range b.in {
		size += len(b.in[i].Value) + 32
	}
	arena := make([]byte, 0, size)
	var t tally
	var te schemas.TaggedExperience
	for i := range b.in {
		msg := &b.in[i]
		reason, val, grown := a.process(msg, &te, arena, &t)
		arena = grown
		if reason != "" {
			b.dead = append(b.dead, kafkax.DeadLetter(*msg, reason))
			continue
		}
		b.tagged = append(b.tagged, kafka.Message{Key: msg.Key, Value: val, Headers: msg.Headers, Time: msg.Time})
		b.from = append(b.from, i)
	}
	a.merge(&t)
}

// publish writes the batch's tagged and dead-letter records, retrying
// until they are acknowledged (or ctx ends), and counts them. A record the
// output topic refuses for good (too large once tagged: reason too-large;
// invalid for it: refused:<code>) is dead-lettered as it came in. A dead
// letter the dead-letter topic refuses too (larger than that topic takes)
// cannot be kept: it is logged with where it came from, counted in
// aelp_aggregate_dead_letters_dropped_total, and the batch goes on, so
// that one record does not stop the pipeline; it stays readable at its
// offset of the input topic until retention deletes it.
func (a *Aggregator) publish(ctx context.Context, c *aggClients, b *aggBatch) error {
	cfg := a.cfg
	tagged := len(b.tagged)
	err := kafkax.WriteAll(ctx, cfg.Kafka, c.out, a.log, b.tagged)
	if re, ok := errors.AsType[*kafkax.RefusedError](err); ok {
		for _, r := range re.Records {
			b.dead = append(b.dead, kafkax.DeadLetter(b.in[b.from[r.Index]], a.deadLetter(kafkax.RefusalReason(r.Err))))
		}
		tagged, err = re.Written, nil
	}
	if err != nil {
		return fmt.Errorf("aggregate: publish tagged: %w", err)
	}
	dead, dropped := len(b.dead), 0
	err = kafkax.WriteAll(ctx, cfg.Kafka, c.dlq, a.log, b.dead)
	if re, ok := errors.AsType[*kafkax.RefusedError](err); ok {
		for _, r := range re.Records {
			a.dropDeadLetter(&b.dead[r.Index], r.Err)
		}
		dead, dropped, err = re.Written, len(re.Records), nil
	}
	if err != nil {
		return fmt.Errorf("aggregate: publish dead letters: %w", err)
	}
	a.mu.Lock()
	a.stats.In += int64(len(b.in))
	a.stats.Tagged += int64(tagged)
	a.stats.DeadLettered += int64(dead)
	a.stats.Dropped += int64(dropped)
	a.mu.Unlock()
	a.metrics.in.Add(float64(len(b.in)))
	a.metrics.out.Add(float64(tagged))
	return nil
}

// dropDeadLetter logs and counts a dead letter the dead-letter topic
// refused for good.
func (a *Aggregator) dropDeadLetter(m *kafka.Message, err error) {
	src := kafkax.DeadLetterSource(*m)
	a.metrics.deadLettersDropped.WithLabelValues(src.Reason).Inc()
	a.log.Error().Err(err).Str("source_topic", src.Topic).Int("source_partition", src.Partition).Int64("source_offset", src.Offset).
		Str("reason", src.Reason).Int("value_bytes", len(m.Value)).Str("dead_letter_topic", a.cfg.DeadLetterTopic).
		Msg("the dead-letter topic refused a dead letter; it is dropped (still in the input topic at its offset)")
}

// commit commits the batch's offsets, now that every output is
// acknowledged, and lets a waiting rebalance go on. A commit the group
// refuses (a rebalance removed the member: the partitions' new owner
// re-reads these records, duplicates but never loss) is logged and
// skipped. A denied commit, or any failure on shutdown, is returned.
func (a *Aggregator) commit(ctx context.Context, r *kafkax.GroupConsumer, b *aggBatch) error {
	defer r.AllowRebalance()
	err := kafkax.Retry(ctx, a.log, "commit offsets", func(c context.Context) error {
		err := r.Commit(c, &b.polled)
		if errors.Is(err, kafkax.ErrCommitRefused) {
			return kafkax.Permanent(err)
		}
		return err
	})
	switch {
	case err == nil:
		a.mu.Lock()
		a.stats.Committed += int64(len(b.in))
		a.mu.Unlock()
		return nil
	case errors.Is(err, kafkax.ErrCommitRefused):
		a.metrics.commitFailures.Inc()
		a.log.Warn().Err(err).Int("records", len(b.in)).Msg("commit refused after a rebalance; the new owner re-reads these records")
		return nil
	case ctx.Err() != nil:
		return fmt.Errorf("aggregate: commit on shutdown: %w", err)
	}
	return fmt.Errorf("aggregate: commit: %w", err)
}

// tally counts one batch's decisions; it is merged into the shared stats
// and metrics once per batch rather than once per record.
type tally struct {
	tags [classify.NumSources][2]int64 // [source][crisis]
	acc  classify.Accuracy
}

// process classifies one record and appends its encoded TaggedExperience
// to arena. It returns a dead-letter reason, or the encoded value (a slice
// of the returned arena).
func (a *Aggregator) process(m *kafka.Message, te *schemas.TaggedExperience, arena []byte, t *tally) (reason string, val, grown []byte) {
	if err := schemas.UnmarshalExperience(m.Value, &te.Experience); err != nil {
		return a.deadLetter(schemas.Reason(err)), nil, arena
	}
	if err := te.Experience.Validate(a.cfg.Limits); err != nil {
		return a.deadLetter(schemas.Reason(err)), nil, arena
	}
	d := a.cls.Classify(te.Metadata, te.Value)
	ApplyDecision(te, d, time.Now())
	start := len(arena)
	arena, err := schemas.MarshalTaggedExperience(arena, te)
	if err != nil {
		return a.deadLetter("encode:" + schemas.Reason(err)), nil, arena[:start]
	}
	t.tags[d.Source][b2i(d.Crisis)]++
	if truth, ok := a.cls.Truth(te.Metadata); ok {
		t.acc.Observe(d, truth)
	}
	return "", arena[start:len(arena):len(arena)], arena
}

// merge adds a batch's tally to the stats and metrics.
func (a *Aggregator) merge(t *tally) {
	a.mu.Lock()
	for s := range t.tags {
		a.stats.BySource[s] += t.tags[s][0] + t.tags[s][1]
		a.stats.Crisis += t.tags[s][1]
	}
	a.acc.Merge(&t.acc)
	a.stats.TaggerLabelled = a.cls.Labelled()
	a.stats.TaggerHeldOut, a.stats.TaggerThreshold = a.cls.HeldOut(), a.cls.Threshold()
	a.mu.Unlock()
	for s := range t.tags {
		for c, n := range t.tags[s] {
			if n > 0 {
				a.metrics.tags[s][c].Add(float64(n))
			}
		}
	}
}

func (a *Aggregator) deadLetter(reason string) string {
	a.mu.Lock()
	a.stats.DeadLetterReasons[reason]++
	a.mu.Unlock()
	a.metrics.deadLetters.WithLabelValues(reason).Inc()
	return reason
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// ApplyDecision writes the classifier's decision into te: event_type from
// d.Crisis, tag_source from d.Source, tag_score from d.Score, tagged_at.
func ApplyDecision(te *schemas.TaggedExperience, d classify.Decision, at time.Time) {
	te.EventType = schemas.EventRegular
	if d.Crisis {
		te.EventType = schemas.EventCrisis
	}
	switch d.Source {
	case classify.SourceLabel:
		te.TagSource = schemas.TagLabel
	case classify.SourceMetadata:
		te.TagSource = schemas.TagMetadata
	case classify.SourceValue:
		te.TagSource = schemas.TagValue
	default:
		te.TagSource = schemas.TagDefault
	}
	te.TagScore = d.Score
	te.TaggedAt = at
}

// logProgress logs the counts and the tagging accuracy so far.
func (a *Aggregator) logProgress() {
	s := a.Stats()
	a.metrics.setAccuracy(s.Accuracy)
	ov := s.Accuracy.Overall
	a.log.Info().Int64("in", s.In).Int64("tagged", s.Tagged).Int64("dead_lettered", s.DeadLettered).
		Int64("crisis", s.Crisis).Float64("precision", round3(ov.Precision)).Float64("recall", round3(ov.Recall)).
		Float64("f1", round3(ov.F1)).Msg("aggregate progress")
}

func round3(x float64) float64 { return math.Round(x*1000) / 1000 }
