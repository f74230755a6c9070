package kafkatest

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aelp/aelp/internal/kafkax"
	"github.com/segmentio/kafka-go"
)

func TestMode(t *testing.T) {
	tests := []struct{ env, want string }{
		{"", ""},
		{"embedded", KindEmbedded},
		{" Real ", KindReal},
		{"docker", "docker"},
	}
	for _, tt := range tests {
		t.Run(tt.env, func(t *testing.T) {
			t.Setenv(EnvMode, tt.env)
			if got := Mode(); got != tt.want {
				t.Errorf("Mode() with %s=%q = %q, want %q", EnvMode, tt.env, got, tt.want)
			}
		})
	}
}

func TestServerProperties(t *testing.T) {
	plain := serverProperties(brokerSettings{Port: 1111, ControllerPort: 2222, LogDir: "/data"})
	sasl := serverProperties(brokerSettings{Port: 1111, ControllerPort: 2222, LogDir: "/data", SASL: true,
		KeystoreFile: "/k.pem", TruststoreFile: "/ca.pem", AdminUser: "admin", AdminPassword: "s3cret"})
	tests := []struct {
		name, props string
		want        []string
		notWant     []string
	}{
		{"plaintext", plain, []string{
			"process.roles=broker,controller",
			"node.id=1",
			"controller.quorum.bootstrap.servers=127.0.0.1:2222",
			"listeners=PLAINTEXT://127.0.0.1:1111,CONTROLLER://127.0.0.1:2222",
			"advertised.listeners=PLAINTEXT://127.0.0.1:1111,CONTROLLER://127.0.0.1:2222",
			"listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
			"inter.broker.listener.name=PLAINTEXT",
			"log.dirs=/data",
			"offsets.topic.replication.factor=1",
			"transaction.state.log.min.isr=1",
			"share.coordinator.state.topic.min.isr=1",
			"group.initial.rebalance.delay.ms=0",
		}, []string{"SASL", "ssl."}},
		{"sasl", sasl, []string{
			"listeners=SASL_SSL://127.0.0.1:1111,CONTROLLER://127.0.0.1:2222",
			"listener.security.protocol.map=CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL",
			"inter.broker.listener.name=SASL_SSL",
			"sasl.enabled.mechanisms=SCRAM-SHA-512",
			"sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512",
			`listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="s3cret";`,
			"ssl.keystore.type=PEM",
			"ssl.keystore.location=/k.pem",
			"ssl.truststore.type=PEM",
			"ssl.truststore.location=/ca.pem",
		}, []string{"PLAINTEXT://"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lines := map[string]bool{}
			for _, l := range strings.Split(tt.props, "\n") {
				lines[l] = true
			}
			for _, w := range tt.want {
				if !lines[w] {
					t.Errorf("server.properties lacks line %q:\n%s", w, tt.props)
				}
			}
			for _, nw := range tt.notWant {
				if strings.Contains(tt.props, nw) {
					t.Errorf("server.properties contains %q:\n%s", nw, tt.props)
				}
			}
		})
	}
}

func TestKafkaUUID(t *testing.T) {
	seen := map[string]bool{}
	for range 200 {
		id := kafkaUUID()
		b, err := base64.RawURLEncoding.DecodeString(id)
		if err != nil || len(b) != 16 {
			t.Fatalf("kafkaUUID() = %q: decodes to %d bytes (%v), want 16", id, len(b), err)
		}
		if id[0] == '-' {
			t.Fatalf("kafkaUUID() = %q starts with '-'", id)
		}
		if seen[id] {
			t.Fatalf("kafkaUUID() repeated %q", id)
		}
		seen[id] = true
	}
}

func TestGenerateCerts(t *testing.T) {
	c, err := GenerateCerts(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(c.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		t.Fatal("CA file holds no certificate")
	}
	ks, err := os.ReadFile(c.ServerKeystoreFile)
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	var leaf *x509.Certificate
	for rest := ks; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		types = append(types, b.Type)
		if b.Type == "PRIVATE KEY" {
			if _, err := x509.ParsePKCS8PrivateKey(b.Bytes); err != nil {
				t.Errorf("keystore key is not PKCS#8: %v", err)
			}
		}
		if b.Type == "CERTIFICATE" && leaf == nil {
			if leaf, err = x509.ParseCertificate(b.Bytes); err != nil {
				t.Fatal(err)
			}
		}
	}
	if got, want := strings.Join(types, ","), "PRIVATE KEY,CERTIFICATE,CERTIFICATE"; got != want {
		t.Errorf("keystore blocks = %s, want %s", got, want)
	}
	for _, name := range []string{"127.0.0.1", "localhost", "::1"} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: name}); err != nil {
			t.Errorf("server certificate does not verify for %s: %v", name, err)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: "example.com"}); err == nil {
		t.Error("server certificate verifies for example.com, want an error")
	}
	if c.Server == nil || len(c.Server.Certificates) != 1 {
		t.Errorf("Server TLS config has no certificate")
	}
}

// countRecords returns the number of records in topic from the end minus
// first offsets.
func countRecords(t *testing.T, cfg kafkax.Config, topic string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	offs, err := kafkax.ListOffsets(ctx, cfg, topic)
	if err != nil {
		t.Fatalf("list offsets: %v", err)
	}
	return offs.Total()
}

func produce(t *testing.T, cfg kafkax.Config, topic string, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := kafkax.EnsureTopics(ctx, cfg, kafkax.TopicSpec{Name: topic, Partitions: 3, ReplicationFactor: 1}); err != nil {
		t.Fatalf("ensure topics: %v", err)
	}
	w, err := kafkax.NewWriter(cfg, topic, kafkax.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	msgs := make([]kafka.Message, n)
	for i := range msgs {
		msgs[i] = kafka.Message{Key: fmt.Appendf(nil, "k%d", i%17), Value: fmt.Appendf(nil, "v%d", i)}
	}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatalf("write: %v", cfg.Explain(err))
	}
	if err := w.Close(); err != nil {
		t.Fatalf("close writer: %v", err)
	}
}

// TestLifecycle checks that records survive Restart, Kill + StartAgain on
// the same port, and a new Start on the same DataDir.
func TestLifecycle(t *testing.T) {
	c := Start(t, Options{})
	if c.Kind() != Mode() && !(Mode() == "" && c.Kind() == KindEmbedded) {
		t.Errorf("Kind() = %q with %s=%q", c.Kind(), EnvMode, Mode())
	}
	cfg := c.Config()
	addr := c.Addr()
	const topic, n = "lifecycle", 300
	produce(t, cfg, topic, n)

	c.Restart(t)
	if got := c.Addr(); got != addr {
		t.Errorf("address after Restart = %s, want %s", got, addr)
	}
	if got := countRecords(t, cfg, topic); got != n {
		t.Errorf("records after Restart = %d, want %d", got, n)
	}
	produce(t, cfg, topic, n)

	c.Kill(t)
	c.StartAgain(t)
	if got := countRecords(t, cfg, topic); got != 2*n {
		t.Errorf("records after Kill and StartAgain = %d, want %d", got, 2*n)
	}

	c.Close()
	c2 := Start(t, Options{DataDir: c.DataDir()})
	if got := countRecords(t, c2.Config(), topic); got != 2*n {
		t.Errorf("records after a new Start on the same DataDir = %d, want %d", got, 2*n)
	}
}

// TestSASL checks the SASL_SSL/SCRAM-SHA-512 listener: the right password
// works, the wrong one is refused as kafkax.ErrAuth, and no password shows
// in errors or the broker log.
func TestSASL(t *testing.T) {
	c := Start(t, Options{SASL: true})
	cfg := c.Config()
	if !cfg.TLS.Enable || cfg.TLS.CAFile == "" || cfg.SASL.Mechanism != "SCRAM-SHA-512" {
		t.Fatalf("Config() = %v, want TLS with a CA file and SCRAM-SHA-512", cfg)
	}
	produce(t, cfg, "sasl", 10)
	if got := countRecords(t, cfg, "sasl"); got != 10 {
		t.Errorf("records = %d, want 10", got)
	}

	wrong := c.WrongPassword()
	if wrong.SASL.Password == cfg.SASL.Password {
		t.Fatal("WrongPassword() has the right password")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, err := kafkax.Partitions(ctx, wrong, "sasl")
	if err == nil {
		t.Fatal("metadata with the wrong password succeeded")
	}
	if !errors.Is(err, kafkax.ErrAuth) {
		t.Errorf("error with the wrong password = %v, want one matching kafkax.ErrAuth", err)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("wrong password ran into the deadline instead of failing: %v", err)
	}
	for _, pw := range []string{cfg.SASL.Password, wrong.SASL.Password} {
		if strings.Contains(err.Error(), pw) {
			t.Errorf("error text contains a password: %v", err)
		}
	}
	if c.Kind() == KindReal {
		c.Stop(t) // flush the log file
		b, err := os.ReadFile(c.LogFile())
		if err != nil {
			t.Fatal(err)
		}
		if len(b) == 0 {
			t.Fatal("broker log is empty")
		}
		for _, pw := range []string{c.password, c.wrongPassword, c.adminPassword} {
			if strings.Contains(string(b), pw) {
				t.Errorf("broker log %s contains a password", c.LogFile())
			}
		}
	}
}
