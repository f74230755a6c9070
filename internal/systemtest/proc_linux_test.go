//go:build linux

package systemtest

import "syscall"

// childAttr makes the kernel SIGKILL a child when the test binary dies (a
// panic, a -timeout), so no role or Prometheus outlives its test.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
