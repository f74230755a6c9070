package systemtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"
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

var (
	binDir  string
	binOnce sync.Once
	binPath string
	binErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// moduleRoot returns the directory of go.mod above the working directory.
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the working directory")
		}
		dir = parent
	}
}

// aelpBinary builds ./cmd/aelp once per test binary and returns its path.
func aelpBinary(t *testing.T) string {
	t.Helper()
	root := moduleRoot(t)
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "aelp-systemtest-")
		if binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "aelp")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/aelp")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build ./cmd/aelp: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// syncBuffer is a bytes.Buffer safe for a child process writing and the
// test reading.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// proc is a running child process.
type proc struct {
	name           string
	cmd            *exec.Cmd
	stdout, stderr syncBuffer
	done           chan struct{}
	err            error // cmd.Wait's result, set before done is closed
}

// start runs path with args. The child sees the test's environment without
// any AELP_* variable (they would set aelp's flags). A child still running
// when the test ends gets SIGTERM, then SIGKILL if it has not exited a
// minute later; on a failed test its last stderr lines are logged.
func start(t *testing.T, name, path string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, done: make(chan struct{})}
	p.cmd = exec.Command(path, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AELP_") {
			p.cmd.Env = append(p.cmd.Env, kv)
		}
	}
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	p.cmd.SysProcAttr = childAttr()
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { // exits when the child does
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		if p.running() {
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-p.done:
			case <-time.After(time.Minute):
				_ = p.cmd.Process.Kill()
				<-p.done
			}
		}
		if t.Failed() {
			t.Logf("%s stderr (last 30 lines):\n%s", name, lastLines(p.stderr.String(), 30))
		}
	})
	return p
}

func (p *proc) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// runAelp runs the aelp binary to completion and returns its stdout,
// failing the test on a non-zero exit or after timeout (a hung command).
func runAelp(t *testing.T, timeout time.Duration, args ...string) string {
	t.Helper()
	p := start(t, "aelp "+args[0], aelpBinary(t), args...)
	select {
	case <-p.done:
	case <-time.After(timeout):
		t.Fatalf("aelp %s still running after %s", strings.Join(args, " "), timeout)
	}
	if p.err != nil {
		t.Fatalf("aelp %s: %v\n%s", strings.Join(args, " "), p.err, lastLines(p.stderr.String(), 20))
	}
	return p.stdout.String()
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
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

// nopLogger discards the kgo clients' log lines.
var nopLogger = zerolog.Nop()
