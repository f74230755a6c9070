package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestWriterFlagsRefused: a bad --partitioner or --max-message-bytes on a
// writing role is a usage error of one line (exit 2), before any broker
// is dialled.
func TestWriterFlagsRefused(t *testing.T) {
	for _, args := range [][]string{
		{"simulate", "--experiment", "x", "--partitioner", "random"},
		{"aggregate", "--max-message-bytes", "10"},
		{"learn", "--experiment", "x", "--partitioner", ""},
		{"replay", "--in", "x.avro", "--topic", "t", "--max-message-bytes", "-1"},
		{"run", "--max-message-bytes", "100"},
	} {
		var out, errOut bytes.Buffer
		if code := realMain(args, &out, &errOut); code != 2 || strings.Count(errOut.String(), "\n") != 1 {
			t.Errorf("aelp %s: exit %d, stderr %q; want 2 and one line", strings.Join(args, " "), code, errOut.String())
		}
	}
}
