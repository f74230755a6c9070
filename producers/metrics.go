package producers

import (
	"github.com/prometheus/client_golang/prometheus"
)

// simMetrics are the simulate role's Prometheus metrics.
type simMetrics struct {
	records       prometheus.Counter
	encodeErrors  prometheus.Counter
	policyVersion prometheus.Gauge
	// Per segment, [0] regular and [1] crisis, resolved once.
	episodes    [2]prometheus.Counter
	conversions [2]prometheus.Counter
	returnSum   [2]prometheus.Gauge
}

func newSimMetrics(reg prometheus.Registerer) *simMetrics {
	m := &simMetrics{
		records: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "aelp_simulate_experiences_total", Help: "Experience records acknowledged by the broker."}),
		encodeErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "aelp_simulate_encode_errors_total", Help: "Simulated transitions the Experience schema rejected."}),
		policyVersion: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "aelp_simulate_policy_version", Help: "Version of the policy the simulators act with (-1: uniform logging policy)."}),
	}
	episodes := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "aelp_simulate_episodes_total", Help: "Finished user journeys, by true segment."}, []string{"segment"})
	conversions := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "aelp_simulate_conversions_total", Help: "Journeys that converted, by true segment."}, []string{"segment"})
	returnSum := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "aelp_simulate_episode_return_sum", Help: "Sum of episode returns by true segment (divide by aelp_simulate_episodes_total for the mean)."}, []string{"segment"})
	for i, seg := range [2]string{"regular", "crisis"} {
		m.episodes[i] = episodes.WithLabelValues(seg)
		m.conversions[i] = conversions.WithLabelValues(seg)
		m.returnSum[i] = returnSum.WithLabelValues(seg)
	}
	m.policyVersion.Set(-1)
	if reg != nil {
		reg.MustRegister(m.records, m.encodeErrors, m.policyVersion, episodes, conversions, returnSum)
	}
	return m
}

func (m *simMetrics) observeEpisode(crisis bool, ret float64, converted bool) {
	seg := 0
	if crisis {
		seg = 1
	}
	m.episodes[seg].Inc()
	m.returnSum[seg].Add(ret)
	if converted {
		m.conversions[seg].Inc()
	}
}
