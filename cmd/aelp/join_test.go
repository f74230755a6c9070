package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestJoinFlagsRefused: a bad flag of aelp join, or of simulate's live
// mode, is a usage error of one line (exit 2), before any broker is
// dialled.
func TestJoinFlagsRefused(t *testing.T) {
	for _, args := range [][]string{
		{"join", "--window", "conversion=soon"},
		{"join", "--window", "click=-5m"},
		{"join", "--window", "conversion=1h,conversion=2h"},
		{"join", "--grace", "-1s"},
		{"join", "--max-pending", "-3"},
		{"join", "--isolation-level", "dirty"},
		{"join", "--decisions-topic", "t", "--outcomes-topic", "t"},
		{"join", "--default-reward", "NaN"},
		{"join", "--brokers", "localhost:1", "--partitioner", "random"},
		{"simulate", "--experiment", "x", "--users", "1", "--emit", "clicks"},
		{"simulate", "--experiment", "x", "--users", "1", "--emit", "decisions", "--conversion-median", "0s"},
		{"simulate", "--experiment", "x", "--users", "1", "--emit", "decisions", "--decisions-topic", "a", "--outcomes-topic", "a"},
	} {
		var out, errOut bytes.Buffer
		if code := realMain(args, &out, &errOut); code != 2 || strings.Count(errOut.String(), "\n") != 1 {
			t.Errorf("aelp %s: exit %d, stderr %q; want 2 and one line", strings.Join(args, " "), code, errOut.String())
		}
	}
}
