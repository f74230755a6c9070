package kafkax

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// Readers are built on franz-go's kgo client: kafka-go delivers the control
// records of transactions (commit and abort markers) as messages and does
// not filter aborted records under read_committed (kafka-go issue #1332),
// so every reader that must keep the read_committed promise fetches through
// kgo. Writers and admin requests stay on kafka-go.

// KgoOptions returns franz-go client options with the connection settings
// applied: seed brokers, client id, dial timeout, TLS and SASL, the kgo
// counterpart of Transport and Dialer. kgo's own log lines go to log: its
// errors as warnings, the rest at debug level. Fetched lz4 batches are
// decompressed without a 4 MiB buffer each (see decompressor).
func (c Config) KgoOptions(log zerolog.Logger) ([]kgo.Opt, error) {
	c, tc, _, err := c.security()
	if err != nil {
		return nil, err
	}
	mech, err := c.kgoMechanism()
	if err != nil {
		return nil, err
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(c.Brokers...),
		kgo.ClientID(c.ClientID),
		kgo.DialTimeout(c.DialTimeout),
		kgo.WithLogger(kgoLogger{log}),
		kgo.WithDecompressor(newDecompressor()),
	}
	if tc != nil {
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	if mech != nil {
		opts = append(opts, kgo.SASL(mech))
	}
	return opts, nil
}

// kgoMechanism returns the franz-go SASL mechanism of c (nil for none).
func (c Config) kgoMechanism() (sasl.Mechanism, error) {
	switch strings.ToUpper(c.SASL.Mechanism) {
	case "":
		return nil, nil
	case "PLAIN":
		return plain.Auth{User: c.SASL.Username, Pass: c.SASL.Password}.AsMechanism(), nil
	case "SCRAM-SHA-256":
		return scram.Auth{User: c.SASL.Username, Pass: c.SASL.Password}.AsSha256Mechanism(), nil
	case "SCRAM-SHA-512":
		return scram.Auth{User: c.SASL.Username, Pass: c.SASL.Password}.AsSha512Mechanism(), nil
	}
	return nil, fmt.Errorf("sasl: unknown mechanism %q", c.SASL.Mechanism)
}

// saslWatch is a kgo hook that notices a refused SASL credential on a
// broker that refuses it by closing the connection (the embedded broker
// does; Apache Kafka answers SASL_AUTHENTICATION_FAILED, which kgo returns
// as such): two reads of a SaslAuthenticate response that fail with no
// request answered on an authenticated connection in between.
// kgo retries such a connection failure like any other, so the hook
// cancels ctx with the *AuthError as its cause, and the reader's look-ups
// and reads watch ctx.
type saslWatch struct {
	fails  atomic.Int32
	ctx    context.Context
	cancel context.CancelCauseFunc
	cfg    Config
}

func newSASLWatch(cfg Config) *saslWatch {
	ctx, cancel := context.WithCancelCause(context.Background())
	return &saslWatch{ctx: ctx, cancel: cancel, cfg: cfg}
}

// API keys of the requests of a connection's set-up.
const (
	saslHandshakeKey    = 17
	apiVersionsKey      = 18
	saslAuthenticateKey = 36
)

// OnBrokerRead implements kgo.HookBrokerRead.
func (w *saslWatch) OnBrokerRead(_ kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	switch {
	case key == saslHandshakeKey || key == apiVersionsKey:
		return
	case key != saslAuthenticateKey:
		if err == nil {
			w.fails.Store(0) // answered on an authenticated connection
		}
		return
	case err == nil:
		return
	}
	if w.fails.Add(1) >= 2 {
		w.cancel(&AuthError{Mechanism: strings.ToUpper(w.cfg.SASL.Mechanism), Username: w.cfg.SASL.Username,
			Err: fmt.Errorf("the broker closed the connection during SASL authentication: %w", err)})
	}
}

// OnBrokerConnect implements kgo.HookBrokerConnect: a connection whose
// set-up failed with an error code of a refused credential (Apache Kafka
// answers SASL_AUTHENTICATION_FAILED) is a refusal at once. kgo retries
// it like any connection failure, and a consumer group does not surface
// it to Poll.
func (w *saslWatch) OnBrokerConnect(_ kgo.BrokerMetadata, _ time.Duration, _ net.Conn, err error) {
	if err == nil {
		return
	}
	if ae, ok := errors.AsType[*AuthError](w.cfg.classify(err, "")); ok {
		w.cancel(ae)
	}
}

// refused returns the *AuthError once the credential was refused, else nil.
func (w *saslWatch) refused() error {
	if w == nil || w.ctx.Err() == nil {
		return nil
	}
	return context.Cause(w.ctx)
}

// kgoLogger adapts a zerolog.Logger to kgo.Logger: kgo's errors become
// warnings, its warnings and information debug lines.
type kgoLogger struct{ log zerolog.Logger }

// Level asks kgo for information lines only when the logger keeps debug
// lines (kgo's debug level logs every request).
func (l kgoLogger) Level() kgo.LogLevel {
	if l.log.GetLevel() <= zerolog.DebugLevel {
		return kgo.LogLevelInfo
	}
	return kgo.LogLevelError
}

// Log writes one kgo line with its key/value pairs as fields.
func (l kgoLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	ev := l.log.Debug()
	if level == kgo.LogLevelError {
		ev = l.log.Warn()
	}
	if ev == nil {
		return
	}
	ev = ev.Str("component", "kgo")
	for i := 0; i+1 < len(keyvals); i += 2 {
		k, _ := keyvals[i].(string)
		ev = ev.Interface(k, keyvals[i+1])
	}
	ev.Msg(msg)
}
