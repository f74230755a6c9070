package train

import (
	"github.com/aelp/aelp/consumers/classify"
	"github.com/aelp/aelp/schemas"
)

// classifySource maps a tagged experience's tag source to the classifier's
// Source of the same symbol (LABEL, METADATA, VALUE, DEFAULT).
var classifySource = func() map[schemas.TagSource]classify.Source {
	m := map[schemas.TagSource]classify.Source{}
	for _, ts := range []schemas.TagSource{schemas.TagLabel, schemas.TagMetadata, schemas.TagValue, schemas.TagDefault} {
		s, err := classify.ParseSource(ts.String())
		if err != nil {
			panic("train: tag source without a classifier source: " + err.Error())
		}
		m[ts] = s
	}
	return m
}()

// observeTagging counts te's crisis tag and its tag_score (the calibrated
// P(crisis) for every source) against the truth, under te's tag source.
// A tag source unknown to the classifier is not counted (validated records
// carry known ones).
func (t *Trainer) observeTagging(te *schemas.TaggedExperience, truthCrisis bool) {
	s, ok := classifySource[te.TagSource]
	if !ok {
		return
	}
	t.tagging.Observe(classify.Decision{Crisis: te.EventType == schemas.EventCrisis, Source: s, Score: te.TagScore}, truthCrisis)
}

// Tagging returns the crisis tags' precision, recall, F1, Brier score and
// expected calibration error (classify.Calibration's CalibrationBins
// equal-width bins of tag_score) per tag source, over the experiences
// inserted with ground truth so far (the ones Stats.Tags counts).
func (t *Trainer) Tagging() classify.Report { return t.tagging.Report() }
