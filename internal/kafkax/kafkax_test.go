package kafkax_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aelp/aelp/internal/kafkax"
	"github.com/aelp/aelp/internal/kafkax/kafkaxtest"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kerr"
)

func TestDeadLetter(t *testing.T) {
	tests := []struct {
		name   string
		in     kafka.Message
		reason string
	}{
		{"no headers", kafka.Message{Topic: "t", Partition: 3, Offset: 42, Key: []byte("k"), Value: []byte("v")}, "bad"},
		{"keeps headers", kafka.Message{Topic: "aelp.experiences.raw", Partition: 0, Offset: 0, Value: []byte{0},
			Headers: []kafka.Header{{Key: "a", Value: []byte("1")}, {Key: "b", Value: []byte("2")}}}, "decode: short"},
		{"nil key and value", kafka.Message{Topic: "x", Partition: 11, Offset: 1 << 40}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inHeaders := slices.Clone(tt.in.Headers)
			got := kafkax.DeadLetter(tt.in, tt.reason)
			if string(got.Key) != string(tt.in.Key) || string(got.Value) != string(tt.in.Value) {
				t.Errorf("key/value = %q/%q, want %q/%q", got.Key, got.Value, tt.in.Key, tt.in.Value)
			}
			if got.Topic != "" || got.Partition != 0 || got.Offset != 0 {
				t.Errorf("dead letter carries topic/partition/offset %q/%d/%d; the writer sets the topic", got.Topic, got.Partition, got.Offset)
			}
			want := append(slices.Clone(inHeaders),
				kafka.Header{Key: kafkax.HeaderError, Value: []byte(tt.reason)},
				kafka.Header{Key: kafkax.HeaderSourceTopic, Value: []byte(tt.in.Topic)},
				kafka.Header{Key: kafkax.HeaderSourcePartition, Value: []byte(fmt.Sprint(tt.in.Partition))},
				kafka.Header{Key: kafkax.HeaderSourceOffset, Value: []byte(fmt.Sprint(tt.in.Offset))},
			)
			if len(got.Headers) != len(want) {
				t.Fatalf("headers = %v, want %v", got.Headers, want)
			}
			for i := range want {
				if got.Headers[i].Key != want[i].Key || string(got.Headers[i].Value) != string(want[i].Value) {
					t.Errorf("header %d = %s=%q, want %s=%q", i, got.Headers[i].Key, got.Headers[i].Value, want[i].Key, want[i].Value)
				}
			}
			if !slices.EqualFunc(tt.in.Headers, inHeaders, func(a, b kafka.Header) bool { return a.Key == b.Key && string(a.Value) == string(b.Value) }) {
				t.Errorf("input headers changed to %v", tt.in.Headers)
			}
		})
	}
}

func TestDeadLetterDoesNotAliasInput(t *testing.T) {
	in := kafka.Message{Topic: "t", Headers: make([]kafka.Header, 1, 8)}
	in.Headers[0] = kafka.Header{Key: "a", Value: []byte("1")}
	_ = kafkax.DeadLetter(in, "r1")
	spare := in.Headers[:2]
	if spare[1].Key != "" {
		t.Errorf("DeadLetter wrote into the input's spare capacity: %v", spare)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     kafkax.Config
		wantErr string
	}{
		{"zero value", kafkax.Config{}, ""},
		{"brokers", kafkax.Config{Brokers: []string{"a:1", "127.0.0.1:9092"}}, ""},
		{"no port", kafkax.Config{Brokers: []string{"localhost"}}, "broker address"},
		{"cert without key", kafkax.Config{TLS: kafkax.TLSConfig{CertFile: "c.pem"}}, "together"},
		{"user without mechanism", kafkax.Config{SASL: kafkax.SASLConfig{Username: "u"}}, "no mechanism"},
		{"scram without user", kafkax.Config{SASL: kafkax.SASLConfig{Mechanism: "SCRAM-SHA-512"}}, "username is empty"},
		{"lower-case mechanism", kafkax.Config{SASL: kafkax.SASLConfig{Mechanism: "scram-sha-256", Username: "u"}}, ""},
		{"plain", kafkax.Config{SASL: kafkax.SASLConfig{Mechanism: "PLAIN", Username: "u", Password: "p"}}, ""},
		{"unknown mechanism", kafkax.Config{SASL: kafkax.SASLConfig{Mechanism: "GSSAPI", Username: "u"}}, "unknown mechanism"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kafkaxtest.WantError(t, "Validate()", tt.cfg.Validate(), tt.wantErr)
		})
	}
}

func TestConfigDefaultsAndString(t *testing.T) {
	got := kafkax.Config{TLS: kafkax.TLSConfig{CAFile: "ca.pem"}}.WithDefaults()
	if !slices.Equal(got.Brokers, []string{"127.0.0.1:9092"}) || got.ClientID != "aelp" || got.DialTimeout != 10*time.Second || !got.TLS.Enable {
		t.Errorf("WithDefaults() = %+v, want brokers 127.0.0.1:9092, client id aelp, 10 s dial timeout, TLS on (CA file set)", got)
	}
	cfg := kafkax.Config{Brokers: []string{"b:1"}, TLS: kafkax.TLSConfig{Enable: true},
		SASL: kafkax.SASLConfig{Mechanism: "scram-sha-512", Username: "alice", Password: "hunter2"}}
	s := cfg.String()
	if want := "b:1 tls sasl=SCRAM-SHA-512 user=alice"; s != want {
		t.Errorf("String() = %q, want %q", s, want)
	}
	if strings.Contains(fmt.Sprint(cfg), "hunter2") || strings.Contains(fmt.Sprintf("%v", cfg), "hunter2") {
		t.Error("formatting a Config shows the password")
	}
}

func TestTransportAndDialer(t *testing.T) {
	if _, err := (kafkax.Config{TLS: kafkax.TLSConfig{CAFile: "/no/such/ca.pem"}}).Transport(); err == nil {
		t.Error("Transport with a missing CA file succeeded")
	}
	if _, err := (kafkax.Config{SASL: kafkax.SASLConfig{Mechanism: "X"}}).Dialer(); err == nil {
		t.Error("Dialer with an unknown mechanism succeeded")
	}
	for _, mech := range []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"} {
		cfg := kafkax.Config{SASL: kafkax.SASLConfig{Mechanism: mech, Username: "u", Password: "p"}}
		tr, err := cfg.Transport()
		if err != nil || tr.SASL == nil || tr.SASL.Name() != mech {
			t.Errorf("%s: Transport() = %v, %v; want a %s mechanism", mech, tr, err, mech)
		}
		d, err := cfg.Dialer()
		if err != nil || d.SASLMechanism == nil || d.SASLMechanism.Name() != mech {
			t.Errorf("%s: Dialer() = %v, %v; want a %s mechanism", mech, d, err, mech)
		}
	}
}

func TestExplain(t *testing.T) {
	// No broker listens on port 1: the probe of a cut connection finds an
	// outage, not a refused handshake.
	sasl := kafkax.Config{Brokers: []string{"127.0.0.1:1"}, SASL: kafkax.SASLConfig{Mechanism: "scram-sha-512", Username: "bob", Password: "pw-123"}}
	plain := kafkax.Config{}
	other := errors.New("connection refused")
	tests := []struct {
		name     string
		cfg      kafkax.Config
		err      error
		wantAuth bool
	}{
		{"nil", sasl, nil, false},
		{"eof with sasl, brokers down", sasl, fmt.Errorf("write: %w", io.ErrUnexpectedEOF), false},
		{"reset with sasl, brokers down", sasl, fmt.Errorf("read: %w", syscall.ECONNRESET), false},
		{"eof without sasl", plain, io.ErrUnexpectedEOF, false},
		{"sasl failed code", plain, fmt.Errorf("x: %w", kafka.SASLAuthenticationFailed), true},
		{"sasl failed code of kgo", plain, fmt.Errorf("x: %w", kerr.SaslAuthenticationFailed), true},
		{"topic authorization", sasl, kafka.TopicAuthorizationFailed, true},
		{"group authorization of kgo", sasl, kerr.GroupAuthorizationFailed, true},
		{"authorization in write errors", plain, kafka.WriteErrors{nil, kafka.TopicAuthorizationFailed}, true},
		{"eof in write errors with sasl, brokers down", sasl, kafka.WriteErrors{nil, io.ErrUnexpectedEOF}, false},
		{"write errors without a code", plain, kafka.WriteErrors{other, nil}, false},
		{"other error with sasl", sasl, other, false},
		{"already explained", sasl, &kafkax.AuthError{Mechanism: "PLAIN", Username: "x", Err: other}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.cfg.Explain(tt.err)
			if tt.err == nil {
				if got != nil {
					t.Fatalf("Explain(nil) = %v", got)
				}
				return
			}
			if errors.Is(got, kafkax.ErrAuth) != tt.wantAuth {
				t.Errorf("Explain(%v) = %v: matches ErrAuth %v, want %v", tt.err, got, !tt.wantAuth, tt.wantAuth)
			}
			wraps := errors.Is(got, tt.err)
			if _, ok := tt.err.(kafka.WriteErrors); ok { // a slice: errors.Is cannot compare it
				_, wraps = errors.AsType[kafka.WriteErrors](got)
			}
			if !wraps {
				t.Errorf("Explain(%v) = %v no longer wraps the original error", tt.err, got)
			}
			if strings.Contains(got.Error(), "pw-123") {
				t.Errorf("Explain(%v) = %q shows the password", tt.err, got)
			}
		})
	}
	var ae *kafkax.AuthError
	if err := sasl.Explain(kafka.SASLAuthenticationFailed); !errors.As(err, &ae) || ae.Username != "bob" || ae.Mechanism != "SCRAM-SHA-512" {
		t.Errorf("Explain(SASLAuthenticationFailed) = %#v, want an *AuthError for SCRAM-SHA-512 user bob", err)
	}
	var aze *kafkax.AuthorizationError
	err := sasl.Explain(kafka.GroupAuthorizationFailed)
	if !errors.As(err, &aze) || !errors.Is(err, kafkax.ErrAuthorization) || errors.As(err, &ae) {
		t.Fatalf("Explain(GroupAuthorizationFailed) = %#v, want an *AuthorizationError and no *AuthError", err)
	}
	if msg := err.Error(); !strings.Contains(msg, `user "bob"`) || !strings.Contains(msg, "consumer group") || !strings.Contains(msg, "ACL") {
		t.Errorf("Explain(GroupAuthorizationFailed) = %q, want the user, the group operation and the ACLs named", msg)
	}
}

// TestRetryEOFUnderSASL: with SASL configured, a cut connection (EOF) is
// retried when no broker refuses the handshake (here: none answers).
func TestRetryEOFUnderSASL(t *testing.T) {
	cfg := kafkax.Config{Brokers: []string{"127.0.0.1:1"}, SASL: kafkax.SASLConfig{Mechanism: "PLAIN", Username: "u", Password: "p"}}
	calls := 0
	err := kafkax.Retry(context.Background(), zerolog.Nop(), "op", func(ctx context.Context) error {
		calls++
		if calls < 3 {
			return cfg.ExplainContext(ctx, fmt.Errorf("fetch: %w", io.EOF))
		}
		return nil
	})
	if err != nil || calls != 3 {
		t.Errorf("Retry() = %v after %d calls, want success after 3 (an EOF under SASL retried)", err, calls)
	}
}

func TestBackoff(t *testing.T) {
	b := kafkax.Backoff{Initial: 10 * time.Millisecond, Max: 80 * time.Millisecond}
	// Attempt i waits in [d/2, d] with d = min(Initial<<i, Max).
	for i, d := range []time.Duration{10, 20, 40, 80, 80, 80} {
		d *= time.Millisecond
		for range 50 {
			bb := b // same attempt, new draw
			if got := bb.Next(); got < d/2 || got > d {
				t.Fatalf("attempt %d: Next() = %v, want within [%v, %v]", i, got, d/2, d)
			}
		}
		b.Next()
	}
	b.Reset()
	if got := b.Next(); got > 10*time.Millisecond {
		t.Errorf("after Reset, Next() = %v, want at most 10ms", got)
	}
}

func TestRetry(t *testing.T) {
	transient := errors.New("leader not available")
	tests := []struct {
		name      string
		errs      []error // returned by successive calls; nil = success
		wantCalls int
		wantErr   error
	}{
		{"success", []error{nil}, 1, nil},
		{"transient then success", []error{transient, transient, nil}, 3, nil},
		{"auth stops", []error{&kafkax.AuthError{Err: io.EOF}, nil}, 1, kafkax.ErrAuth},
		{"permanent stops", []error{kafkax.Permanent(transient), nil}, 1, transient},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			err := kafkax.Retry(context.Background(), zerolog.Nop(), "op", func(context.Context) error {
				e := tt.errs[calls]
				calls++
				return e
			})
			if calls != tt.wantCalls {
				t.Errorf("calls = %d, want %d", calls, tt.wantCalls)
			}
			if (tt.wantErr == nil) != (err == nil) || (tt.wantErr != nil && !errors.Is(err, tt.wantErr)) {
				t.Errorf("Retry() = %v, want %v", err, tt.wantErr)
			}
		})
	}
	if kafkax.Permanent(nil) != nil {
		t.Error("Permanent(nil) != nil")
	}
}

func TestRetryStopsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	err := kafkax.Retry(ctx, zerolog.Nop(), "op", func(context.Context) error {
		calls++
		if calls == 2 {
			cancel()
		}
		return errors.New("broker down")
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Retry() = %v, want context.Canceled", err)
	}
	if calls != 2 {
		t.Errorf("calls = %d, want 2", calls)
	}
}
