package obs

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func TestMetricsRegisters(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	m.Counter("aelp_t_records_total", "Records.").Add(3)
	m.CounterVec("aelp_t_dropped_total", "Dropped, by reason.", "reason").WithLabelValues("late").Inc()
	m.Gauge("aelp_t_version", "Version.").Set(-1)
	m.GaugeVec("aelp_t_lag", "Lag, by partition.", "partition").WithLabelValues("2").Set(7)
	m.Histogram("aelp_t_seconds", "Time.", []float64{0.1, 1}).Observe(0.5)
	m.HistogramVec("aelp_t_request_seconds", "Time, by endpoint.", nil, "endpoint").WithLabelValues("/x").Observe(0.5)
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]*dto.MetricFamily{}
	for _, f := range fams {
		got[f.GetName()] = f
	}
	want := map[string]dto.MetricType{
		"aelp_t_records_total": dto.MetricType_COUNTER, "aelp_t_dropped_total": dto.MetricType_COUNTER,
		"aelp_t_version": dto.MetricType_GAUGE, "aelp_t_lag": dto.MetricType_GAUGE,
		"aelp_t_seconds": dto.MetricType_HISTOGRAM, "aelp_t_request_seconds": dto.MetricType_HISTOGRAM,
	}
	if len(got) != len(want) {
		t.Errorf("registered %d families, want %d", len(got), len(want))
	}
	for name, typ := range want {
		if f := got[name]; f == nil || f.GetType() != typ {
			t.Errorf("%s: registered %v, want a %v", name, f, typ)
		}
	}
	if f := got["aelp_t_dropped_total"]; f != nil && f.Metric[0].Label[0].GetName() != "reason" {
		t.Errorf("aelp_t_dropped_total label %q, want reason", f.Metric[0].Label[0].GetName())
	}
	if f := got["aelp_t_seconds"]; f != nil && len(f.Metric[0].Histogram.Bucket) != 2 {
		t.Errorf("aelp_t_seconds: %d buckets, want 2", len(f.Metric[0].Histogram.Bucket))
	}
	if f := got["aelp_t_request_seconds"]; f != nil && len(f.Metric[0].Histogram.Bucket) != len(prometheus.DefBuckets) {
		t.Errorf("aelp_t_request_seconds: %d buckets, want the default %d", len(f.Metric[0].Histogram.Bucket), len(prometheus.DefBuckets))
	}
	defer func() {
		if recover() == nil {
			t.Error("registering aelp_t_records_total twice did not panic")
		}
	}()
	m.Counter("aelp_t_records_total", "Records.")
}

func TestMetricsNilRegisterer(t *testing.T) {
	m := NewMetrics(nil)
	c := m.Counter("aelp_t_records_total", "Records.")
	c.Inc()
	m.Counter("aelp_t_records_total", "Records.") // not registered: no clash
	var out dto.Metric
	if err := c.Write(&out); err != nil {
		t.Fatal(err)
	}
	if out.Counter.GetValue() != 1 {
		t.Errorf("counter %v, want 1", out.Counter.GetValue())
	}
}
