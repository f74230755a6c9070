// Package proctest runs the aelp binary, built once per test binary, and
// other programs (Prometheus, kcat) as child processes of a test: it
// starts them with the test's environment minus every AELP_* variable,
// captures their output, signals, stops and kills them, and makes sure
// none outlives its test. It is for the tests of internal/faulttest and
// internal/systemtest, which know the roles only through the binary (and
// internal/layers' tests and internal/kafkatest use its module-root
// search and LastLines); no role imports it.
package proctest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// FindModuleRoot returns the directory of go.mod at or above the working
// directory (go test runs in the package's directory).
func FindModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// ModuleRoot is FindModuleRoot for a test, which fails when there is none.
func ModuleRoot(t testing.TB) string {
	t.Helper()
	dir, err := FindModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

var built struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// Aelp builds ./cmd/aelp once per test binary, into a new directory of the
// system's temporary directory named after prefix, and returns the
// binary's path. Call RemoveBuilt from TestMain once the tests have run.
func Aelp(t testing.TB, prefix string) string {
	t.Helper()
	root := ModuleRoot(t)
	built.once.Do(func() {
		built.dir, built.err = os.MkdirTemp("", prefix)
		if built.err != nil {
			return
		}
		built.path = filepath.Join(built.dir, "aelp")
		cmd := exec.Command("go", "build", "-o", built.path, "./cmd/aelp")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			built.err = fmt.Errorf("go build ./cmd/aelp: %v\n%s", err, out)
		}
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.path
}

// RemoveBuilt removes the directory Aelp built the binary in, if it did.
func RemoveBuilt() {
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
}

// Buffer is a bytes.Buffer safe for concurrent writers and readers: a
// child process's output, or a zerolog logger's.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what was written so far.
func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Options configures Start.
type Options struct {
	// Env is added to the child's environment: the test's without any
	// AELP_* variable (they would set aelp's flags).
	Env []string
	// TermGrace, when positive, makes the cleanup of a child still running
	// when the test ends send SIGTERM and SIGKILL only if it has not
	// exited TermGrace later; when zero, the cleanup sends SIGKILL at once.
	TermGrace time.Duration
}

// Proc is a running child process.
type Proc struct {
	// Name names the child in messages.
	Name string
	// Cmd is the command started.
	Cmd *exec.Cmd
	// Stdout and Stderr hold what the child wrote.
	Stdout, Stderr Buffer
	done           chan struct{}
	err            error // cmd.Wait's result, set before done is closed
}

// Start runs path with args (see Options for its environment and its
// cleanup). On Linux the kernel also SIGKILLs the child when the test
// binary dies (a panic, a -timeout). On a failed test the cleanup logs the
// child's last 30 lines of stderr.
func Start(t testing.TB, name, path string, opt Options, args ...string) *Proc {
	t.Helper()
	p := &Proc{Name: name, done: make(chan struct{})}
	p.Cmd = exec.Command(path, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AELP_") {
			p.Cmd.Env = append(p.Cmd.Env, kv)
		}
	}
	p.Cmd.Env = append(p.Cmd.Env, opt.Env...)
	p.Cmd.Stdout, p.Cmd.Stderr = &p.Stdout, &p.Stderr
	p.Cmd.SysProcAttr = childAttr()
	if err := p.Cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { // exits when the child does
		p.err = p.Cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		if p.Running() {
			if opt.TermGrace > 0 {
				_ = p.Cmd.Process.Signal(syscall.SIGTERM)
				select {
				case <-p.done:
				case <-time.After(opt.TermGrace):
					_ = p.Cmd.Process.Kill()
					<-p.done
				}
			} else {
				_ = p.Cmd.Process.Kill()
				<-p.done
			}
		}
		if t.Failed() {
			t.Logf("%s stderr (last 30 lines):\n%s", name, LastLines(p.Stderr.String(), 30))
		}
	})
	return p
}

// Done is closed when the child has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Err returns the child's exit error (nil for status 0) once Done is
// closed, nil before.
func (p *Proc) Err() error {
	select {
	case <-p.done:
		return p.err
	default:
		return nil
	}
}

// Running reports whether the child has not exited yet.
func (p *Proc) Running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Kill sends SIGKILL and waits for the child to exit.
func (p *Proc) Kill(t testing.TB) {
	t.Helper()
	if err := p.Cmd.Process.Signal(syscall.SIGKILL); err != nil && p.Running() {
		t.Fatalf("kill %s: %v", p.Name, err)
	}
	<-p.done
}

// Signal sends sig to the child, which must be running.
func (p *Proc) Signal(t testing.TB, sig syscall.Signal) {
	t.Helper()
	if err := p.Cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v to %s: %v", sig, p.Name, err)
	}
}

// Stop sends SIGTERM (unless the child has exited) and returns the exit
// error; the test fails when the child is still running after timeout.
func (p *Proc) Stop(t testing.TB, timeout time.Duration) error {
	t.Helper()
	if p.Running() {
		if err := p.Cmd.Process.Signal(syscall.SIGTERM); err != nil && p.Running() {
			t.Fatalf("signal %s: %v", p.Name, err)
		}
	}
	return p.Wait(t, timeout)
}

// Wait waits for the child to exit and returns the exit error; the test
// fails when it is still running after timeout (a hung child: the timeout
// only bounds the test).
func (p *Proc) Wait(t testing.TB, timeout time.Duration) error {
	t.Helper()
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		t.Fatalf("%s still running after %s", p.Name, timeout)
		return nil
	}
}

// LastLines returns the last n lines of s.
func LastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
