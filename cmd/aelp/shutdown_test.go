//go:build unix

package main

// The shutdown tests run the aelp binary itself (built once per test
// binary) against an `aelp broker` process, and signal them as a
// supervisor would. Waits are bounded by what the processes print, with
// deadlines of minutes that only end a hung test.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	aelpOnce sync.Once
	aelpDir  string
	aelpPath string
	aelpErr  error
)

// aelpBinary builds ./cmd/aelp once per test binary and returns its path;
// the directory is removed when the test binary exits (TestMain).
func aelpBinary(t *testing.T) string {
	t.Helper()
	aelpOnce.Do(func() {
		if aelpDir, aelpErr = os.MkdirTemp("", "aelp-shutdown-"); aelpErr != nil {
			return
		}
		aelpPath = filepath.Join(aelpDir, "aelp")
		out, err := exec.Command("go", "build", "-o", aelpPath, ".").CombinedOutput()
		if err != nil {
			aelpErr = fmt.Errorf("go build ./cmd/aelp: %v\n%s", err, out)
		}
	})
	if aelpErr != nil {
		t.Fatal(aelpErr)
	}
	return aelpPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if aelpDir != "" {
		os.RemoveAll(aelpDir)
	}
	os.Exit(code)
}

// lockedBuffer is a bytes.Buffer safe for a child's writes and the test's
// reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// child is a running aelp process.
type child struct {
	name           string
	cmd            *exec.Cmd
	stdout, stderr lockedBuffer
	done           chan struct{}
	err            error // cmd.Wait's, set before done is closed
}

// startChild runs aelp with args (JSON logs), without the test's AELP_*
// variables. A child still running when the test ends is killed.
func startChild(t *testing.T, args ...string) *child {
	t.Helper()
	c := &child{name: args[0], done: make(chan struct{})}
	c.cmd = exec.Command(aelpBinary(t), append(args, "--log-format", "json")...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AELP_") {
			c.cmd.Env = append(c.cmd.Env, kv)
		}
	}
	c.cmd.Stdout, c.cmd.Stderr = &c.stdout, &c.stderr
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("start aelp %s: %v", c.name, err)
	}
	go func() { c.err = c.cmd.Wait(); close(c.done) }()
	t.Cleanup(func() {
		select {
		case <-c.done:
		default:
			c.cmd.Process.Signal(syscall.SIGCONT)
			c.cmd.Process.Kill()
			<-c.done
		}
		if t.Failed() {
			t.Logf("aelp %s stderr (last 4000 bytes):\n%s", c.name, tail(c.stderr.String(), 4000))
		}
	})
	return c
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// waitLog waits for a JSON log line of the child whose message is msg and
// returns it decoded.
func (c *child) waitLog(t *testing.T, msg string) map[string]any {
	t.Helper()
	var line map[string]any
	c.waitFor(t, fmt.Sprintf("log line %q", msg), func() bool {
		line = logLine(c.stderr.String(), msg)
		return line != nil
	})
	return line
}

// waitFor polls cond until it holds, failing when the child exits first or
// after two minutes.
func (c *child) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !cond() {
		select {
		case <-c.done:
			t.Fatalf("aelp %s exited (%v) before %s", c.name, c.err, what)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("aelp %s: no %s within 2 minutes", c.name, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func logLine(out, msg string) map[string]any {
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 0, 1<<20), 1<<24)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil && m["message"] == msg {
			return m
		}
	}
	return nil
}

// stop sends sig and returns the exit status, failing after two minutes.
func (c *child) stop(t *testing.T, sig syscall.Signal) int {
	t.Helper()
	if err := c.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal aelp %s: %v", c.name, err)
	}
	select {
	case <-c.done:
	case <-time.After(2 * time.Minute):
		t.Fatalf("aelp %s still running 2 minutes after %v", c.name, sig)
	}
	var ee *exec.ExitError
	switch {
	case c.err == nil:
		return 0
	case errors.As(c.err, &ee) && ee.Exited():
		return ee.ExitCode()
	}
	t.Fatalf("aelp %s: %v", c.name, c.err)
	return -1
}

// startBroker runs `aelp broker` on a free port and returns it with its
// address.
func startBroker(t *testing.T) (*child, string) {
	t.Helper()
	b := startChild(t, "broker", "--listen", "127.0.0.1:0", "--data-dir", "")
	addrs, _ := b.waitLog(t, "embedded broker listening")["addrs"].([]any)
	if len(addrs) == 0 {
		t.Fatalf("aelp broker logged no address: %s", b.stderr.String())
	}
	return b, addrs[0].(string)
}

// TestSignalledStopExitsZero: every long-running command stopped by
// SIGTERM once it runs finishes its work in hand and exits with status 0
// (docs/operations.md, exit status), the same for every command.
func TestSignalledStopExitsZero(t *testing.T) {
	if testing.Short() {
		t.Skip("runs aelp processes")
	}
	broker, addr := startBroker(t)
	simulate := startChild(t, "simulate", "--brokers", addr, "--experiment", "sig", "--rate", "500")
	simulate.waitLog(t, "simulate started")
	aggregate := startChild(t, "aggregate", "--brokers", addr, "--group", "sig")
	aggregate.waitLog(t, "aggregate started")
	learn := startChild(t, "learn", "--brokers", addr, "--experiment", "sig", "--fresh", "--min-buffer", "100")
	learn.waitLog(t, "learn started")
	tailer := startChild(t, "tail", "--brokers", addr, "--topic", "aelp.experiences.raw", "--from-beginning")
	tailer.waitFor(t, "a record on stdout", func() bool { return strings.Contains(tailer.stdout.String(), "\n") })
	run := startChild(t, "run", "--episodes", "1000000", "--data-dir", t.TempDir())
	run.waitFor(t, "a progress line", func() bool { return regexp.MustCompile(`users \d+/1000000`).MatchString(run.stderr.String()) })

	for _, c := range []*child{simulate, aggregate, learn, tailer, run, broker} {
		if code := c.stop(t, syscall.SIGTERM); code != 0 {
			t.Errorf("aelp %s stopped by SIGTERM: exit status %d, want 0\n%s", c.name, code, tail(c.stderr.String(), 2000))
		}
		if !strings.Contains(c.stderr.String(), "aelp: SIGTERM received, shutting down (again to force)\n") {
			t.Errorf("aelp %s did not say it received SIGTERM", c.name)
		}
	}
	for c, msg := range map[*child]string{simulate: "simulate finished", aggregate: "aggregate stopped", learn: "learn stopped"} {
		if logLine(c.stderr.String(), msg) == nil {
			t.Errorf("aelp %s logged no %q after the stop", c.name, msg)
		}
	}
	if !strings.Contains(run.stderr.String(), "aelp run: interrupted after") {
		t.Errorf("aelp run did not say what it did before the stop:\n%s", tail(run.stderr.String(), 2000))
	}
}

// TestShutdownTimeout: a simulator whose broker stops answering (SIGSTOP)
// cannot flush what it holds; stopped by SIGTERM, it exits with status 1
// at --shutdown-timeout, after writing a goroutine dump on stderr.
func TestShutdownTimeout(t *testing.T) {
	if testing.Short() {
		t.Skip("runs aelp processes")
	}
	broker, addr := startBroker(t)
	sim := startChild(t, "simulate", "--brokers", addr, "--experiment", "stuck", "--users", "100000000",
		"--follow-policy=false", "--http", "127.0.0.1:0", "--shutdown-timeout", "2s")
	metrics := "http://" + sim.waitLog(t, "serving /metrics and /healthz")["addr"].(string) + "/metrics"
	published := func() float64 { return metricValue(t, metrics, "aelp_simulate_experiences_total") }
	sim.waitFor(t, "published experiences", func() bool { return published() > 0 })

	// The broker stops answering: connections stay open, nothing is
	// acknowledged. Once the published count stops moving every worker is
	// waiting on a write.
	if err := broker.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer broker.cmd.Process.Signal(syscall.SIGCONT)
	last := -1.0
	sim.waitFor(t, "the published count to settle", func() bool {
		n := published()
		settled := n == last
		last = n
		time.Sleep(200 * time.Millisecond)
		return settled
	})

	code := sim.stop(t, syscall.SIGTERM)
	out := sim.stderr.String()
	if code != 1 {
		t.Errorf("exit status %d, want 1", code)
	}
	for _, want := range []string{
		"simulate: shutdown not finished 2s after the stop; goroutine dump:",
		"goroutine 1 [",
		"github.com/aelp/aelp/producers.(*simWorker).flush",
		"aelp simulate: simulate: shutdown timeout",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("stderr has no %q:\n%s", want, tail(out, 3000))
		}
	}
}

// metricValue scrapes url and returns the value of an unlabelled metric
// (0 when absent or unreachable).
func metricValue(t *testing.T, url, name string) float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err == nil {
				return f
			}
		}
	}
	return 0
}
