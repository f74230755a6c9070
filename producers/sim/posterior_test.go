package sim

import (
	"math"
	"testing"
)

// TestPosteriorIsCalibrated checks the exact posterior against simulated
// ground truth under the uniform policy: the record crisis share matches π
// and, in ten bins of the posterior, the share of crisis records matches
// the mean posterior (ECE ≤ 0.01 over ~55,000 records, where a miscalibrated
// model — e.g. one that ignored the value — is several times off).
func TestPosteriorIsCalibrated(t *testing.T) {
	cfg := DefaultConfig()
	post, err := NewPosterior(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(cfg, 77, 0)
	if err != nil {
		t.Fatal(err)
	}
	var n, crisis float64
	var binN, binP, binY [10]float64
	var noValueN, noValue, noValueY [10]float64 // the same, ignoring the value
	for range 10_000 {
		s.RunEpisode(Uniform{N: cfg.NumActions()}, func(tr *Transition) {
			p := 1 / (1 + math.Exp(-post.LogOdds(tr.Metadata, tr.Value)))
			q := 1 / (1 + math.Exp(-(post.LogOdds(tr.Metadata, tr.Value) - post.ValueLogLR(tr.Value))))
			if math.IsNaN(p) || p < 0 || p > 1 {
				t.Fatalf("posterior %v", p)
			}
			y := b2f(tr.Crisis)
			b := min(int(p*10), 9)
			binN[b]++
			binP[b] += p
			binY[b] += y
			bq := min(int(q*10), 9)
			noValueN[bq]++
			noValue[bq] += q
			noValueY[bq] += y
			n++
			crisis += y
		})
	}
	if share := crisis / n; math.Abs(share-post.RecordCrisisShare()) > 0.006 {
		t.Errorf("crisis share of records %.4f, π = %.4f", share, post.RecordCrisisShare())
	}
	var ece float64
	for b := range binN {
		ece += math.Abs(binP[b]-binY[b]) / n
	}
	if ece > 0.01 {
		t.Errorf("posterior ECE %.4f over %.0f records, want ≤ 0.01", ece, n)
	}
	// Ignoring the value leaves a calibrated but less sharp posterior:
	// fewer records in the confident bins (below 0.1 or at least 0.9).
	if confident, confidentMeta := binN[0]+binN[9], noValueN[0]+noValueN[9]; confident <= confidentMeta {
		t.Errorf("confident records: %v with the value, %v without; the value should sharpen the posterior", confident, confidentMeta)
	}
	var eceMeta float64
	for b := range noValueN {
		eceMeta += math.Abs(noValue[b]-noValueY[b]) / n
	}
	if eceMeta > 0.01 {
		t.Errorf("metadata-only posterior ECE %.4f, want ≤ 0.01", eceMeta)
	}
}

func TestPosteriorLikelihoodsAreExact(t *testing.T) {
	post, err := NewPosterior(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	// Searches: each one multiplies the odds by λc/λr = 5.
	md := func(n string) map[string]string { return map[string]string{KeyUrgentSearchCount: n} }
	if d := post.MetadataLogLR(md("3")) - post.MetadataLogLR(md("2")); math.Abs(d-math.Log(5)) > 1e-12 {
		t.Errorf("one more search: log LR +%v, want log 5", d)
	}
	// Keyword flag: log(0.55/0.03) with, log(0.45/0.97) without.
	with := post.MetadataLogLR(map[string]string{KeyProfileKeywords: "toddler,urgent"})
	without := post.MetadataLogLR(map[string]string{KeyProfileKeywords: "toddler,deals"})
	if math.Abs(with-math.Log(0.55/0.03)) > 1e-12 || math.Abs(without-math.Log(0.45/0.97)) > 1e-12 {
		t.Errorf("keyword log LR %v / %v", with, without)
	}
	// Missing signals contribute nothing; the value LR is finite and
	// increasing over the simulator's range of values.
	if l := post.MetadataLogLR(nil) + post.ValueLogLR(0) + post.ValueLogLR(math.NaN()); l != 0 {
		t.Errorf("missing signals: log LR %v, want 0", l)
	}
	prev := math.Inf(-1)
	for x := -12.0; x <= 4; x++ {
		l := post.ValueLogLR(math.Exp(x))
		if math.IsNaN(l) || math.IsInf(l, 0) || l <= prev {
			t.Fatalf("value log LR at ln v = %v: %v (previous %v), want finite and increasing", x, l, prev)
		}
		prev = l
	}
	cfg := DefaultConfig()
	cfg.ValueNoise = 0
	if _, err := NewPosterior(cfg); err == nil {
		t.Error("NewPosterior with ValueNoise 0 succeeded")
	}
}
