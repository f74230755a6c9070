//go:build !unix

package bench

import "time"

// selfCPU returns 0: the process's CPU time is read on unix only.
func selfCPU() time.Duration { return 0 }
