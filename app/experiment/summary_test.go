package experiment

import (
	"math"
	"testing"
)

func TestSummarize(t *testing.T) {
	// t₀.₉₇₅ quantiles of Student's t: 12.7062 (ν = 1), 2.7764 (ν = 4).
	tests := []struct {
		name     string
		xs       []float64
		mean, hw float64
	}{
		{"five values", []float64{1, 2, 3, 4, 5}, 3, 2.776445 * math.Sqrt(2.5) / math.Sqrt(5)},
		{"two values", []float64{10, 12}, 11, 12.706205 * math.Sqrt(2) / math.Sqrt(2)},
		{"constant", []float64{4, 4, 4}, 4, 0},
		{"negative", []float64{-1, -3}, -2, 12.706205 * math.Sqrt(2) / math.Sqrt(2)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Summarize(tt.xs)
			if math.Abs(got.Mean-tt.mean) > 1e-12 || math.Abs(got.HalfWidth-tt.hw) > 1e-5 || got.N != len(tt.xs) {
				t.Errorf("Summarize(%v) = %+v, want mean %v, half-width %v (±1e-5), n %d", tt.xs, got, tt.mean, tt.hw, len(tt.xs))
			}
			if !got.Finite() {
				t.Errorf("Summarize(%v).Finite() = false, want true", tt.xs)
			}
			if lo, hi := got.Lo(), got.Hi(); math.Abs(hi-lo-2*got.HalfWidth) > 1e-12 || lo > got.Mean || hi < got.Mean {
				t.Errorf("interval [%v, %v] not centred on %v with half-width %v", lo, hi, got.Mean, got.HalfWidth)
			}
		})
	}
}

func TestSummarizeDegenerate(t *testing.T) {
	one := Summarize([]float64{7})
	if one.Mean != 7 || !math.IsInf(one.HalfWidth, 1) || one.Finite() || one.Excludes(0) {
		t.Errorf("one value: got %+v (finite %v, excludes 0 %v), want mean 7, +Inf half-width, not finite, excludes nothing",
			one, one.Finite(), one.Excludes(0))
	}
	none := Summarize(nil)
	if !math.IsNaN(none.Mean) || !math.IsNaN(none.HalfWidth) || none.N != 0 {
		t.Errorf("no values: got %+v, want NaN mean and half-width", none)
	}
}

func TestExcludes(t *testing.T) {
	tests := []struct {
		s    Summary
		x    float64
		want bool
	}{
		{Summary{Mean: 1, HalfWidth: 0.5}, 0, true},
		{Summary{Mean: 1, HalfWidth: 1.5}, 0, false},
		{Summary{Mean: -1, HalfWidth: 0.5}, 0, true},
		{Summary{Mean: 1, HalfWidth: 1}, 0, false}, // touching the bound is not excluding it
		{Summary{Mean: 1, HalfWidth: math.NaN()}, 0, false},
	}
	for _, tt := range tests {
		if got := tt.s.Excludes(tt.x); got != tt.want {
			t.Errorf("%+v.Excludes(%v) = %v, want %v", tt.s, tt.x, got, tt.want)
		}
	}
}

func TestPairedDiff(t *testing.T) {
	// Arms that differ by a constant plus small noise: the paired interval
	// is far narrower than either arm's.
	a := []float64{10, 20, 30, 40, 50}
	b := []float64{9, 19.2, 28.9, 39.1, 48.8}
	d := PairedDiff(a, b)
	wantMean := (1 + 0.8 + 1.1 + 0.9 + 1.2) / 5
	if math.Abs(d.Mean-wantMean) > 1e-12 {
		t.Errorf("paired mean = %v, want %v", d.Mean, wantMean)
	}
	if arm := Summarize(a); !(d.HalfWidth < arm.HalfWidth/10) {
		t.Errorf("paired half-width %v, want < a tenth of one arm's %v", d.HalfWidth, arm.HalfWidth)
	}
	if !d.Excludes(0) {
		t.Errorf("paired difference %+v should exclude 0", d)
	}
	defer func() {
		if recover() == nil {
			t.Error("PairedDiff of different lengths did not panic")
		}
	}()
	PairedDiff([]float64{1}, []float64{1, 2})
}

func TestCurveSchedule(t *testing.T) {
	tests := []struct {
		updates, points int
		want            []int
	}{
		{100, 4, []int{25, 50, 75, 100}},
		{10, 3, []int{3, 6, 10}},
		{5, 5, []int{1, 2, 3, 4, 5}},
		{7, 1, []int{7}},
	}
	for _, tt := range tests {
		got := curveSchedule(tt.updates, tt.points)
		if len(got) != len(tt.want) {
			t.Errorf("curveSchedule(%d, %d) = %v, want %v", tt.updates, tt.points, got, tt.want)
			continue
		}
		for i := range got {
			if got[i] != tt.want[i] {
				t.Errorf("curveSchedule(%d, %d) = %v, want %v", tt.updates, tt.points, got, tt.want)
				break
			}
		}
	}
}

func TestBand(t *testing.T) {
	runs := []Run{
		{Curve: []CurvePoint{{Updates: 0, CrisisReturn: 1, ValuePerUser: 10}, {Updates: 5, CrisisReturn: 3, ValuePerUser: 20}}},
		{Curve: []CurvePoint{{Updates: 0, CrisisReturn: 3, ValuePerUser: 10}, {Updates: 5, CrisisReturn: 5, ValuePerUser: 22}}},
	}
	b := Band(runs)
	if len(b.Updates) != 2 || b.Updates[0] != 0 || b.Updates[1] != 5 {
		t.Fatalf("band updates = %v, want [0 5]", b.Updates)
	}
	if b.CrisisReturn[0].Mean != 2 || b.CrisisReturn[1].Mean != 4 || b.ValuePerUser[1].Mean != 21 {
		t.Errorf("band means = %v / %v, want crisis 2, 4 and value 21 at x=5", b.CrisisReturn, b.ValuePerUser)
	}
	if b.ValuePerUser[0].HalfWidth != 0 {
		t.Errorf("identical values: half-width %v, want 0", b.ValuePerUser[0].HalfWidth)
	}
}
