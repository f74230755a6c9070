package lifecycle

import (
	"context"
	"fmt"
	"runtime/pprof"
	"sync"
	"time"
)

// deadline is the drain context of one Run: it ends timeout after the
// stop context does, and onExpire (the goroutine dump) runs first, while
// whatever is stuck is still stuck.
type deadline struct {
	ctx    context.Context
	cancel context.CancelFunc
	stopAt func() bool

	mu       sync.Mutex
	timer    *time.Timer
	released bool
	firing   bool
	fired    chan struct{} // closed once onExpire returned and ctx ended
}

func newDeadline(stop context.Context, timeout time.Duration, onExpire func()) *deadline {
	ctx, cancel := context.WithCancel(context.WithoutCancel(stop))
	d := &deadline{ctx: ctx, cancel: cancel, fired: make(chan struct{})}
	d.stopAt = context.AfterFunc(stop, func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		if d.released {
			return
		}
		d.timer = time.AfterFunc(timeout, func() {
			d.mu.Lock()
			if d.released {
				d.mu.Unlock()
				return
			}
			d.firing = true
			d.mu.Unlock()
			onExpire()
			d.cancel()
			close(d.fired)
		})
	})
	return d
}

// expired reports whether the deadline has passed (waiting for the dump
// to be written when it is being written).
func (d *deadline) expired() bool {
	d.mu.Lock()
	firing := d.firing
	d.mu.Unlock()
	if firing {
		<-d.fired
	}
	return firing
}

// release stops the deadline (a deadline that already fired stays
// expired) and ends the drain context.
func (d *deadline) release() {
	d.mu.Lock()
	d.released = true
	if d.timer != nil {
		d.timer.Stop()
	}
	firing := d.firing
	d.mu.Unlock()
	d.stopAt()
	if firing {
		<-d.fired
	}
	d.cancel()
}

// timeout returns the error of a shutdown that ran out of time in step.
func (r *Role) timeout(step string) error {
	return fmt.Errorf("%s: %w: %s not finished %s after the stop (goroutine dump written)", r.Name, ErrShutdownTimeout, step, r.ShutdownTimeout)
}

// dump writes every goroutine's stack to r.Dump, as Benthos does on a
// shutdown that times out.
func (r *Role) dump() {
	r.Log.Error().Str("role", r.Name).Dur("shutdown_timeout", r.ShutdownTimeout).
		Msg("shutdown timed out; writing a goroutine dump")
	fmt.Fprintf(r.Dump, "%s: shutdown not finished %s after the stop; goroutine dump:\n", r.Name, r.ShutdownTimeout)
	_ = pprof.Lookup("goroutine").WriteTo(r.Dump, 2)
}
