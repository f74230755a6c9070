//go:build !linux

package proctest

import (
	"syscall"
	"time"
)

// childAttr has no parent-death signal outside Linux; the test's cleanup
// stops the children.
func childAttr() *syscall.SysProcAttr { return nil }

// CPUTime is not available outside Linux: ok is always false.
func CPUTime(pid int) (d time.Duration, ok bool) { return 0, false }
