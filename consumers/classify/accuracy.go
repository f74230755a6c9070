package classify

import "fmt"

// Counts is a confusion matrix of crisis decisions against ground truth,
// crisis being the positive class.
type Counts struct {
	// TP counts crisis decisions on true crisis parents.
	TP uint64
	// FP counts crisis decisions on true regular parents.
	FP uint64
	// FN counts regular decisions on true crisis parents.
	FN uint64
	// TN counts regular decisions on true regular parents.
	TN uint64
}

// Total returns TP + FP + FN + TN.
func (c Counts) Total() uint64 { return c.TP + c.FP + c.FN + c.TN }

// Add returns the element-wise sum of c and o.
func (c Counts) Add(o Counts) Counts {
	return Counts{TP: c.TP + o.TP, FP: c.FP + o.FP, FN: c.FN + o.FN, TN: c.TN + o.TN}
}

// Precision returns TP/(TP + FP), or 0 when no crisis decision was made.
func (c Counts) Precision() float64 { return ratio(c.TP, c.TP+c.FP) }

// Recall returns TP/(TP + FN), or 0 when no true crisis parent was seen.
func (c Counts) Recall() float64 { return ratio(c.TP, c.TP+c.FN) }

// F1 returns the harmonic mean of precision and recall,
// 2·TP/(2·TP + FP + FN), or 0 when TP + FP + FN = 0.
func (c Counts) F1() float64 { return ratio(2*c.TP, 2*c.TP+c.FP+c.FN) }

// Accuracy returns (TP + TN)/Total, or 0 when Total = 0.
func (c Counts) Accuracy() float64 { return ratio(c.TP+c.TN, c.Total()) }

func ratio(num, den uint64) float64 {
	if den == 0 {
		return 0
	}
	return float64(num) / float64(den)
}

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
}

func metricsOf(c Counts) Metrics {
	return Metrics{Counts: c, Precision: c.Precision(), Recall: c.Recall(), F1: c.F1()}
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
	by [NumSources]Counts
}

// Observe counts decision d against the truth (true for a crisis parent).
// It panics when d.Source is not a valid Source, a programmer error.
func (a *Accuracy) Observe(d Decision, truthCrisis bool) {
	if d.Source < 0 || int(d.Source) >= NumSources {
		panic(fmt.Sprintf("classify: accuracy observe: invalid source %d", d.Source))
	}
	c := &a.by[d.Source]
	switch {
	case d.Crisis && truthCrisis:
		c.TP++
	case d.Crisis:
		c.FP++
	case truthCrisis:
		c.FN++
	default:
		c.TN++
	}
}

// Merge adds o's counts to a.
func (a *Accuracy) Merge(o *Accuracy) {
	for i := range a.by {
		a.by[i] = a.by[i].Add(o.by[i])
	}
}

// Reset forgets every observation.
func (a *Accuracy) Reset() { *a = Accuracy{} }

// Report returns the metrics observed so far.
func (a *Accuracy) Report() Report {
	var r Report
	var total Counts
	for i, c := range a.by {
		r.BySource[i] = metricsOf(c)
		total = total.Add(c)
	}
	r.Overall = metricsOf(total)
	return r
}
