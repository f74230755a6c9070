package train

import (
	"maps"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/aelp/aelp/consumers/classify"
	"github.com/aelp/aelp/schemas"
)

// TestTaggingBySource: the per-source precision, recall, F1, Brier score
// and ECE of Trainer.Tagging equal a brute-force computation over the
// inserted experiences that carry ground truth, with tag sources, crisis
// tags and tag scores drawn at random (some tags wrong, some records
// without the truth), and the sources' counts add up to Stats.Tags.
func TestTaggingBySource(t *testing.T) {
	rng := rand.New(rand.NewPCG(61, 62))
	tr := mustNew(t, testConfig(5))
	sources := []schemas.TagSource{schemas.TagLabel, schemas.TagMetadata, schemas.TagValue, schemas.TagDefault}
	type obs struct {
		tag, truth bool
		p          float64
	}
	by := map[string][]obs{}
	for i, te := range journeys(t, 30, 9, time.Time{}) {
		te.TagSource = sources[rng.IntN(len(sources))]
		te.EventType = schemas.EventRegular
		if rng.Float64() < 0.4 {
			te.EventType = schemas.EventCrisis
		}
		te.TagScore = rng.Float64()
		if i%7 == 0 { // exactly 0 and 1 land in the first and last bins
			te.TagScore = float64(i % 2)
		}
		truth, ok := te.Metadata[schemas.KeyTrueSegment]
		if i%5 == 0 {
			te.Metadata = maps.Clone(te.Metadata)
			delete(te.Metadata, schemas.KeyTrueSegment)
			ok = false
		}
		tr.Insert(&te)
		if ok {
			by[te.TagSource.String()] = append(by[te.TagSource.String()], obs{te.EventType == schemas.EventCrisis, truth == schemas.EventCrisis.String(), te.TagScore})
		}
	}
	rep := tr.Tagging()
	var total uint64
	for i, got := range rep.BySource {
		name := classify.Source(i).String()
		recs := by[name]
		if len(recs) < 20 {
			t.Fatalf("%s: only %d records with ground truth, the test needs more", name, len(recs))
		}
		var tp, fp, fn, sq float64
		var binN, binP, binY [10]float64
		for _, o := range recs {
			y := 0.0
			if o.truth {
				y = 1
			}
			switch {
			case o.tag && o.truth:
				tp++
			case o.tag:
				fp++
			case o.truth:
				fn++
			}
			sq += (o.p - y) * (o.p - y)
			b := min(int(math.Floor(o.p*10)), 9)
			binN[b]++
			binP[b] += o.p
			binY[b] += y
		}
		n := float64(len(recs))
		var ece float64
		for b := range binN {
			if binN[b] > 0 {
				ece += binN[b] / n * math.Abs(binP[b]/binN[b]-binY[b]/binN[b])
			}
		}
		want := map[string][2]float64{
			"precision": {got.Precision, tp / (tp + fp)}, "recall": {got.Recall, tp / (tp + fn)},
			"F1": {got.F1, 2 * tp / (2*tp + fp + fn)}, "Brier": {got.Brier, sq / n}, "ECE": {got.ECE, ece},
		}
		for k, v := range want {
			if math.Abs(v[0]-v[1]) > 1e-12 {
				t.Errorf("%s %s = %v, brute force %v", name, k, v[0], v[1])
			}
		}
		if got.Total() != uint64(len(recs)) {
			t.Errorf("%s: %d records counted, want %d", name, got.Total(), len(recs))
		}
		total += got.Total()
	}
	if st := tr.Stats().Tags; st.Total() != total || rep.Overall.Counts != st {
		t.Errorf("overall %+v, Stats.Tags %+v (total %d)", rep.Overall.Counts, st, total)
	}
}
