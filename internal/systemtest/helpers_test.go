package systemtest

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aelp/aelp/internal/proctest"
)

// envTools, set to "require", makes a test whose outside tool (prometheus,
// kcat) is not on PATH fail instead of skip; AELP_TEST_<TOOL>=require
// (AELP_TEST_PROMETHEUS, AELP_TEST_KCAT) does it for one tool. CI sets
// them and installs the tools.
const envTools = "AELP_TEST_TOOLS"

// lookTool returns the path of the outside tool name, skipping the test
// when it is not installed (failing it when envTools or the tool's own
// variable is "require").
func lookTool(t *testing.T, name, pkg string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	msg := fmt.Sprintf("%s is not on PATH (Debian: apt-get install -y %s)", name, pkg)
	own := "AELP_TEST_" + strings.ToUpper(name)
	for _, env := range []string{own, envTools} {
		if strings.TrimSpace(os.Getenv(env)) == "require" {
			t.Fatalf("%s, and %s=require", msg, env)
		}
	}
	t.Skipf("%s; set %s=require to make this a failure", msg, own)
	return ""
}

func TestMain(m *testing.M) {
	code := m.Run()
	proctest.RemoveBuilt()
	os.Exit(code)
}

// moduleRoot returns the directory of go.mod above the working directory.
func moduleRoot(t *testing.T) string { t.Helper(); return proctest.ModuleRoot(t) }

// aelpBinary builds ./cmd/aelp once per test binary and returns its path.
func aelpBinary(t *testing.T) string {
	t.Helper()
	return proctest.Aelp(t, "aelp-systemtest-")
}

// proc is a running child process.
type proc = proctest.Proc

var lastLines = proctest.LastLines

// start runs path with args. The child sees the test's environment without
// any AELP_* variable (they would set aelp's flags). A child still running
// when the test ends gets SIGTERM, then SIGKILL if it has not exited a
// minute later; on a failed test its last stderr lines are logged.
func start(t *testing.T, name, path string, args ...string) *proc {
	t.Helper()
	return proctest.Start(t, name, path, proctest.Options{TermGrace: time.Minute}, args...)
}

// runAelp runs the aelp binary to completion and returns its stdout,
// failing the test on a non-zero exit or after timeout (a hung command).
func runAelp(t *testing.T, timeout time.Duration, args ...string) string {
	t.Helper()
	p := start(t, "aelp "+args[0], aelpBinary(t), args...)
	select {
	case <-p.Done():
	case <-time.After(timeout):
		t.Fatalf("aelp %s still running after %s", strings.Join(args, " "), timeout)
	}
	if err := p.Err(); err != nil {
		t.Fatalf("aelp %s: %v\n%s", strings.Join(args, " "), err, lastLines(p.Stderr.String(), 20))
	}
	return p.Stdout.String()
}

// logField returns the string field key of the first JSON log line of
// stderr whose message is msg ("" while there is none).
func logField(stderr, msg, key string) string {
	for line := range strings.SplitSeq(stderr, "\n") {
		var ev map[string]any
		if json.Unmarshal([]byte(line), &ev) != nil || ev["message"] != msg {
			continue
		}
		s, _ := ev[key].(string)
		return s
	}
	return ""
}
