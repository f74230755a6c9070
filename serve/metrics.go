package serve

import (
	"github.com/aelp/aelp/internal/obs"
	"github.com/prometheus/client_golang/prometheus"
)

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
	f := obs.NewMetrics(reg)
	m := &metrics{
		requests: f.CounterVec("aelp_serve_requests_total",
			"HTTP requests by endpoint and status code.", "endpoint", "code"),
		latency: f.HistogramVec("aelp_serve_request_seconds",
			"Time from a request's arrival to its answer, by endpoint.",
			[]float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1}, "endpoint"),
		decisions: f.Counter("aelp_serve_decisions_total",
			"Decisions answered (deferred ones included)."),
		rejected: f.CounterVec("aelp_serve_rejected_total",
			"Requests answered 503, by reason: log_buffer_full, deferred_full, no_policy, stopping.", "reason"),
		buffered: f.Gauge("aelp_serve_log_buffer_records",
			"Records in the log buffer, not yet handed to the broker."),
		deferred: f.Gauge("aelp_serve_deferred_decisions",
			"Deferred decisions awaiting activation."),
		activations: f.Counter("aelp_serve_activations_total",
			"Deferred decisions activated (and so logged)."),
		expired: f.CounterVec("aelp_serve_deferred_dropped_total",
			"Deferred decisions never activated, dropped unlogged, by reason: expired, shutdown.", "reason"),
		policyVersion: f.Gauge("aelp_serve_policy_version",
			"Version of the policy serving decisions (-1: the logging policy)."),
		swaps: f.Counter("aelp_serve_policy_swaps_total",
			"Policy snapshots swapped in."),
		badSnapshots: f.Counter("aelp_serve_policy_rejected_total",
			"Policy snapshots of the experiment that could not be served (bad or of the wrong shape)."),
	}
	logged := f.CounterVec("aelp_serve_logged_total",
		"Records acknowledged by the broker, by topic (decisions, outcomes).", "topic")
	failures := f.CounterVec("aelp_serve_log_failures_total",
		"Records the broker refused or that could not be written before the drain deadline, by topic.", "topic")
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
	return m
}
