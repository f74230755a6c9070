//go:build unix

package kafkatest

import (
	"os"
	"syscall"
)

// lockFile takes an exclusive advisory lock on path (created if missing)
// and returns the function that releases it. Test binaries of several
// packages run in parallel; the lock keeps them from resolving the same
// Kafka jars at once.
func lockFile(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

// terminate asks the process to stop gracefully.
func terminate(p *os.Process) error { return p.Signal(syscall.SIGTERM) }
