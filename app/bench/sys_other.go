//go:build !unix

package bench

import "time"

// selfCPU returns 0: the process's CPU time is read on unix only.
func selfCPU() time.Duration { return 0 }

// sleepUntil sleeps until t.
func sleepUntil(t time.Time) { time.Sleep(time.Until(t)) }
