package obs

import "github.com/prometheus/client_golang/prometheus"

// Metrics makes a role's Prometheus metrics and registers each with its
// registerer as it makes it; with a nil registerer (a role under test
// without /metrics) it registers nothing. Registering a name twice panics,
// as prometheus.Registerer.MustRegister does.
type Metrics struct{ reg prometheus.Registerer }

// NewMetrics returns a Metrics registering with reg (nil: with none).
func NewMetrics(reg prometheus.Registerer) Metrics { return Metrics{reg: reg} }

// register registers c, unless the registerer is nil, and returns it.
func register[C prometheus.Collector](m Metrics, c C) C {
	if m.reg != nil {
		m.reg.MustRegister(c)
	}
	return c
}

// Counter makes and registers a counter.
func (m Metrics) Counter(name, help string) prometheus.Counter {
	return register(m, prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help}))
}

// CounterVec makes and registers a counter with labels.
func (m Metrics) CounterVec(name, help string, labels ...string) *prometheus.CounterVec {
	return register(m, prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels))
}

// Gauge makes and registers a gauge.
func (m Metrics) Gauge(name, help string) prometheus.Gauge {
	return register(m, prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help}))
}

// GaugeVec makes and registers a gauge with labels.
func (m Metrics) GaugeVec(name, help string, labels ...string) *prometheus.GaugeVec {
	return register(m, prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels))
}

// Histogram makes and registers a histogram with buckets (nil:
// prometheus.DefBuckets).
func (m Metrics) Histogram(name, help string, buckets []float64) prometheus.Histogram {
	return register(m, prometheus.NewHistogram(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}))
}

// HistogramVec makes and registers a histogram with buckets (nil:
// prometheus.DefBuckets) and labels.
func (m Metrics) HistogramVec(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	return register(m, prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}, labels))
}
