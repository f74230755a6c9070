//go:build !linux

package kafkatest

import "syscall"

// childAttr has no parent-death signal outside Linux; Close and the test's
// cleanup stop the broker.
func childAttr() *syscall.SysProcAttr { return nil }
