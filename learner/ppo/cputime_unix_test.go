//go:build unix

package ppo

import (
	"syscall"
	"time"
)

// processCPUTime returns the user+system CPU time of the process, so that
// benchmarks on a shared machine can report a throughput per CPU second
// beside the wall-clock one.
func processCPUTime() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
