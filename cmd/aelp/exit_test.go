package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"

	"github.com/aelp/aelp/internal/lifecycle"
)

// TestExitStatus checks the exit-status rule of docs/operations.md on
// every kind of result, with and without a stop signal.
func TestExitStatus(t *testing.T) {
	stopped, cancel := context.WithCancelCause(context.Background())
	cancel(stopSignal{syscall.SIGTERM})
	running := context.Background()
	timeout := fmt.Errorf("simulate: %w: drain not finished 30s after the stop", lifecycle.ErrShutdownTimeout)
	tests := []struct {
		name   string
		ctx    context.Context
		err    error
		code   int
		stderr string
	}{
		{"done", running, nil, 0, ""},
		{"help", running, errHelp, 0, ""},
		{"usage", running, usagef("bad --x"), 2, "aelp cmd: bad --x\n"},
		{"error", running, errors.New("boom"), 1, "aelp cmd: boom\n"},
		{"cancelled without a signal", running, context.Canceled, 1, "aelp cmd: context canceled\n"},
		{"role stopped, drained", stopped, nil, 0, ""},
		{"tool stopped part-way", stopped, fmt.Errorf("replay: write: %w", context.Canceled), 0, "aelp cmd: stopped by SIGTERM\n"},
		{"drain past the timeout", stopped, timeout, 1, "aelp cmd: " + timeout.Error() + "\n"},
		{"error after the stop", stopped, errors.New("write checkpoint: disk full"), 1, "aelp cmd: write checkpoint: disk full\n"},
		{"usage after the stop", stopped, usagef("bad --x"), 2, "aelp cmd: bad --x\n"},
	}
	for _, tc := range tests {
		var stderr bytes.Buffer
		if got := exitStatus(tc.ctx, "cmd", tc.err, &stderr); got != tc.code {
			t.Errorf("%s: exit status %d, want %d", tc.name, got, tc.code)
		}
		if got := stderr.String(); got != tc.stderr {
			t.Errorf("%s: stderr %q, want %q", tc.name, got, tc.stderr)
		}
		if n := strings.Count(stderr.String(), "\n"); n > 1 {
			t.Errorf("%s: %d lines on stderr, want at most 1", tc.name, n)
		}
	}
}
