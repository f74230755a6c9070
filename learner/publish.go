package learner

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/aelp/aelp/consumers/classify"
	"github.com/aelp/aelp/internal/kafkax"
	"github.com/aelp/aelp/internal/stats"
	"github.com/aelp/aelp/schemas"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
)

type writers struct {
	metrics, policy, dlq *kafkax.Writer
	// candidates is nil unless the gate may hold snapshots back.
	candidates *kafkax.Writer
}

// newWriters makes the learner's writers on the role's client, each sized
// by its topic's limit.
func newWriters(ctx context.Context, client *kafkax.Client, cfg Config, log zerolog.Logger) (*writers, error) {
	var w writers
	var err error
	if w.metrics, err = client.NewWriter(ctx, cfg.MetricsTopic, kafkax.WriterOptions{BatchSize: 10, Logger: log}); err != nil {
		return nil, fmt.Errorf("learn: %w", err)
	}
	if w.policy, err = client.NewWriter(ctx, cfg.PolicyTopic, kafkax.WriterOptions{BatchSize: 1, Logger: log}); err != nil {
		_ = w.metrics.Close()
		return nil, fmt.Errorf("learn: %w", err)
	}
	if w.dlq, err = client.NewWriter(ctx, cfg.DeadLetterTopic, kafkax.WriterOptions{BatchSize: 100, Logger: log}); err != nil {
		_ = w.metrics.Close()
		_ = w.policy.Close()
		return nil, fmt.Errorf("learn: %w", err)
	}
	if cfg.OPE.Promote == PromoteLCB {
		if w.candidates, err = client.NewWriter(ctx, cfg.CandidatesTopic, kafkax.WriterOptions{BatchSize: 1, Logger: log}); err != nil {
			_ = w.metrics.Close()
			_ = w.policy.Close()
			_ = w.dlq.Close()
			return nil, fmt.Errorf("learn: %w", err)
		}
	}
	return &w, nil
}

func (w *writers) close(kcfg kafkax.Config) error {
	var errs []error
	for _, x := range []*kafkax.Writer{w.metrics, w.policy, w.dlq, w.candidates} {
		if x == nil {
			continue
		}
		if err := x.Close(); err != nil {
			errs = append(errs, kcfg.Explain(err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("learn: close writers: %w", err)
	}
	return nil
}

// Metrics builds the TrainingMetrics record of the learner's current state
// (the figures of the last update and the window since the last record).
func (l *Learner) trainingMetrics(now time.Time) schemas.TrainingMetrics {
	s := l.Stats()
	bs := s.Buffer
	st := s.Last
	var ingestRate, sampleRate float64
	if l.window.start > 0 {
		if dt := float64(now.UnixNano()-l.window.start) / 1e9; dt > 0 {
			ingestRate = float64(l.window.ingested) / dt
			sampleRate = float64(l.window.sampled) / dt
		}
	}
	l.window = windowCounters{start: now.UnixNano()}
	m := schemas.TrainingMetrics{
		ExperimentID:             l.cfg.ExperimentID,
		LearnerID:                l.cfg.LearnerID,
		Update:                   s.Updates,
		Timestamp:                now,
		EnableImportanceSampling: !l.cfg.Replay.Uniform,
		CrisisParentWeight:       cmp.Or(bs.CrisisWeight, l.cfg.Replay.CrisisWeight), // the last batch's (adaptive: varies)
		RegularParentWeight:      l.cfg.Replay.RegularWeight,
		CrisisParentRatioInBatch: bs.LastBatchCrisisRatio,
		ExpectedCrisisRatio:      bs.ExpectedBatchCrisisRatio,
		CrisisFractionInBuffer:   bs.CrisisFraction,
		ImportanceWeightsMean:    bs.WeightMean,
		ImportanceWeightsStd:     bs.WeightStd,
		ImportanceWeightsMin:     bs.WeightMin,
		ImportanceWeightsMax:     bs.WeightMax,
		Beta:                     bs.Beta,
		PolicyLoss:               st.PolicyLoss,
		ValueLoss:                st.ValueLoss,
		Entropy:                  st.Entropy,
		ApproxKL:                 st.ApproxKL,
		ClipFrac:                 st.ClipFrac,
		ExplainedVariance:        st.ExplainedVariance,
		GradNorm:                 st.GradNorm,
		LearningRate:             st.LearningRate,
		IngestPerSec:             ingestRate,
		SamplesPerSec:            sampleRate,
		BufferSize:               int64(bs.Size),
		Updates:                  s.Updates,
		ExperiencesIngested:      s.Ingested,
		ConsumerLag:              s.Lag,
		EpochsRun:                int64(st.EpochsRun),
	}
	m.TagPrecision, m.TagRecall = precisionRecall(l.tr.Stats().Tags) // every record so far
	m.Tagging = taggingBySource(l.tr.Tagging())
	ret := l.tr.TakeReturns()
	m.MeanReturnCrisis, m.MeanReturnRegular = meanOrNil(ret.Crisis), meanOrNil(ret.Regular)
	return m
}

// precisionRecall returns the tags' precision and recall, nil while
// undefined (no crisis tag, no true crisis parent).
func precisionRecall(c stats.Confusion) (p, r *float64) {
	if c.TP+c.FP > 0 {
		v := c.Precision()
		p = &v
	}
	if c.TP+c.FN > 0 {
		v := c.Recall()
		r = &v
	}
	return p, r
}

// taggingBySource returns the record's per-source tag accuracy: one entry
// per tag source with records (in the classifier's order LABEL, METADATA,
// VALUE, DEFAULT), each figure nil while undefined; nil without any record.
func taggingBySource(r classify.Report) []schemas.TagSourceAccuracy {
	var out []schemas.TagSourceAccuracy
	for i, mm := range r.BySource {
		n := mm.Total()
		if n == 0 {
			continue
		}
		a := schemas.TagSourceAccuracy{Source: classify.Source(i).String(), Records: int64(n),
			Brier: &mm.Brier, ECE: &mm.ECE}
		a.Precision, a.Recall = precisionRecall(mm.Counts)
		if 2*mm.TP+mm.FP+mm.FN > 0 {
			a.F1 = &mm.F1
		}
		out = append(out, a)
	}
	return out
}

// meanOrNil returns the mean of r, nil when r is empty.
func meanOrNil(r stats.Running) *float64 {
	if r.N() == 0 {
		return nil
	}
	v := r.Mean()
	return &v
}

// windowCounters count ingest and samples between two metrics records.
type windowCounters struct {
	ingested, sampled int64
	start             int64 // unix ns
}

// publish writes, as asked, a PolicySnapshot (to the policy topic, or the
// candidates topic when the gate holds it back) and a TrainingMetrics
// record, both keyed by the experiment id. A snapshot evaluated off-policy
// is always followed by a metrics record carrying its evaluation.
func (l *Learner) publish(ctx context.Context, w *writers, metrics, snapshot bool) error {
	now := time.Now()
	key := []byte(l.cfg.ExperimentID)
	if snapshot {
		if err := l.publishSnapshot(ctx, w, key, now); err != nil {
			return err
		}
	}
	if metrics || l.pendingOPE != nil {
		return l.publishMetrics(ctx, w, key, now)
	}
	return nil
}

func (l *Learner) publishMetrics(ctx context.Context, w *writers, key []byte, now time.Time) error {
	m := l.trainingMetrics(now)
	m.OPE, l.pendingOPE = l.pendingOPE, nil
	l.metrics.observeRecord(&m)
	val, err := schemas.MarshalTrainingMetrics(nil, &m)
	if err != nil {
		return fmt.Errorf("learn: encode metrics: %w", err)
	}
	if err := kafkax.WriteAll(ctx, l.cfg.Kafka, w.metrics, l.log, []kafka.Message{{Key: key, Value: val, Time: now}}); err != nil {
		return fmt.Errorf("learn: publish metrics: %w", err)
	}
	l.lastMetrics = m.Updates
	return nil
}

// publishSnapshot publishes the agent's snapshot: with held-out users
// (Config.OPE) evaluated first and, by the gate's decision, to the policy
// topic or the candidates topic, the decision in its headers.
func (l *Learner) publishSnapshot(ctx context.Context, w *writers, key []byte, now time.Time) error {
	snap, val, err := l.snapshot(now)
	if err != nil {
		return err
	}
	if l.snapshotHook != nil {
		l.snapshotHook(&snap)
		if val, err = schemas.MarshalPolicySnapshot(nil, &snap); err != nil {
			return fmt.Errorf("learn: encode snapshot: %w", err)
		}
	}
	msg := kafka.Message{Key: key, Value: val, Time: now}
	out, d, pol, err := l.gate(&snap, w)
	if err != nil {
		return err
	}
	if d != nil {
		msg.Headers = gateHeaders(d)
	}
	if err := kafkax.WriteAll(ctx, l.cfg.Kafka, out, l.log, []kafka.Message{msg}); err != nil {
		return fmt.Errorf("learn: publish snapshot: %w", err)
	}
	l.lastSnapshot = l.stats.Updates
	if d != nil && !d.promote {
		l.metrics.ope.heldBack.WithLabelValues(d.ev.Reason).Inc()
		l.mu.Lock()
		l.stats.HeldBack++
		l.mu.Unlock()
		l.log.Info().Int64("version", snap.Version).Str("reason", d.ev.Reason).Str("detail", d.ev.Detail).
			Str("topic", l.cfg.CandidatesTopic).Msg("snapshot held back by the promotion gate")
		return nil
	}
	if l.eval != nil {
		l.eval.serving, l.eval.servingVersion = pol, snap.Version
	}
	l.metrics.ope.promoted.Inc()
	l.mu.Lock()
	l.stats.PolicyVersion = snap.Version
	l.stats.Promoted++
	l.mu.Unlock()
	l.metrics.policyVersion.Set(float64(snap.Version))
	return nil
}

// snapshot returns the agent's current PolicySnapshot and its encoding.
func (l *Learner) snapshot(now time.Time) (schemas.PolicySnapshot, []byte, error) {
	agent := l.tr.Agent()
	arch, params, mean, variance, count, err := agent.MarshalPolicy()
	if err != nil {
		return schemas.PolicySnapshot{}, nil, fmt.Errorf("learn: snapshot: %w", err)
	}
	snap := schemas.PolicySnapshot{ExperimentID: l.cfg.ExperimentID, Version: agent.Version(), CreatedAt: now,
		Architecture: arch, Params: params, ObsMean: mean, ObsVar: variance, ObsCount: count}
	val, err := schemas.MarshalPolicySnapshot(nil, &snap)
	if err != nil {
		return snap, nil, fmt.Errorf("learn: encode snapshot: %w", err)
	}
	return snap, val, nil
}

// checkSnapshotSize refuses to train a network whose policy snapshots the
// policy topic cannot take. A snapshot's size is set by the network's shape
// (its parameters and observation statistics, written in full every time),
// so the first one would be refused and every one after it: better to say
// so at start-up than after the first update. The snapshot is measured as
// encoded now, with the largest version number (its varint grows with the
// version) and the experiment id as key.
func (l *Learner) checkSnapshotSize(pw *kafkax.Writer) error {
	snap, _, err := l.snapshot(time.Now())
	if err != nil {
		return err
	}
	snap.Version = math.MaxInt64
	val, err := schemas.MarshalPolicySnapshot(nil, &snap)
	if err != nil {
		return fmt.Errorf("learn: encode snapshot: %w", err)
	}
	size := kafkax.RecordBatchBytes(kafka.Message{Key: []byte(l.cfg.ExperimentID), Value: val, Time: snap.CreatedAt})
	if size <= pw.MaxRecordBytes() {
		return nil
	}
	lim := pw.Limit()
	return fmt.Errorf("learn: policy snapshot of %.1f MB (%d bytes, network %s) exceeds %s's max.message.bytes %d (%s; records up to %d bytes): "+
		"use smaller --hidden layers, or raise max.message.bytes of %s (and the broker's message.max.bytes)",
		float64(size)/1e6, size, snap.Architecture, l.cfg.PolicyTopic, lim.Bytes, lim.Source, pw.MaxRecordBytes(), l.cfg.PolicyTopic)
}
