// Package kafkax is aelp's shared Kafka plumbing: connection settings (TLS,
// SASL), topic creation and the writer constructor on kafka-go with safe
// defaults (acks=all, key-hash partitioning, millisecond batching, lz4),
// and the readers on franz-go's kgo, which keep read_committed (kafka-go
// does not): Reader, of given partitions, and GroupConsumer, a member of a
// consumer group with explicit commits. It knows the default topic names
// but nothing of the records that travel on them.
package kafkax

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"
)

// Default topic names (DESIGN.md); every role takes them as flags.
const (
	TopicRaw     = "aelp.experiences.raw"
	TopicTagged  = "aelp.experiences.tagged"
	TopicMetrics = "aelp.metrics"
	TopicPolicy  = "aelp.policy"
	// TopicCandidates holds the snapshots the learner's promotion gate
	// held back (issue 17).
	TopicCandidates = "aelp.policy.candidates"
	TopicDeadLetter = "aelp.deadletter"
	// TopicDecisions, TopicOutcomes and TopicOutcomesLate are the live
	// streams aelp join reads (decisions, outcomes; co-partitioned by user
	// id) and the outcomes it does not train on.
	TopicDecisions    = "aelp.decisions"
	TopicOutcomes     = "aelp.outcomes"
	TopicOutcomesLate = "aelp.outcomes.late"
)

// TLSConfig configures TLS towards the brokers.
type TLSConfig struct {
	// Enable turns TLS on. Setting any file below implies it.
	Enable bool
	// CAFile is a PEM bundle of the CAs that sign the broker certificates.
	// Empty uses the system roots.
	CAFile string
	// CertFile and KeyFile are the PEM client certificate and key for
	// mutual TLS; both or neither.
	CertFile, KeyFile string
	// ServerName overrides the name checked against the broker certificate.
	ServerName string
	// InsecureSkipVerify disables certificate verification (tests only).
	InsecureSkipVerify bool
}

// SASLConfig configures SASL authentication.
type SASLConfig struct {
	// Mechanism is "", PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.
	Mechanism string
	// Username and Password are the credential. The password never appears
	// in logs or error messages.
	Username, Password string
}

// Config holds the connection settings shared by every role.
type Config struct {
	// Brokers are the bootstrap host:port addresses. Default DefaultBroker.
	Brokers []string
	// ClientID names this client to the brokers. Default "aelp".
	ClientID string
	// TLS configures encryption; zero value means plaintext.
	TLS TLSConfig
	// SASL configures authentication; zero value means none.
	SASL SASLConfig
	// DialTimeout bounds connection set-up (TCP, TLS, SASL). Default 10 s.
	DialTimeout time.Duration
	// AdminTimeout bounds every admin call of a Client (metadata, topic
	// creation, topic configs), each call as a whole. Default 15 s.
	AdminTimeout time.Duration
	// Partitioner places keyed records on partitions, in every writer.
	// Default Murmur2, the Java client's.
	Partitioner Partitioner
	// MaxMessageBytes is the largest record batch assumed for a topic
	// whose max.message.bytes the broker does not tell (DescribeConfigs
	// refused or unsupported). Default DefaultMaxMessageBytes.
	MaxMessageBytes int
}

// DefaultBroker is the default bootstrap address of every client, where
// `aelp broker` listens by default.
const DefaultBroker = "127.0.0.1:9092"

// DefaultMaxMessageBytes is Kafka's default record-batch limit (the
// broker's message.max.bytes, a topic's max.message.bytes): 1 MiB plus the
// 12-byte log overhead.
const DefaultMaxMessageBytes = 1048588

// DefaultConfig returns the documented defaults: DefaultBroker, client id
// aelp, a 10 s dial timeout, 15 s admin timeout, plaintext, no SASL, the
// murmur2 partitioner and DefaultMaxMessageBytes.
func DefaultConfig() Config {
	return Config{Brokers: []string{DefaultBroker}, ClientID: "aelp", DialTimeout: 10 * time.Second,
		AdminTimeout: 15 * time.Second, Partitioner: Murmur2, MaxMessageBytes: DefaultMaxMessageBytes}
}

func (c *Config) setDefaults() {
	d := DefaultConfig()
	if len(c.Brokers) == 0 {
		c.Brokers = d.Brokers
	}
	if c.ClientID == "" {
		c.ClientID = d.ClientID
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = d.DialTimeout
	}
	if c.AdminTimeout == 0 {
		c.AdminTimeout = d.AdminTimeout
	}
	if c.MaxMessageBytes == 0 {
		c.MaxMessageBytes = d.MaxMessageBytes
	}
	if c.TLS.CAFile != "" || c.TLS.CertFile != "" || c.TLS.KeyFile != "" {
		c.TLS.Enable = true
	}
}

// WithDefaults returns c with the documented defaults filled in.
func (c Config) WithDefaults() Config { c.setDefaults(); return c }

// Validate reports the first invalid setting.
func (c Config) Validate() error {
	c.setDefaults()
	for _, b := range c.Brokers {
		if _, _, err := net.SplitHostPort(b); err != nil {
			return fmt.Errorf("broker address %q: %w", b, err)
		}
	}
	if !c.Partitioner.valid() {
		return fmt.Errorf("partitioner %s: want murmur2, fnv1a or crc32", c.Partitioner)
	}
	if c.MaxMessageBytes < minMessageBytes {
		return fmt.Errorf("max message bytes %d: must be at least %d", c.MaxMessageBytes, minMessageBytes)
	}
	if c.AdminTimeout < 0 {
		return fmt.Errorf("admin timeout %s: must not be negative", c.AdminTimeout)
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		return errors.New("tls: client certificate and key must be given together")
	}
	switch strings.ToUpper(c.SASL.Mechanism) {
	case "":
		if c.SASL.Username != "" {
			return errors.New("sasl: a username is set but no mechanism")
		}
	case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
		if c.SASL.Username == "" {
			return fmt.Errorf("sasl %s: username is empty", c.SASL.Mechanism)
		}
	default:
		return fmt.Errorf("sasl: unknown mechanism %q (want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)", c.SASL.Mechanism)
	}
	return nil
}

// String describes the connection without secrets, for logs.
func (c Config) String() string {
	c.setDefaults()
	s := strings.Join(c.Brokers, ",")
	if c.TLS.Enable {
		s += " tls"
	}
	if c.SASL.Mechanism != "" {
		s += " sasl=" + strings.ToUpper(c.SASL.Mechanism) + " user=" + c.SASL.Username
	}
	return s
}

func (c Config) tlsConfig() (*tls.Config, error) {
	if !c.TLS.Enable {
		return nil, nil
	}
	tc := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         c.TLS.ServerName,
		InsecureSkipVerify: c.TLS.InsecureSkipVerify, //nolint:gosec // opt-in, documented as tests only
	}
	if c.TLS.CAFile != "" {
		pem, err := os.ReadFile(c.TLS.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tls: read ca file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls: no certificate found in %s", c.TLS.CAFile)
		}
		tc.RootCAs = pool
	}
	if c.TLS.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.TLS.CertFile, c.TLS.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls: load client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

func (c Config) mechanism() (sasl.Mechanism, error) {
	switch strings.ToUpper(c.SASL.Mechanism) {
	case "":
		return nil, nil
	case "PLAIN":
		return plain.Mechanism{Username: c.SASL.Username, Password: c.SASL.Password}, nil
	case "SCRAM-SHA-256":
		m, err := scram.Mechanism(scram.SHA256, c.SASL.Username, c.SASL.Password)
		if err != nil {
			return nil, fmt.Errorf("sasl scram-sha-256: %w", err)
		}
		return m, nil
	case "SCRAM-SHA-512":
		m, err := scram.Mechanism(scram.SHA512, c.SASL.Username, c.SASL.Password)
		if err != nil {
			return nil, fmt.Errorf("sasl scram-sha-512: %w", err)
		}
		return m, nil
	}
	return nil, fmt.Errorf("sasl: unknown mechanism %q", c.SASL.Mechanism)
}

// security returns the validated settings with defaults, the TLS config
// (nil for plaintext) and the SASL mechanism (nil for none).
func (c Config) security() (Config, *tls.Config, sasl.Mechanism, error) {
	c.setDefaults()
	if err := c.Validate(); err != nil {
		return c, nil, nil, err
	}
	tc, err := c.tlsConfig()
	if err != nil {
		return c, nil, nil, err
	}
	mech, err := c.mechanism()
	if err != nil {
		return c, nil, nil, err
	}
	return c, tc, mech, nil
}

// Transport returns a kafka-go Transport (for Writers and Clients) with the
// TLS and SASL settings applied.
func (c Config) Transport() (*kafka.Transport, error) {
	c, tc, mech, err := c.security()
	if err != nil {
		return nil, err
	}
	return &kafka.Transport{
		ClientID:    c.ClientID,
		TLS:         tc,
		SASL:        mech,
		DialTimeout: c.DialTimeout,
		MetadataTTL: 10 * time.Second,
	}, nil
}

// Dialer returns a kafka-go Dialer (for Readers and Conns) with the TLS and
// SASL settings applied.
func (c Config) Dialer() (*kafka.Dialer, error) {
	c, tc, mech, err := c.security()
	if err != nil {
		return nil, err
	}
	return &kafka.Dialer{
		ClientID:      c.ClientID,
		Timeout:       c.DialTimeout,
		DualStack:     true,
		TLS:           tc,
		SASLMechanism: mech,
	}, nil
}

// Client returns a kafka-go Client with a Transport of its own (a new
// connection pool: one TLS and SASL handshake per broker) for one-off
// requests, such as tests'. A role uses its kafkax.Client instead, which
// keeps one pool for the role's life.
func (c Config) Client() (*kafka.Client, error) {
	c.setDefaults()
	tr, err := c.Transport()
	if err != nil {
		return nil, err
	}
	return &kafka.Client{Addr: kafka.TCP(c.Brokers...), Transport: tr, Timeout: c.AdminTimeout}, nil
}
