//go:build !linux

package systemtest

import "syscall"

// childAttr has no parent-death signal outside Linux; the test's cleanup
// stops the children.
func childAttr() *syscall.SysProcAttr { return nil }
