package kafkax

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ErrAuth marks a failure that retrying with the same credentials cannot
// fix: the broker refused the SASL credential (*AuthError) or its ACLs deny
// the user an operation (*AuthorizationError). Callers stop instead of
// retrying.
var ErrAuth = errors.New("kafka authentication failed")

// ErrAuthorization marks an *AuthorizationError (it also matches ErrAuth).
var ErrAuthorization = errors.New("kafka authorization failed")

// AuthError is a refused SASL handshake with the context needed to fix
// it. It never holds the password.
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

// AuthorizationError is an operation the broker's ACLs deny the client:
// a *_AUTHORIZATION_FAILED error code. The credential was accepted;
// retrying cannot help until an administrator grants the operation.
type AuthorizationError struct {
	// Username is the SASL user ("" without SASL: the principal is then
	// the TLS certificate's or ANONYMOUS).
	Username string
	// Action is what was denied, e.g. `read topic "aelp.experiences.raw"`.
	Action string
	// Err is the client error as reported.
	Err error
}

func (e *AuthorizationError) Error() string {
	who := "the client"
	if e.Username != "" {
		who = fmt.Sprintf("user %q", e.Username)
	}
	return fmt.Sprintf("kafka authorization failed: %s may not %s: check the ACLs: %v", who, e.Action, e.Err)
}

// Unwrap returns ErrAuth, ErrAuthorization and the underlying error.
func (e *AuthorizationError) Unwrap() []error { return []error{ErrAuth, ErrAuthorization, e.Err} }

// Kafka error codes of refused credentials and denied operations.
const (
	codeTopicAuthorization    = 29
	codeGroupAuthorization    = 30
	codeClusterAuthorization  = 31
	codeUnsupportedSASL       = 33
	codeIllegalSASLState      = 34
	codeTxnIDAuthorization    = 53
	codeSASLAuthentication    = 58
	codeDelegationTokenAuthzn = 65
)

// deniedAction names what an authorization code denies when the caller
// does not say it more precisely.
func deniedAction(code int16) string {
	switch code {
	case codeTopicAuthorization:
		return "access one of the topics it uses"
	case codeGroupAuthorization:
		return "use its consumer group"
	case codeClusterAuthorization:
		return "perform a cluster operation (such as creating topics)"
	case codeTxnIDAuthorization:
		return "use its transactional id"
	}
	return "use a delegation token"
}

// errorCodes returns the Kafka error codes in err's chain, of kafka-go
// (kafka.Error, and each error of kafka.WriteErrors, which does not unwrap)
// and of kgo (*kerr.Error).
func errorCodes(err error) []int16 {
	var codes []int16
	var walk func(error)
	walk = func(err error) {
		if err == nil {
			return
		}
		if ws, ok := errors.AsType[kafka.WriteErrors](err); ok {
			for _, e := range ws {
				walk(e)
			}
		}
		if ke, ok := errors.AsType[kafka.Error](err); ok {
			codes = append(codes, int16(ke))
		}
		if ke, ok := errors.AsType[*kerr.Error](err); ok {
			codes = append(codes, ke.Code)
		}
	}
	walk(err)
	return codes
}

// classify turns an error code of a refused credential into an *AuthError
// and one of a denied operation into an *AuthorizationError naming action
// (the code's generic description when action is ""); other errors are
// returned as they are.
func (c Config) classify(err error, action string) error {
	if err == nil {
		return nil
	}
	if _, ok := errors.AsType[*AuthError](err); ok {
		return err
	}
	if _, ok := errors.AsType[*AuthorizationError](err); ok {
		return err
	}
	for _, code := range errorCodes(err) {
		switch code {
		case codeSASLAuthentication, codeIllegalSASLState, codeUnsupportedSASL:
			return &AuthError{Mechanism: strings.ToUpper(c.SASL.Mechanism), Username: c.SASL.Username, Err: err}
		case codeTopicAuthorization, codeGroupAuthorization, codeClusterAuthorization, codeTxnIDAuthorization, codeDelegationTokenAuthzn:
			if action == "" {
				action = deniedAction(code)
			}
			return &AuthorizationError{Username: c.SASL.Username, Action: action, Err: err}
		}
	}
	return err
}

// explainKgo is Explain for errors of the kgo client. kgo reports a
// refused SASL handshake as SASL_AUTHENTICATION_FAILED (or, on a broker
// that closes the connection instead, through saslWatch), so an EOF is a
// cut connection there and stays a transient error.
func (c Config) explainKgo(err error) error { return c.classify(err, "") }

// Explain is ExplainContext with a context that only the probe's own
// bound (DialTimeout) ends.
func (c Config) Explain(err error) error { return c.ExplainContext(context.Background(), err) }

// ExplainContext turns client errors that hide their cause into ones that
// say it: error codes of a refused credential become an *AuthError, those
// of an operation the ACLs deny an *AuthorizationError; both match ErrAuth
// and keep err in their chain.
//
// kafka-go reports a connection closed by the broker as an EOF whether the
// broker refused the SASL handshake (the embedded broker closes the
// connection instead of answering) or went down after a successful one (a
// restart): the error alone cannot tell. With SASL configured, a connection
// error of that kind (EOF, reset, broken pipe) is checked by opening a new
// connection: it becomes an *AuthError only when that connection's SASL
// handshake is refused; when the new connection authenticates, or no broker
// answers (an outage), err is returned as it is, a transient error. ctx
// ends the check early.
func (c Config) ExplainContext(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	// classify only ever turns err into an error matching ErrAuth (err may
	// be a kafka.WriteErrors, a slice: it cannot be compared with !=).
	if cerr := c.classify(err, ""); errors.Is(cerr, ErrAuth) {
		return cerr
	}
	if c.SASL.Mechanism == "" || !connectionCut(err) {
		return err
	}
	if refusal := c.saslRefused(ctx); refusal != nil {
		if ae, ok := errors.AsType[*AuthError](refusal); ok {
			refusal = ae.Err // the credential is said once, by the error made here
		}
		return &AuthError{Mechanism: strings.ToUpper(c.SASL.Mechanism), Username: c.SASL.Username,
			Err: fmt.Errorf("%w (a new connection's SASL handshake: %v)", err, refusal)}
	}
	return err
}

// connectionCut reports whether err is a connection the peer closed or
// reset, in err's chain or in one error of a kafka.WriteErrors.
func connectionCut(err error) bool {
	if ws, ok := errors.AsType[kafka.WriteErrors](err); ok {
		for _, e := range ws {
			if e != nil && connectionCut(e) {
				return true
			}
		}
	}
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		err != nil && strings.HasSuffix(err.Error(), "EOF") // kafka-go flattens some errors into text
}

// saslRefused opens one new client connection (TLS and SASL as configured)
// and returns the broker's refusal of its SASL handshake: an error code,
// or the connection closed during the handshake twice in a row (saslWatch:
// one cut handshake may be a restart, a broker that refuses closes every
// one). It returns nil when the connection authenticates, when no broker
// can be dialled, or when DialTimeout passes or ctx ends first.
func (c Config) saslRefused(ctx context.Context) error {
	c = c.WithDefaults()
	opts, err := c.KgoOptions(zerolog.Nop())
	if err != nil {
		return nil
	}
	pctx, cancel := context.WithTimeout(ctx, c.DialTimeout)
	defer cancel()
	watch := newSASLWatch(c)
	stop := context.AfterFunc(watch.ctx, cancel)
	defer stop()
	unreachable := &dialWatch{brokers: len(c.Brokers), cancel: cancel}
	cl, err := kgo.NewClient(append(opts, kgo.WithHooks(watch, unreachable))...)
	if err != nil {
		return nil
	}
	defer cl.Close()
	req := kmsg.NewPtrMetadataRequest()
	req.Topics = []kmsg.MetadataRequestTopic{} // none: the handshake is the point
	_, err = req.RequestWith(pctx, cl)
	if refusal := watch.refused(); refusal != nil {
		return refusal
	}
	if _, ok := errors.AsType[*AuthError](c.classify(err, "")); ok {
		return err
	}
	return nil
}

// dialWatch is a kgo hook that cancels a probe once every broker failed to
// be dialled: no broker answering is an outage, not a refusal.
type dialWatch struct {
	mu      sync.Mutex
	failed  map[string]bool
	brokers int
	cancel  context.CancelFunc
}

// OnBrokerConnect implements kgo.HookBrokerConnect. kgo calls it after the
// connection's set-up too (API versions, SASL), with the connection and the
// set-up's error: only a failed dial (no connection) counts here, a cut
// handshake is saslWatch's.
func (d *dialWatch) OnBrokerConnect(meta kgo.BrokerMetadata, _ time.Duration, conn net.Conn, err error) {
	if err == nil || conn != nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.failed == nil {
		d.failed = map[string]bool{}
	}
	d.failed[net.JoinHostPort(meta.Host, fmt.Sprint(meta.Port))] = true
	if len(d.failed) >= d.brokers {
		d.cancel()
	}
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
// retrying cannot fix (ErrAuth — a refused credential or a denied
// operation —, context errors, or one wrapped by Permanent). Each failure
// is logged with the attempt and the wait. fn's errors are taken as they
// are: fn explains them (Config.ExplainContext) when they may hide a
// refused credential.
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
