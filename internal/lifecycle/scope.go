package lifecycle

import (
	"context"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/aelp/aelp/internal/kafkax"
	"golang.org/x/sync/errgroup"
)

// Scope is what a running role gets from Run: its errgroup, its readiness
// and its drain context. Its methods are safe for concurrent use; Go and
// Every must be called before Run returns.
type Scope struct {
	role    *Role
	kafka   *kafkax.Client
	g       *errgroup.Group
	bg      context.Context // the goroutines' context: ends when Run returns
	drain   context.Context
	httpLn  net.Listener
	httpSrv *http.Server
	mu      sync.Mutex
	stopped bool
}

// Go runs f in the role's errgroup. f's context ends when Run returns, when
// Run's ctx ends, or when another of the role's goroutines fails; an error
// from f ends Run's ctx too (the role stops) and is returned by Run.
func (s *Scope) Go(f func(ctx context.Context) error) {
	s.g.Go(func() error { return f(s.bg) })
}

// Every calls f every d in one of the role's goroutines (Go) until Run
// returns; d ≤ 0 never calls it.
func (s *Scope) Every(d time.Duration, f func()) {
	if d <= 0 {
		return
	}
	s.Go(func(ctx context.Context) error {
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
				f()
			}
		}
	})
}

// Ready marks the role ready, unless it is stopping. With ReadyAfterTopics
// it has nothing left to do.
func (s *Scope) Ready() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.stopped && s.role.Health != nil {
		s.role.Health.SetReady(true, "")
	}
}

// ReadyOn marks the role ready (Ready) once ch is closed (a group
// consumer's Joined), watching it in one of the role's goroutines (Go),
// which gives up when Run returns.
func (s *Scope) ReadyOn(ch <-chan struct{}) {
	s.Go(func(ctx context.Context) error {
		select {
		case <-ch:
			s.Ready()
		case <-ctx.Done():
		}
		return nil
	})
}

// notReady marks the role not ready for good.
func (s *Scope) notReady(reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopped = true
	if s.role.Health != nil {
		s.role.Health.SetReady(false, reason)
	}
}

// Kafka returns the role's Kafka client: make the role's writers with it
// (Client.NewWriter) and make its admin calls through it. Run closes it
// after Drain; do not close it.
func (s *Scope) Kafka() *kafkax.Client { return s.kafka }

// DrainContext returns the drain context: it ends ShutdownTimeout after
// Run's ctx, never before. Work that must finish after a stop (the batch
// in hand, dead letters, the final commit) uses it.
func (s *Scope) DrainContext() context.Context { return s.drain }

// HTTPAddr returns the bound address of the role's HTTP API ("" without
// one).
func (s *Scope) HTTPAddr() string {
	if s.httpLn == nil {
		return ""
	}
	return s.httpLn.Addr().String()
}

// run calls Role.Run with the role's errgroup and waits for it and its
// goroutines; ok is false when the deadline passed first.
func (s *Scope) run(ctx context.Context, d *deadline) (err error, ok bool) {
	g, gctx := errgroup.WithContext(ctx)
	bg, stopBG := context.WithCancel(gctx)
	s.g, s.bg = g, bg
	if s.role.Ready == ReadyAfterTopics {
		s.Ready()
	}
	var srv *http.Server
	if s.httpLn != nil {
		srv = &http.Server{Handler: s.role.HTTP.Handler, ReadHeaderTimeout: 5 * time.Second}
		s.role.Log.Info().Str("role", s.role.Name).Str("addr", s.HTTPAddr()).Msg("serving the role's HTTP API")
		go srv.Serve(s.httpLn) // returns at Shutdown (shutdownHTTP)
	}
	s.httpSrv = srv
	g.Go(func() error {
		defer stopBG()
		return s.role.Run(gctx, s)
	})
	done := make(chan error, 1)
	go func() { done <- g.Wait() }()
	select {
	case err := <-done:
		return err, true
	case <-d.ctx.Done():
		return nil, false
	}
}

// shutdownHTTP stops the role's HTTP API from taking requests and waits
// for those in flight; ok is false when the deadline passed first.
func (s *Scope) shutdownHTTP(d *deadline) (ok bool) {
	if s.httpSrv == nil {
		return true
	}
	if err := s.httpSrv.Shutdown(d.ctx); err != nil && d.ctx.Err() == nil {
		s.role.Log.Warn().Err(err).Str("role", s.role.Name).Msg("http shutdown")
	}
	return d.ctx.Err() == nil
}

// drainStep runs Role.Drain with the drain context; ok is false when the
// deadline passed first.
func (s *Scope) drainStep(d *deadline) (err error, ok bool) {
	if s.role.Drain == nil {
		return nil, true
	}
	done := make(chan error, 1)
	go func() { done <- s.role.Drain(d.ctx) }()
	select {
	case err := <-done:
		return err, true
	case <-d.ctx.Done():
		return nil, false
	}
}

// closeHTTP closes the role's HTTP API at once (after a timeout).
func (s *Scope) closeHTTP() {
	if s.httpSrv != nil {
		_ = s.httpSrv.Close()
	}
}
