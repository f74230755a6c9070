package kafkax

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
)

// ErrAuth marks an authentication or authorisation failure: retrying with
// the same credentials cannot succeed, so callers stop instead of retrying.
var ErrAuth = errors.New("kafka authentication failed")

// AuthError is an authentication failure with the context needed to fix it.
// It never holds the password.
type AuthError struct {
	// Mechanism and Username are the credential that was refused.
	Mechanism, Username string
	// Err is the client error as reported.
	Err error
}

func (e *AuthError) Error() string {
	return fmt.Sprintf("kafka authentication failed (sasl %s, user %q): check the username and password: %v", e.Mechanism, e.Username, e.Err)
}

// Unwrap returns ErrAuth and the underlying error.
func (e *AuthError) Unwrap() []error { return []error{ErrAuth, e.Err} }

// Explain turns client errors that hide their cause into ones that say it.
// kafka-go reports a refused SASL credential as "unexpected EOF" (the broker
// closes the connection); with SASL configured that becomes an *AuthError.
func (c Config) Explain(err error) error {
	if err == nil {
		return nil
	}
	var ae *AuthError
	if errors.As(err, &ae) {
		return err
	}
	authCode := errors.Is(err, kafka.SASLAuthenticationFailed) ||
		errors.Is(err, kafka.TopicAuthorizationFailed) ||
		errors.Is(err, kafka.GroupAuthorizationFailed) ||
		errors.Is(err, kafka.ClusterAuthorizationFailed) ||
		errors.Is(err, kafka.IllegalSASLState) ||
		errors.Is(err, kafka.UnsupportedSASLMechanism)
	eof := errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		strings.Contains(err.Error(), "SASL") && strings.Contains(err.Error(), "EOF")
	if authCode || (c.SASL.Mechanism != "" && eof) {
		return &AuthError{Mechanism: strings.ToUpper(c.SASL.Mechanism), Username: c.SASL.Username, Err: err}
	}
	return err
}

// Backoff is an exponential backoff with full jitter.
type Backoff struct {
	// Initial is the first delay. Default 100 ms.
	Initial time.Duration
	// Max caps the delay. Default 10 s.
	Max     time.Duration
	attempt int
}

// Next returns the delay before the next attempt and advances the state.
func (b *Backoff) Next() time.Duration {
	initial, maxd := b.Initial, b.Max
	if initial == 0 {
		initial = 100 * time.Millisecond
	}
	if maxd == 0 {
		maxd = 10 * time.Second
	}
	d := initial << min(b.attempt, 20)
	if d > maxd || d <= 0 {
		d = maxd
	}
	b.attempt++
	return d/2 + rand.N(d/2+1)
}

// Reset starts the sequence again after a success.
func (b *Backoff) Reset() { b.attempt = 0 }

// Retry calls fn until it succeeds, ctx ends, or fn returns an error that
// retrying cannot fix (ErrAuth, context errors, or one wrapped by
// Permanent). Each failure is logged with the attempt and the wait.
func Retry(ctx context.Context, log zerolog.Logger, op string, fn func(context.Context) error) error {
	var b Backoff
	for attempt := 1; ; attempt++ {
		err := fn(ctx)
		if err == nil {
			return nil
		}
		if errors.Is(err, ErrAuth) || errors.Is(err, errPermanent) {
			return err
		}
		if ctx.Err() != nil {
			// Say that ctx ended whether or not fn's error does.
			if errors.Is(err, ctx.Err()) {
				return err
			}
			return fmt.Errorf("%s: %w (last error: %v)", op, ctx.Err(), err)
		}
		wait := b.Next()
		log.Warn().Err(err).Str("op", op).Int("attempt", attempt).Dur("retry_in", wait).Msg("kafka operation failed, retrying")
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w (last error: %v)", op, ctx.Err(), err)
		case <-time.After(wait):
		}
	}
}

var errPermanent = errors.New("permanent")

type permanentError struct{ err error }

func (p permanentError) Error() string   { return p.err.Error() }
func (p permanentError) Unwrap() []error { return []error{p.err, errPermanent} }

// Permanent marks err so that Retry returns it at once.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}
