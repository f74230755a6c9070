package ope

import (
	"fmt"
	"io"
	"text/tabwriter"
)

// Describe returns one line of the report's settings: journeys, γ, the
// bootstrap, the clip and the DR model.
func (r *Report) Describe() string {
	clip := "no clipping"
	if r.Clip > 0 {
		clip = fmt.Sprintf("weights clipped at %g", r.Clip)
	}
	model := "DR model: none (Q̂ = 0)"
	switch r.Model.Model {
	case ModelFQE:
		model = fmt.Sprintf("DR model: fitted-Q on the history (state, mean state so far, %d random ReLU features), %d folds, %d iterations, out-of-fold R² %.3f",
			randomFeatures, r.Model.Folds, r.Model.Iterations, r.Model.R2)
	case ModelLinear:
		model = fmt.Sprintf("DR model: linear fitted-Q on the state, %d folds, %d iterations, out-of-fold R² %.3f",
			r.Model.Folds, r.Model.Iterations, r.Model.R2)
	}
	if r.Model.Model != ModelNone {
		if r.Model.MaxWeight > 0 {
			model += fmt.Sprintf(", gated off past weight %g (%.2f%% of steps)", r.Model.MaxWeight, 100*r.Model.GatedShare)
		} else {
			model += ", never gated"
		}
	}
	return fmt.Sprintf("%d journeys (%d steps); γ %g; %.0f%% percentile bootstrap over journeys, %d resamples (seed %d); %s; %s",
		r.Journeys, r.Steps, r.Gamma, 100*r.Confidence, r.Resamples, r.Seed, clip, model)
}

// WriteTable writes the report as a table: per segment the logged mean
// return and each estimator's estimate, interval, normalised value and
// the segment's ESS, then the notes.
func (r *Report) WriteTable(w io.Writer) error {
	if _, err := fmt.Fprintf(w, "%s: %s\n", r.Target, r.Describe()); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	pct := 100 * r.Confidence
	fmt.Fprintf(tw, "segment\tjourneys\tESS\testimator\testimate\t%.0f%% CI\tnormalised\t%.0f%% CI\n", pct, pct)
	for _, s := range r.Segments {
		fmt.Fprintf(tw, "%s\t%d\t%.1f\tlogged\t%.4g\t[%.4g, %.4g]\t%s\t\n", s.Name, s.Journeys, s.ESS,
			s.Logged.Value, s.Logged.Lo, s.Logged.Hi, parity(s))
		for _, e := range s.Estimates {
			norm, normCI := "—", ""
			if n := e.Normalized; n != nil {
				norm, normCI = fmt.Sprintf("%.3f", n.Value), fmt.Sprintf("[%.3f, %.3f]", n.Lo, n.Hi)
			}
			fmt.Fprintf(tw, "\t\t\t%s\t%.4g\t[%.4g, %.4g]\t%s\t%s\n", e.Estimator, e.Value, e.Lo, e.Hi, norm, normCI)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, n := range r.Notes {
		if _, err := fmt.Fprintf(w, "note: %s\n", n); err != nil {
			return err
		}
	}
	return nil
}

// parity is the logged row's normalised column: 1.000 when the segment
// normalises.
func parity(s Segment) string {
	if s.Logged.Lo > 0 {
		return "1.000"
	}
	return "—"
}
