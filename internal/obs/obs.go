// Package obs serves a role's Prometheus metrics and health on --http:
// /metrics in the Prometheus text format and /healthz, which answers 200
// only once the role has marked itself ready (connected to the broker).
package obs

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"
)

// Health is a readiness flag; the zero value is not ready.
type Health struct {
	ready  atomic.Bool
	reason atomic.Pointer[string]
}

// SetReady marks the role ready (or not, with a reason shown by /healthz).
func (h *Health) SetReady(ready bool, reason string) {
	h.ready.Store(ready)
	h.reason.Store(&reason)
}

// Ready reports the flag.
func (h *Health) Ready() bool { return h.ready.Load() }

func (h *Health) serveHTTP(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	reason := "starting"
	if r := h.reason.Load(); r != nil && *r != "" {
		reason = *r
	}
	if !h.Ready() {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, "not ready: %s\n", reason)
		return
	}
	fmt.Fprintf(w, "ok\n")
}

// NewRegistry returns a registry with the Go and process collectors.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// Handler serves /metrics from reg and /healthz from h: what Serve
// serves, for a role that serves them beside an API of its own on one
// listener (aelp serve).
func Handler(reg *prometheus.Registry, h *Health) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("/healthz", h.serveHTTP)
	return mux
}

// Server is the HTTP endpoint of one role.
type Server struct {
	srv  *http.Server
	ln   net.Listener
	done chan error
}

// Serve starts serving /metrics from reg and /healthz from h on addr
// (":9100", "127.0.0.1:0"). An empty addr serves nothing and returns a nil
// *Server, whose methods are no-ops.
func Serve(addr string, reg *prometheus.Registry, h *Health, log zerolog.Logger) (*Server, error) {
	if addr == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("http listen %s: %w", addr, err)
	}
	s := &Server{srv: &http.Server{Handler: Handler(reg, h), ReadHeaderTimeout: 5 * time.Second}, ln: ln, done: make(chan error, 1)}
	go func() {
		err := s.srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		s.done <- err
	}()
	log.Info().Str("addr", ln.Addr().String()).Msg("serving /metrics and /healthz")
	return s, nil
}

// Addr returns the bound address ("" for a nil server).
func (s *Server) Addr() string {
	if s == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Close shuts the server down, waiting up to five seconds for requests in
// flight; the serving goroutine has exited when it returns.
func (s *Server) Close() error {
	if s == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	if serr := <-s.done; err == nil {
		err = serr
	}
	return err
}
