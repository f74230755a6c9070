package learner

import (
	"github.com/aelp/aelp/internal/obs"
	"github.com/aelp/aelp/learner/ppo"
	"github.com/aelp/aelp/learner/replay"
	"github.com/aelp/aelp/schemas"
	"github.com/prometheus/client_golang/prometheus"
)

// learnMetrics are the learn role's Prometheus metrics: the TrainingMetrics
// figures as gauges, plus counters and the first-use latency histogram.
type learnMetrics struct {
	ingested, updates, samples, checkpoints prometheus.Counter
	duplicates                              prometheus.Counter
	deadLetters                             *prometheus.CounterVec
	updateSeconds, firstUse                 prometheus.Histogram
	policyVersion, adaptiveSignal           prometheus.Gauge
	g                                       map[string]prometheus.Gauge
	ope                                     opeMetrics
}

// opeMetrics are the held-out evaluation's and the gate's metrics.
type opeMetrics struct {
	heldOut, promoted              prometheus.Counter
	heldBack                       *prometheus.CounterVec
	journeys, evaluated            prometheus.Gauge
	estimate, lcb, ucb, ess, serve *prometheus.GaugeVec
	seconds                        prometheus.Histogram
}

func newOPEMetrics(f obs.Metrics) opeMetrics {
	seg := func(name, help string) *prometheus.GaugeVec {
		return f.GaugeVec("aelp_learn_ope_"+name, help, "segment")
	}
	o := opeMetrics{
		heldOut: f.Counter("aelp_learn_ope_held_out_total",
			"Tagged experiences of held-out users kept for off-policy evaluation (never trained on)."),
		promoted: f.Counter("aelp_learn_snapshots_promoted_total",
			"Policy snapshots published to the policy topic."),
		heldBack: f.CounterVec("aelp_learn_snapshots_held_back_total",
			"Policy snapshots the promotion gate sent to the candidates topic, by reason.", "reason"),
		journeys: f.Gauge("aelp_learn_ope_journeys",
			"Complete held-out journeys in the evaluation set."),
		evaluated: f.Gauge("aelp_learn_ope_policy_version",
			"Version of the last snapshot evaluated off-policy (−1: none yet)."),
		estimate: seg("estimate", "Off-policy estimate of the last evaluated snapshot's value, by segment."),
		lcb:      seg("lcb", "Lower bound of its interval, by segment."),
		ucb:      seg("ucb", "Upper bound of its interval, by segment."),
		ess:      seg("ess", "Effective sample size of its importance weights, by segment."),
		serve:    seg("serving_lcb", "The serving policy's lower bound on the same journeys, by segment (gate lcb only)."),
		seconds: f.Histogram("aelp_learn_ope_evaluation_seconds",
			"Time of one snapshot's off-policy evaluation and gate decision.", prometheus.ExponentialBuckets(0.01, 2, 14)),
	}
	o.evaluated.Set(-1)
	return o
}

// observe sets the gauges from an evaluation with figures.
func (o *opeMetrics) observe(ev *schemas.OffPolicyEvaluation) {
	if len(ev.Segments) == 0 {
		return
	}
	o.evaluated.Set(float64(ev.PolicyVersion))
	for _, s := range ev.Segments {
		o.estimate.WithLabelValues(s.Segment).Set(s.Estimate)
		o.lcb.WithLabelValues(s.Segment).Set(s.LCB)
		o.ucb.WithLabelValues(s.Segment).Set(s.UCB)
		o.ess.WithLabelValues(s.Segment).Set(s.ESS)
		if s.ServingLCB != nil {
			o.serve.WithLabelValues(s.Segment).Set(*s.ServingLCB)
		}
	}
}

var gaugeNames = []string{
	"crisis_parent_weight", "regular_parent_weight", "crisis_parent_ratio_in_batch", "expected_crisis_ratio",
	"crisis_fraction_in_buffer", "importance_weights_mean", "importance_weights_std", "importance_weights_min",
	"importance_weights_max", "beta", "policy_loss", "value_loss", "entropy", "approx_kl", "clip_frac",
	"explained_variance", "grad_norm", "learning_rate", "buffer_size", "ingest_per_sec", "samples_per_sec",
	"consumer_lag", "tag_precision", "tag_recall", "mean_return_crisis", "mean_return_regular",
}

func newLearnMetrics(reg prometheus.Registerer) *learnMetrics {
	f := obs.NewMetrics(reg)
	m := &learnMetrics{
		ingested: f.Counter("aelp_learn_experiences_ingested_total",
			"Tagged experiences added to the replay buffer."),
		duplicates: f.Counter("aelp_learn_duplicates_dropped_total",
			"Ingested experiences dropped because the replay buffer already held their id."),
		updates: f.Counter("aelp_learn_updates_total",
			"PPO updates made by this process."),
		samples: f.Counter("aelp_learn_samples_total",
			"Samples drawn from the replay buffer."),
		checkpoints: f.Counter("aelp_learn_checkpoints_total",
			"Checkpoints written."),
		deadLetters: f.CounterVec("aelp_learn_dead_letters_total",
			"Tagged records sent to the dead-letter topic, by reason.", "reason"),
		updateSeconds: f.Histogram("aelp_learn_update_seconds",
			"Time of one update: drawing the batch, filling it and the PPO update.", prometheus.ExponentialBuckets(0.0005, 2, 14)),
		firstUse: f.Histogram("aelp_learn_first_use_latency_seconds",
			"Time from an experience's production to its first use in a training batch.",
			prometheus.ExponentialBuckets(0.005, 2, 16)),
		policyVersion: f.Gauge("aelp_learn_policy_version",
			"Version of the last published policy snapshot."),
		adaptiveSignal: f.Gauge("aelp_learn_adaptive_crisis_signal",
			"The adaptive crisis weight's signal: smoothed RMS TD error of crisis over regular experiences (0: --adaptive-crisis-weight off or no signal yet)."),
		g: map[string]prometheus.Gauge{},
	}
	for _, n := range gaugeNames {
		m.g[n] = f.Gauge("aelp_learn_"+n, "TrainingMetrics field "+n+" (DESIGN.md, Metrics).")
	}
	m.ope = newOPEMetrics(f)
	m.policyVersion.Set(-1)
	return m
}

func (m *learnMetrics) observeUpdate(st ppo.Stats, bs replay.Stats) {
	m.updates.Inc()
	m.samples.Add(float64(bs.LastBatchSize))
	m.g["crisis_parent_weight"].Set(bs.CrisisWeight)
	m.g["crisis_parent_ratio_in_batch"].Set(bs.LastBatchCrisisRatio)
	m.g["expected_crisis_ratio"].Set(bs.ExpectedBatchCrisisRatio)
	m.g["crisis_fraction_in_buffer"].Set(bs.CrisisFraction)
	m.g["importance_weights_mean"].Set(bs.WeightMean)
	m.g["importance_weights_std"].Set(bs.WeightStd)
	m.g["importance_weights_min"].Set(bs.WeightMin)
	m.g["importance_weights_max"].Set(bs.WeightMax)
	m.g["beta"].Set(bs.Beta)
	m.g["buffer_size"].Set(float64(bs.Size))
	m.g["policy_loss"].Set(st.PolicyLoss)
	m.g["value_loss"].Set(st.ValueLoss)
	m.g["entropy"].Set(st.Entropy)
	m.g["approx_kl"].Set(st.ApproxKL)
	m.g["clip_frac"].Set(st.ClipFrac)
	m.g["explained_variance"].Set(st.ExplainedVariance)
	m.g["grad_norm"].Set(st.GradNorm)
	m.g["learning_rate"].Set(st.LearningRate)
}

// observeRecord sets the gauges only a metrics record computes.
func (m *learnMetrics) observeRecord(r *schemas.TrainingMetrics) {
	m.g["crisis_parent_weight"].Set(r.CrisisParentWeight)
	m.g["regular_parent_weight"].Set(r.RegularParentWeight)
	m.g["ingest_per_sec"].Set(r.IngestPerSec)
	m.g["samples_per_sec"].Set(r.SamplesPerSec)
	m.g["consumer_lag"].Set(float64(r.ConsumerLag))
	for name, p := range map[string]*float64{"tag_precision": r.TagPrecision, "tag_recall": r.TagRecall,
		"mean_return_crisis": r.MeanReturnCrisis, "mean_return_regular": r.MeanReturnRegular} {
		if p != nil {
			m.g[name].Set(*p)
		}
	}
}
