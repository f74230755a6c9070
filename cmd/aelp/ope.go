package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/aelp/aelp/app/experiment"
	"github.com/aelp/aelp/internal/kafkax"
	"github.com/aelp/aelp/learner/ope"
	"github.com/aelp/aelp/producers/sim"
	"github.com/aelp/aelp/schemas"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
)

// opeFlags binds the estimators' settings (ope.Config) to flags.
func opeFlags(fs *flagSet, c *ope.Config) {
	fs.IntVar(&c.Resamples, "resamples", c.Resamples, "bootstrap resamples of the journeys behind each interval")
	fs.Float64Var(&c.Confidence, "confidence", c.Confidence, "level of the bootstrap percentile intervals")
	fs.Float64Var(&c.Clip, "clip", c.Clip, "cap on every cumulative importance weight (0: no clipping; the report states the share capped)")
	fs.StringVar(&c.Model, "ope-model", c.Model, "doubly robust's Q model: fqe (cross-fitted fitted-Q on the history: state, mean state so far, random ReLU features), fqe-linear (linear in the state) or none (Q = 0, DR = PDIS)")
	fs.IntVar(&c.Folds, "ope-folds", c.Folds, "cross-fitting folds of the fitted-Q model")
	fs.Var(positiveValue{&c.ModelMaxWeight}, "ope-model-max-weight", "the Q model serves a step only while the journey's weight before it is at most this `number` above 0 (past it the step is PDIS's; inf: never gate)")
	fs.Float64Var(&c.Gamma, "gamma", c.Gamma, "discount of the value estimated (1: the journey return)")
}

// opeOptions are aelp experiment ope's options besides the experiment's
// configuration.
type opeOptions struct {
	// PNG is where estimate against truth is drawn ("": no plot).
	PNG string
}

func defaultOPEOptions() opeOptions { return opeOptions{PNG: filepath.Join("out", "ope.png")} }

// opeSetup is `aelp experiment ope`.
func opeSetup() (*flagSet, action) {
	fs := newFlagSet("experiment ope")
	cfg := newConfig(fs, experiment.DefaultOPEConfig)
	opt := newConfig(fs, defaultOPEOptions)
	simFlags(fs, &cfg.Sim)
	opeFlags(fs, &cfg.OPE)
	fs.IntVar(&cfg.Seeds, "seeds", cfg.Seeds, "seeds (each: a learner's snapshots, journeys logged under the logging policy, held-out truth)")
	fs.Uint64Var(&cfg.FirstSeed, "first-seed", cfg.FirstSeed, "first seed")
	fs.Var(intsValue{&cfg.Snapshots}, "snapshots", "PPO updates after which a snapshot is taken, a comma-separated `list`; the first is the logging policy's base")
	fs.Float64Var(&cfg.Epsilon, "epsilon", cfg.Epsilon, "share of uniform exploration in the logging policy")
	fs.IntVar(&cfg.Journeys, "journeys", cfg.Journeys, "journeys logged under the logging policy per seed")
	fs.IntVar(&cfg.TruthEpisodes, "truth-episodes", cfg.TruthEpisodes, "held-out journeys of each target's on-policy value")
	fs.IntVar(&cfg.Workers, "workers", cfg.Workers, "seeds run in parallel")
	fs.StringVar(&opt.PNG, "png", opt.PNG, "draw every estimate against the truth (per segment, with its interval) here (empty: no plot)")
	return fs, func(ctx context.Context) error {
		if err := checkSim(cfg.Sim); err != nil {
			return err
		}
		// A zero would take the default: refuse it here.
		if cfg.Seeds < 1 || cfg.Journeys < 2 || cfg.TruthEpisodes < 2 || cfg.Workers < 1 || cfg.Epsilon <= 0 {
			return usagef("--seeds and --workers must be at least 1, --journeys and --truth-episodes at least 2, --epsilon in (0, 1]")
		}
		// The learner takes the learn role's PPO settings for the
		// simulator's shape (derived from a zero PPO config).
		cfg.PPO = experiment.OPEConfig{Sim: cfg.Sim}.WithDefaults().PPO
		cfg.Progress = os.Stderr
		if err := cfg.Validate(); err != nil {
			return usagef("%v", err)
		}
		fmt.Fprintf(os.Stderr, "aelp experiment ope: %d seeds, snapshots at %v updates, %d logged journeys per seed, %d seeds in parallel (no Kafka)\n",
			cfg.Seeds, cfg.Snapshots, cfg.Journeys, cfg.Workers)
		res, err := experiment.ExecuteOPE(ctx, *cfg)
		if err != nil {
			return err
		}
		if err := res.Print(os.Stdout); err != nil || opt.PNG == "" {
			return err
		}
		if dir := filepath.Dir(opt.PNG); dir != "." {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
		}
		if err := res.SavePNG(opt.PNG); err != nil {
			return err
		}
		fmt.Printf("\nestimate against truth: %s\n", opt.PNG)
		return nil
	}
}

// evaluateOPEOptions are aelp evaluate's off-policy settings.
type evaluateOPEOptions struct {
	// OPE estimates the policy from logged experiences instead of running
	// it in the simulator.
	OPE bool
	// Topic holds the logged experiences (tagged or raw); File, when set,
	// is an aelp record file read instead.
	Topic, File string
	// Format is table or json.
	Format string
	// Estimators configures the estimators.
	Estimators ope.Config
	// MaxJourneys bounds the journeys held (the newest kept).
	MaxJourneys int
}

func defaultEvaluateOPEOptions() evaluateOPEOptions {
	return evaluateOPEOptions{Topic: kafkax.TopicTagged, Format: "table", Estimators: ope.DefaultConfig(), MaxJourneys: 1_000_000}
}

// evaluateOPEFlags binds aelp evaluate's off-policy flags.
func evaluateOPEFlags(fs *flagSet, o *evaluateOPEOptions) {
	fs.BoolVar(&o.OPE, "ope", o.OPE, "estimate the policy off-policy from logged experiences (--topic or --file) instead of simulating it")
	fs.StringVar(&o.Topic, "topic", o.Topic, "with --ope: topic of logged experiences (tagged, or aelp.experiences.raw), read from the first offset to the end seen at start")
	fs.StringVar(&o.File, "file", o.File, "with --ope: an aelp record file of logged experiences, read instead of --topic")
	fs.StringVar(&o.Format, "format", o.Format, "with --ope: output table or json")
	fs.IntVar(&o.MaxJourneys, "max-journeys", o.MaxJourneys, "with --ope: most journeys held (the newest kept)")
	opeFlags(fs, &o.Estimators)
}

// checkOPEOptions reports a bad off-policy flag as a usage error.
func checkOPEOptions(o evaluateOPEOptions) error {
	if o.Format != "table" && o.Format != "json" {
		return usagef("invalid --format %q (want table or json)", o.Format)
	}
	if o.MaxJourneys < 1 {
		return usagef("--max-journeys must be at least 1")
	}
	if err := o.Estimators.Validate(); err != nil {
		return usagef("%v", err)
	}
	return nil
}

// opePolicy turns a policy to evaluate into an ope target: a policy that
// gives log-probabilities as is, any other through its probabilities.
func opePolicy(p sim.Policy, name string, nA int) ope.Target {
	if lp, ok := p.(ope.Policy); ok {
		return ope.Target{Name: name, Policy: lp}
	}
	return ope.Target{Name: name, Policy: ope.ProbPolicy{P: p, N: nA}}
}

// evaluateOPE estimates target from the logged experiences of o.Topic or
// o.File and writes the report to w.
func evaluateOPE(ctx context.Context, w io.Writer, target ope.Target, cfg evaluateConfig, o evaluateOPEOptions, sh *shared, log zerolog.Logger) error {
	js := ope.NewJourneys(o.MaxJourneys)
	col := ope.NewCollector(ope.CollectorConfig{NumActions: cfg.Sim.NumActions(), StateDim: cfg.Sim.StateDim}, js)
	var undecodable int64
	source, err := readLogged(ctx, o, sh, log, func(topic string, value []byte) {
		rec, ok := decodeLogged(topic, value)
		if !ok {
			undecodable++
			return
		}
		col.Add(&rec)
	})
	if err != nil {
		return err
	}
	counts := col.Counts()
	fmt.Fprintf(os.Stderr, "aelp evaluate --ope: %s: %s; %d undecodable records skipped\n", source, counts, undecodable)
	rep, err := ope.Evaluate(target, js.Snapshot(), o.Estimators)
	if err != nil {
		return fmt.Errorf("%s: %w", source, err)
	}
	if o.Format == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			Source string     `json:"source"`
			Counts ope.Counts `json:"counts"`
			Report ope.Report `json:"report"`
		}{source, counts, rep})
	}
	fmt.Fprintf(w, "logged experiences: %s (%s)\n", source, counts)
	return rep.WriteTable(w)
}

// decodeLogged decodes one logged experience: raw on the raw topic,
// tagged otherwise.
func decodeLogged(topic string, value []byte) (ope.Record, bool) {
	if topic == kafkax.TopicRaw {
		var e schemas.Experience
		if schemas.UnmarshalExperience(value, &e) != nil {
			return ope.Record{}, false
		}
		return ope.RecordOfExperience(&e), true
	}
	var te schemas.TaggedExperience
	if schemas.UnmarshalTaggedExperience(value, &te) != nil {
		return ope.Record{}, false
	}
	return ope.RecordOf(&te), true
}

// readLogged calls fn with every record of o.File or of o.Topic (first
// offset to the end seen at start) and returns what it read.
func readLogged(ctx context.Context, o evaluateOPEOptions, sh *shared, log zerolog.Logger, fn func(topic string, value []byte)) (string, error) {
	if o.File != "" {
		f, err := os.Open(o.File)
		if err != nil {
			return "", err
		}
		defer f.Close()
		rr, err := schemas.NewRecordingReader(f)
		if err != nil {
			return "", fmt.Errorf("%s: %w", o.File, err)
		}
		for {
			m, err := rr.Next()
			if errors.Is(err, io.EOF) {
				return fmt.Sprintf("file %s (topic %s)", o.File, rr.SourceTopic()), nil
			}
			if err != nil {
				return "", fmt.Errorf("%s: %w", o.File, err)
			}
			fn(rr.SourceTopic(), m.Value)
		}
	}
	kcfg, err := sh.kafkaConfig()
	if err != nil {
		return "", err
	}
	r, err := kafkax.NewReader(kcfg, o.Topic, kafkax.ReadOptions{Isolation: kafkax.ReadCommitted, Logger: log})
	if err != nil {
		return "", err
	}
	defer r.Close()
	offs, err := r.ListOffsets(ctx)
	if err != nil {
		return "", err
	}
	err = r.ReadMessages(ctx, offs.First, offs.End, func(m *kafka.Message) error {
		fn(o.Topic, m.Value)
		return nil
	})
	return fmt.Sprintf("topic %s (%d records in range)", o.Topic, offs.Total()), err
}
