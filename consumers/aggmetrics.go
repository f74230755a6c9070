package consumers

import (
	"github.com/aelp/aelp/consumers/classify"
	"github.com/prometheus/client_golang/prometheus"
)

type aggMetrics struct {
	in, out        prometheus.Counter
	commitFailures prometheus.Counter
	deadLetters    *prometheus.CounterVec
	// deadLettersDropped counts dead letters the dead-letter topic refused.
	deadLettersDropped *prometheus.CounterVec
	tags               [classify.NumSources][2]prometheus.Counter
	precision          *prometheus.GaugeVec
	recall             *prometheus.GaugeVec
	f1                 *prometheus.GaugeVec
	brier              *prometheus.GaugeVec
	ece                *prometheus.GaugeVec
}

func newAggMetrics(reg prometheus.Registerer) *aggMetrics {
	m := &aggMetrics{
		in: prometheus.NewCounter(prometheus.CounterOpts{Name: "aelp_aggregate_records_in_total",
			Help: "Records read from the input topic."}),
		out: prometheus.NewCounter(prometheus.CounterOpts{Name: "aelp_aggregate_records_tagged_total",
			Help: "Tagged records acknowledged on the output topic."}),
		commitFailures: prometheus.NewCounter(prometheus.CounterOpts{Name: "aelp_aggregate_commit_failures_total",
			Help: "Batches whose offset commit a rebalance refused (their records are redelivered)."}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "aelp_aggregate_dead_letters_total",
			Help: "Records dead-lettered, by reason (any the dead-letter topic refused are in aelp_aggregate_dead_letters_dropped_total too)."}, []string{"reason"}),
		deadLettersDropped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "aelp_aggregate_dead_letters_dropped_total",
			Help: "Dead letters the dead-letter topic refused for good (larger than it takes), by reason: logged with their source offset, not kept."}, []string{"reason"}),
		precision: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "aelp_aggregate_crisis_precision",
			Help: "Crisis-tag precision against ground truth, overall (source=all) and per tag source."}, []string{"source"}),
		recall: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "aelp_aggregate_crisis_recall",
			Help: "Crisis-tag recall against ground truth, overall (source=all) and per tag source."}, []string{"source"}),
		f1: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "aelp_aggregate_crisis_f1",
			Help: "Crisis-tag F1 against ground truth, overall (source=all) and per tag source."}, []string{"source"}),
		brier: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "aelp_aggregate_tag_score_brier",
			Help: "Brier score of tag_score (the calibrated P(crisis)) against ground truth, overall (source=all) and per tag source."}, []string{"source"}),
		ece: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "aelp_aggregate_tag_score_ece",
			Help: "Expected calibration error (10 bins) of tag_score against ground truth, overall (source=all) and per tag source."}, []string{"source"}),
	}
	tags := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "aelp_aggregate_tags_total",
		Help: "Tagged records by tag source and event type."}, []string{"source", "event_type"})
	for s := range classify.NumSources {
		m.tags[s][0] = tags.WithLabelValues(classify.Source(s).String(), "REGULAR_PARENT")
		m.tags[s][1] = tags.WithLabelValues(classify.Source(s).String(), "CRISIS_PARENT")
	}
	if reg != nil {
		reg.MustRegister(m.in, m.out, m.commitFailures, m.deadLetters, m.deadLettersDropped, tags, m.precision, m.recall, m.f1, m.brier, m.ece)
	}
	return m
}

func (m *aggMetrics) setAccuracy(r classify.Report) {
	m.precision.WithLabelValues("all").Set(r.Overall.Precision)
	m.recall.WithLabelValues("all").Set(r.Overall.Recall)
	m.f1.WithLabelValues("all").Set(r.Overall.F1)
	m.brier.WithLabelValues("all").Set(r.Overall.Brier)
	m.ece.WithLabelValues("all").Set(r.Overall.ECE)
	for s, mm := range r.BySource {
		name := classify.Source(s).String()
		m.precision.WithLabelValues(name).Set(mm.Precision)
		m.recall.WithLabelValues(name).Set(mm.Recall)
		m.f1.WithLabelValues(name).Set(mm.F1)
		m.brier.WithLabelValues(name).Set(mm.Brier)
		m.ece.WithLabelValues(name).Set(mm.ECE)
	}
}
