package bench

import (
	"syscall"
	"time"
)

// sleepUntil sleeps until t. It sleeps in nanosleep(2) rather than on a
// runtime timer: the Go runtime wakes an idle process's timers with
// epoll's millisecond resolution, which made the pacer hand requests over
// half a millisecond late on average, and every latency longer by that.
// The goroutine holds an OS thread in the system call meanwhile (not a P:
// the runtime hands it to another thread).
func sleepUntil(t time.Time) {
	for {
		d := time.Until(t)
		if d <= 0 {
			return
		}
		ts := syscall.NsecToTimespec(int64(d))
		if err := syscall.Nanosleep(&ts, nil); err != nil && err != syscall.EINTR {
			time.Sleep(time.Until(t))
			return
		}
	}
}
