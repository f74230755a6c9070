package learner

import (
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
	policyVersion                           prometheus.Gauge
	g                                       map[string]prometheus.Gauge
}

var gaugeNames = []string{
	"crisis_parent_weight", "regular_parent_weight", "crisis_parent_ratio_in_batch", "expected_crisis_ratio",
	"crisis_fraction_in_buffer", "importance_weights_mean", "importance_weights_std", "importance_weights_min",
	"importance_weights_max", "beta", "policy_loss", "value_loss", "entropy", "approx_kl", "clip_frac",
	"explained_variance", "grad_norm", "learning_rate", "buffer_size", "ingest_per_sec", "samples_per_sec",
	"consumer_lag", "tag_precision", "tag_recall", "mean_return_crisis", "mean_return_regular",
}

func newLearnMetrics(reg prometheus.Registerer) *learnMetrics {
	m := &learnMetrics{
		ingested: prometheus.NewCounter(prometheus.CounterOpts{Name: "aelp_learn_experiences_ingested_total",
			Help: "Tagged experiences added to the replay buffer."}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{Name: "aelp_learn_duplicates_dropped_total",
			Help: "Ingested experiences dropped because the replay buffer already held their id."}),
		updates: prometheus.NewCounter(prometheus.CounterOpts{Name: "aelp_learn_updates_total",
			Help: "PPO updates made by this process."}),
		samples: prometheus.NewCounter(prometheus.CounterOpts{Name: "aelp_learn_samples_total",
			Help: "Samples drawn from the replay buffer."}),
		checkpoints: prometheus.NewCounter(prometheus.CounterOpts{Name: "aelp_learn_checkpoints_total",
			Help: "Checkpoints written."}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "aelp_learn_dead_letters_total",
			Help: "Tagged records sent to the dead-letter topic, by reason."}, []string{"reason"}),
		updateSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "aelp_learn_update_seconds",
			Help: "Time of one update: drawing the batch, filling it and the PPO update.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}),
		firstUse: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "aelp_learn_first_use_latency_seconds",
			Help:    "Time from an experience's production to its first use in a training batch.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 16)}),
		policyVersion: prometheus.NewGauge(prometheus.GaugeOpts{Name: "aelp_learn_policy_version",
			Help: "Version of the last published policy snapshot."}),
		g: map[string]prometheus.Gauge{},
	}
	for _, n := range gaugeNames {
		m.g[n] = prometheus.NewGauge(prometheus.GaugeOpts{Name: "aelp_learn_" + n, Help: "TrainingMetrics field " + n + " (DESIGN.md, Metrics)."})
	}
	m.policyVersion.Set(-1)
	if reg != nil {
		reg.MustRegister(m.ingested, m.duplicates, m.updates, m.samples, m.checkpoints, m.deadLetters, m.updateSeconds, m.firstUse, m.policyVersion)
		for _, n := range gaugeNames {
			reg.MustRegister(m.g[n])
		}
	}
	return m
}

func (m *learnMetrics) observeUpdate(st ppo.Stats, bs replay.Stats) {
	m.updates.Inc()
	m.samples.Add(float64(bs.LastBatchSize))
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
