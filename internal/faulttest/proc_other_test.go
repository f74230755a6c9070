//go:build !linux

package faulttest

import "syscall"

// childAttr has no parent-death signal outside Linux; the test's cleanup
// kills the children.
func childAttr() *syscall.SysProcAttr { return nil }
