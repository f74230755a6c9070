// Package broker runs the embedded Kafka-protocol broker that backs
// `aelp broker` and the zero-setup `aelp run`. It wraps kfake, which speaks
// the real Kafka wire protocol (produce, fetch, consumer groups, admin, SASL,
// TLS), so any Kafka client can use it. It knows nothing of aelp's topics or
// records.
package broker

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/aelp/aelp/internal/kafkax"
	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kfake"
)

// User is a SASL credential the embedded broker accepts.
type User struct {
	// Mechanism is PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.
	Mechanism string
	// Username and Password are the credential.
	Username, Password string
}

// Config configures an embedded broker.
type Config struct {
	// Listen is the host:port the single broker listens on. Port 0 picks a
	// free port (see Broker.Addrs). Default DefaultListen.
	Listen string
	// DataDir, when set, persists topics, records and committed offsets
	// there; a broker restarted on the same directory has them all. Empty
	// keeps everything in memory.
	DataDir string
	// SyncWrites fsyncs every produced batch (slower, survives power loss).
	SyncWrites bool
	// DefaultPartitions is the partition count of topics created without
	// an explicit count. Default 6.
	DefaultPartitions int
	// Users enables SASL with these credentials; empty disables SASL.
	Users []User
	// TLS, when non-nil, serves TLS on the listener.
	TLS *tls.Config
	// Logger receives the broker's warnings and errors. Zero value: none.
	Logger zerolog.Logger
}

// DefaultListen is the listen address of `aelp broker`: where every
// client looks by default (kafkax.DefaultBroker).
const DefaultListen = kafkax.DefaultBroker

// DefaultConfig returns the defaults of `aelp broker`: DefaultListen, the
// log under data/kafka, 6 partitions per topic created without a count.
// An empty DataDir, which keeps everything in memory, is left alone by
// setDefaults; the other zero fields take the values given here.
func DefaultConfig() Config {
	return Config{Listen: DefaultListen, DataDir: filepath.Join("data", "kafka"), DefaultPartitions: 6}
}

func (c *Config) setDefaults() {
	d := DefaultConfig()
	if c.Listen == "" {
		c.Listen = d.Listen
	}
	if c.DefaultPartitions == 0 {
		c.DefaultPartitions = d.DefaultPartitions
	}
}

// Validate reports the first invalid field.
func (c Config) Validate() error {
	c.setDefaults()
	host, port, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return fmt.Errorf("listen %q: %w", c.Listen, err)
	}
	if host == "" {
		return fmt.Errorf("listen %q: host is empty; use 127.0.0.1", c.Listen)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("listen %q: bad port", c.Listen)
	}
	if c.DefaultPartitions < 1 {
		return fmt.Errorf("default partitions %d: must be at least 1", c.DefaultPartitions)
	}
	for _, u := range c.Users {
		switch u.Mechanism {
		case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
		default:
			return fmt.Errorf("user %q: unknown SASL mechanism %q", u.Username, u.Mechanism)
		}
		if u.Username == "" {
			return errors.New("SASL user with an empty name")
		}
	}
	return nil
}

// Broker is a running embedded broker.
type Broker struct {
	c     *kfake.Cluster
	addrs []string
}

// Start starts a broker listening on cfg.Listen. It returns once the
// listener is bound; clients can connect immediately.
func Start(cfg Config) (*Broker, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("embedded broker: %w", err)
	}
	host, portStr, _ := net.SplitHostPort(cfg.Listen)
	port, _ := strconv.Atoi(portStr)
	opts := []kfake.Opt{
		kfake.Ports(port),
		kfake.DefaultNumPartitions(cfg.DefaultPartitions),
		kfake.WithLogger(zlogger{cfg.Logger}),
		kfake.ListenFn(func(network, _ string) (net.Listener, error) {
			return net.Listen(network, net.JoinHostPort(host, strconv.Itoa(port)))
		}),
	}
	if cfg.DataDir != "" {
		opts = append(opts, kfake.DataDir(cfg.DataDir))
	}
	if cfg.SyncWrites {
		opts = append(opts, kfake.SyncWrites())
	}
	if len(cfg.Users) > 0 {
		opts = append(opts, kfake.EnableSASL())
		// Every configured user may administer topics: the embedded broker
		// runs without ACLs.
		for _, u := range cfg.Users {
			opts = append(opts, kfake.Superuser(u.Mechanism, u.Username, u.Password))
		}
	}
	if cfg.TLS != nil {
		opts = append(opts, kfake.TLS(cfg.TLS))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("embedded broker on %s: %w", cfg.Listen, err)
	}
	return &Broker{c: c, addrs: c.ListenAddrs()}, nil
}

// Addrs returns the host:port of every listener, for --brokers.
func (b *Broker) Addrs() []string { return append([]string(nil), b.addrs...) }

// Close stops the listener, drops client connections and, with a DataDir,
// flushes the log to disk. It returns once everything is stopped.
func (b *Broker) Close() { b.c.Close() }

// zlogger adapts zerolog to kfake's Logger at the edge.
type zlogger struct{ l zerolog.Logger }

func (z zlogger) Logf(level kfake.LogLevel, format string, args ...any) {
	var ev *zerolog.Event
	switch level {
	case kfake.LogLevelError:
		ev = z.l.Error()
	case kfake.LogLevelWarn:
		ev = z.l.Warn()
	default:
		return
	}
	ev.Str("component", "embedded-broker").Msg(strings.TrimSpace(fmt.Sprintf(format, args...)))
}
