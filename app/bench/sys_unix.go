//go:build unix

package bench

import (
	"syscall"
	"time"
)

// selfCPU returns this process's user + system CPU time so far (0 where
// it cannot be read).
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
