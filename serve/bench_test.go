package serve

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aelp/aelp/internal/kafkax"
	"github.com/aelp/aelp/learner/policy/policytest"
	"github.com/aelp/aelp/schemas"
	"github.com/rs/zerolog"
)

// benchServer is a server that is not running, serving version 1 of a
// PPO snapshot of the default shape, whose log buffer is drained by a
// goroutine that counts the records instead of writing them: the
// handler's own cost, hand-off to the log included, without Kafka.
func benchServer(b *testing.B) (*Server, *logBuffer) {
	b.Helper()
	cfg := DefaultConfig()
	cfg.ExperimentID, cfg.Log = "bench", zerolog.Nop()
	s, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	m := policytest.SnapshotMessage(b, "bench", 1, 1)
	var snap schemas.PolicySnapshot
	if err := schemas.UnmarshalPolicySnapshot(m.Value, &snap); err != nil {
		b.Fatal(err)
	}
	p, err := loadSnapshot(&snap, cfg.StateDim, cfg.NumActions(), time.Now())
	if err != nil {
		b.Fatal(err)
	}
	s.policy.Store(p)
	buf := newLogBuffer(cfg.LogBuffer, cfg.LogBatch, cfg.Kafka, [numTopics]*kafkax.Writer{}, s.log, s.metrics, &s.stats.logged, &s.stats.logFailures)
	s.buf.Store(buf)
	go func() {
		for r := range buf.q {
			buf.metrics.buffered.Dec()
			_ = r
		}
		close(buf.done)
	}()
	b.Cleanup(buf.close)
	return s, buf
}

// decideBodies returns n decide bodies with random states of width dim.
func benchBodies(n, dim int) [][]byte {
	rng := rand.New(rand.NewPCG(1, 2))
	out := make([][]byte, n)
	for i := range out {
		st := make([]float64, dim)
		for j := range st {
			st[j] = rng.NormFloat64()
		}
		req := DecideRequest{UserID: fmt.Sprintf("u-%d", i), EpisodeID: fmt.Sprintf("u-%d:1", i), Step: int32(i % 7), State: st,
			Metadata: map[string]string{"profile_keywords": "urgent,childcare", "campaign": "crisis_support"}}
		out[i], _ = json.Marshal(req)
	}
	return out
}

// BenchmarkDecide is one POST /v1/decide through the server's handler
// (mux, instrumentation, decode, forward pass, sampling, the decision's
// encoding and hand-off to the log buffer, the answer's encoding), with
// an in-memory request and response.
func BenchmarkDecide(b *testing.B) {
	s, _ := benchServer(b)
	bodies := benchBodies(64, s.cfg.StateDim)
	h := s.Handler()
	rd := bytes.NewReader(nil)
	req := httptest.NewRequest("POST", "/v1/decide", rd)
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		rd.Reset(bodies[i%len(bodies)])
		req.Body = readCloser{rd}
		w.code = 0
		h.ServeHTTP(w, req)
		if w.code != http.StatusOK && w.code != 0 {
			b.Fatalf("status %d", w.code)
		}
	}
}

// BenchmarkHealthz is GET /healthz through the same handler.
func BenchmarkHealthz(b *testing.B) {
	s, _ := benchServer(b)
	s.health.SetReady(true, "")
	h := s.Handler()
	req := httptest.NewRequest("GET", "/healthz", nil)
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, req)
	}
}

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }

// discardWriter is a ResponseWriter that keeps only the status.
type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) Header() http.Header { return w.h }
func (w *discardWriter) WriteHeader(c int)   { w.code = c }
func (w *discardWriter) Write(p []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return len(p), nil
}
