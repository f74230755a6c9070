//go:build !unix

package kafkatest

import (
	"errors"
	"os"
)

func lockFile(string) (func(), error) {
	return nil, errors.New("real Kafka tests need a Unix system")
}

func terminate(p *os.Process) error { return p.Kill() }
