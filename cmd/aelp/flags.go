package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/aelp/aelp/internal/kafkax"
	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"
)

var errHelp = errors.New("help requested")

// flagSet wraps a FlagSet whose flags also read AELP_* environment
// variables (a flag on the command line wins).
type flagSet struct {
	*flag.FlagSet
	name string
}

func newFlagSet(name string) *flagSet {
	fs := flag.NewFlagSet("aelp "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return &flagSet{FlagSet: fs, name: name}
}

// envName maps a flag name to its environment variable: log-level →
// AELP_LOG_LEVEL.
func envName(flagName string) string {
	return "AELP_" + strings.ToUpper(strings.NewReplacer("-", "_", ".", "_").Replace(flagName))
}

// parse applies environment variables, then the arguments. Errors are usage
// errors (exit 2, one line); -h prints the flags and returns errHelp.
func (f *flagSet) parse(args []string) error {
	var envErr error
	f.VisitAll(func(fl *flag.Flag) {
		if envErr != nil {
			return
		}
		if v, ok := os.LookupEnv(envName(fl.Name)); ok {
			if err := fl.Value.Set(v); err != nil {
				envErr = usagef("invalid value %q for %s: %v", v, envName(fl.Name), err)
			}
		}
	})
	if envErr != nil {
		return envErr
	}
	if err := f.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			f.SetOutput(os.Stdout)
			fmt.Fprintf(os.Stdout, "Usage of aelp %s (each flag also reads AELP_<NAME>):\n", f.name)
			f.PrintDefaults()
			return errHelp
		}
		return usagef("%v", err)
	}
	if f.NArg() > 0 {
		return usagef("unexpected argument %q", f.Arg(0))
	}
	return nil
}

// logFlags are the logging flags every command has.
type logFlags struct {
	level  string
	format string
}

func (l *logFlags) register(fs *flagSet) {
	fs.StringVar(&l.level, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&l.format, "log-format", "auto", "log format: auto (console on a TTY, JSON otherwise), console, json")
}

func (l *logFlags) logger(role string) (zerolog.Logger, error) {
	lvl, err := zerolog.ParseLevel(strings.ToLower(l.level))
	if err != nil || l.level == "" {
		return zerolog.Nop(), usagef("invalid --log-level %q (want debug, info, warn or error)", l.level)
	}
	var w io.Writer = os.Stderr
	switch l.format {
	case "auto":
		if isatty.IsTerminal(os.Stderr.Fd()) {
			w = zerolog.ConsoleWriter{Out: os.Stderr, TimeFormat: time.TimeOnly}
		}
	case "console":
		w = zerolog.ConsoleWriter{Out: os.Stderr, TimeFormat: time.TimeOnly, NoColor: !isatty.IsTerminal(os.Stderr.Fd())}
	case "json":
	default:
		return zerolog.Nop(), usagef("invalid --log-format %q (want auto, console or json)", l.format)
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Str("role", role).Logger(), nil
}

// kafkaFlags are the connection flags of every role that talks to Kafka.
type kafkaFlags struct {
	brokers      string
	clientID     string
	tls          bool
	tlsCA        string
	tlsCert      string
	tlsKey       string
	tlsServer    string
	tlsInsecure  bool
	saslMech     string
	saslUser     string
	saslPassword string
}

func (k *kafkaFlags) register(fs *flagSet, defaultBrokers string) {
	fs.StringVar(&k.brokers, "brokers", defaultBrokers, "comma-separated Kafka bootstrap addresses")
	fs.StringVar(&k.clientID, "client-id", "aelp", "Kafka client id")
	fs.BoolVar(&k.tls, "tls", false, "connect with TLS")
	fs.StringVar(&k.tlsCA, "tls-ca", "", "PEM file of the CAs that sign the broker certificates (implies --tls)")
	fs.StringVar(&k.tlsCert, "tls-cert", "", "PEM client certificate for mutual TLS (implies --tls)")
	fs.StringVar(&k.tlsKey, "tls-key", "", "PEM client key for mutual TLS")
	fs.StringVar(&k.tlsServer, "tls-server-name", "", "server name to verify instead of the broker host")
	fs.BoolVar(&k.tlsInsecure, "tls-insecure-skip-verify", false, "do not verify broker certificates (testing only)")
	fs.StringVar(&k.saslMech, "sasl-mechanism", "", "SASL mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")
	fs.StringVar(&k.saslUser, "sasl-username", "", "SASL username")
	fs.StringVar(&k.saslPassword, "sasl-password", "", "SASL password (prefer AELP_SASL_PASSWORD)")
}

func (k *kafkaFlags) config() (kafkax.Config, error) {
	c := kafkax.Config{
		Brokers:  splitList(k.brokers),
		ClientID: k.clientID,
		TLS: kafkax.TLSConfig{
			Enable: k.tls, CAFile: k.tlsCA, CertFile: k.tlsCert, KeyFile: k.tlsKey,
			ServerName: k.tlsServer, InsecureSkipVerify: k.tlsInsecure,
		},
		SASL: kafkax.SASLConfig{Mechanism: strings.ToUpper(k.saslMech), Username: k.saslUser, Password: k.saslPassword},
	}
	if err := c.Validate(); err != nil {
		return c, usagef("%v", err)
	}
	return c.WithDefaults(), nil
}

// connect returns a Kafka role's logger and connection settings from the
// common flags (bad values are usage errors).
func connect(role string, lf *logFlags, kf *kafkaFlags) (zerolog.Logger, kafkax.Config, error) {
	log, err := lf.logger(role)
	if err != nil {
		return log, kafkax.Config{}, err
	}
	kcfg, err := kf.config()
	return log, kcfg, err
}
