package pipeline

import (
	"fmt"
	"io"
	"math"
	"text/tabwriter"

	"github.com/aelp/aelp/learner/policy"
	"github.com/aelp/aelp/producers/sim"
)

// Print writes the run's summary table.
func (s Summary) Print(w io.Writer) {
	where := "brokers " + fmt.Sprint(s.Brokers)
	if s.Embedded {
		where = "embedded broker " + fmt.Sprint(s.Brokers)
	}
	fmt.Fprintf(w, "\naelp run %s on %s: %.1fs streaming, %.1fs evaluation", s.ExperimentID, where,
		s.Elapsed.Seconds(), s.EvalElapsed.Seconds())
	if s.TagLimit != nil {
		fmt.Fprintf(w, ", %.1fs Bayes limit", s.TagLimitElapsed.Seconds())
	}
	fmt.Fprintf(w, "\n\n")
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	l := s.Learn
	b := l.Batches
	// Standard error of the mean batch crisis share over the updates (0
	// with fewer than two).
	meas, se := b.CrisisShare.Mean(), 0.0
	if n := b.CrisisShare.N(); n > 1 {
		se = b.CrisisShare.Std() / math.Sqrt(float64(n))
	}
	fmt.Fprintf(tw, "pipeline\t\n")
	fmt.Fprintf(tw, "  users simulated\t%d\n", s.Sim.Users)
	fmt.Fprintf(tw, "  experiences published\t%d\n", s.Sim.Experiences)
	fmt.Fprintf(tw, "  experiences tagged (crisis)\t%d (%d)\n", s.Agg.Tagged, s.Agg.Crisis)
	writeTagging(tw, s.Tagger, s.Agg)
	if s.TagLimit != nil {
		writeTagLimit(tw, s.TagLimit)
	}
	fmt.Fprintf(tw, "  dead-lettered\t%d\n", s.Agg.DeadLettered+l.DeadLettered)
	fmt.Fprintf(tw, "  experiences ingested by the learner\t%d\n", l.Ingested)
	fmt.Fprintf(tw, "  PPO updates (samples drawn)\t%d (%d)\n", l.Updates, l.Sampled)
	fmt.Fprintf(tw, "  learner's loop: updating / waiting for records\t%.1fs / %.1fs of %.1fs streaming\n",
		l.UpdateTime.Seconds(), l.WaitTime.Seconds(), s.Elapsed.Seconds())
	fmt.Fprintf(tw, "  simulators held back by the learner (summed over goroutines)\t%.1fs\n", s.HeldBack.Seconds())
	fmt.Fprintf(tw, "  policy snapshots acted on (last version)\t%d\n", s.Sim.PolicyVersion)
	if l.HeldOut > 0 {
		fmt.Fprintf(tw, "  experiences of held-out users (journeys in the evaluation set)\t%d (%d)\n", l.HeldOut, l.EvalJourneys)
		fmt.Fprintf(tw, "  snapshots promoted / held back by the gate\t%d / %d\n", l.Promoted, l.HeldBack)
	}
	fmt.Fprintf(tw, "importance sampling\t\n")
	fmt.Fprintf(tw, "  crisis share of the buffer\t%.3f\n", l.Buffer.CrisisFraction)
	fmt.Fprintf(tw, "  mean batch crisis ratio, measured\t%.4f ± %.4f (s.e.)\n", meas, se)
	fmt.Fprintf(tw, "  mean batch crisis ratio, expected\t%.4f\n", b.ExpectedCrisisShare.Mean())
	fmt.Fprintf(tw, "  IS weight mean (min, max) over batches\t%.3f (%.3f, %.3f)\n", b.WeightMean.Mean(), b.WeightMin.Min(), b.WeightMax.Max())
	fmt.Fprintf(tw, "  final beta\t%.3f\n", l.Buffer.Beta)
	if s.Join != nil {
		tw.Flush()
		s.printJoin(w)
		s.printServe(w)
	}
	fmt.Fprintf(tw, "final update\t\n")
	fmt.Fprintf(tw, "  policy loss / value loss / entropy\t%.4f / %.4f / %.4f\n", l.Last.PolicyLoss, l.Last.ValueLoss, l.Last.Entropy)
	fmt.Fprintf(tw, "  approx KL / clip fraction / explained variance\t%.4f / %.3f / %.3f\n", l.Last.ApproxKL, l.Last.ClipFrac, l.Last.ExplainedVariance)
	fmt.Fprintf(tw, "  learning rate\t%.3g\n", l.Last.LearningRate)
	tw.Flush()

	s.printEvaluation(w)
	if len(s.Curve) > 0 {
		fmt.Fprintf(w, "\nlearning curve (each policy snapshot on %d held-out journeys)\n\n", s.Curve[0].Eval.Episodes)
		policy.WriteCurve(w, s.Curve)
	}
	fmt.Fprintf(w, "\ncheckpoint: %s\n", s.Checkpoint)
}

// printEvaluation writes the held-out evaluation: the learned, served and
// logging policies and the exact oracle.
func (s Summary) printEvaluation(w io.Writer) {
	fmt.Fprintf(w, "\nheld-out evaluation (%d journeys per policy; ± is the 95%% CI half-width)\n\n", s.Learned.Episodes)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "policy\tcrisis return\tcrisis conversion\tregular return\tregular conversion\tvalue per user\n")
	row := func(name string, r sim.EvalReport) {
		fmt.Fprintf(tw, "%s\t%.3f ± %.3f\t%.3f\t%.3f ± %.3f\t%.3f\t%.3f ± %.3f\n", name,
			r.Crisis.MeanReturn, r.Crisis.ReturnCI, r.Crisis.ConversionRate,
			r.Regular.MeanReturn, r.Regular.ReturnCI, r.Regular.ConversionRate, r.ValuePerUser, r.ValuePerUserCI)
	}
	row("learned (PPO)", s.Learned)
	if s.Served != nil {
		name := fmt.Sprintf("served (last promoted, v%d)", s.ServedVersion)
		if s.ServedVersion < 0 {
			name = "served (none promoted: logging)"
		}
		row(name, *s.Served)
	}
	row("logging (uniform)", s.Logging)
	o := s.Oracle
	fmt.Fprintf(tw, "oracle (exact)\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\n", o.Crisis.AdaptiveReturn, o.Crisis.AdaptiveConversion,
		o.Regular.AdaptiveReturn, o.Regular.AdaptiveConversion, o.AdaptiveValuePerUser)
	tw.Flush()
}
