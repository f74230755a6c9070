package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/aelp/aelp/consumers"
	"github.com/aelp/aelp/internal/kafkax"
	"github.com/aelp/aelp/internal/lifecycle"
	"github.com/aelp/aelp/learner"
	"github.com/aelp/aelp/producers"
	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"
)

var errHelp = errors.New("help requested")

// flagSet wraps a FlagSet whose flags also read AELP_* environment
// variables (a flag on the command line wins). Flags are registered
// straight onto configuration fields, initialised from their package's
// DefaultConfig; bind records each such configuration, so that
// TestFlagDefaults can check every flag's default against it.
type flagSet struct {
	*flag.FlagSet
	name string
	// note, when set, is printed under the usage line of -h.
	note  string
	bound []boundConfig
}

// boundConfig is a configuration struct flags write into, and the function
// that returns its defaults.
type boundConfig struct {
	ptr      reflect.Value // *T
	defaults func() reflect.Value
}

func newFlagSet(name string) *flagSet {
	fs := flag.NewFlagSet("aelp "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return &flagSet{FlagSet: fs, name: name}
}

// newConfig returns a configuration holding def(), to register fs's flags
// onto, and records it (with def) for TestFlagDefaults.
func newConfig[T any](fs *flagSet, def func() T) *T {
	cfg := new(T)
	*cfg = def()
	fs.bound = append(fs.bound, boundConfig{
		ptr:      reflect.ValueOf(cfg),
		defaults: func() reflect.Value { return reflect.ValueOf(def()) },
	})
	return cfg
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
			if f.note != "" {
				fmt.Fprintf(os.Stdout, "\n%s\n", f.note)
			}
			return errHelp
		}
		return usagef("%v", err)
	}
	if f.NArg() > 0 {
		return usagef("unexpected argument %q", f.Arg(0))
	}
	return nil
}

// The flag values for fields that are not a string, a number, a bool or a
// duration. Each has a target method returning the field it writes to.

// listValue is a comma-separated list of strings.
type listValue struct{ p *[]string }

func (v listValue) String() string {
	if v.p == nil {
		return ""
	}
	return strings.Join(*v.p, ",")
}
func (v listValue) Set(s string) error { *v.p = splitList(s); return nil }
func (v listValue) target() any        { return v.p }

// intsValue is a comma-separated list of integers.
type intsValue struct{ p *[]int }

func (v intsValue) String() string {
	if v.p == nil {
		return ""
	}
	parts := make([]string, len(*v.p))
	for i, n := range *v.p {
		parts[i] = strconv.Itoa(n)
	}
	return strings.Join(parts, ",")
}

func (v intsValue) Set(s string) error {
	var out []int
	for _, p := range splitList(s) {
		n, err := strconv.Atoi(p)
		if err != nil {
			return fmt.Errorf("%q is not a comma-separated list of integers", s)
		}
		out = append(out, n)
	}
	*v.p = out
	return nil
}
func (v intsValue) target() any { return v.p }

// positiveValue is a number that must be above 0 (inf allowed), for a
// field whose zero would silently take its default.
type positiveValue struct{ p *float64 }

func (v positiveValue) String() string {
	if v.p == nil {
		return "0"
	}
	return strconv.FormatFloat(*v.p, 'g', -1, 64)
}

func (v positiveValue) Set(s string) error {
	x, err := strconv.ParseFloat(s, 64)
	if err != nil || !(x > 0) {
		return fmt.Errorf("%q is not a number above 0 (inf: no limit)", s)
	}
	*v.p = x
	return nil
}
func (v positiveValue) target() any { return v.p }

// notValue is a boolean flag that sets the negation of its field
// (--enable-importance-sampling sets Replay.Uniform to false).
type notValue struct{ p *bool }

func (v notValue) String() string {
	if v.p == nil {
		return "false"
	}
	return strconv.FormatBool(!*v.p)
}

func (v notValue) Set(s string) error {
	b, err := strconv.ParseBool(s)
	if err != nil {
		return err
	}
	*v.p = !b
	return nil
}
func (v notValue) IsBoolFlag() bool { return true }
func (v notValue) target() any      { return v.p }

// isolationValue is --isolation-level.
type isolationValue struct{ p *kafkax.Isolation }

func (v isolationValue) String() string {
	if v.p == nil {
		return ""
	}
	return v.p.String()
}

func (v isolationValue) Set(s string) error {
	iso, err := kafkax.ParseIsolation(s)
	if err != nil {
		return err
	}
	*v.p = iso
	return nil
}
func (v isolationValue) target() any { return v.p }

// isolationFlag registers --isolation-level onto p.
func isolationFlag(fs *flagSet, p *kafkax.Isolation) {
	fs.Var(isolationValue{p}, "isolation-level",
		"isolation `level`: read_committed (records of aborted transactions are skipped) or read_uncommitted (every record); transaction markers are never shown")
}

// partitionerValue is --partitioner.
type partitionerValue struct{ p *kafkax.Partitioner }

func (v partitionerValue) String() string {
	if v.p == nil {
		return ""
	}
	return v.p.String()
}

func (v partitionerValue) Set(s string) error {
	p, err := kafkax.ParsePartitioner(s)
	if err != nil {
		return err
	}
	*v.p = p
	return nil
}
func (v partitionerValue) target() any { return v.p }

// shared are the flags several commands share: logging (every command),
// the Kafka connection, --http and --shutdown-timeout (the long-running
// roles). register binds them onto their configuration.
type shared struct {
	logLevel, logFormat string
	kafka               kafkax.Config
	http                string
	shutdown            time.Duration
}

// sharedFlags says which of the shared flags a command has.
type sharedFlags struct {
	// kafka registers the connection flags; embedded makes --brokers
	// default to none (an in-process broker: aelp run, aelp bench);
	// writes adds the writers' --partitioner and --max-message-bytes.
	kafka, embedded, writes bool
	// http registers --http, with example as its example address.
	http string
	// shutdown registers --shutdown-timeout.
	shutdown bool
}

// defaultShared returns the shared flags' defaults.
func defaultShared() shared {
	return shared{logLevel: "info", logFormat: "auto", kafka: kafkax.DefaultConfig(), shutdown: lifecycle.DefaultShutdownTimeout}
}

// newShared registers the shared flags that which asks for on fs.
func newShared(fs *flagSet, which sharedFlags) *shared {
	def := func() shared {
		d := defaultShared()
		if which.embedded {
			d.kafka.Brokers = nil
		}
		return d
	}
	sh := newConfig(fs, def)
	fs.StringVar(&sh.logLevel, "log-level", sh.logLevel, "log level: debug, info, warn, error")
	fs.StringVar(&sh.logFormat, "log-format", sh.logFormat, "log format: auto (console on a TTY, JSON otherwise), console, json")
	if which.kafka {
		k := &sh.kafka
		fs.Var(listValue{&k.Brokers}, "brokers", "comma-separated `list` of Kafka bootstrap addresses")
		fs.StringVar(&k.ClientID, "client-id", k.ClientID, "Kafka client id")
		fs.BoolVar(&k.TLS.Enable, "tls", k.TLS.Enable, "connect with TLS")
		fs.StringVar(&k.TLS.CAFile, "tls-ca", k.TLS.CAFile, "PEM file of the CAs that sign the broker certificates (implies --tls)")
		fs.StringVar(&k.TLS.CertFile, "tls-cert", k.TLS.CertFile, "PEM client certificate for mutual TLS (implies --tls)")
		fs.StringVar(&k.TLS.KeyFile, "tls-key", k.TLS.KeyFile, "PEM client key for mutual TLS")
		fs.StringVar(&k.TLS.ServerName, "tls-server-name", k.TLS.ServerName, "server name to verify instead of the broker host")
		fs.BoolVar(&k.TLS.InsecureSkipVerify, "tls-insecure-skip-verify", k.TLS.InsecureSkipVerify, "do not verify broker certificates (testing only)")
		fs.StringVar(&k.SASL.Mechanism, "sasl-mechanism", k.SASL.Mechanism, "SASL mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")
		fs.StringVar(&k.SASL.Username, "sasl-username", k.SASL.Username, "SASL username")
		fs.StringVar(&k.SASL.Password, "sasl-password", k.SASL.Password, "SASL password (prefer AELP_SASL_PASSWORD)")
	}
	if which.kafka && which.writes {
		k := &sh.kafka
		fs.Var(partitionerValue{&k.Partitioner}, "partitioner",
			"`hash` placing keyed records on partitions: murmur2 (the Java client's, Kafka Streams', Flink's), fnv1a (kafka-go's Hash, sarama's), crc32 (librdkafka's default)")
		fs.IntVar(&k.MaxMessageBytes, "max-message-bytes", k.MaxMessageBytes,
			"record-batch limit assumed for a topic whose max.message.bytes the broker does not tell (DescribeConfigs denied)")
	}
	if which.http != "" {
		fs.StringVar(&sh.http, "http", sh.http, "serve /metrics and /healthz on this address (e.g. "+which.http+")")
	}
	if which.shutdown {
		fs.DurationVar(&sh.shutdown, "shutdown-timeout", sh.shutdown,
			"after SIGINT/SIGTERM, how long to finish the work in hand (flush, commit, checkpoint) before exiting with status 1 and a goroutine dump")
	}
	return sh
}

// logger returns the command's logger (bad values are usage errors).
func (sh *shared) logger(role string) (zerolog.Logger, error) {
	lvl, err := zerolog.ParseLevel(strings.ToLower(sh.logLevel))
	if err != nil || sh.logLevel == "" {
		return zerolog.Nop(), usagef("invalid --log-level %q (want debug, info, warn or error)", sh.logLevel)
	}
	var w io.Writer = os.Stderr
	switch sh.logFormat {
	case "auto":
		if isatty.IsTerminal(os.Stderr.Fd()) {
			w = zerolog.ConsoleWriter{Out: os.Stderr, TimeFormat: time.TimeOnly}
		}
	case "console":
		w = zerolog.ConsoleWriter{Out: os.Stderr, TimeFormat: time.TimeOnly, NoColor: !isatty.IsTerminal(os.Stderr.Fd())}
	case "json":
	default:
		return zerolog.Nop(), usagef("invalid --log-format %q (want auto, console or json)", sh.logFormat)
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Str("role", role).Logger(), nil
}

// quiet lowers the default log level to warn, for commands whose progress
// display says what info would; --log-level or AELP_LOG_LEVEL still win.
func (sh *shared) quiet() {
	if sh.logLevel == "info" && os.Getenv("AELP_LOG_LEVEL") == "" {
		sh.logLevel = "warn"
	}
}

// kafkaConfig returns the connection settings, validated (a usage error
// when invalid) and with their defaults.
func (sh *shared) kafkaConfig() (kafkax.Config, error) {
	c := sh.kafka
	c.SASL.Mechanism = strings.ToUpper(c.SASL.Mechanism)
	if err := c.Validate(); err != nil {
		return c, usagef("%v", err)
	}
	return c.WithDefaults(), nil
}

// connect returns a Kafka role's logger and connection settings.
func (sh *shared) connect(role string) (zerolog.Logger, kafkax.Config, error) {
	log, err := sh.logger(role)
	if err != nil {
		return log, kafkax.Config{}, err
	}
	kcfg, err := sh.kafkaConfig()
	return log, kcfg, err
}

// benchConnect is connect for a benchmark command (bench, bench-serve),
// whose progress display says what info logs would (quiet): the
// connection settings are --brokers' when given, else the zero Config
// (the benchmark starts an embedded broker).
func (sh *shared) benchConnect(role string) (zerolog.Logger, kafkax.Config, error) {
	sh.quiet()
	if len(sh.kafka.Brokers) == 0 {
		log, err := sh.logger(role)
		return log, kafkax.Config{}, err
	}
	return sh.connect(role)
}

// shutdownTimeout returns --shutdown-timeout (a usage error unless
// positive: a zero in the configurations means the default).
func (sh *shared) shutdownTimeout() (time.Duration, error) {
	if sh.shutdown <= 0 {
		return 0, usagef("--shutdown-timeout %s: must be positive", sh.shutdown)
	}
	return sh.shutdown, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// configError turns a configuration's Validate error into a usage error,
// saying which flags to give where the library's error names fields.
func configError(err error) error {
	switch {
	case errors.Is(err, producers.ErrUnbounded):
		return usagef("give --users N (bounded) or --rate R (runs until stopped)")
	case errors.Is(err, learner.ErrNoCheckpoint):
		return usagef("no checkpoint path: give --checkpoint FILE, or --fresh to train without resuming")
	case errors.Is(err, consumers.ErrStartTwice):
		return usagef("give --from-beginning or --since, not both")
	}
	var ue usageError
	if errors.As(err, &ue) {
		return ue
	}
	return usagef("%v", err)
}
