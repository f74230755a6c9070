// Package lifecycle runs a long-running role through the one life every
// role has:
//
//	start → ensure topics → ready → run → drain → close
//
// A role is a name, the topics it needs, a health rule, a Run main loop, a
// Drain step and, optionally, an HTTP API of its own (Role). Run(ctx, role)
// drives it:
//
//  1. The health flag (obs.Health) turns not ready ("connecting to the
//     broker"), the role's HTTP listener, if any, is bound, the role's
//     Kafka client is made (Scope.Kafka: one kafkax.Client, one pool of
//     connections for the role's admin calls and writers, for its whole
//     life) and the topics are created when missing through it, retried
//     with backoff (kafkax.Retry) until they exist or ctx ends. A stop
//     before this is done returns nil at once: nothing ran, so nothing is
//     drained.
//  2. Role.Run is called with a context that ends when ctx does (SIGINT or
//     SIGTERM in the aelp binary) or when one of the role's goroutines
//     fails. The role is ready from the moment Run is called
//     (ReadyAfterTopics) or when it says so (ReadyOnCall: Scope.Ready, e.g.
//     on its first fetched record). Its goroutines (partition readers,
//     watchers, progress tickers) are started with Scope.Go and Scope.Every
//     into one errgroup: they run until Run returns, and Run's caller waits
//     for them. The HTTP API is served from the start of Run.
//  3. When ctx ends the role turns not ready ("shutting down") and has
//     ShutdownTimeout to finish. (A role whose Run returns by itself, a
//     bounded run, stays as it is: its process is about to exit.) Work that must complete even after the
//     stop (the batch in hand: its produce, acknowledgement and commit)
//     uses Scope.DrainContext, which outlives ctx by exactly that long.
//  4. Once Run and its goroutines have returned, the HTTP API stops taking
//     requests and finishes those in flight, then Role.Drain runs with the
//     drain context: flush writers, commit offsets, write the checkpoint,
//     close the writers and readers, log the summary. Drain is called
//     whenever Run was, whatever Run returned, so it must cope with a Run
//     that failed early. The Kafka client is closed after Drain.
//  5. If the deadline passes before all of that is done, Run writes a
//     goroutine dump (runtime/pprof "goroutine" at debug=2, as a panic prints
//     stacks) to Role.Dump, cancels the drain context and returns an error
//     wrapping ErrShutdownTimeout without waiting any longer: the process
//     exits non-zero instead of hanging. The deadline only starts when ctx
//     ends; a role that finishes on its own (a bounded run) drains without
//     one.
//
// Run returns Run's error, else Drain's (a Drain error after a Run error
// is logged), else nil: a stop requested through ctx is not an error.
//
// A consumer of two topics (a join) is a Role with both topics in Topics,
// a Run that reads both and uses DrainContext for the output of the batch
// in hand, and a Drain that flushes and commits. A request/response server
// (an HTTP decision server) is a Role with HTTP set, ReadyOnCall once it has
// what it needs to answer (a policy), a Run that follows its inputs until
// ctx ends, and a Drain that flushes what the requests produced; the
// lifecycle shuts its listener down gracefully before Drain.
//
// The package knows Kafka only through kafkax (the role's client, topic
// creation) and health only through obs; it imports no role.
package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/aelp/aelp/internal/kafkax"
	"github.com/aelp/aelp/internal/obs"
	"github.com/rs/zerolog"
)

// DefaultShutdownTimeout is the default of Role.ShutdownTimeout and of
// every command's --shutdown-timeout.
const DefaultShutdownTimeout = 30 * time.Second

// ErrShutdownTimeout is wrapped by the error Run returns when the role had
// not finished ShutdownTimeout after the stop.
var ErrShutdownTimeout = errors.New("shutdown timeout")

// Readiness is a role's health rule: when obs.Health turns ready.
type Readiness int

const (
	// ReadyAfterTopics turns the role ready once its topics exist, as Run
	// is called.
	ReadyAfterTopics Readiness = iota
	// ReadyOnCall leaves it to the role: it is ready from its first call of
	// Scope.Ready.
	ReadyOnCall
)

// HTTP is a role's own HTTP API, served beside (not instead of) the
// process's /metrics and /healthz.
type HTTP struct {
	// Addr is the listen address (":8080", "127.0.0.1:0"). Required.
	Addr string
	// Handler serves the requests. Required.
	Handler http.Handler
}

// Role is one long-running role as Run drives it.
type Role struct {
	// Name names the role in logs and errors ("aggregate").
	Name string
	// Kafka is the connection of the role's client (Scope.Kafka), which
	// creates Topics.
	Kafka kafkax.Config
	// Topics are created when missing before Run is called; none: no
	// topic step.
	Topics []kafkax.TopicSpec
	// Ready is the health rule. Default ReadyAfterTopics.
	Ready Readiness
	// Run is the main loop. It returns when ctx ends (nil: a requested stop
	// is no error), when its work is done, or on an error retrying cannot
	// fix. Required.
	Run func(ctx context.Context, s *Scope) error
	// Drain finishes after Run: flush, commit, checkpoint, close. ctx is
	// the drain context (Scope.DrainContext). Optional.
	Drain func(ctx context.Context) error
	// HTTP, when set, is served from Run's start until the drain.
	HTTP *HTTP
	// ShutdownTimeout is how long the role has, from the end of Run's ctx,
	// to return from Run and Drain. Default DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
	// Health, when set, is the role's readiness flag.
	Health *obs.Health
	// Log receives the lifecycle's messages (retries, the timeout).
	Log zerolog.Logger
	// Dump receives the goroutine dump when the shutdown times out.
	// Default os.Stderr.
	Dump io.Writer
}

func (r *Role) setDefaults() {
	if r.ShutdownTimeout == 0 {
		r.ShutdownTimeout = DefaultShutdownTimeout
	}
	if r.Dump == nil {
		r.Dump = os.Stderr
	}
}

// Run drives role through its lifecycle (see the package documentation)
// and returns when it is over, or at the shutdown deadline.
func Run(ctx context.Context, role Role) error {
	role.setDefaults()
	if role.Run == nil {
		return fmt.Errorf("%s: lifecycle: no Run", role.Name)
	}
	if role.ShutdownTimeout < 0 {
		return fmt.Errorf("%s: shutdown timeout %s: must not be negative", role.Name, role.ShutdownTimeout)
	}
	if role.Health != nil {
		role.Health.SetReady(false, "connecting to the broker")
	}
	client, err := kafkax.NewClient(role.Kafka)
	if err != nil {
		return fmt.Errorf("%s: %w", role.Name, err)
	}
	defer client.Close()
	d := newDeadline(ctx, role.ShutdownTimeout, func() { role.dump() })
	defer d.release()
	s := &Scope{role: &role, drain: d.ctx, kafka: client}
	if role.HTTP != nil {
		ln, err := net.Listen("tcp", role.HTTP.Addr)
		if err != nil {
			return fmt.Errorf("%s: http listen %s: %w", role.Name, role.HTTP.Addr, err)
		}
		s.httpLn = ln
	}
	if err := ensureTopics(ctx, &role, client); err != nil {
		if s.httpLn != nil {
			s.httpLn.Close()
		}
		if ctx.Err() != nil {
			return nil // stopped before the role started: nothing to drain
		}
		return fmt.Errorf("%s: %w", role.Name, err)
	}
	stopHealth := context.AfterFunc(ctx, func() { s.notReady("shutting down") })
	defer stopHealth()
	runErr, ok := s.run(ctx, d)
	if !ok {
		s.closeHTTP()
		return role.timeout("run")
	}
	if !s.shutdownHTTP(d) {
		s.closeHTTP()
		return role.timeout("http shutdown")
	}
	drainErr, ok := s.drainStep(d)
	if !ok || d.expired() {
		// (expired: the deadline passed as the drain returned; the work it
		// cut short is as unfinished as if the drain were still running.)
		return role.timeout("drain")
	}
	if runErr != nil {
		if drainErr != nil {
			role.Log.Error().Err(drainErr).Str("role", role.Name).Msg("drain after a failed run")
		}
		return runErr
	}
	return drainErr
}

func ensureTopics(ctx context.Context, role *Role, client *kafkax.Client) error {
	if len(role.Topics) == 0 {
		return nil
	}
	return kafkax.Retry(ctx, role.Log, "ensure topics", func(ctx context.Context) error {
		return client.EnsureTopics(ctx, role.Topics...)
	})
}
