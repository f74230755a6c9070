package lifecycle_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aelp/aelp/internal/kafkatest"
	"github.com/aelp/aelp/internal/kafkax"
	"github.com/aelp/aelp/internal/lifecycle"
	"github.com/aelp/aelp/internal/obs"
	"github.com/rs/zerolog"
)

// testCtx bounds a test that hangs; it is never the thing under test.
func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// start runs lifecycle.Run in a goroutine and returns a channel of its
// error.
func start(ctx context.Context, r lifecycle.Role) <-chan error {
	done := make(chan error, 1)
	go func() { done <- lifecycle.Run(ctx, r) }()
	return done
}

func wait(t *testing.T, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(2 * time.Minute):
		t.Fatal("lifecycle.Run did not return within 2 minutes")
		return nil
	}
}

// TestStopDrains: a stop ends Run's context; the role's goroutines have
// returned before Drain, which gets a live drain context (it outlives the
// stop), and Run returns nil. Health is not ready before Run, ready during
// it (ReadyAfterTopics), and not ready again from the stop on.
func TestStopDrains(t *testing.T) {
	tctx := testCtx(t)
	ctx, stop := context.WithCancel(tctx)
	var health obs.Health
	health.SetReady(true, "")
	var tickerDone, readyInRun atomic.Bool
	running := make(chan struct{})
	var order []string
	var mu sync.Mutex
	note := func(s string) { mu.Lock(); order = append(order, s); mu.Unlock() }
	done := start(ctx, lifecycle.Role{
		Name: "fake", Health: &health, Log: zerolog.Nop(),
		Run: func(ctx context.Context, s *lifecycle.Scope) error {
			readyInRun.Store(health.Ready())
			s.Go(func(ctx context.Context) error {
				<-ctx.Done()
				tickerDone.Store(true)
				note("goroutine")
				return nil
			})
			s.Every(time.Millisecond, func() {})
			close(running)
			<-ctx.Done()
			if s.DrainContext().Err() != nil {
				t.Error("the drain context ended with the stop")
			}
			note("run")
			return nil
		},
		Drain: func(ctx context.Context) error {
			if !tickerDone.Load() {
				t.Error("Drain ran before the role's goroutines returned")
			}
			if ctx.Err() != nil {
				t.Errorf("drain context already ended: %v", ctx.Err())
			}
			if health.Ready() {
				t.Error("ready during the drain")
			}
			note("drain")
			return nil
		},
	})
	<-running
	if !readyInRun.Load() {
		t.Error("not ready in Run with ReadyAfterTopics")
	}
	stop()
	if err := wait(t, done); err != nil {
		t.Fatalf("Run after a stop = %v, want nil", err)
	}
	if got := strings.Join(order, ","); got != "run,goroutine,drain" && got != "goroutine,run,drain" {
		t.Errorf("order %s: want Run and its goroutines, then Drain", got)
	}
}

// TestDrainTimeout: a Drain that blocks past ShutdownTimeout makes Run
// write a goroutine dump (naming the stuck function) and return an error
// wrapping ErrShutdownTimeout, the drain context ended.
func TestDrainTimeout(t *testing.T) {
	ctx, stop := context.WithCancel(testCtx(t))
	var dump syncBuffer
	release := make(chan struct{})
	defer close(release)
	drainCtxEnded := make(chan struct{})
	done := start(ctx, lifecycle.Role{
		Name: "stuck", ShutdownTimeout: 50 * time.Millisecond, Dump: &dump, Log: zerolog.Nop(),
		Run: func(ctx context.Context, _ *lifecycle.Scope) error {
			<-ctx.Done()
			return nil
		},
		Drain: func(ctx context.Context) error {
			go func() { <-ctx.Done(); close(drainCtxEnded) }()
			blockedDrain(release)
			return nil
		},
	})
	stop()
	err := wait(t, done)
	if !errors.Is(err, lifecycle.ErrShutdownTimeout) {
		t.Fatalf("Run = %v, want ErrShutdownTimeout", err)
	}
	<-drainCtxEnded // the drain context ends at the deadline (hangs the test otherwise)
	out := dump.String()
	for _, want := range []string{"stuck: shutdown not finished", "goroutine ", "lifecycle_test.blockedDrain"} {
		if !strings.Contains(out, want) {
			t.Errorf("dump has no %q:\n%.2000s", want, out)
		}
	}
}

// blockedDrain blocks until release is closed; the goroutine dump names it.
func blockedDrain(release <-chan struct{}) { <-release }

// TestRunTimeout: a Run that ignores the stop is cut off at the deadline
// just as a Drain is, and Drain is not called.
func TestRunTimeout(t *testing.T) {
	ctx, stop := context.WithCancel(testCtx(t))
	release := make(chan struct{})
	defer close(release)
	running := make(chan struct{})
	var drained atomic.Bool
	done := start(ctx, lifecycle.Role{
		Name: "deaf", ShutdownTimeout: 50 * time.Millisecond, Dump: io.Discard, Log: zerolog.Nop(),
		Run: func(context.Context, *lifecycle.Scope) error {
			close(running)
			<-release
			return nil
		},
		Drain: func(context.Context) error { drained.Store(true); return nil },
	})
	<-running
	stop()
	if err := wait(t, done); !errors.Is(err, lifecycle.ErrShutdownTimeout) {
		t.Fatalf("Run = %v, want ErrShutdownTimeout", err)
	}
	if drained.Load() {
		t.Error("Drain was called after Run timed out")
	}
}

// TestFinishedRunHasNoDeadline: a Run that returns by itself (a bounded
// role) drains with no deadline, however long the timeout is exceeded.
func TestFinishedRunHasNoDeadline(t *testing.T) {
	ctx := testCtx(t)
	var dump bytes.Buffer
	err := lifecycle.Run(ctx, lifecycle.Role{
		Name: "bounded", ShutdownTimeout: time.Nanosecond, Dump: &dump, Log: zerolog.Nop(),
		Run: func(context.Context, *lifecycle.Scope) error { return nil },
		Drain: func(ctx context.Context) error {
			// Longer than the timeout, with no stop: the context stays.
			timer := time.NewTimer(20 * time.Millisecond)
			defer timer.Stop()
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-timer.C:
				return nil
			}
		},
	})
	if err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	if dump.Len() > 0 {
		t.Errorf("a goroutine dump without a stop:\n%.500s", dump.String())
	}
}

// TestGoroutineFailure: a failing goroutine ends Run's ctx; Run returns
// its error after Drain, and an error of Run wins over Drain's.
func TestGoroutineFailure(t *testing.T) {
	boom := errors.New("boom")
	var drained atomic.Bool
	err := lifecycle.Run(testCtx(t), lifecycle.Role{
		Name: "failing", Log: zerolog.Nop(),
		Run: func(ctx context.Context, s *lifecycle.Scope) error {
			s.Go(func(context.Context) error { return boom })
			<-ctx.Done()
			return nil
		},
		Drain: func(context.Context) error { drained.Store(true); return errors.New("drain failed too") },
	})
	if !errors.Is(err, boom) {
		t.Errorf("Run = %v, want the goroutine's error", err)
	}
	if !drained.Load() {
		t.Error("Drain was not called after a failed Run")
	}
}

// TestReadyOnCall: with ReadyOnCall the role is ready only once it says
// so, and a call after the stop does not make it ready again.
func TestReadyOnCall(t *testing.T) {
	ctx, stop := context.WithCancel(testCtx(t))
	var health obs.Health
	inRun := make(chan struct{})
	checked := make(chan struct{})
	ready := make(chan struct{})
	stopped := make(chan struct{})
	done := start(ctx, lifecycle.Role{
		Name: "late", Ready: lifecycle.ReadyOnCall, Health: &health, Log: zerolog.Nop(),
		Run: func(ctx context.Context, s *lifecycle.Scope) error {
			close(inRun)
			<-checked
			s.Ready()
			close(ready)
			<-ctx.Done()
			<-stopped
			s.Ready()
			return nil
		},
	})
	<-inRun
	if health.Ready() {
		t.Error("ready before the role said so")
	}
	close(checked)
	<-ready
	if !health.Ready() {
		t.Error("not ready after Scope.Ready")
	}
	stop()
	waitUntil(t, "not ready after the stop", func() bool { return !health.Ready() })
	close(stopped)
	if err := wait(t, done); err != nil {
		t.Fatal(err)
	}
	if health.Ready() {
		t.Error("Scope.Ready after the stop made the role ready again")
	}
}

// TestReadyOn: the role turns ready when the channel is closed, not
// before; a channel never closed does not keep Run from returning.
func TestReadyOn(t *testing.T) {
	ctx, stop := context.WithCancel(testCtx(t))
	var health obs.Health
	joined := make(chan struct{})
	inRun := make(chan struct{})
	done := start(ctx, lifecycle.Role{
		Name: "joiner", Ready: lifecycle.ReadyOnCall, Health: &health, Log: zerolog.Nop(),
		Run: func(ctx context.Context, s *lifecycle.Scope) error {
			s.ReadyOn(joined)
			s.ReadyOn(make(chan struct{})) // never closed
			close(inRun)
			<-ctx.Done()
			return nil
		},
	})
	<-inRun
	if health.Ready() {
		t.Error("ready before the channel was closed")
	}
	close(joined)
	waitUntil(t, "ready after the channel was closed", health.Ready)
	stop()
	if err := wait(t, done); err != nil {
		t.Fatal(err)
	}
}

// TestStopBeforeTopics: a stop while the broker is unreachable returns nil
// without calling Run or Drain.
func TestStopBeforeTopics(t *testing.T) {
	ctx, stop := context.WithCancel(testCtx(t))
	var called atomic.Bool
	var warned syncBuffer
	done := start(ctx, lifecycle.Role{
		Name: "early", Kafka: kafkax.Config{Brokers: []string{"127.0.0.1:1"}, DialTimeout: 100 * time.Millisecond},
		Topics: []kafkax.TopicSpec{{Name: "t"}}, Log: zerolog.New(&warned),
		Run:   func(context.Context, *lifecycle.Scope) error { called.Store(true); return nil },
		Drain: func(context.Context) error { called.Store(true); return nil },
	})
	// The first attempt failed: the role is retrying.
	waitUntil(t, "a retry warning", func() bool { return strings.Contains(warned.String(), "retrying") })
	stop()
	if err := wait(t, done); err != nil {
		t.Errorf("Run = %v, want nil", err)
	}
	if called.Load() {
		t.Error("Run or Drain called although the topics never existed")
	}
}

// TestTopicsEnsured: the topics exist when Run is called.
func TestTopicsEnsured(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.Options{})
	cfg := c.Config()
	err := lifecycle.Run(testCtx(t), lifecycle.Role{
		Name: "topics", Kafka: cfg, Log: zerolog.Nop(),
		Topics: []kafkax.TopicSpec{{Name: "lifecycle.a", Partitions: 3}, {Name: "lifecycle.b", Partitions: 1}},
		Run: func(ctx context.Context, _ *lifecycle.Scope) error {
			for name, want := range map[string]int{"lifecycle.a": 3, "lifecycle.b": 1} {
				parts, err := kafkax.Partitions(ctx, cfg, name)
				if err != nil || len(parts) != want {
					t.Errorf("topic %s: %d partitions (%v), want %d", name, len(parts), err, want)
				}
			}
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestHTTP: the role's HTTP API is served during Run; at the stop, a
// request in flight is answered before Drain runs, and the listener is
// closed afterwards.
func TestHTTP(t *testing.T) {
	ctx, stop := context.WithCancel(testCtx(t))
	inFlight := make(chan struct{})
	finish := make(chan struct{})
	var answered atomic.Bool
	addr := make(chan string, 1)
	mux := http.NewServeMux()
	mux.HandleFunc("/decide", func(w http.ResponseWriter, r *http.Request) {
		close(inFlight)
		<-finish
		answered.Store(true)
		io.WriteString(w, "ok")
	})
	done := start(ctx, lifecycle.Role{
		Name: "server", HTTP: &lifecycle.HTTP{Addr: "127.0.0.1:0", Handler: mux}, Log: zerolog.Nop(),
		Run: func(ctx context.Context, s *lifecycle.Scope) error {
			addr <- s.HTTPAddr()
			<-ctx.Done()
			close(finish) // the request completes only once the stop began
			return nil
		},
		Drain: func(context.Context) error {
			if !answered.Load() {
				t.Error("Drain ran before the request in flight was answered")
			}
			return nil
		},
	})
	a := <-addr
	respc := make(chan string, 1)
	go func() {
		resp, err := http.Get("http://" + a + "/decide")
		if err != nil {
			respc <- "error: " + err.Error()
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		respc <- string(b)
	}()
	<-inFlight
	stop()
	if got := <-respc; got != "ok" {
		t.Errorf("request in flight at the stop: %q, want ok", got)
	}
	if err := wait(t, done); err != nil {
		t.Fatal(err)
	}
	if _, err := http.Get("http://" + a + "/decide"); err == nil {
		t.Error("the role's HTTP API still answers after Run returned")
	}
}

// waitUntil polls cond until it holds, failing the test after two minutes.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within 2 minutes", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
