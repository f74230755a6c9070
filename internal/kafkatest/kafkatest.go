// Package kafkatest starts a Kafka broker for integration tests: the
// embedded broker (kfake, in-process, the default) or a real Apache Kafka
// 4.x broker run from jars resolved from Maven Central when
// AELP_TEST_KAFKA=real. Tests get client settings from Cluster.Config and
// never learn which kind they talk to unless they ask (Kind, RequireReal).
// It knows nothing of aelp's topics or records.
//
// Real mode needs Java 17+ and Maven (the first run resolves the jars with
// scripts/kafka/fetch.sh into ${AELP_KAFKA_CACHE:-$HOME/.cache/aelp}; later
// runs reuse them). AELP_KAFKA_VERSION picks another Kafka version and
// AELP_KAFKA_LIBS points at an existing directory of Kafka jars instead.
package kafkatest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aelp/aelp/internal/broker"
	"github.com/aelp/aelp/internal/kafkax"
)

// Broker kinds returned by Cluster.Kind.
const (
	KindEmbedded = "embedded"
	KindReal     = "real"
)

// EnvMode is the environment variable that selects the broker kind.
const EnvMode = "AELP_TEST_KAFKA"

// Mode returns the broker kind requested by AELP_TEST_KAFKA, lower-cased
// and trimmed: "" (unset, the embedded broker), "embedded" or "real". Any
// other value is returned as is, and Start fails on it.
func Mode() string { return strings.ToLower(strings.TrimSpace(os.Getenv(EnvMode))) }

// RequireReal skips the test unless AELP_TEST_KAFKA=real, for tests that
// only make sense against real Apache Kafka (process crashes, broker-side
// behaviour the embedded broker does not model).
func RequireReal(t testing.TB) {
	t.Helper()
	if Mode() != KindReal {
		t.Skip("needs real Apache Kafka: run with AELP_TEST_KAFKA=real (needs Java 17+ and Maven; the jars come from Maven Central on first use)")
	}
}

// Options configures Start.
type Options struct {
	// DataDir holds the broker's log (topics, records, committed offsets);
	// a Restart keeps it. Default: a fresh t.TempDir().
	DataDir string
	// SASL serves SASL_SSL with SCRAM-SHA-512 instead of PLAINTEXT: a test
	// CA and server certificate are generated in Go, and Config carries the
	// CA file and a generated user and password.
	SASL bool
}

// scramMechanism is the SASL mechanism of Options.SASL.
const scramMechanism = "SCRAM-SHA-512"

// testUser is the client user name of Options.SASL.
const testUser = "aelp"

// Cluster is a running (or stopped, between Stop/Kill and StartAgain)
// broker. Its methods are for the test goroutine; Close is safe to call
// more than once.
type Cluster struct {
	mu      sync.Mutex
	kind    string
	opt     Options
	dir     string // certificates, server.properties, broker.log
	dataDir string
	certs   *Certs

	password, wrongPassword, adminPassword string

	addr string // host:port of the client listener, fixed for life

	emb *broker.Broker // embedded; nil while stopped

	real *realBroker // real; nil in embedded mode

	closed bool
}

// Start returns a broker for an integration test: the embedded broker
// (default) or a real Apache Kafka broker when AELP_TEST_KAFKA=real. It
// fails the test when the broker cannot start (in real mode with the tail
// of the broker log, and saying what is missing when Java or Maven is not
// installed). Close is registered with t.Cleanup.
func Start(t testing.TB, opt Options) *Cluster {
	t.Helper()
	c := &Cluster{opt: opt, dir: t.TempDir(), dataDir: opt.DataDir}
	switch m := Mode(); m {
	case "", KindEmbedded:
		c.kind = KindEmbedded
	case KindReal:
		c.kind = KindReal
	default:
		t.Fatalf("%s=%q: want unset, %q or %q", EnvMode, os.Getenv(EnvMode), KindEmbedded, KindReal)
	}
	if c.dataDir == "" {
		c.dataDir = t.TempDir()
	}
	if opt.SASL {
		certs, err := GenerateCerts(c.dir)
		if err != nil {
			t.Fatalf("kafkatest: %v", err)
		}
		c.certs = &certs
		c.password = randomSecret()
		c.wrongPassword = "wrong-" + randomSecret()
		c.adminPassword = randomSecret()
	}
	// Registered after the t.TempDir calls, so it runs before they are
	// removed (cleanups run last-in first-out).
	t.Cleanup(func() {
		if t.Failed() && c.real != nil && fileExists(c.real.logPath) {
			t.Logf("kafkatest: tail of the broker log %s:\n%s", c.LogFile(), c.logTail(40))
		}
		c.Close()
	})
	var err error
	if c.kind == KindEmbedded {
		err = c.startEmbedded("127.0.0.1:0")
	} else {
		err = c.startRealFirst(t)
	}
	if err != nil {
		t.Fatalf("kafkatest: start %s broker: %v", c.kind, err)
	}
	return c
}

// randomSecret returns 32 hex digits from crypto/rand.
func randomSecret() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("kafkatest: crypto/rand: %v", err))
	}
	return hex.EncodeToString(b[:])
}

// Kind returns "embedded" or "real".
func (c *Cluster) Kind() string { return c.kind }

// Addr returns the host:port of the client listener; it stays the same
// across Restart, Kill and StartAgain.
func (c *Cluster) Addr() string { return c.addr }

// DataDir returns the directory holding the broker's data.
func (c *Cluster) DataDir() string { return c.dataDir }

// LogFile returns the path of the real broker's log ("" when embedded).
func (c *Cluster) LogFile() string {
	if c.real == nil {
		return ""
	}
	return c.real.logPath
}

// Config returns client settings for the broker: its address and, with
// Options.SASL, TLS trusting the test CA and the SCRAM-SHA-512 credential.
func (c *Cluster) Config() kafkax.Config {
	cfg := kafkax.Config{
		Brokers:     []string{c.addr},
		ClientID:    "aelp-test",
		DialTimeout: 10 * time.Second,
	}
	if c.opt.SASL {
		cfg.TLS = kafkax.TLSConfig{Enable: true, CAFile: c.certs.CAFile}
		cfg.SASL = kafkax.SASLConfig{Mechanism: scramMechanism, Username: testUser, Password: c.password}
	}
	return cfg
}

// WrongPassword returns Config with a password the broker refuses. It
// panics on a cluster started without Options.SASL.
func (c *Cluster) WrongPassword() kafkax.Config {
	if !c.opt.SASL {
		panic("kafkatest: WrongPassword on a cluster started without Options.SASL")
	}
	cfg := c.Config()
	cfg.SASL.Password = c.wrongPassword
	return cfg
}

// Stop stops the broker gracefully (real: SIGTERM, SIGKILL after 30 s) and
// keeps its data for StartAgain.
func (c *Cluster) Stop(t testing.TB) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stopLocked(t, false)
}

// Kill stops the broker abruptly: SIGKILL for a real broker (no flush, no
// controlled shutdown), Close for the embedded one. StartAgain or Restart
// brings it back on the same data.
func (c *Cluster) Kill(t testing.TB) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stopLocked(t, true)
}

// StartAgain starts a stopped or killed broker on the same data directory
// and the same port, and returns once it serves clients.
func (c *Cluster) StartAgain(t testing.TB) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		t.Fatal("kafkatest: StartAgain after Close")
	}
	var err error
	if c.kind == KindEmbedded {
		if c.emb != nil {
			t.Fatal("kafkatest: StartAgain while the broker runs")
		}
		err = c.startEmbedded(c.addr)
	} else {
		if c.real.running() {
			t.Fatal("kafkatest: StartAgain while the broker runs")
		}
		err = c.startReal(false)
	}
	if err != nil {
		t.Fatalf("kafkatest: start %s broker again on %s: %v", c.kind, c.addr, err)
	}
}

// Restart stops the broker gracefully (if it runs) and starts it again on
// the same data directory and the same port.
func (c *Cluster) Restart(t testing.TB) {
	t.Helper()
	c.Stop(t)
	c.StartAgain(t)
}

// Close stops the broker (gracefully, then forcibly) and releases it. It is
// registered with t.Cleanup by Start; calling it again does nothing.
func (c *Cluster) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.closed = true
	c.stopLocked(nil, false)
}

func (c *Cluster) stopLocked(t testing.TB, kill bool) {
	if c.kind == KindEmbedded {
		if c.emb != nil {
			c.emb.Close()
			c.emb = nil
		}
		return
	}
	if err := c.real.stop(kill); err != nil && t != nil {
		t.Logf("kafkatest: %v", err)
	}
}

func (c *Cluster) startEmbedded(listen string) error {
	cfg := broker.Config{Listen: listen, DataDir: c.dataDir}
	if c.opt.SASL {
		cfg.Users = []broker.User{{Mechanism: scramMechanism, Username: testUser, Password: c.password}}
		cfg.TLS = c.certs.Server
	}
	b, err := broker.Start(cfg)
	if err != nil {
		return err
	}
	addrs := b.Addrs()
	if len(addrs) == 0 {
		b.Close()
		return fmt.Errorf("embedded broker on %s has no listener", listen)
	}
	c.emb, c.addr = b, addrs[0]
	return nil
}

// redact replaces the cluster's passwords in s.
func (c *Cluster) redact(s string) string {
	for _, p := range []string{c.password, c.wrongPassword, c.adminPassword} {
		if p != "" {
			s = strings.ReplaceAll(s, p, "[redacted]")
		}
	}
	return s
}

// logTail returns the last n lines of the real broker's log, passwords
// redacted ("" when embedded).
func (c *Cluster) logTail(n int) string {
	if c.real == nil {
		return ""
	}
	b, err := os.ReadFile(c.real.logPath)
	if err != nil {
		return fmt.Sprintf("(no broker log: %v)", err)
	}
	return c.redact(lastLines(string(b), n))
}
