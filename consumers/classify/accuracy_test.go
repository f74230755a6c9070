package classify

import (
	"math"
	"testing"
)

func TestAccuracyKnownConfusionMatrix(t *testing.T) {
	var a Accuracy
	observe := func(n int, d Decision, truth bool) {
		for range n {
			a.Observe(d, truth)
		}
	}
	// LABEL: 5 TP, 7 TN. METADATA: 8 TP, 2 FP. VALUE: 3 TP, 6 FP.
	// DEFAULT: 4 FN, 60 TN.
	observe(5, Decision{Crisis: true, Source: SourceLabel, Score: 1}, true)
	observe(7, Decision{Crisis: false, Source: SourceLabel, Score: 1}, false)
	observe(8, Decision{Crisis: true, Source: SourceMetadata, Score: 1}, true)
	observe(2, Decision{Crisis: true, Source: SourceMetadata, Score: 1.5}, false)
	observe(3, Decision{Crisis: true, Source: SourceValue, Score: 0.95}, true)
	observe(6, Decision{Crisis: true, Source: SourceValue, Score: 0.97}, false)
	observe(4, Decision{Crisis: false, Source: SourceDefault, Score: 0}, true)
	observe(60, Decision{Crisis: false, Source: SourceDefault, Score: 0.5}, false)

	r := a.Report()
	tests := []struct {
		name                string
		got                 Metrics
		want                Counts
		wantP, wantR, wantF float64
	}{
		// Overall TP 16, FP 8, FN 4, TN 67: P = 16/24, R = 16/20, F1 = 32/44.
		{"overall", r.Overall, Counts{TP: 16, FP: 8, FN: 4, TN: 67}, 16.0 / 24, 16.0 / 20, 32.0 / 44},
		{"LABEL", r.BySource[SourceLabel], Counts{TP: 5, FP: 0, FN: 0, TN: 7}, 1, 1, 1},
		{"METADATA", r.BySource[SourceMetadata], Counts{TP: 8, FP: 2, FN: 0, TN: 0}, 0.8, 1, 16.0 / 18},
		{"VALUE", r.BySource[SourceValue], Counts{TP: 3, FP: 6, FN: 0, TN: 0}, 3.0 / 9, 1, 6.0 / 12},
		// No crisis decision and no TP: precision, recall, F1 undefined → 0.
		{"DEFAULT", r.BySource[SourceDefault], Counts{TP: 0, FP: 0, FN: 4, TN: 60}, 0, 0, 0},
	}
	for _, tt := range tests {
		if tt.got.Counts != tt.want {
			t.Errorf("%s counts = %+v, want %+v", tt.name, tt.got.Counts, tt.want)
		}
		for _, v := range []struct {
			what      string
			got, want float64
		}{{"precision", tt.got.Precision, tt.wantP}, {"recall", tt.got.Recall, tt.wantR}, {"F1", tt.got.F1, tt.wantF}} {
			if math.Abs(v.got-v.want) > 1e-12 {
				t.Errorf("%s %s = %v, want %v", tt.name, v.what, v.got, v.want)
			}
		}
	}
	// F1 equals the harmonic mean of precision and recall where defined.
	p, rc := r.Overall.Precision, r.Overall.Recall
	if hm := 2 * p * rc / (p + rc); math.Abs(hm-r.Overall.F1) > 1e-12 {
		t.Errorf("overall F1 %v, harmonic mean %v", r.Overall.F1, hm)
	}
	if got := r.Overall.Accuracy(); math.Abs(got-83.0/95) > 1e-12 {
		t.Errorf("overall accuracy %v, want %v", got, 83.0/95)
	}

	var b Accuracy
	b.Observe(Decision{Crisis: false, Source: SourceDefault, Score: 0}, true)
	b.Merge(&a)
	if got := b.Report().Overall.Counts; got != (Counts{TP: 16, FP: 8, FN: 5, TN: 67}) {
		t.Errorf("merged counts %+v, want {16 8 5 67}", got)
	}
	b.Reset()
	if got := b.Report().Overall.Total(); got != 0 {
		t.Errorf("total after Reset = %d, want 0", got)
	}
}

func TestAccuracyZeroValueHasNoNaN(t *testing.T) {
	var a Accuracy
	r := a.Report()
	for i, m := range append([]Metrics{r.Overall}, r.BySource[:]...) {
		for _, v := range []float64{m.Precision, m.Recall, m.F1, m.Accuracy()} {
			if v != 0 {
				t.Errorf("metrics %d: got %v on zero counts, want 0", i, v)
			}
		}
	}
	// Only true negatives: every crisis ratio undefined, reported 0.
	a.Observe(Decision{Crisis: false, Source: SourceDefault, Score: 0}, false)
	if m := a.Report().Overall; m.Precision != 0 || m.Recall != 0 || m.F1 != 0 || m.TN != 1 || m.Accuracy() != 1 {
		t.Errorf("only TN: %+v accuracy %v, want zero ratios, TN 1, accuracy 1", m, m.Accuracy())
	}
}

func TestAccuracyObservePanicsOnInvalidSource(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("Observe with Source(9) did not panic")
		}
	}()
	var a Accuracy
	a.Observe(Decision{Source: 9}, true)
}
