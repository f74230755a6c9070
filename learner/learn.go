package learner

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/aelp/aelp/internal/kafkax"
	"github.com/aelp/aelp/internal/lifecycle"
	"github.com/aelp/aelp/internal/stats"
	"github.com/aelp/aelp/learner/ope"
	"github.com/aelp/aelp/learner/ppo"
	"github.com/aelp/aelp/learner/replay"
	"github.com/aelp/aelp/learner/train"
	"github.com/aelp/aelp/schemas"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
)

// Stats are the learner's figures so far (see Learner.Stats).
type Stats struct {
	// Updates is the number of PPO updates made (including those restored
	// from a checkpoint); Ingested the experiences added to the buffer by
	// this process (refill excluded); Sampled the samples drawn.
	Updates, Ingested, Sampled int64
	// Skipped counts records of other experiments; DeadLettered records
	// that failed to decode or validate.
	Skipped, DeadLettered int64
	// Refilled is the number of records re-read into the buffer from the
	// log on restart.
	Refilled int64
	// Duplicates counts ingested records dropped because the buffer
	// already held their id (train.Trainer.Insert).
	Duplicates int64
	// Buffer are the replay buffer's figures.
	Buffer replay.Stats
	// Last is the last update's PPO figures.
	Last ppo.Stats
	// Batches summarise the batches of this process's updates: the
	// measured and the expected crisis share, the true crisis share (of
	// the records with ground truth) and the IS weights, one value per
	// update each.
	Batches train.BatchStats
	// Tags count the crisis tags of the records ingested with ground truth
	// (Config.GroundTruthKey) against it, as of the last update.
	Tags stats.Confusion
	// PolicyVersion is the version of the last snapshot published to the
	// policy topic (−1: none).
	PolicyVersion int64
	// HeldOut counts the records of held-out users kept for off-policy
	// evaluation (Config.OPE), never inserted into the buffer (refill
	// included); EvalJourneys is the evaluation set's size.
	HeldOut      int64
	EvalJourneys int
	// EvalCounts are the evaluation set's collector's counts: records
	// skipped (without a behaviour log-prob, with log-prob −Inf, invalid
	// — those of held-out users that were dead-lettered) and journeys
	// dropped for a missing or skipped step.
	EvalCounts ope.Counts
	// Promoted and HeldBack count the snapshots this process published to
	// the policy topic and to the candidates topic.
	Promoted, HeldBack int64
	// LastOPE is the last snapshot's evaluation and gate decision (nil:
	// none yet, or Config.OPE.Holdout 0).
	LastOPE *schemas.OffPolicyEvaluation
	// Lag is the number of records behind the end of the tagged topic, as
	// of the last fetched record of each partition.
	Lag int64
	// UpdateTime is the wall time the training loop spent in PPO updates
	// (train.Trainer.Update: sampling, the batch and the update), and
	// WaitTime the time it waited for a record with none at hand and the
	// rate limiter holding training back. The loop is one goroutine: the
	// rest of its time is ingest, publication and checkpoints.
	UpdateTime, WaitTime time.Duration
}

// Learner is the learn role.
type Learner struct {
	cfg     Config
	log     zerolog.Logger
	metrics *learnMetrics

	// Owned by the Run goroutine: the training core (buffer, agent, rate
	// limiter) and the Kafka positions.
	tr      *train.Trainer
	offsets map[int]int64 // next offset to read, per partition
	end     map[int]int64 // bounded: stop reading here; nil: follow the topic
	hwm     map[int]int64
	window  windowCounters

	finishCh chan struct{}
	finish   sync.Once

	// fresh is set when the learner started without a checkpoint.
	fresh bool

	// w are the writers of Run (nil until it opened them).
	w *writers

	// abortOnCancel, set by tests, makes a cancelled Run return at once
	// without the final metrics, snapshot and checkpoint, as a killed
	// process would.
	abortOnCancel bool

	// eval is the held-out evaluation set and the gate (nil without held-out
	// users); pendingOPE the last decision, for the next metrics record.
	eval       *evaluator
	pendingOPE *schemas.OffPolicyEvaluation
	// snapshotHook, set by tests, replaces a snapshot's policy before it
	// is evaluated and published (a deliberately worse one, say).
	snapshotHook func(*schemas.PolicySnapshot)

	// lastMetrics and lastSnapshot are the update counts at the last
	// published metrics record and snapshot, so the final ones on shutdown
	// do not repeat them.
	lastMetrics, lastSnapshot int64

	mu    sync.Mutex
	stats Stats
}

// ResumeError is returned by New when the checkpoint to resume from is
// missing or unreadable (and neither Fresh nor, for a missing file,
// FreshIfMissing was set).
type ResumeError struct {
	// Path is the checkpoint file; Err why it could not be read.
	Path string
	Err  error
}

func (e *ResumeError) Error() string { return "learn: " + e.Err.Error() }

// Unwrap returns the read error.
func (e *ResumeError) Unwrap() error { return e.Err }

// MismatchError is returned by New when the checkpoint to resume from was
// written for another experiment or another tagged topic than cfg's: its
// offsets are positions in the topic it names, and applied to another
// they would skip or repeat records silently.
type MismatchError struct {
	// Path is the checkpoint file.
	Path string
	// Field is the Config field that differs: "ExperimentID" or
	// "TaggedTopic".
	Field string
	// Saved is the checkpoint's value, Configured the Config's.
	Saved, Configured string
}

func (e *MismatchError) Error() string {
	what := "experiment"
	if e.Field == "TaggedTopic" {
		what = "tagged topic"
	}
	return fmt.Sprintf("learn: checkpoint %s was written for %s %q, not %q", e.Path, what, e.Saved, e.Configured)
}

// checkResume returns a *MismatchError when ck was not written for cfg's
// experiment and tagged topic. A checkpoint without a tagged topic (none
// that aelp writes) is not compared on it.
func checkResume(cfg *Config, ck *Checkpoint) error {
	switch {
	case ck.ExperimentID != cfg.ExperimentID:
		return &MismatchError{Path: cfg.CheckpointPath, Field: "ExperimentID", Saved: ck.ExperimentID, Configured: cfg.ExperimentID}
	case ck.TaggedTopic != "" && ck.TaggedTopic != cfg.TaggedTopic:
		return &MismatchError{Path: cfg.CheckpointPath, Field: "TaggedTopic", Saved: ck.TaggedTopic, Configured: cfg.TaggedTopic}
	}
	return nil
}

// New validates cfg, restores the checkpoint unless cfg.Fresh, and returns
// the role, ready to Run. It reads no records yet. A checkpoint of another
// experiment or tagged topic is refused with a *MismatchError.
func New(cfg Config) (*Learner, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("learn: %w", err)
	}
	l := &Learner{
		cfg:      cfg,
		log:      cfg.Log,
		metrics:  newLearnMetrics(cfg.Registry),
		offsets:  map[int]int64{},
		hwm:      map[int]int64{},
		finishCh: make(chan struct{}),
	}
	l.stats.PolicyVersion = -1
	if cfg.OPE.Holdout > 0 {
		l.eval = newEvaluator(cfg.OPE, cfg.StateDim, cfg.NumActions)
	}
	l.fresh = cfg.Fresh
	if !l.fresh && cfg.FreshIfMissing {
		if _, err := os.Stat(cfg.CheckpointPath); errors.Is(err, fs.ErrNotExist) {
			l.log.Info().Str("checkpoint", cfg.CheckpointPath).Msg("no checkpoint yet: starting fresh")
			l.fresh = true
		}
	}
	if l.fresh {
		tr, err := train.New(cfg.TrainConfig())
		if err != nil {
			return nil, fmt.Errorf("learn: %w", err)
		}
		l.tr = tr
		return l, nil
	}
	ck, err := ReadCheckpoint(cfg.CheckpointPath)
	if err != nil {
		return nil, &ResumeError{Path: cfg.CheckpointPath, Err: err}
	}
	if err := checkResume(&cfg, ck); err != nil {
		return nil, err
	}
	// The restored agent keeps its checkpoint's PPO settings (the learning
	// rate and its schedule among them), whatever the flags say; the worker
	// count is this process's choice.
	tr, err := train.Resume(cfg.TrainConfig(), ck.Agent,
		train.Counters{Sampled: ck.Sampled, Inserted: ck.Inserted, BetaStep: ck.BetaStep, Adaptive: ck.Adaptive})
	if err != nil {
		return nil, fmt.Errorf("learn: checkpoint %s: %w", cfg.CheckpointPath, err)
	}
	l.tr = tr
	l.logAdaptiveResume(ck)
	agent := tr.Agent()
	ac := agent.Config()
	for p, o := range ck.Offsets {
		l.offsets[p] = o
	}
	l.stats.Updates = agent.Updates()
	l.stats.Sampled = ck.Sampled
	l.stats.PolicyVersion = ck.PolicyVersion
	l.log.Info().Str("checkpoint", cfg.CheckpointPath).Int64("updates", agent.Updates()).
		Float64("learning_rate", ac.LR).Str("lr_schedule", ac.LRSchedule).Int("lr_total_updates", ac.TotalUpdates).
		Interface("offsets", ck.Offsets).Msg("restored checkpoint")
	return l, nil
}

// logAdaptiveResume says what became of the checkpoint's adaptive crisis
// weight state (train.Resume restores it with the rule on, ignores it
// with the rule off).
func (l *Learner) logAdaptiveResume(ck *Checkpoint) {
	path, w := l.cfg.CheckpointPath, l.tr.Stats().CrisisWeight
	switch on := l.cfg.Adaptive.Enabled; {
	case on && ck.Adaptive != nil:
		l.log.Info().Str("checkpoint", path).Float64("crisis_weight", w).Float64("saved_crisis_weight", ck.Adaptive.Weight).
			Float64("adaptive_signal", l.tr.Stats().AdaptiveSignal).Msg("restored the adaptive crisis weight")
	case on:
		l.log.Info().Str("checkpoint", path).Float64("crisis_weight", w).
			Msg("checkpoint has no adaptive crisis weight state (written without the rule, or before it was kept): the rule starts again from --crisis-parent-weight")
	case ck.Adaptive != nil:
		l.log.Warn().Str("checkpoint", path).Float64("saved_crisis_weight", ck.Adaptive.Weight).Float64("crisis_weight", w).
			Msg("checkpoint has adaptive crisis weight state but --adaptive-crisis-weight is off: ignored, the weight is --crisis-parent-weight")
	}
}

// Agent returns the PPO agent. Use it only when Run is not running (for
// example after it returned, to evaluate the learned policy).
func (l *Learner) Agent() *ppo.Agent { return l.tr.Agent() }

// Stats returns a snapshot of the learner's figures (safe while Run runs).
func (l *Learner) Stats() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.stats
}

// Finish asks a running learner to stop following the topic: it reads up
// to the end offsets seen now, trains until the rate limiter's budget for
// what it ingested is spent, writes the final checkpoint and returns from
// Run, as a bounded run does. Safe to call from any goroutine, more than
// once.
func (l *Learner) Finish() { l.finish.Do(func() { close(l.finishCh) }) }

// record is one fetched tagged record, decoded (or not) by a partition
// reader.
type record struct {
	partition int
	offset    int64
	hwm       int64
	skip      bool // another experiment's, or dead-lettered
	dead      bool
	invalid   bool // dead-lettered, decoded but failed validation: te holds it
	te        schemas.TaggedExperience
}

// Run consumes, trains and publishes until ctx ends (or, bounded or after
// Finish, until the work is done), then writes the final metrics, snapshot
// and checkpoint (lifecycle.Run: within ShutdownTimeout of a stop). A
// broker outage is retried with backoff; cancelling ctx is the clean way to
// stop, and still checkpoints.
func (l *Learner) Run(ctx context.Context) error {
	cfg := l.cfg
	return lifecycle.Run(ctx, lifecycle.Role{
		Name: "learn", Kafka: cfg.Kafka, Ready: lifecycle.ReadyOnCall,
		Topics: cfg.topics(),
		Run:    l.run,
		// ctx.Err() is read when the drain starts: was the role stopped?
		Drain:           func(dctx context.Context) error { return l.drain(dctx, ctx.Err() != nil) },
		ShutdownTimeout: cfg.ShutdownTimeout, Health: cfg.Health, Log: l.log,
	})
}

// run finds the start offsets (ready once the tagged topic's offsets are
// listed), refills the buffer on a restart, opens the writers, starts one
// reader per partition in the role's scope and runs the training loop.
func (l *Learner) run(ctx context.Context, s *lifecycle.Scope) error {
	cfg := l.cfg
	w, err := newWriters(ctx, s.Kafka(), cfg, l.log)
	if err != nil {
		return err
	}
	if err := l.checkSnapshotSize(w.policy); err != nil {
		_ = w.close(cfg.Kafka)
		return err
	}
	defer func() {
		if l.w == nil { // returned before training: drain does nothing
			_ = w.close(cfg.Kafka)
		}
	}()
	var offs kafkax.Offsets
	if err := kafkax.Retry(ctx, l.log, "list offsets", func(ctx context.Context) error {
		var err error
		offs, err = kafkax.ListOffsets(ctx, cfg.Kafka, cfg.TaggedTopic)
		return cfg.Kafka.Explain(err)
	}); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("learn: %w", err)
	}
	if err := l.loadServing(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	s.Ready()
	l.startOffsets(offs)
	if !l.fresh {
		if err := l.refill(ctx, offs); err != nil {
			return err
		}
	}
	l.w = w
	// Records already fetched are finished, published and checkpointed
	// with the drain context, which outlives ctx by ShutdownTimeout.
	finishCtx := s.DrainContext()
	recs := make(chan *record, 4096)
	for p := range offs.First {
		from := l.offsets[p] // read here: the loop owns l.offsets once it runs
		s.Go(func(ctx context.Context) error { return l.readPartition(ctx, finishCtx, p, from, recs, w.dlq) })
	}
	s.Every(cfg.ProgressEvery, l.logProgress)
	l.log.Info().Str("experiment", cfg.ExperimentID).Str("topic", cfg.TaggedTopic).Int("partitions", len(offs.First)).
		Bool("importance_sampling", !cfg.Replay.Uniform).Float64("crisis_parent_weight", cfg.Replay.CrisisWeight).
		Bool("adaptive_crisis_weight", cfg.Adaptive.Enabled).
		Bool("bounded", cfg.Bounded).Int("buffer", l.tr.Len()).Msg("learn started")
	if cfg.Bounded {
		l.end = offs.End
	}
	return l.loop(ctx, finishCtx, recs, w)
}

// startOffsets sets each partition's start offset: the saved one, else the
// beginning of the log. An offset the log no longer holds (retention)
// starts at the first one kept.
func (l *Learner) startOffsets(offs kafkax.Offsets) {
	for p, first := range offs.First {
		o, ok := l.offsets[p]
		if !ok || o < first {
			if ok {
				l.log.Warn().Int("partition", p).Int64("saved", o).Int64("first", first).
					Msg("saved offset is older than the log; records in between were deleted by retention")
			}
			o = first
		}
		l.offsets[p] = o
	}
}

// drain publishes the final figures and snapshot and writes the final
// checkpoint, even on a requested stop (stopped), then closes the writers.
// With abortOnCancel (tests) a stopped learner only closes them, as a
// killed process would.
func (l *Learner) drain(ctx context.Context, stopped bool) error {
	if l.w == nil {
		return nil // Run stopped before it opened the writers
	}
	cfg := l.cfg
	if l.abortOnCancel && stopped {
		_ = l.w.close(cfg.Kafka)
		return nil
	}
	var err error
	if u := l.stats.Updates; u > 0 {
		err = l.publish(ctx, l.w, u != l.lastMetrics, u != l.lastSnapshot)
	}
	if cerr := l.checkpoint(); cerr != nil && err == nil {
		err = cerr
	}
	// No update follows the final checkpoint: stop the PPO workers and wait
	// for them (a later Update, as none comes, would start them again).
	_ = l.tr.Agent().Close()
	if cerr := l.w.close(cfg.Kafka); cerr != nil && err == nil {
		err = cerr
	}
	st := l.Stats()
	l.log.Info().Int64("updates", st.Updates).Int64("ingested", st.Ingested).Int64("sampled", st.Sampled).
		Int64("dead_lettered", st.DeadLettered).Msg("learn stopped")
	return err
}

// loop is the single goroutine that owns the buffer and the agent.
func (l *Learner) loop(ctx, finishCtx context.Context, recs <-chan *record, w *writers) error {
	cfg := l.cfg
	finishCh := l.finishCh
	onFinish := func() error {
		finishCh = nil
		e, err := l.endOffsets(ctx)
		if err != nil {
			return err
		}
		l.end = e
		return nil
	}
	for {
		if ctx.Err() != nil {
			return nil
		}
		if cfg.MaxUpdates > 0 && l.stats.Updates >= cfg.MaxUpdates {
			return nil
		}
		select {
		case <-finishCh:
			if err := onFinish(); err != nil {
				return err
			}
		default:
		}
		switch {
		case l.end != nil && l.reached(l.end):
			// Everything up to the end is in: spend the training budget.
			if !l.tr.WantsMore() {
				return nil
			}
			if err := l.update(finishCtx, w); err != nil {
				return err
			}
		case l.tr.CanSample():
			// Take what has arrived without waiting (while the rate
			// limiter allows it), then one update: with a backlog this is
			// train.Trainer.Due's schedule, the one aelp experiment ab runs.
		drain:
			for i := 0; i < 4096 && l.tr.CanInsert(); i++ {
				select {
				case r := <-recs:
					l.ingest(r)
				default:
					break drain
				}
			}
			if err := l.update(finishCtx, w); err != nil {
				return err
			}
		default:
			t0 := time.Now()
			select {
			case <-ctx.Done():
				return nil
			case r := <-recs:
				l.waited(t0)
				l.ingest(r)
			case <-finishCh:
				l.waited(t0)
				if err := onFinish(); err != nil {
					return err
				}
			}
		}
	}
}

// waited adds the time since t0 to Stats.WaitTime.
func (l *Learner) waited(t0 time.Time) {
	d := time.Since(t0)
	l.mu.Lock()
	l.stats.WaitTime += d
	l.mu.Unlock()
}

func (l *Learner) endOffsets(ctx context.Context) (map[int]int64, error) {
	var offs kafkax.Offsets
	err := kafkax.Retry(ctx, l.log, "list offsets", func(ctx context.Context) error {
		var err error
		offs, err = kafkax.ListOffsets(ctx, l.cfg.Kafka, l.cfg.TaggedTopic)
		return l.cfg.Kafka.Explain(err)
	})
	if err != nil && ctx.Err() == nil {
		return nil, fmt.Errorf("learn: %w", err)
	}
	return offs.End, nil
}

// reached reports whether every partition has been read up to end.
func (l *Learner) reached(end map[int]int64) bool {
	for p, e := range end {
		if l.offsets[p] < e {
			return false
		}
	}
	return true
}

// ingest adds one record to the buffer (or only advances the offset).
func (l *Learner) ingest(r *record) {
	if l.end != nil && r.offset >= l.end[r.partition] {
		return // past the bound: left for a later run
	}
	l.offsets[r.partition] = r.offset + 1
	l.hwm[r.partition] = r.hwm
	if r.skip {
		l.mu.Lock()
		if r.dead {
			l.stats.DeadLettered++
		} else {
			l.stats.Skipped++
		}
		l.mu.Unlock()
		if r.invalid {
			l.holdOutInvalid(&r.te)
		}
		return
	}
	if l.holdOut(&r.te) {
		return
	}
	dup := !l.tr.Insert(&r.te)
	l.window.ingested++
	l.metrics.ingested.Inc()
	l.mu.Lock()
	l.stats.Ingested++
	if dup {
		l.stats.Duplicates++
		l.metrics.duplicates.Inc()
	}
	l.mu.Unlock()
}

// update makes one update of the training core, then publishes and
// checkpoints on their schedules.
func (l *Learner) update(ctx context.Context, w *writers) error {
	cfg := l.cfg
	now := time.Now()
	res, err := l.tr.Update()
	if err != nil {
		return fmt.Errorf("learn: %w", err)
	}
	took := time.Since(now)
	l.metrics.updateSeconds.Observe(took.Seconds())
	for _, produced := range res.FirstUse {
		l.metrics.firstUse.Observe(float64(now.UnixNano()-produced) / 1e9)
	}
	l.window.sampled += int64(cfg.BatchSize)
	ts := l.tr.Stats()
	l.mu.Lock()
	l.stats.Updates = ts.Updates
	l.stats.Sampled = ts.Sampled
	l.stats.Buffer = res.Buffer
	l.stats.Last = res.PPO
	l.stats.Batches = ts.Batches
	l.stats.Tags = ts.Tags
	var lag int64
	for p, h := range l.hwm {
		lag += max(0, h-l.offsets[p])
	}
	l.stats.Lag = lag
	l.stats.UpdateTime += took
	updates := l.stats.Updates
	l.mu.Unlock()
	l.metrics.observeUpdate(res.PPO, res.Buffer)
	l.metrics.adaptiveSignal.Set(ts.AdaptiveSignal)
	if updates%cfg.MetricsEvery == 0 || updates%cfg.SnapshotEvery == 0 {
		if err := l.publish(ctx, w, updates%cfg.MetricsEvery == 0, updates%cfg.SnapshotEvery == 0); err != nil {
			return err
		}
	}
	if updates%cfg.CheckpointEvery == 0 {
		if err := l.checkpoint(); err != nil {
			return err
		}
	}
	return nil
}

func (l *Learner) logProgress() {
	s := l.Stats()
	ev := l.log.Info().Int64("updates", s.Updates).Int64("ingested", s.Ingested).Int("buffer", s.Buffer.Size).
		Int64("lag", s.Lag)
	if s.Batches.CrisisShare.N() > 0 {
		ev = ev.Float64("batch_crisis_ratio", round4(s.Batches.CrisisShare.Mean())).
			Float64("expected_crisis_ratio", round4(s.Batches.ExpectedCrisisShare.Mean())).
			Float64("policy_loss", round4(s.Last.PolicyLoss)).Float64("value_loss", round4(s.Last.ValueLoss)).
			Float64("entropy", round4(s.Last.Entropy)).Float64("beta", round4(s.Buffer.Beta))
	}
	ev.Msg("learn progress")
}

func round4(x float64) float64 { return math.Round(x*1e4) / 1e4 }

// readPartition reads one partition from offset through a kafkax.Reader
// (read_committed: records of aborted transactions are never trained on)
// and hands decoded records to the training loop; undecodable or invalid
// ones go to the dead-letter topic first. Every offset that holds no record
// the reader returns (a transaction marker, a record of an aborted
// transaction, a compacted gap) is handed on as a skipped record, so that
// each offset is ingested, skipped or dead-lettered, and the loop's
// position, its lag and a bounded run's end (which may fall inside such a
// run of offsets) move past them. It returns nil when ctx ends.
func (l *Learner) readPartition(ctx, finishCtx context.Context, p int, offset int64, out chan<- *record, dlq *kafkax.Writer) error {
	cfg := l.cfg
	r, err := kafkax.NewReader(cfg.Kafka, cfg.TaggedTopic, kafkax.ReadOptions{Logger: l.log})
	if err != nil {
		return fmt.Errorf("learn: %w", err)
	}
	defer r.Close()
	lim := cfg.limits()
	last := offset - 1 // the offset of the last record handed on
	send := func(rec *record) error {
		select {
		case out <- rec:
			last = rec.offset
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	// skipTo hands on the offsets after last and before next as skipped.
	skipTo := func(next, hwm int64) error {
		for o := last + 1; o < next; o++ {
			if err := send(&record{partition: p, offset: o, hwm: hwm, skip: true}); err != nil {
				return err
			}
		}
		return nil
	}
	err = r.Read(ctx, map[int]int64{p: offset}, nil, func(b *kafkax.Batch) error {
		for i := range b.Messages {
			m := &b.Messages[i]
			if err := skipTo(m.Offset, m.HighWaterMark); err != nil {
				return err
			}
			rec := &record{partition: p, offset: m.Offset, hwm: m.HighWaterMark}
			if err := decodeTagged(m.Value, &rec.te, lim); err != nil {
				reason := schemas.Reason(err)
				l.metrics.deadLetters.WithLabelValues(reason).Inc()
				werr := kafkax.WriteAll(finishCtx, cfg.Kafka, dlq, l.log, []kafka.Message{kafkax.DeadLetter(*m, reason)})
				if errors.As(werr, new(*kafkax.RefusedError)) {
					// Larger than the dead-letter topic takes: it cannot be
					// kept; say where it is and go on.
					l.log.Error().Err(werr).Str("topic", m.Topic).Int("partition", m.Partition).Int64("offset", m.Offset).
						Str("reason", reason).Msg("the dead-letter topic refused a dead letter; it is dropped (still in the tagged topic at its offset)")
					werr = nil
				}
				if werr != nil {
					return fmt.Errorf("dead letter: %w", werr)
				}
				rec.skip, rec.dead = true, true
				rec.invalid = errors.As(err, new(*schemas.ValidationError))
			} else if rec.te.ExperimentID != cfg.ExperimentID {
				rec.skip = true
			}
			if err := send(rec); err != nil {
				return err
			}
		}
		return skipTo(b.Next, b.HighWaterMark)
	})
	if ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("learn: partition %d: %w", p, err)
}

func decodeTagged(b []byte, te *schemas.TaggedExperience, lim schemas.Limits) error {
	if err := schemas.UnmarshalTaggedExperience(b, te); err != nil {
		return err
	}
	return te.Validate(lim)
}

// refill re-reads, before the saved offsets, the last Capacity tagged
// records of the experiment into the buffer, so a restarted learner trains
// on the data it had. Partitions contribute in proportion to the records
// they hold before their saved offset, and are read one after the other,
// in partition order.
func (l *Learner) refill(ctx context.Context, offs kafkax.Offsets) error {
	cfg := l.cfg
	var total int64
	parts := make([]int, 0, len(offs.First))
	for p := range offs.First {
		parts = append(parts, p)
		total += l.offsets[p] - offs.First[p]
	}
	sort.Ints(parts)
	if total == 0 {
		return nil
	}
	want := min(total, int64(cfg.Replay.Capacity))
	lim := cfg.limits()
	start := time.Now()
	r, err := kafkax.NewReader(cfg.Kafka, cfg.TaggedTopic, kafkax.ReadOptions{Logger: l.log})
	if err != nil {
		return fmt.Errorf("learn: refill: %w", err)
	}
	defer r.Close()
	var added int64
	var te schemas.TaggedExperience
	for _, p := range parts {
		n := l.offsets[p] - offs.First[p]
		take := n * want / total
		if take == 0 {
			continue
		}
		from := l.offsets[p] - take
		err := r.ReadMessages(ctx, map[int]int64{p: from}, map[int]int64{p: l.offsets[p]}, func(m *kafka.Message) error {
			if decodeTagged(m.Value, &te, lim) == nil && te.ExperimentID == cfg.ExperimentID && !l.holdOut(&te) {
				l.tr.Refill(&te)
				added++
			}
			return nil
		})
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("learn: refill partition %d from %d: %w", p, from, err)
		}
	}
	l.mu.Lock()
	l.stats.Refilled = added
	l.stats.Buffer = l.tr.Stats().Buffer
	l.mu.Unlock()
	l.log.Info().Int64("records", added).Dur("took", time.Since(start).Round(time.Millisecond)).Msg("buffer refilled from the log")
	return nil
}
