package producers

import (
	"github.com/aelp/aelp/internal/obs"
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
	f := obs.NewMetrics(reg)
	m := &simMetrics{
		records: f.Counter("aelp_simulate_experiences_total", "Experience records acknowledged by the broker."),
		encodeErrors: f.Counter("aelp_simulate_encode_errors_total",
			"Simulated transitions the Experience schema rejected."),
		policyVersion: f.Gauge("aelp_simulate_policy_version",
			"Version of the policy the simulators act with (-1: uniform logging policy)."),
	}
	episodes := f.CounterVec("aelp_simulate_episodes_total", "Finished user journeys, by true segment.", "segment")
	conversions := f.CounterVec("aelp_simulate_conversions_total", "Journeys that converted, by true segment.", "segment")
	returnSum := f.GaugeVec("aelp_simulate_episode_return_sum",
		"Sum of episode returns by true segment (divide by aelp_simulate_episodes_total for the mean).", "segment")
	for i, seg := range [2]string{"regular", "crisis"} {
		m.episodes[i] = episodes.WithLabelValues(seg)
		m.conversions[i] = conversions.WithLabelValues(seg)
		m.returnSum[i] = returnSum.WithLabelValues(seg)
	}
	m.policyVersion.Set(-1)
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
