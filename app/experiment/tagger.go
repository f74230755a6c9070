package experiment

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/aelp/aelp/consumers/classify"
	"github.com/aelp/aelp/producers/sim"
	"golang.org/x/sync/errgroup"
)

// TaggerArm is one arm of the tagger factor (ExecuteTagger): who tags the
// unlabelled experiences, and whether the priority follows the hard tag
// or the calibrated tag_score. Every arm samples by importance.
type TaggerArm struct {
	// Name names the arm in the table.
	Name string
	// Tagger is the classifier's Tagger.
	Tagger classify.Tagger
	// Soft sets train.Config.SoftPriority.
	Soft bool
}

// TaggerArms are the arms of ExecuteTagger, in table order.
var TaggerArms = [...]TaggerArm{
	{Name: "rules, hard priority", Tagger: classify.TaggerRules},
	{Name: "learned, hard priority", Tagger: classify.TaggerLearned},
	{Name: "learned, soft priority", Tagger: classify.TaggerLearned, Soft: true},
}

// TaggerResult is the outcome of ExecuteTagger.
type TaggerResult struct {
	// Config is the configuration run, defaults filled in (its
	// Classifier.Tagger and SoftPriority are each arm's).
	Config Config
	// Runs are each arm's runs (indexed as TaggerArms), one per seed, in
	// seed order.
	Runs [len(TaggerArms)][]Run
	// Logging are the uniform logging policy's evaluations on the same
	// held-out seeds.
	Logging []sim.EvalReport
	// Oracle is the exact model-derived reference.
	Oracle sim.OracleReport
	// Elapsed is the wall time of the whole experiment.
	Elapsed time.Duration
}

// ExecuteTagger runs the tagger factor: for every seed, each of TaggerArms
// trains the importance-sampling arm of Execute on the same stream (the
// same users, the same agent initialisation and the same held-out users);
// only the tags, and with Soft the priorities, differ. cfg.TagWithTruth
// and cfg.SoftPriority must be false (the arms set the tagging).
func ExecuteTagger(ctx context.Context, cfg Config) (TaggerResult, error) {
	if err := prepare(&cfg, "experiment"); err != nil {
		return TaggerResult{}, err
	}
	if cfg.TagWithTruth || cfg.SoftPriority {
		return TaggerResult{}, errors.New("experiment: the tagger factor sets the tagging: TagWithTruth and SoftPriority must be false")
	}
	start := time.Now()
	res := TaggerResult{Config: cfg, Logging: make([]sim.EvalReport, cfg.Seeds)}
	var err error
	if res.Oracle, err = sim.Oracle(cfg.Sim); err != nil {
		return res, fmt.Errorf("experiment: oracle: %w", err)
	}
	var progMu sync.Mutex
	done, total := 0, len(TaggerArms)*cfg.Seeds
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(cfg.Workers)
	for k, arm := range TaggerArms {
		res.Runs[k] = make([]Run, cfg.Seeds)
		c := cfg
		c.Classifier.Tagger, c.SoftPriority = arm.Tagger, arm.Soft
		for i := range cfg.Seeds {
			seed := cfg.FirstSeed + uint64(i)
			g.Go(func() error {
				r, err := runArm(gctx, c, seed, false)
				if err != nil {
					return err
				}
				res.Runs[k][i] = r
				progMu.Lock()
				done++
				fmt.Fprintf(cfg.Progress, "[%3.0fs] %d/%d seed %d %-22s %d updates in %.1fs: held-out crisis return %.3f, value per user %.3f\n",
					time.Since(start).Seconds(), done, total, seed, arm.Name, r.Updates, r.Elapsed.Seconds(),
					r.Eval.Crisis.MeanReturn, r.Eval.ValuePerUser)
				progMu.Unlock()
				return nil
			})
		}
	}
	if err := g.Wait(); err != nil {
		return res, err
	}
	for i := range cfg.Seeds {
		rep, err := sim.Evaluate(cfg.Sim, sim.Uniform{N: cfg.Sim.NumActions()}, cfg.EvalEpisodes, sim.HeldOutSeed(cfg.FirstSeed+uint64(i)))
		if err != nil {
			return res, fmt.Errorf("experiment: evaluate logging policy: %w", err)
		}
		res.Logging[i] = rep
	}
	res.Elapsed = time.Since(start)
	return res, nil
}

// pairedRow is the row of the per-seed differences a − b of two arms.
func pairedRow(name string, a, b []Run) Row {
	ea, eb := evalsOf(a), evalsOf(b)
	row := Row{Name: name, Difference: true}
	for c := range NumCols {
		f := func(e sim.EvalReport) float64 { return evalFigures(e)[c] }
		row.Cells[c] = PairedDiff(column(ea, f), column(eb, f))
	}
	return row
}

// Rows returns the tagger factor's table: each arm, the paired
// differences learned − rules (both hard) and soft − hard (both learned),
// the logging policy, with means and 95% intervals over seeds, and the
// exact oracle.
func (r TaggerResult) Rows() []Row {
	rows := make([]Row, 0, len(TaggerArms)+4)
	for k, arm := range TaggerArms {
		rows = append(rows, Row{Name: arm.Name, Cells: summarizeEvals(evalsOf(r.Runs[k]))})
	}
	rows = append(rows,
		pairedRow("learned − rules (hard, paired)", r.Runs[1], r.Runs[0]),
		pairedRow("soft − hard (learned, paired)", r.Runs[2], r.Runs[1]),
		Row{Name: "logging (uniform random)", Cells: summarizeEvals(r.Logging)})
	o := r.Oracle
	exact := func(x float64) Summary { return Summary{Mean: x, N: 0} }
	return append(rows, Row{Name: "oracle (exact)", Exact: true, Cells: [NumCols]Summary{
		exact(o.Crisis.AdaptiveReturn), exact(o.Crisis.AdaptiveConversion),
		exact(o.Regular.AdaptiveReturn), exact(o.Regular.AdaptiveConversion), exact(o.AdaptiveValuePerUser),
	}})
}

// Print writes the settings, the table, each arm's training diagnostics
// (what the tags did to the batches) and a reading of the paired
// differences.
func (r TaggerResult) Print(w io.Writer) {
	c := r.Config
	rc := c.Replay
	fmt.Fprintf(w, "\naelp experiment ab --factor tagger: rules vs learned tagger, hard vs soft priority, %d seeds × %d updates per arm, %.0fs\n\n",
		c.Seeds, c.Updates, r.Elapsed.Seconds())
	fmt.Fprintf(w, "Every arm is the importance-sampling arm of aelp experiment ab on the same stream per seed\n")
	fmt.Fprintf(w, "(uniform logging policy, the same users, agent initialisation and held-out users); only the tags differ,\n")
	fmt.Fprintf(w, "and with soft priority an experience's priority is w·p + (1 − p) from its calibrated tag_score p.\n")
	fmt.Fprintf(w, "  crisis_parent_weight w = %g, α %g, β0 %g annealed to 1 over %d updates, min crisis ratio %g; tagger warm-up %d labelled records\n\n",
		rc.CrisisWeight, rc.Alpha, rc.Beta0, rc.AnnealSteps, rc.MinCrisisRatio, c.Classifier.TaggerWarmUp)
	fmt.Fprintf(w, "held-out results, mean over %d seeds ± 95%% CI half-width (Student's t over seeds)\n\n", c.Seeds)
	writeTable(w, r.Rows())
	fmt.Fprintf(w, "\ntraining diagnostics (mean over seeds)\n\n")
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "arm\ttag precision / recall\tbatch crisis share (tagged)\ttruly crisis\tIS weight mean (min, max)\tfinal entropy\n")
	for k, arm := range TaggerArms {
		runs := r.Runs[k]
		wmin, wmax := math.Inf(1), math.Inf(-1)
		for _, x := range runs {
			wmin, wmax = math.Min(wmin, x.WeightMin), math.Max(wmax, x.WeightMax)
		}
		fmt.Fprintf(tw, "%s\t%.3f / %.3f\t%.4f\t%.4f\t%.3f (%.3f, %.3f)\t%.3f\n", arm.Name,
			meanOf(runs, func(x Run) float64 { return x.TagPrecision }),
			meanOf(runs, func(x Run) float64 { return x.TagRecall }),
			meanOf(runs, func(x Run) float64 { return x.BatchCrisisShare }),
			meanOf(runs, func(x Run) float64 { return x.TrueCrisisShare }),
			meanOf(runs, func(x Run) float64 { return x.WeightMean }), wmin, wmax,
			meanOf(runs, func(x Run) float64 { return x.Last.Entropy }))
	}
	tw.Flush()
	fmt.Fprintf(w, "\n%s\n", r.Verdict())
}

// Verdict states, in words, what the paired differences say.
func (r TaggerResult) Verdict() string {
	rows := r.Rows()
	n := len(TaggerArms)
	var b strings.Builder
	for _, d := range []struct {
		row        Row
		plus, less string
	}{{rows[n], "the learned tagger", "the rules"}, {rows[n+1], "soft priority", "hard priority"}} {
		fmt.Fprintf(&b, "Reading (%s over %d seeds):\n", d.row.Name, len(r.Logging))
		for _, col := range []struct {
			name string
			c    int
		}{{"crisis-parent return", ColCrisisReturn}, {"regular-parent return", ColRegularReturn}, {"value per user", ColValuePerUser}} {
			s := d.row.Cells[col.c]
			switch {
			case !s.Finite():
				fmt.Fprintf(&b, "  %s: undefined\n", col.name)
			case s.Excludes(0) && s.Mean > 0:
				fmt.Fprintf(&b, "  %s %+.3f ± %.3f: %s is better (the 95%% CI excludes 0)\n", col.name, s.Mean, s.HalfWidth, d.plus)
			case s.Excludes(0):
				fmt.Fprintf(&b, "  %s %+.3f ± %.3f: %s is better (the 95%% CI excludes 0)\n", col.name, s.Mean, s.HalfWidth, d.less)
			default:
				fmt.Fprintf(&b, "  %s %+.3f ± %.3f: no significant difference (the 95%% CI contains 0)\n", col.name, s.Mean, s.HalfWidth)
			}
		}
	}
	fmt.Fprintf(&b, "The IS weights (N·P(i))^−β undo the priorities once β reaches 1, so better tags can change the\n")
	fmt.Fprintf(&b, "policy only through the variance of the crisis segment's gradient and the partial correction before then.")
	return b.String()
}

// TrainedPolicy trains the importance-sampling arm of seed for cfg.Updates
// updates, as Execute does (the uniform logging policy's stream, tagged by
// cfg.Classifier), and returns its final policy: a learned acting policy
// for measuring the taggers on the stream it makes.
func TrainedPolicy(ctx context.Context, cfg Config, seed uint64) (sim.Policy, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("experiment: %w", err)
	}
	a, err := newArm(cfg, seed, false)
	if err != nil {
		return nil, err
	}
	defer a.tr.Agent().Close()
	stream, err := sim.New(cfg.Sim, seed, 0)
	if err != nil {
		return nil, fmt.Errorf("experiment: %w", err)
	}
	logging := sim.Uniform{N: cfg.Sim.NumActions()}
	var stepErr error
	for a.updates < cfg.Updates && stepErr == nil {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		stream.RunEpisode(logging, func(tr *sim.Transition) {
			a.insert(tr)
			for stepErr == nil && a.updates < cfg.Updates && a.tr.Due() {
				stepErr = a.update()
			}
		})
	}
	if stepErr != nil {
		return nil, stepErr
	}
	return a.tr.Agent().Snapshot(), nil
}
