package consumers

import (
	"github.com/aelp/aelp/consumers/classify"
	"github.com/aelp/aelp/internal/obs"
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
	f := obs.NewMetrics(reg)
	m := &aggMetrics{
		in: f.Counter("aelp_aggregate_records_in_total",
			"Records read from the input topic."),
		out: f.Counter("aelp_aggregate_records_tagged_total",
			"Tagged records acknowledged on the output topic."),
		commitFailures: f.Counter("aelp_aggregate_commit_failures_total",
			"Batches whose offset commit a rebalance refused (their records are redelivered)."),
		deadLetters: f.CounterVec("aelp_aggregate_dead_letters_total",
			"Records dead-lettered, by reason (any the dead-letter topic refused are in aelp_aggregate_dead_letters_dropped_total too).", "reason"),
		deadLettersDropped: f.CounterVec("aelp_aggregate_dead_letters_dropped_total",
			"Dead letters the dead-letter topic refused for good (larger than it takes), by reason: logged with their source offset, not kept.", "reason"),
		precision: f.GaugeVec("aelp_aggregate_crisis_precision",
			"Crisis-tag precision against ground truth, overall (source=all) and per tag source.", "source"),
		recall: f.GaugeVec("aelp_aggregate_crisis_recall",
			"Crisis-tag recall against ground truth, overall (source=all) and per tag source.", "source"),
		f1: f.GaugeVec("aelp_aggregate_crisis_f1",
			"Crisis-tag F1 against ground truth, overall (source=all) and per tag source.", "source"),
		brier: f.GaugeVec("aelp_aggregate_tag_score_brier",
			"Brier score of tag_score (the calibrated P(crisis)) against ground truth, overall (source=all) and per tag source.", "source"),
		ece: f.GaugeVec("aelp_aggregate_tag_score_ece",
			"Expected calibration error (10 bins) of tag_score against ground truth, overall (source=all) and per tag source.", "source"),
	}
	tags := f.CounterVec("aelp_aggregate_tags_total",
		"Tagged records by tag source and event type.", "source", "event_type")
	for s := range classify.NumSources {
		m.tags[s][0] = tags.WithLabelValues(classify.Source(s).String(), "REGULAR_PARENT")
		m.tags[s][1] = tags.WithLabelValues(classify.Source(s).String(), "CRISIS_PARENT")
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
