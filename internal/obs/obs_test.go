package obs

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/rs/zerolog"
)

// get returns the status and body of url.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// Scrape fetches http://addr/metrics and parses it with the Prometheus
// text parser.
func scrape(t *testing.T, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	code, body := get(t, "http://"+addr+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: status %d", code)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse /metrics: %v\n%s", err, body)
	}
	return fams
}

func TestMetricsScrape(t *testing.T) {
	reg := NewRegistry()
	records := prometheus.NewCounter(prometheus.CounterOpts{Name: "aelp_test_records_total", Help: "Records."})
	lag := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "aelp_test_lag", Help: "Lag."}, []string{"partition"})
	dur := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "aelp_test_update_seconds", Help: "Update time.",
		Buckets: []float64{0.01, 0.1, 1}})
	reg.MustRegister(records, lag, dur)
	records.Add(42)
	lag.WithLabelValues("3").Set(7)
	dur.Observe(0.05)
	dur.Observe(2)

	srv, err := Serve("127.0.0.1:0", reg, &Health{}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	fams := scrape(t, srv.Addr())

	tests := []struct {
		name string
		typ  dto.MetricType
		get  func(*dto.Metric) float64
		want float64
	}{
		{"aelp_test_records_total", dto.MetricType_COUNTER, func(m *dto.Metric) float64 { return m.GetCounter().GetValue() }, 42},
		{"aelp_test_lag", dto.MetricType_GAUGE, func(m *dto.Metric) float64 { return m.GetGauge().GetValue() }, 7},
		{"aelp_test_update_seconds", dto.MetricType_HISTOGRAM, func(m *dto.Metric) float64 { return float64(m.GetHistogram().GetSampleCount()) }, 2},
	}
	for _, tc := range tests {
		f, ok := fams[tc.name]
		if !ok {
			t.Errorf("%s missing from the scrape", tc.name)
			continue
		}
		if f.GetType() != tc.typ {
			t.Errorf("%s: type %v, want %v", tc.name, f.GetType(), tc.typ)
		}
		if len(f.GetMetric()) != 1 {
			t.Fatalf("%s: %d series, want 1", tc.name, len(f.GetMetric()))
		}
		if got := tc.get(f.GetMetric()[0]); got != tc.want {
			t.Errorf("%s = %v, want %v", tc.name, got, tc.want)
		}
	}
	if l := fams["aelp_test_lag"].GetMetric()[0].GetLabel(); len(l) != 1 || l[0].GetName() != "partition" || l[0].GetValue() != "3" {
		t.Errorf("aelp_test_lag labels = %v, want partition=3", l)
	}
	// NewRegistry's Go and process collectors.
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total"} {
		if _, ok := fams[name]; !ok {
			t.Errorf("%s missing (Go/process collectors)", name)
		}
	}
}

func TestHealthz(t *testing.T) {
	h := &Health{}
	srv, err := Serve("127.0.0.1:0", NewRegistry(), h, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	url := "http://" + srv.Addr() + "/healthz"
	steps := []struct {
		set      func()
		wantCode int
		wantBody string
	}{
		{func() {}, http.StatusServiceUnavailable, "not ready: starting\n"},
		{func() { h.SetReady(false, "connecting to the broker") }, http.StatusServiceUnavailable, "not ready: connecting to the broker\n"},
		{func() { h.SetReady(true, "") }, http.StatusOK, "ok\n"},
		{func() { h.SetReady(false, "broker lost") }, http.StatusServiceUnavailable, "not ready: broker lost\n"},
		{func() { h.SetReady(true, "") }, http.StatusOK, "ok\n"},
	}
	for i, s := range steps {
		s.set()
		code, body := get(t, url)
		if code != s.wantCode || body != s.wantBody {
			t.Errorf("step %d: %d %q, want %d %q", i, code, body, s.wantCode, s.wantBody)
		}
	}
}

func TestServeEmptyAddrAndClose(t *testing.T) {
	srv, err := Serve("", NewRegistry(), &Health{}, zerolog.Nop())
	if err != nil || srv != nil {
		t.Fatalf("Serve(\"\") = %v, %v; want nil, nil", srv, err)
	}
	if srv.Addr() != "" || srv.Close() != nil {
		t.Error("nil server methods are not no-ops")
	}
	s, err := Serve("127.0.0.1:0", NewRegistry(), &Health{}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	addr := s.Addr()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := http.Get("http://" + addr + "/healthz"); err == nil {
		t.Error("server still answers after Close")
	}
	if _, err := Serve(addr+"0000", NewRegistry(), &Health{}, zerolog.Nop()); err == nil {
		t.Error("Serve on an invalid port succeeded")
	}
}
