//go:build !linux

package faulttest

import (
	"syscall"
	"time"
)

// childAttr has no parent-death signal outside Linux; the test's cleanup
// kills the children.
func childAttr() *syscall.SysProcAttr { return nil }

// cpuTime is not available outside Linux: ok is always false.
func cpuTime(pid int) (d time.Duration, ok bool) { return 0, false }
