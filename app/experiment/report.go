package experiment

import (
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"

	"github.com/aelp/aelp/producers/sim"
)

// Columns of a Row, in order.
const (
	ColCrisisReturn = iota
	ColCrisisConversion
	ColRegularReturn
	ColRegularConversion
	ColValuePerUser
	NumCols
)

// ColumnNames are the headers of the Row cells.
var ColumnNames = [NumCols]string{"crisis return", "crisis conversion", "regular return", "regular conversion", "value per user"}

// Row is one line of the result table: a policy (or a difference of arms)
// and its figures over seeds.
type Row struct {
	// Name names the policy.
	Name string
	// Cells are the figures, indexed by the Col constants.
	Cells [NumCols]Summary
	// Exact marks rows computed from the model (the oracle): no interval.
	Exact bool
	// Difference marks the paired difference of the arms.
	Difference bool
}

// evalFigures returns the Row figures of one evaluation.
func evalFigures(r sim.EvalReport) [NumCols]float64 {
	return [NumCols]float64{
		r.Crisis.MeanReturn, r.Crisis.ConversionRate,
		r.Regular.MeanReturn, r.Regular.ConversionRate, r.ValuePerUser,
	}
}

func evalsOf(runs []Run) []sim.EvalReport {
	out := make([]sim.EvalReport, len(runs))
	for i, r := range runs {
		out[i] = r.Eval
	}
	return out
}

// summarizeEvals returns the mean and 95% interval over seeds of every
// column.
func summarizeEvals(evals []sim.EvalReport) [NumCols]Summary {
	var out [NumCols]Summary
	for c := range NumCols {
		out[c] = Summarize(column(evals, func(e sim.EvalReport) float64 { return evalFigures(e)[c] }))
	}
	return out
}

// Names of the paired-difference rows.
const (
	RowISMinusUniform       = "IS − uniform (paired)"
	RowAdaptiveMinusUniform = "adaptive − uniform (paired)"
	RowAdaptiveMinusIS      = "adaptive − IS (paired)"
)

// Rows returns the result table: the importance-sampling arm, the uniform
// arm, with Config.AdaptiveArm the adaptive arm, the paired differences
// (IS − uniform; adaptive − uniform and adaptive − IS), the logging
// policy, each with means and 95% intervals over seeds, and the exact
// oracle (the Bellman-optimal policy that knows the segment).
func (r Result) Rows() []Row {
	o := r.Oracle
	exact := func(x float64) Summary { return Summary{Mean: x, N: 0} }
	rows := []Row{{Name: ArmIS, Cells: summarizeEvals(evalsOf(r.IS))}, {Name: ArmUniform, Cells: summarizeEvals(evalsOf(r.Uniform))}}
	if r.Adaptive != nil {
		rows = append(rows, Row{Name: ArmAdaptive, Cells: summarizeEvals(evalsOf(r.Adaptive))})
	}
	rows = append(rows, pairedRow(RowISMinusUniform, r.IS, r.Uniform))
	if r.Adaptive != nil {
		rows = append(rows, pairedRow(RowAdaptiveMinusUniform, r.Adaptive, r.Uniform), pairedRow(RowAdaptiveMinusIS, r.Adaptive, r.IS))
	}
	return append(rows,
		Row{Name: "logging (uniform random)", Cells: summarizeEvals(r.Logging)},
		Row{Name: "oracle (exact)", Exact: true, Cells: [NumCols]Summary{
			exact(o.Crisis.AdaptiveReturn), exact(o.Crisis.AdaptiveConversion),
			exact(o.Regular.AdaptiveReturn), exact(o.Regular.AdaptiveConversion), exact(o.AdaptiveValuePerUser),
		}})
}

// row returns the row named name of rows (the zero Row when absent).
func row(rows []Row, name string) Row {
	for _, r := range rows {
		if r.Name == name {
			return r
		}
	}
	return Row{}
}

// CurveBand is the mean over seeds of one arm's curve with its 95%
// interval at every point.
type CurveBand struct {
	// Updates are the x values.
	Updates []int
	// CrisisReturn and ValuePerUser are the bands at each x.
	CrisisReturn, ValuePerUser []Summary
}

// Band returns the mean curve of runs with its 95% interval over seeds.
// Every run must have the same curve schedule (they do when they come from
// one Config).
func Band(runs []Run) CurveBand {
	var b CurveBand
	if len(runs) == 0 {
		return b
	}
	for k, p := range runs[0].Curve {
		b.Updates = append(b.Updates, p.Updates)
		b.CrisisReturn = append(b.CrisisReturn, Summarize(column(runs, func(r Run) float64 { return r.Curve[k].CrisisReturn })))
		b.ValuePerUser = append(b.ValuePerUser, Summarize(column(runs, func(r Run) float64 { return r.Curve[k].ValuePerUser })))
	}
	return b
}

func meanOf(runs []Run, f func(Run) float64) float64 {
	s := 0.0
	for _, r := range runs {
		s += f(r)
	}
	return s / float64(len(runs))
}

// Print writes the settings, the result table, the training diagnostics
// and a one-paragraph reading of the result.
func (r Result) Print(w io.Writer) {
	c := r.Config
	rc := c.Replay
	tag := "the aggregator's classifier (consumers/classify defaults)"
	if c.TagWithTruth {
		tag = "the simulator's ground truth"
	}
	vs := "importance sampling vs uniform sampling"
	if r.Adaptive != nil {
		vs = "importance sampling (fixed weight) vs uniform sampling vs adaptive crisis weight"
	}
	fmt.Fprintf(w, "\naelp experiment ab: %s, %d seeds × %d updates per arm, %.0fs\n\n",
		vs, c.Seeds, c.Updates, r.Elapsed.Seconds())
	fmt.Fprintf(w, "Learners run in-process without Kafka, each on the learn role's training core (learner/train):\n")
	fmt.Fprintf(w, "simulated journeys of the uniform logging policy (identical stream per seed for both arms),\n")
	fmt.Fprintf(w, "converted as aelp simulate publishes them, tagged by %s,\n", tag)
	fmt.Fprintf(w, "inserted while the rate limiter allows and trained on as the learn role trains on a backlog:\n")
	fmt.Fprintf(w, "  buffer %d, min buffer %d, batch %d, %.3g sample(s) per insert ± %g, PPO %d epochs × %d minibatches, lr %g, hidden %v\n",
		rc.Capacity, c.MinBuffer, c.BatchSize, c.SamplesPerInsert, c.trainConfig(0, false).Tolerance(),
		c.PPO.Epochs, c.PPO.Minibatches, c.PPO.LR, c.PPO.Hidden)
	fmt.Fprintf(w, "  IS arm: crisis_parent_weight %g, α %g, T %g, β0 %g annealed to 1 over %d updates, min crisis ratio %g\n",
		rc.CrisisWeight, rc.Alpha, rc.Temperature, rc.Beta0, rc.AnnealSteps, rc.MinCrisisRatio)
	if r.Adaptive != nil {
		fmt.Fprintf(w, "  adaptive arm: as the IS arm, the crisis weight starting at %g and set after every update from the TD errors\n", rc.CrisisWeight)
		fmt.Fprintf(w, "    (P_c/P_r = √(e_c/e_r), e_s the stratum's mean squared TD error smoothed over τ = %g updates), within [1, %g]\n",
			c.Adaptive.Smoothing, c.Adaptive.MaxWeight)
	}
	fmt.Fprintf(w, "  held-out evaluation: %d journeys per policy per seed, on seeds never trained on (2^40 + seed)\n\n", c.EvalEpisodes)

	fmt.Fprintf(w, "held-out results, mean over %d seeds ± 95%% CI half-width (Student's t over seeds)\n\n", c.Seeds)
	writeTable(w, r.Rows())

	fmt.Fprintf(w, "\ntraining diagnostics (mean over seeds)\n\n")
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "arm\tbatch crisis share (tagged)\texpected\ttruly crisis\tIS weight mean (min, max)\tfinal β\tcrisis weight mean (final)\ttag precision / recall\tfinal entropy\texperiences\n")
	arms := []struct {
		name string
		runs []Run
	}{{ArmIS, r.IS}, {ArmUniform, r.Uniform}}
	if r.Adaptive != nil {
		arms = append(arms, struct {
			name string
			runs []Run
		}{ArmAdaptive, r.Adaptive})
	}
	for _, a := range arms {
		runs := a.runs
		wmin, wmax := math.Inf(1), math.Inf(-1)
		for _, x := range runs {
			wmin, wmax = math.Min(wmin, x.WeightMin), math.Max(wmax, x.WeightMax)
		}
		fmt.Fprintf(tw, "%s\t%.4f\t%.4f\t%.4f\t%.3f (%.3f, %.3f)\t%.3f\t%.2f (%.2f)\t%.3f / %.3f\t%.3f\t%.0f\n", a.name,
			meanOf(runs, func(x Run) float64 { return x.BatchCrisisShare }),
			meanOf(runs, func(x Run) float64 { return x.ExpectedCrisisShare }),
			meanOf(runs, func(x Run) float64 { return x.TrueCrisisShare }),
			meanOf(runs, func(x Run) float64 { return x.WeightMean }), wmin, wmax,
			meanOf(runs, func(x Run) float64 { return x.FinalBeta }),
			meanOf(runs, func(x Run) float64 { return x.CrisisWeightMean }),
			meanOf(runs, func(x Run) float64 { return x.FinalCrisisWeight }),
			meanOf(runs, func(x Run) float64 { return x.TagPrecision }),
			meanOf(runs, func(x Run) float64 { return x.TagRecall }),
			meanOf(runs, func(x Run) float64 { return x.Last.Entropy }),
			meanOf(runs, func(x Run) float64 { return float64(x.Inserted) }))
	}
	tw.Flush()
	fmt.Fprintf(w, "\n%s\n", r.Verdict())
}

// sayDiff says in words what the paired difference s of figure name says
// about arm.
func sayDiff(arm, name string, s Summary) string {
	switch {
	case !s.Finite():
		return fmt.Sprintf("%s: undefined", name)
	case s.Excludes(0) && s.Mean > 0:
		return fmt.Sprintf("%s %+.3f ± %.3f: %s is better (the 95%% CI excludes 0)", name, s.Mean, s.HalfWidth, arm)
	case s.Excludes(0):
		return fmt.Sprintf("%s %+.3f ± %.3f: %s is worse (the 95%% CI excludes 0)", name, s.Mean, s.HalfWidth, arm)
	default:
		return fmt.Sprintf("%s %+.3f ± %.3f: no significant difference (the 95%% CI contains 0)", name, s.Mean, s.HalfWidth)
	}
}

// writeTable writes rows as the result table: means ± 95% half-widths,
// paired differences signed, exact rows bare.
func writeTable(w io.Writer, rows []Row) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "policy\t%s\n", strings.Join(ColumnNames[:], "\t"))
	for _, row := range rows {
		cells := make([]string, NumCols)
		for i, s := range row.Cells {
			digits := 3
			if i == ColCrisisConversion || i == ColRegularConversion {
				digits = 4
			}
			switch {
			case row.Exact:
				cells[i] = fmt.Sprintf("%.*f", digits, s.Mean)
			case row.Difference:
				cells[i] = fmt.Sprintf("%+.*f ± %.*f", digits, s.Mean, digits, s.HalfWidth)
			default:
				cells[i] = fmt.Sprintf("%.*f ± %.*f", digits, s.Mean, digits, s.HalfWidth)
			}
		}
		fmt.Fprintf(tw, "%s\t%s\n", row.Name, strings.Join(cells, "\t"))
	}
	tw.Flush()
}

// Verdict states, in words, what the paired differences say, and why
// importance sampling can at most reduce variance here.
func (r Result) Verdict() string {
	rows := r.Rows()
	var b strings.Builder
	for _, p := range []struct{ row, arm string }{{RowISMinusUniform, "IS"}, {RowAdaptiveMinusUniform, "adaptive"}, {RowAdaptiveMinusIS, "adaptive"}} {
		d := row(rows, p.row)
		if d.Name == "" {
			continue
		}
		fmt.Fprintf(&b, "Reading (%s over %d seeds):\n", d.Name, len(r.IS))
		fmt.Fprintf(&b, "  %s\n", sayDiff(p.arm, "crisis-parent return", d.Cells[ColCrisisReturn]))
		fmt.Fprintf(&b, "  %s\n", sayDiff(p.arm, "regular-parent return", d.Cells[ColRegularReturn]))
		fmt.Fprintf(&b, "  %s\n", sayDiff(p.arm, "value per user", d.Cells[ColValuePerUser]))
	}
	isC, unC := rows[0].Cells[ColCrisisReturn], rows[1].Cells[ColCrisisReturn]
	fmt.Fprintf(&b, "  spread over seeds of the crisis return (95%% CI half-width): IS ±%.3f, uniform ±%.3f", isC.HalfWidth, unC.HalfWidth)
	if r.Adaptive != nil {
		fmt.Fprintf(&b, ", adaptive ±%.3f", row(rows, ArmAdaptive).Cells[ColCrisisReturn].HalfWidth)
	}
	fmt.Fprintf(&b, "\n")
	fmt.Fprintf(&b, "Why: prioritised sampling changes which experiences are drawn, and the IS weights\n")
	fmt.Fprintf(&b, "(N·P(i))^−β undo it; at β = 1 the expected gradient equals uniform sampling's, so the\n")
	fmt.Fprintf(&b, "only possible gain is lower variance of the crisis segment's gradient (more crisis samples\n")
	fmt.Fprintf(&b, "per batch, each down-weighted)")
	rc := r.Config.Replay
	if rc.Beta0 < 1 {
		fmt.Fprintf(&b, ". Here β starts at %g and reaches 1 after %d updates: before that the\n", rc.Beta0, rc.AnnealSteps)
		fmt.Fprintf(&b, "correction is partial and the objective itself leans towards crisis parents (see the curves for\n")
		fmt.Fprintf(&b, "when the arms separate; --importance-sampling-beta 1 isolates the variance effect).")
	} else {
		fmt.Fprintf(&b, ". Here β = 1 from the first update: both arms optimise the same objective,\n")
		fmt.Fprintf(&b, "so any difference is the variance (and optimiser) effect.")
	}
	return b.String()
}
