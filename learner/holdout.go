package learner

import (
	"context"
	"fmt"

	"github.com/aelp/aelp/internal/kafkax"
	"github.com/aelp/aelp/learner/policy"
	"github.com/aelp/aelp/learner/ppo"
	"github.com/aelp/aelp/schemas"
)

// topics are the topics the learn role reads and writes (ensured at
// start): the candidates topic only when the gate may hold snapshots back.
func (c Config) topics() []kafkax.TopicSpec {
	ts := []kafkax.TopicSpec{
		{Name: c.TaggedTopic},
		{Name: c.MetricsTopic, Partitions: 1},
		{Name: c.PolicyTopic, Partitions: 1, Compact: true},
		{Name: c.DeadLetterTopic, Partitions: 1},
	}
	if c.OPE.Promote == PromoteLCB {
		// Not compacted: every held-back snapshot is kept with its reason
		// (an audit trail), for the topic's retention.
		ts = append(ts, kafkax.TopicSpec{Name: c.CandidatesTopic, Partitions: 1})
	}
	return ts
}

// holdOut keeps te in the evaluation set, and reports true, when its user
// is held out: such a record is never inserted into the buffer.
func (l *Learner) holdOut(te *schemas.TaggedExperience) bool {
	if l.eval == nil || !heldOut(te.UserID, l.cfg.OPE.Holdout) {
		return false
	}
	l.eval.add(te)
	l.metrics.ope.heldOut.Inc()
	n := l.eval.set.Len()
	l.metrics.ope.journeys.Set(float64(n))
	l.mu.Lock()
	l.stats.HeldOut++
	l.stats.EvalJourneys = n
	l.stats.EvalCounts = l.eval.collector.Counts()
	l.mu.Unlock()
	return true
}

// holdOutInvalid hands a held-out user's record that failed validation
// (and was dead-lettered with its reason) to the evaluation set's
// collector, which counts it — without a behaviour log-prob, with
// log-prob −Inf, or invalid — and drops its journey, whose importance
// weight has a step missing; the first such record is logged.
func (l *Learner) holdOutInvalid(te *schemas.TaggedExperience) {
	if l.eval == nil || te.ExperimentID != l.cfg.ExperimentID || !heldOut(te.UserID, l.cfg.OPE.Holdout) {
		return
	}
	before := l.eval.collector.Counts().Skipped()
	l.eval.add(te)
	c := l.eval.collector.Counts()
	if before == 0 && c.Skipped() > 0 {
		l.log.Warn().Str("episode", te.EpisodeID).Float64("behavior_logprob", te.BehaviorLogProb).Str("evaluation_set", c.String()).
			Msg("held-out record unusable for off-policy evaluation: counted and skipped, its journey dropped (further ones are counted in the evaluation log lines)")
	}
	l.mu.Lock()
	l.stats.EvalCounts = c
	l.mu.Unlock()
}

// loadServing sets the gate's serving policy to the experiment's newest
// snapshot on the policy topic (what the simulators, or an ad server, act
// with), so that a restarted learner compares with it; with none the
// logging policy serves. Only with the lcb gate.
func (l *Learner) loadServing(ctx context.Context) error {
	cfg := l.cfg
	if l.eval == nil || cfg.OPE.Promote != PromoteLCB {
		return nil
	}
	src := policy.Source{Kafka: cfg.Kafka, Topic: cfg.PolicyTopic, ExperimentID: cfg.ExperimentID, Log: l.log}
	var snap *schemas.PolicySnapshot
	err := kafkax.Retry(ctx, l.log, "read the serving policy", func(ctx context.Context) error {
		var err error
		snap, err = src.Latest(ctx)
		return cfg.Kafka.Explain(err)
	})
	if err != nil {
		return fmt.Errorf("learn: serving policy: %w", err)
	}
	if snap == nil {
		l.log.Info().Str("topic", cfg.PolicyTopic).Msg("no policy snapshot serving yet: the gate compares with the logging policy")
		return nil
	}
	pol, err := ppo.LoadPolicy(snap.Architecture, snap.Params, snap.ObsMean, snap.ObsVar, snap.ObsCount)
	if err == nil && (pol.ObsDim() != cfg.StateDim || pol.NumActions() != cfg.NumActions) {
		err = fmt.Errorf("policy is %d × %d, records are %d × %d", pol.ObsDim(), pol.NumActions(), cfg.StateDim, cfg.NumActions)
	}
	if err != nil {
		// The simulators refuse it too and keep their policy: compare with
		// the logging policy rather than stop.
		l.log.Warn().Err(err).Int64("version", snap.Version).Msg("serving snapshot unusable: the gate compares with the logging policy")
		return nil
	}
	l.eval.serving, l.eval.servingVersion = pol, snap.Version
	l.log.Info().Int64("version", snap.Version).Msg("the gate compares snapshots with the serving policy")
	return nil
}

// gate decides where snapshot snap goes: the policy topic's writer, or the
// candidates topic's when the gate holds it back. Without held-out users it
// is the policy topic and no decision (d nil). pol is the snapshot's policy
// as loaded from its encoding (what a simulator would act with).
func (l *Learner) gate(snap *schemas.PolicySnapshot, w *writers) (out *kafkax.Writer, d *decision, pol *ppo.Policy, err error) {
	if l.eval == nil {
		return w.policy, nil, nil, nil
	}
	pol, err = ppo.LoadPolicy(snap.Architecture, snap.Params, snap.ObsMean, snap.ObsVar, snap.ObsCount)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("learn: snapshot v%d: %w", snap.Version, err)
	}
	var dd decision
	secs := evaluationSeconds(func() { dd = l.eval.judge(pol, snap.Version, l.cfg.Seed) })
	l.metrics.ope.seconds.Observe(secs)
	l.metrics.ope.observe(&dd.ev)
	ev := dd.ev
	l.pendingOPE = &ev
	l.mu.Lock()
	l.stats.LastOPE = &ev
	l.mu.Unlock()
	l.log.Info().Int64("version", snap.Version).Int64("serving", ev.ServingVersion).Int64("journeys", ev.Journeys).
		Str("evaluation_set", l.eval.collector.Counts().String()).
		Bool("promoted", dd.promote).Str("reason", ev.Reason).Float64("seconds", secs).Msg("snapshot evaluated off-policy")
	if dd.promote {
		return w.policy, &dd, pol, nil
	}
	return w.candidates, &dd, pol, nil
}

// Consumed returns the tagged experiences this process took for training
// or for evaluation: Ingested plus HeldOut. What a producer paced by the
// learner compares with what it published: with held-out users, Ingested
// alone falls behind by their share and would stall it.
func (s Stats) Consumed() int64 { return s.Ingested + s.HeldOut }
