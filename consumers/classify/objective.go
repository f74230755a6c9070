package classify

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ObjectiveKind says what a decision threshold is chosen for.
type ObjectiveKind int8

// The objectives.
const (
	// ObjectiveF1 maximises F1 of the crisis tags.
	ObjectiveF1 ObjectiveKind = iota
	// ObjectivePrecision maximises recall subject to precision ≥ Objective.Target.
	ObjectivePrecision
	// ObjectiveCost minimises the expected cost when a missed crisis parent
	// costs Objective.Target false crisis tags.
	ObjectiveCost
)

// Objective is what the learned tagger's decision threshold on P(crisis) is
// chosen for; see ParseObjective for the forms.
type Objective struct {
	// Kind is the objective.
	Kind ObjectiveKind
	// Target is the precision floor (ObjectivePrecision, in (0, 1)) or the
	// cost ratio (ObjectiveCost, > 0); unused for ObjectiveF1.
	Target float64
}

// DefaultObjective is f1. Why: F1 is the figure the rules are measured by,
// and both of its errors cost the learner — a false crisis tag spends the
// 5× sampling emphasis on a regular parent, a missed one leaves a crisis
// parent at the uniform rate — without a measured exchange rate between them
// that a cost objective would need.
var DefaultObjective = Objective{Kind: ObjectiveF1}

// ParseObjective parses "f1", "precision=P" (0 < P < 1) or "cost=R" (R > 0,
// finite: a missed crisis parent costs R false crisis tags, so the
// threshold is the Bayes decision p ≥ 1/(1 + R) on a calibrated p).
func ParseObjective(s string) (Objective, error) {
	s = strings.TrimSpace(s)
	if s == "f1" {
		return Objective{Kind: ObjectiveF1}, nil
	}
	name, val, ok := strings.Cut(s, "=")
	if !ok {
		return Objective{}, fmt.Errorf("%w: tagger objective %q: want f1, precision=P or cost=R", ErrInvalidConfig, s)
	}
	v, err := strconv.ParseFloat(val, 64)
	switch {
	case err != nil:
		return Objective{}, fmt.Errorf("%w: tagger objective %q: %q is not a number", ErrInvalidConfig, s, val)
	case name == "precision" && v > 0 && v < 1:
		return Objective{Kind: ObjectivePrecision, Target: v}, nil
	case name == "cost" && v > 0 && !math.IsInf(v, 0):
		return Objective{Kind: ObjectiveCost, Target: v}, nil
	case name == "precision":
		return Objective{}, fmt.Errorf("%w: tagger objective %q: precision not in (0, 1)", ErrInvalidConfig, s)
	case name == "cost":
		return Objective{}, fmt.Errorf("%w: tagger objective %q: cost not a finite number > 0", ErrInvalidConfig, s)
	}
	return Objective{}, fmt.Errorf("%w: tagger objective %q: want f1, precision=P or cost=R", ErrInvalidConfig, s)
}

// String returns the form ParseObjective reads.
func (o Objective) String() string {
	switch o.Kind {
	case ObjectivePrecision:
		return "precision=" + strconv.FormatFloat(o.Target, 'g', -1, 64)
	case ObjectiveCost:
		return "cost=" + strconv.FormatFloat(o.Target, 'g', -1, 64)
	}
	return "f1"
}

// Validate reports whether o is one ParseObjective could return.
func (o Objective) Validate() error {
	_, err := ParseObjective(o.String())
	if err == nil && o.Kind != ObjectiveF1 && o.Kind != ObjectivePrecision && o.Kind != ObjectiveCost {
		err = fmt.Errorf("%w: tagger objective kind %d", ErrInvalidConfig, o.Kind)
	}
	return err
}

// Set parses s into o (flag.Value).
func (o *Objective) Set(s string) error {
	v, err := ParseObjective(s)
	if err != nil {
		return err
	}
	*o = v
	return nil
}

// thresholdBins is the resolution of the threshold search: the
// probabilities [0, 1] in 1000 equal bins.
const thresholdBins = 1000

// thresholder keeps a histogram of the model's predictions on labelled
// records, each made before the model trained on that record (so they are
// held-out predictions), split by the label, and picks the threshold for
// an objective from it. Counts are halved every halfLife labelled records,
// so the histogram follows the model as it learns.
type thresholder struct {
	pos, neg [thresholdBins]float64
	seen     uint64
}

const thresholdHalfLife = 8192

func (t *thresholder) observe(p float64, crisis bool) {
	b := min(max(int(p*thresholdBins), 0), thresholdBins-1)
	if crisis {
		t.pos[b]++
	} else {
		t.neg[b]++
	}
	t.seen++
	if t.seen%thresholdHalfLife == 0 {
		for i := range t.pos {
			t.pos[i] /= 2
			t.neg[i] /= 2
		}
	}
}

// threshold returns the threshold for o: tag crisis when p ≥ threshold.
// For f1 it is the bin edge that maximises 2TP/(2TP + FP + FN) over the
// histogram; for precision=P the lowest edge whose precision is ≥ P
// (most recall), or, when none reaches P, the edge of highest precision;
// for cost=R it is 1/(1 + R), which needs no histogram. With no positive
// in the histogram yet it returns ½.
func (t *thresholder) threshold(o Objective) float64 {
	if o.Kind == ObjectiveCost {
		return 1 / (1 + o.Target)
	}
	var total float64
	for _, n := range t.pos {
		total += n
	}
	if total == 0 {
		return 0.5
	}
	best, bestScore := 0.5, -1.0
	var tp, fp float64
	for b := thresholdBins - 1; b >= 0; b-- {
		tp += t.pos[b]
		fp += t.neg[b]
		if tp == 0 {
			continue
		}
		edge := float64(b) / thresholdBins
		var score float64
		switch o.Kind {
		case ObjectivePrecision:
			prec := tp / (tp + fp)
			score = prec
			if prec >= o.Target {
				score = 1 + tp/total // any edge meeting the floor beats any that does not; then recall
			}
		default:
			score = 2 * tp / (2*tp + fp + (total - tp))
		}
		if score >= bestScore {
			best, bestScore = edge, score
		}
	}
	return best
}

// appendBinary appends the histogram and its count.
func (t *thresholder) appendBinary(b []byte) []byte {
	b = binary.LittleEndian.AppendUint64(b, t.seen)
	for i := range t.pos {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(t.pos[i]))
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(t.neg[i]))
	}
	return b
}

const thresholderSize = 8 + 2*8*thresholdBins

func decodeThresholder(b []byte) (*thresholder, []byte, error) {
	if len(b) < thresholderSize {
		return nil, nil, fmt.Errorf("%w: threshold histogram: %d bytes, want %d", ErrBadState, len(b), thresholderSize)
	}
	t := &thresholder{seen: binary.LittleEndian.Uint64(b)}
	b = b[8:]
	for i := range t.pos {
		t.pos[i] = math.Float64frombits(binary.LittleEndian.Uint64(b))
		t.neg[i] = math.Float64frombits(binary.LittleEndian.Uint64(b[8:]))
		b = b[16:]
		if !(t.pos[i] >= 0) || !(t.neg[i] >= 0) || math.IsInf(t.pos[i]+t.neg[i], 0) {
			return nil, nil, fmt.Errorf("%w: threshold histogram: bin %d not a finite count", ErrBadState, i)
		}
	}
	return t, b, nil
}
