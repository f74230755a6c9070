//go:build linux

package faulttest

import "syscall"

// childAttr makes the kernel SIGKILL an aelp child when the test binary
// dies (a panic, a -timeout), so no role outlives its test.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
