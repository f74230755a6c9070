package bench

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// TestRunServe: a short open-loop run against an in-process server
// answers every scheduled request of both endpoints, the server logs
// every decision it answered (warm-up included), the quantiles are
// ordered and the report prints both rows and the ratio.
func TestRunServe(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cfg := DefaultServeConfig()
	cfg.Rate, cfg.Duration, cfg.Warmup, cfg.Connections, cfg.Log = 200, time.Second, 200*time.Millisecond, 4, zerolog.Nop()
	rep, err := RunServe(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []PhaseResult{rep.Trivial, rep.Decide} {
		if p.Scheduled != 200 || p.OK != p.Scheduled || p.Failed != 0 || p.Refused != 0 {
			t.Errorf("%s: %+v", p.Endpoint, p)
		}
		if !(p.P50 > 0 && p.P50 <= p.P99 && p.P99 <= p.P999 && p.P999 <= p.Max) {
			t.Errorf("%s: quantiles %s %s %s %s", p.Endpoint, p.P50, p.P99, p.P999, p.Max)
		}
		if !(p.PacerP50 <= p.PacerP99 && p.WaitP50 <= p.WaitP99 && p.PacerP99+p.WaitP99 <= 2*p.Max) {
			t.Errorf("%s: generator delays %s %s, %s %s (latency max %s)", p.Endpoint, p.PacerP50, p.PacerP99, p.WaitP50, p.WaitP99, p.Max)
		}
		// The server runs here: its /metrics has the Go and process
		// collectors, and they count this process (no generator CPU apart).
		if p.Server == nil || p.Server.Allocated <= 0 || p.GeneratorCPU != 0 {
			t.Errorf("%s: usage %+v, generator CPU %s; want the server's allocations and no generator figure", p.Endpoint, p.Server, p.GeneratorCPU)
		}
	}
	if s := rep.Server; s == nil || s.Decisions != 240 || s.LoggedDecisions != s.Decisions || s.LogFailures != 0 {
		t.Errorf("server figures %+v, want 240 decisions answered and logged", rep.Server)
	}
	var out strings.Builder
	rep.Print(&out)
	for _, want := range []string{"GET /healthz", "POST /v1/decide", "decide / healthz: p50", "pacer lag", "server CPU/req", "share this process"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report without %q:\n%s", want, out.String())
		}
	}
}
