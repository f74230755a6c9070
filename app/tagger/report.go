package tagger

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/aelp/aelp/consumers/classify"
)

// Write prints the report: per record set, each tagger's precision,
// recall, F1, Brier score and ECE, then the held-out calibration, the
// thresholds, the two members' difference and the model's weights.
func (r Report) Write(w io.Writer) error {
	if r.Ghosts == 0 {
		fmt.Fprintf(w, "stream: uniform logging policy, %d users, %d records (%d labelled), crisis share of records %.4f (exact); Bayes limit from the exact posterior\n\n",
			r.Users, r.Records, r.Labelled, r.RecordCrisisShare)
	} else {
		fmt.Fprintf(w, "stream: a learned policy acting, %d users, %d records (%d labelled), crisis share of records %.4f (counted); Bayes limit from the Monte Carlo posterior, %d ghost journeys per segment and user\n\n",
			r.Users, r.Records, r.Labelled, r.RecordCrisisShare, r.Ghosts)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "records\ttagger\tprecision\trecall\tF1\tBrier\tECE\n")
	sets := []struct {
		name string
		rows []Row
	}{{"all", r.All[:]}, {"unlabelled", r.Unlabelled[:]}, {"unlabelled after warm-up", r.AfterWarmUp[:]}}
	for _, s := range sets {
		for _, row := range s.rows {
			fmt.Fprintf(tw, "%s\t%s\t%.3f\t%.3f\t%.3f\t%.4f\t%.4f\n", s.name, row.Name, row.Precision, row.Recall, row.F1, row.Brier, row.ECE)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nBayes limit on the unlabelled records: F1 %.3f at posterior threshold %.3f (expected F1 from the posteriors %.3f)\n",
		r.Unlabelled[2].F1, r.BayesThreshold, r.BayesExpectedF1)
	fmt.Fprintf(w, "learned - Bayes limit: all %+.3f, unlabelled %+.3f; learned - rules: all %+.3f, unlabelled %+.3f\n",
		r.All[1].F1-r.All[2].F1, r.Unlabelled[1].F1-r.Unlabelled[2].F1, r.All[1].F1-r.All[0].F1, r.Unlabelled[1].F1-r.Unlabelled[0].F1)
	fmt.Fprintf(w, "learned model on held-out labelled records (each predicted before training on it): Brier %.4f, ECE %.4f; final threshold %.3f\n",
		r.HeldOutBrier, r.HeldOutECE, r.LearnedThreshold)
	m := r.Members
	fmt.Fprintf(w, "two group members, each learning on its half of the users: F1 %.3f and %.3f (one model %.3f); |p0 - p1| mean %.4f, max %.4f; tagged differently %.4f\n",
		m.F1[0], m.F1[1], m.Single, m.MeanAbsDiff, m.MaxAbsDiff, m.Disagree)
	fmt.Fprintf(w, "\nweights:")
	for i, name := range classify.FeatureNames() {
		fmt.Fprintf(w, " %s %.3f", name, r.Weights[i])
	}
	_, err := fmt.Fprintln(w)
	return err
}
