//go:build linux

package kafkatest

import "syscall"

// childAttr makes the kernel SIGKILL the broker when the test binary dies
// (a panic, a -timeout), so no JVM outlives its test.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
