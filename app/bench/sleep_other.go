//go:build !linux

package bench

import "time"

// sleepUntil sleeps until t (on a runtime timer: nanosleep(2) is used on
// Linux only).
func sleepUntil(t time.Time) { time.Sleep(time.Until(t)) }
