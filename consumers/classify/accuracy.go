package classify

import (
	"fmt"

	"github.com/aelp/aelp/internal/stats"
)

// Counts is the confusion matrix of crisis decisions against ground truth,
// crisis being the positive class: stats.Confusion under the name this
// package reports it by (TP counts crisis decisions on true crisis parents,
// FP crisis decisions on true regular parents, FN regular decisions on
// true crisis parents, TN regular decisions on true regular parents).
type Counts = stats.Confusion

// Metrics is a confusion matrix with its precision, recall and F1. An
// undefined ratio (zero denominator) is reported as 0, never NaN; the counts
// tell when that happened.
type Metrics struct {
	Counts
	// Precision is Counts.Precision().
	Precision float64
	// Recall is Counts.Recall().
	Recall float64
	// F1 is Counts.F1().
	F1 float64
	// Brier and ECE are the Brier score and the expected calibration error
	// of the decisions' Score (the calibrated P(crisis)) against the truth;
	// see Calibration.
	Brier, ECE float64
}

func metricsOf(c Counts, cal *Calibration) Metrics {
	return Metrics{Counts: c, Precision: c.Precision(), Recall: c.Recall(), F1: c.F1(), Brier: cal.Brier(), ECE: cal.ECE()}
}

// Report is a snapshot of an Accuracy.
type Report struct {
	// Overall covers every observed decision.
	Overall Metrics
	// BySource[s] covers the decisions made by Source s: its precision is
	// that of s's crisis tags, its recall the share of the true crisis
	// parents decided by s that s tagged crisis.
	BySource [NumSources]Metrics
}

// Accuracy accumulates decisions against ground truth, overall and per
// Source. Its zero value is ready to use. An Accuracy is not safe for
// concurrent use; keep one per classifier and Merge them to report.
type Accuracy struct {
	by  [NumSources]Counts
	cal [NumSources]Calibration
}

// Observe counts decision d against the truth (true for a crisis parent).
// It panics when d.Source is not a valid Source, a programmer error.
func (a *Accuracy) Observe(d Decision, truthCrisis bool) {
	if d.Source < 0 || int(d.Source) >= NumSources {
		panic(fmt.Sprintf("classify: accuracy observe: invalid source %d", d.Source))
	}
	a.by[d.Source].Observe(d.Crisis, truthCrisis)
	a.cal[d.Source].Observe(d.Score, truthCrisis)
}

// Merge adds o's counts to a.
func (a *Accuracy) Merge(o *Accuracy) {
	for i := range a.by {
		a.by[i] = a.by[i].Add(o.by[i])
		a.cal[i].Merge(&o.cal[i])
	}
}

// Reset forgets every observation.
func (a *Accuracy) Reset() { *a = Accuracy{} }

// Report returns the metrics observed so far.
func (a *Accuracy) Report() Report {
	var r Report
	var total Counts
	var cal Calibration
	for i, c := range a.by {
		r.BySource[i] = metricsOf(c, &a.cal[i])
		total = total.Add(c)
		cal.Merge(&a.cal[i])
	}
	r.Overall = metricsOf(total, &cal)
	return r
}
