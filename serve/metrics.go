package serve

import "github.com/prometheus/client_golang/prometheus"

// metrics are the server's Prometheus metrics (aelp_serve_*).
type metrics struct {
	requests      *prometheus.CounterVec
	latency       *prometheus.HistogramVec
	decisions     prometheus.Counter
	rejected      *prometheus.CounterVec
	buffered      prometheus.Gauge
	logged        [numTopics]prometheus.Counter
	logFailures   [numTopics]prometheus.Counter
	deferred      prometheus.Gauge
	activations   prometheus.Counter
	expired       *prometheus.CounterVec
	policyVersion prometheus.Gauge
	swaps         prometheus.Counter
	badSnapshots  prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "aelp_serve_requests_total",
			Help: "HTTP requests by endpoint and status code."}, []string{"endpoint", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "aelp_serve_request_seconds",
			Help:    "Time from a request's arrival to its answer, by endpoint.",
			Buckets: []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1}}, []string{"endpoint"}),
		decisions: prometheus.NewCounter(prometheus.CounterOpts{Name: "aelp_serve_decisions_total",
			Help: "Decisions answered (deferred ones included)."}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "aelp_serve_rejected_total",
			Help: "Requests answered 503, by reason: log_buffer_full, deferred_full, no_policy, stopping."}, []string{"reason"}),
		buffered: prometheus.NewGauge(prometheus.GaugeOpts{Name: "aelp_serve_log_buffer_records",
			Help: "Records in the log buffer, not yet handed to the broker."}),
		deferred: prometheus.NewGauge(prometheus.GaugeOpts{Name: "aelp_serve_deferred_decisions",
			Help: "Deferred decisions awaiting activation."}),
		activations: prometheus.NewCounter(prometheus.CounterOpts{Name: "aelp_serve_activations_total",
			Help: "Deferred decisions activated (and so logged)."}),
		expired: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "aelp_serve_deferred_dropped_total",
			Help: "Deferred decisions never activated, dropped unlogged, by reason: expired, shutdown."}, []string{"reason"}),
		policyVersion: prometheus.NewGauge(prometheus.GaugeOpts{Name: "aelp_serve_policy_version",
			Help: "Version of the policy serving decisions (-1: the logging policy)."}),
		swaps: prometheus.NewCounter(prometheus.CounterOpts{Name: "aelp_serve_policy_swaps_total",
			Help: "Policy snapshots swapped in."}),
		badSnapshots: prometheus.NewCounter(prometheus.CounterOpts{Name: "aelp_serve_policy_rejected_total",
			Help: "Policy snapshots of the experiment that could not be served (bad or of the wrong shape)."}),
	}
	logged := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "aelp_serve_logged_total",
		Help: "Records acknowledged by the broker, by topic (decisions, outcomes)."}, []string{"topic"})
	failures := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "aelp_serve_log_failures_total",
		Help: "Records the broker refused or that could not be written before the drain deadline, by topic."}, []string{"topic"})
	for t, name := range [numTopics]string{"decisions", "outcomes"} {
		m.logged[t] = logged.WithLabelValues(name)
		m.logFailures[t] = failures.WithLabelValues(name)
	}
	m.policyVersion.Set(LoggingVersion)
	for _, r := range []string{"log_buffer_full", "deferred_full", "no_policy", "stopping"} {
		m.rejected.WithLabelValues(r)
	}
	for _, r := range []string{"expired", "shutdown"} {
		m.expired.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.latency, m.decisions, m.rejected, m.buffered, logged, failures, m.deferred,
			m.activations, m.expired, m.policyVersion, m.swaps, m.badSnapshots)
	}
	return m
}
