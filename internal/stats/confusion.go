package stats

// Confusion is a confusion matrix of binary decisions against ground truth:
// the counts of true and false positives and negatives. Its zero value is
// empty and ready to use. Ratios with a zero denominator are reported as
// 0, never NaN; the counts tell when that happened.
type Confusion struct {
	// TP counts positive decisions on true positives.
	TP uint64
	// FP counts positive decisions on true negatives.
	FP uint64
	// FN counts negative decisions on true positives.
	FN uint64
	// TN counts negative decisions on true negatives.
	TN uint64
}

// Observe counts one decision (positive: decided positive) against the
// truth (actual: truly positive).
func (c *Confusion) Observe(positive, actual bool) {
	switch {
	case positive && actual:
		c.TP++
	case positive:
		c.FP++
	case actual:
		c.FN++
	default:
		c.TN++
	}
}

// Total returns TP + FP + FN + TN.
func (c Confusion) Total() uint64 { return c.TP + c.FP + c.FN + c.TN }

// Add returns the element-wise sum of c and o.
func (c Confusion) Add(o Confusion) Confusion {
	return Confusion{TP: c.TP + o.TP, FP: c.FP + o.FP, FN: c.FN + o.FN, TN: c.TN + o.TN}
}

// Precision returns TP/(TP + FP), or 0 when no positive decision was made.
func (c Confusion) Precision() float64 { return ratio(c.TP, c.TP+c.FP) }

// Recall returns TP/(TP + FN), or 0 when no true positive was seen.
func (c Confusion) Recall() float64 { return ratio(c.TP, c.TP+c.FN) }

// F1 returns the harmonic mean of precision and recall,
// 2·TP/(2·TP + FP + FN), or 0 when TP + FP + FN = 0.
func (c Confusion) F1() float64 { return ratio(2*c.TP, 2*c.TP+c.FP+c.FN) }

// Accuracy returns (TP + TN)/Total, or 0 when Total = 0.
func (c Confusion) Accuracy() float64 { return ratio(c.TP+c.TN, c.Total()) }

func ratio(num, den uint64) float64 {
	if den == 0 {
		return 0
	}
	return float64(num) / float64(den)
}
