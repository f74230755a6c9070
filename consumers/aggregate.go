package consumers

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/aelp/aelp/consumers/classify"
	"github.com/aelp/aelp/internal/kafkax"
	"github.com/aelp/aelp/internal/obs"
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
	// partitions. Default aelp-aggregator.
	Group string
	// Classifier configures the crisis-parent rules.
	Classifier classify.Config
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
	// Health, when set, turns ready once the group is joined.
	Health *obs.Health
}

func (c *AggregateConfig) setDefaults() {
	if c.InTopic == "" {
		c.InTopic = kafkax.TopicRaw
	}
	if c.OutTopic == "" {
		c.OutTopic = kafkax.TopicTagged
	}
	if c.DeadLetterTopic == "" {
		c.DeadLetterTopic = kafkax.TopicDeadLetter
	}
	if c.Group == "" {
		c.Group = "aelp-aggregator"
	}
	if c.Classifier.LabelKey == "" && c.Classifier.Keywords == nil {
		c.Classifier = classify.DefaultConfig()
	}
	if c.Partitions == 0 {
		c.Partitions = 6
	}
	if c.BatchMax == 0 {
		c.BatchMax = 2000
	}
	if c.BatchWait == 0 {
		c.BatchWait = 20 * time.Millisecond
	}
	if c.ProgressEvery == 0 {
		c.ProgressEvery = 10 * time.Second
	}
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
	if err := c.Classifier.Validate(); err != nil {
		return err
	}
	return c.Kafka.Validate()
}

// AggregateStats are the aggregator's counts so far.
type AggregateStats struct {
	// In is records read, Tagged records published to the output topic,
	// DeadLettered records sent to the dead-letter topic; committed
	// records are In once their batch commit succeeded.
	In, Tagged, DeadLettered, Committed int64
	// BySource counts tags per source; Crisis counts crisis tags.
	BySource [classify.NumSources]int64
	Crisis   int64
	// DeadLetterReasons counts dead-lettered records by reason.
	DeadLetterReasons map[string]int64
	// Accuracy is the tagging accuracy against ground truth, when the
	// records carry it.
	Accuracy classify.Report
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

	// crashBeforeCommit, set by tests, is asked after each batch's outputs
	// are acknowledged; true makes the loop stop there without committing,
	// as a process killed at that point would.
	crashBeforeCommit func() bool
}

// errCrashed is returned by Run when crashBeforeCommit stopped it.
var errCrashed = errors.New("aggregate: stopped before commit (test crash)")

// NewAggregator validates cfg and returns the role, ready to Run.
func NewAggregator(cfg AggregateConfig) (*Aggregator, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("aggregate: %w", err)
	}
	cls, err := classify.New(cfg.Classifier)
	if err != nil {
		return nil, fmt.Errorf("aggregate: %w", err)
	}
	return &Aggregator{cfg: cfg, log: cfg.Log, cls: cls, metrics: newAggMetrics(cfg.Registry),
		stats: AggregateStats{DeadLetterReasons: map[string]int64{}}}, nil
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

// Run consumes until ctx ends. Each batch is classified, its tagged and
// dead-letter records are acknowledged by the broker (acks=all), and only
// then are its input offsets committed, the last message of every
// partition: at-least-once. On shutdown it stops fetching, finishes and
// commits the batch in hand, and leaves the group. A broker outage is
// retried with backoff; only an authentication failure or a failed final
// commit is returned.
func (a *Aggregator) Run(ctx context.Context) error {
	cfg := a.cfg
	if err := kafkax.Retry(ctx, a.log, "ensure topics", func(ctx context.Context) error {
		return cfg.Kafka.Explain(kafkax.EnsureTopics(ctx, cfg.Kafka,
			kafkax.TopicSpec{Name: cfg.InTopic, Partitions: cfg.Partitions},
			kafkax.TopicSpec{Name: cfg.OutTopic, Partitions: cfg.Partitions},
			kafkax.TopicSpec{Name: cfg.DeadLetterTopic, Partitions: 1}))
	}); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("aggregate: %w", err)
	}
	r, err := kafkax.NewGroupReader(cfg.Kafka, cfg.InTopic, cfg.Group, kafkax.ReaderOptions{Logger: a.log})
	if err != nil {
		return fmt.Errorf("aggregate: %w", err)
	}
	out, err := kafkax.NewWriter(cfg.Kafka, cfg.OutTopic, kafkax.WriterOptions{})
	if err != nil {
		r.Close()
		return fmt.Errorf("aggregate: %w", err)
	}
	dlq, err := kafkax.NewWriter(cfg.Kafka, cfg.DeadLetterTopic, kafkax.WriterOptions{BatchSize: 100})
	if err != nil {
		r.Close()
		out.Close()
		return fmt.Errorf("aggregate: %w", err)
	}
	a.log.Info().Str("group", cfg.Group).Str("in", cfg.InTopic).Str("out", cfg.OutTopic).Msg("aggregate started")

	progressCtx, stopProgress := context.WithCancel(context.Background())
	progressDone := make(chan struct{})
	go func() {
		defer close(progressDone)
		a.progress(progressCtx)
	}()

	// finishCtx outlives ctx by a bounded grace period, so the batch in
	// hand is produced and committed on shutdown.
	finishCtx, cancelFinish := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelFinish()
	stop := context.AfterFunc(ctx, func() { time.AfterFunc(30*time.Second, cancelFinish) })
	defer stop()

	runErr := a.loop(ctx, finishCtx, r, out, dlq)

	stopProgress()
	<-progressDone
	if err := out.Close(); err != nil && runErr == nil {
		runErr = fmt.Errorf("aggregate: close writer: %w", cfg.Kafka.Explain(err))
	}
	if err := dlq.Close(); err != nil && runErr == nil {
		runErr = fmt.Errorf("aggregate: close dead-letter writer: %w", cfg.Kafka.Explain(err))
	}
	if err := r.Close(); err != nil && runErr == nil {
		runErr = fmt.Errorf("aggregate: leave group: %w", err)
	}
	s := a.Stats()
	a.metrics.setAccuracy(s.Accuracy)
	ov := s.Accuracy.Overall
	a.log.Info().Int64("in", s.In).Int64("tagged", s.Tagged).Int64("dead_lettered", s.DeadLettered).
		Int64("committed", s.Committed).Float64("precision", round3(ov.Precision)).Float64("recall", round3(ov.Recall)).
		Float64("f1", round3(ov.F1)).Msg("aggregate stopped")
	return runErr
}

func (a *Aggregator) loop(ctx, finishCtx context.Context, r *kafka.Reader, out, dlq *kafka.Writer) error {
	cfg := a.cfg
	batch := make([]kafka.Message, 0, cfg.BatchMax)
	tagged := make([]kafka.Message, 0, cfg.BatchMax)
	dead := make([]kafka.Message, 0, 16)
	var te schemas.TaggedExperience
	ready := false
	for {
		batch = batch[:0]
		// Block for the first record, then gather more for BatchWait.
		m, err := kafkax.FetchRetry(ctx, cfg.Kafka, r, a.log)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("aggregate: %w", err)
		}
		if !ready && cfg.Health != nil {
			cfg.Health.SetReady(true, "")
			ready = true
		}
		batch = append(batch, m)
		gather, cancel := context.WithTimeout(ctx, cfg.BatchWait)
		for len(batch) < cfg.BatchMax {
			m, err := r.FetchMessage(gather)
			if err != nil {
				break
			}
			batch = append(batch, m)
		}
		cancel()

		tagged, dead = tagged[:0], dead[:0]
		// One output buffer per batch (the writer may hold the values until
		// WriteAll returns; a new one next batch keeps them untouched).
		size := 0
		for i := range batch {
			size += len(batch[i].Value) + 32
		}
		arena := make([]byte, 0, size)
		var t tally
		for i := range batch {
			msg := &batch[i]
			reason, val, grown := a.process(msg, &te, arena, &t)
			arena = grown
			if reason != "" {
				dead = append(dead, kafkax.DeadLetter(*msg, reason))
				continue
			}
			tagged = append(tagged, kafka.Message{Key: msg.Key, Value: val, Headers: msg.Headers, Time: msg.Time})
		}
		a.merge(&t)
		if err := kafkax.WriteAll(finishCtx, cfg.Kafka, out, a.log, tagged); err != nil {
			return fmt.Errorf("aggregate: publish tagged: %w", err)
		}
		if err := kafkax.WriteAll(finishCtx, cfg.Kafka, dlq, a.log, dead); err != nil {
			return fmt.Errorf("aggregate: publish dead letters: %w", err)
		}
		a.mu.Lock()
		a.stats.In += int64(len(batch))
		a.stats.Tagged += int64(len(tagged))
		a.stats.DeadLettered += int64(len(dead))
		a.mu.Unlock()
		a.metrics.in.Add(float64(len(batch)))
		a.metrics.out.Add(float64(len(tagged)))
		if a.crashBeforeCommit != nil && a.crashBeforeCommit() {
			return errCrashed
		}
		// Commit only now that every output is acknowledged. A failed commit
		// (a rebalance took the partition) means redelivery to the new
		// owner: duplicates, never loss.
		if err := kafkax.Retry(finishCtx, a.log, "commit offsets", func(c context.Context) error {
			err := r.CommitMessages(c, kafkax.LastPerPartition(batch)...)
			if err != nil && isRebalanceError(err) {
				return kafkax.Permanent(err)
			}
			return cfg.Kafka.Explain(err)
		}); err != nil {
			if finishCtx.Err() != nil {
				return fmt.Errorf("aggregate: commit on shutdown: %w", err)
			}
			a.metrics.commitFailures.Inc()
			a.log.Warn().Err(err).Int("records", len(batch)).Msg("commit refused after a rebalance; the new owner re-reads these records")
			continue
		}
		a.mu.Lock()
		a.stats.Committed += int64(len(batch))
		a.mu.Unlock()
		if ctx.Err() != nil {
			return nil
		}
	}
}

func isRebalanceError(err error) bool {
	return errors.Is(err, kafka.RebalanceInProgress) || errors.Is(err, kafka.IllegalGeneration) ||
		errors.Is(err, kafka.UnknownMemberId) || errors.Is(err, kafka.NotCoordinatorForGroup)
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

func (a *Aggregator) progress(ctx context.Context) {
	if a.cfg.ProgressEvery < 0 {
		return
	}
	t := time.NewTicker(a.cfg.ProgressEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s := a.Stats()
			a.metrics.setAccuracy(s.Accuracy)
			ov := s.Accuracy.Overall
			a.log.Info().Int64("in", s.In).Int64("tagged", s.Tagged).Int64("dead_lettered", s.DeadLettered).
				Int64("crisis", s.Crisis).Float64("precision", round3(ov.Precision)).Float64("recall", round3(ov.Recall)).
				Float64("f1", round3(ov.F1)).Msg("aggregate progress")
		}
	}
}

func round3(x float64) float64 { return math.Round(x*1000) / 1000 }
