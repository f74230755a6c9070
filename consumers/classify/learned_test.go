package classify

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"testing"
)

// TestLogisticConvergesToKnownCoefficients trains on a synthetic stream
// drawn from a logistic model with known coefficients and checks that the
// weights come within 0.1 of them (with L2 off, the log-loss minimiser is
// the generating model; 300,000 examples put the standard error of each
// weight near 0.01–0.03).
func TestLogisticConvergesToKnownCoefficients(t *testing.T) {
	want := [NumFeatures]float64{-1.5, 2.0, 1.0, -0.5, 1.5, -1.0, 0.8, 0.6, -0.7, 2.5, 0.4, 1.2, 0.5, -0.3,
		0.9, -0.6, 0.3, -0.2, 0.7, -0.4, 0.2, 0.6, -0.8, 0.1, 0.5, -0.5, 0.3, -0.1, 0.4}
	m, err := NewLogistic(0.2, 0, 0.5)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var x [NumFeatures]float64
	for range 300_000 {
		x[0] = 1
		for j := 1; j < NumFeatures; j++ {
			if j%3 == 0 {
				x[j] = b2f(rng.Float64() < 0.3) // indicators
			} else {
				x[j] = rng.NormFloat64()
			}
		}
		var z float64
		for j := range x {
			z += want[j] * x[j]
		}
		m.Update(&x, rng.Float64() < sigmoid(z))
	}
	got := m.Weights()
	for j := range want {
		if math.Abs(got[j]-want[j]) > 0.1 {
			t.Errorf("weight %d (%s) = %.3f, want %.3f ± 0.1", j, featureNames[j], got[j], want[j])
		}
	}
	if m.Updates() != 300_000 {
		t.Errorf("Updates() = %d, want 300000", m.Updates())
	}
}

func TestNewLogisticRejects(t *testing.T) {
	for _, tt := range []struct{ lr, l2, prior float64 }{
		{0, 0, 0.5}, {math.Inf(1), 0, 0.5}, {math.NaN(), 0, 0.5}, {0.1, -1, 0.5}, {0.1, math.NaN(), 0.5},
		{0.1, 0, 0}, {0.1, 0, 1}, {0.1, 0, math.NaN()},
	} {
		if _, err := NewLogistic(tt.lr, tt.l2, tt.prior); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("NewLogistic(%v, %v, %v) = %v, want ErrInvalidConfig", tt.lr, tt.l2, tt.prior, err)
		}
	}
}

// extremeInputs are metadata maps and values that a live stream might
// send: missing keys, garbage, huge and tiny numbers, non-finite values.
func extremeInputs() ([]map[string]string, []float64) {
	mds := []map[string]string{
		nil,
		{},
		{KeyCrisisEngagement: "1e99", KeyUrgentSearchCount: "999999999999999999"},
		{KeyCrisisEngagement: "-1e99", KeyUrgentSearchCount: "-999999999999999999"},
		{KeyCrisisEngagement: "NaN", KeyUrgentSearchCount: "Inf", KeyProfileKeywords: ",,,", KeyCampaignID: ""},
		{KeyCrisisEngagement: "0.000", KeyUrgentSearchCount: "0", KeyProfileKeywords: "crisis", KeyCampaignID: "crisis_support"},
		{KeyCrisisEngagement: "1.000", KeyUrgentSearchCount: "30", KeyProfileKeywords: "x", KeyCampaignID: "x"},
		{KeyCrisisEngagement: "\x00\xff", KeyUrgentSearchCount: "١٢", KeyProfileKeywords: "\xff,URGENT"},
	}
	values := []float64{0, -1, 1e-320, 5e-324, 1e-300, 1, 1e300, math.MaxFloat64, math.Inf(1), math.Inf(-1), math.NaN()}
	return mds, values
}

// TestFeaturesFiniteOnExtremeSignals: every feature is finite and within
// its documented range whatever the input.
func TestFeaturesFiniteOnExtremeSignals(t *testing.T) {
	c := mustNew(t, DefaultConfig())
	mds, values := extremeInputs()
	var x [NumFeatures]float64
	for _, md := range mds {
		for _, v := range values {
			c.Features(md, v, &x)
			checkFeatures(t, md, v, &x)
		}
	}
	c.Features(nil, math.NaN(), &x)
	if x[featEngagementMissing] != 1 || x[featSearchesMissing] != 1 || x[featCampaignMissing] != 1 || x[featValueMissing] != 1 {
		t.Errorf("nil metadata, NaN value: features %v, want every missing indicator set", x)
	}
}

func checkFeatures(t *testing.T, md map[string]string, v float64, x *[NumFeatures]float64) {
	t.Helper()
	for j, xj := range x {
		// z = (clamp(ln v, −16, 8) + 4)/4 ∈ [−3, 3], z² ≤ 9, z·e and the
		// flags' products in [−3, 3], z·n/10 in [−9, 9], the hinges in
		// [0, 3.5]; the others in [0, 3].
		lo, hi := 0.0, 3.0
		switch {
		case j == featValue, j == featValueEngagement, j == featValueKeyword, j == featValueCampaign:
			lo = -3
		case j == featValueSq:
			hi = 9
		case j == featValueSearches:
			lo, hi = -9, 9
		case j >= featValueHinge:
			hi = 3.5
		}
		if math.IsNaN(xj) || xj < lo || xj > hi {
			t.Fatalf("md %q value %v: feature %d (%s) = %v, want in [%v, %v]", md, v, j, featureNames[j], xj, lo, hi)
		}
	}
	if x[featBias] != 1 {
		t.Fatalf("bias feature %v, want 1", x[featBias])
	}
}

// TestLearnedNoNaNOnExtremeSignals trains the learned tagger on extreme
// labelled records and checks that every decision's Score stays a
// probability and the weights stay finite.
func TestLearnedNoNaNOnExtremeSignals(t *testing.T) {
	cfg := DefaultConfig()
	cfg.TaggerWarmUp = 0
	c := mustNew(t, cfg)
	mds, values := extremeInputs()
	for i := range 2000 {
		for _, md := range mds {
			for k, v := range values {
				m := map[string]string{}
				for key, val := range md {
					m[key] = val
				}
				if (i+k)%2 == 0 {
					m[KeyEventType] = []string{LabelCrisis, LabelRegular}[(i/2+k)%2]
				}
				d := c.Classify(m, v)
				if !(d.Score >= 0 && d.Score <= 1) {
					t.Fatalf("md %q value %v: Score %v not a probability", m, v, d.Score)
				}
			}
		}
	}
	for j, w := range c.Model().Weights() {
		if math.IsNaN(w) || math.IsInf(w, 0) {
			t.Fatalf("weight %d = %v after extreme inputs", j, w)
		}
	}
	if th := c.Threshold(); !(th >= 0 && th <= 1) {
		t.Fatalf("threshold %v", th)
	}
}

// FuzzFeatures checks the learned tagger's metadata parser: it never
// panics, every feature is finite and within its range, and Classify's
// Score is a probability, whatever the metadata strings and the value.
func FuzzFeatures(f *testing.F) {
	f.Add("crisis, toddler", "0.9", "4", "crisis_support", 1.5, true)
	f.Add(" , ,URGENT", "1e99", "-3", "", -2.0, false)
	f.Add("", "NaN", "+Inf", "x", math.Inf(1), true)
	f.Fuzz(func(t *testing.T, kws, eng, urgent, camp string, value float64, label bool) {
		cfg := DefaultConfig()
		cfg.TaggerWarmUp = 0
		c := mustNew(t, cfg)
		md := map[string]string{KeyProfileKeywords: kws, KeyCrisisEngagement: eng,
			KeyUrgentSearchCount: urgent, KeyCampaignID: camp}
		var x [NumFeatures]float64
		c.Features(md, value, &x)
		checkFeatures(t, md, value, &x)
		for i := range 4 {
			if label {
				md[KeyEventType] = []string{LabelCrisis, LabelRegular}[i%2]
			}
			if d := c.Classify(md, value); !(d.Score >= 0 && d.Score <= 1) {
				t.Fatalf("Score %v not a probability", d.Score)
			}
		}
	})
}

// TestStateRoundTrip: a classifier restored from AppendState predicts,
// thresholds and goes on learning exactly as the original.
func TestStateRoundTrip(t *testing.T) {
	cfg := DefaultConfig()
	cfg.TaggerWarmUp = 500
	a := mustNew(t, cfg)
	recs := genRecords(rand.New(rand.NewPCG(3, 4)), 20_000)
	for _, r := range recs[:10_000] {
		a.Classify(r.md, r.value)
	}
	state := a.AppendState(nil)
	cfg.State = state
	b := mustNew(t, cfg)
	if a.Labelled() != b.Labelled() || a.Threshold() != b.Threshold() || a.Model().Weights() != b.Model().Weights() ||
		a.HeldOut() != b.HeldOut() || !a.Learned() || !b.Learned() {
		t.Fatalf("restored: labelled %d/%d threshold %v/%v learned %v/%v, weights or calibration differ",
			a.Labelled(), b.Labelled(), a.Threshold(), b.Threshold(), a.Learned(), b.Learned())
	}
	if again := b.AppendState(nil); !bytes.Equal(again, state) {
		t.Fatal("state of the restored classifier differs from the state it was restored from")
	}
	for i, r := range recs[10_000:] {
		// The rules' P² estimate is not in the state; compare learned
		// decisions, which do not read it.
		da, db := a.Classify(r.md, r.value), b.Classify(r.md, r.value)
		if da != db {
			t.Fatalf("record %d after restore: %+v, original %+v", i, db, da)
		}
	}
}

func TestStateRejectsCorruption(t *testing.T) {
	cfg := DefaultConfig()
	a := mustNew(t, cfg)
	for _, r := range genRecords(rand.New(rand.NewPCG(5, 6)), 2000) {
		a.Classify(r.md, r.value)
	}
	good := a.AppendState(nil)
	nanWeight := bytes.Clone(good)
	// The first weight sits after the state header (24), the model's magic,
	// count, learning rate and L2 (32).
	copy(nanWeight[24+32:], []byte{0, 0, 0, 0, 0, 0, 0xf8, 0x7f})
	for name, st := range map[string][]byte{
		"truncated":   good[:len(good)-1],
		"too long":    append(bytes.Clone(good), 0),
		"short":       good[:10],
		"wrong magic": append([]byte("AELPXXX\x01"), good[8:]...),
		"nan weight":  nanWeight,
	} {
		cfg.State = st
		if _, err := New(cfg); !errors.Is(err, ErrBadState) {
			t.Errorf("%s: New = %v, want ErrBadState", name, err)
		}
	}
}

// TestWarmUpUsesRules: until TaggerWarmUp labelled records were seen the
// learned tagger decides exactly as the rules; then the model decides
// (METADATA for its crisis tags, DEFAULT for its regular ones).
func TestWarmUpUsesRules(t *testing.T) {
	cfg := DefaultConfig()
	cfg.TaggerWarmUp = 300
	learned := mustNew(t, cfg)
	cfg.Tagger = TaggerRules
	rules := mustNew(t, cfg)
	sawLearned := false
	for i, r := range genRecords(rand.New(rand.NewPCG(7, 8)), 6000) {
		warm := learned.Learned()
		dl, dr := learned.Classify(r.md, r.value), rules.Classify(r.md, r.value)
		if dl.Score != dr.Score {
			t.Fatalf("record %d: scores %v and %v differ; both taggers train the same model", i, dl.Score, dr.Score)
		}
		if !warm && dl != dr {
			t.Fatalf("record %d before warm-up: learned %+v, rules %+v", i, dl, dr)
		}
		if warm && dl.Source != SourceLabel {
			sawLearned = true
			if dl.Source == SourceValue || dl.Crisis != (dl.Source == SourceMetadata) || dl.Crisis != (dl.Score >= learned.Threshold()) {
				t.Fatalf("record %d after warm-up: %+v with threshold %v", i, dl, learned.Threshold())
			}
		}
	}
	if !sawLearned || learned.Labelled() < 300 || rules.Learned() {
		t.Fatalf("labelled %d, learned decisions seen %v, rules Learned() %v", learned.Labelled(), sawLearned, rules.Learned())
	}
}

// TestLearnedBeatsRulesOnSyntheticStream: on the simulator-shaped stream
// the learned tagger's F1 on unlabelled records beats the rules', and its
// held-out predictions on labelled records are calibrated (ECE ≤ 0.05).
func TestLearnedBeatsRulesOnSyntheticStream(t *testing.T) {
	cfg := DefaultConfig()
	learned := mustNew(t, cfg)
	cfg.Tagger = TaggerRules
	rules := mustNew(t, cfg)
	var accL, accR Accuracy
	var cal Calibration
	for _, r := range genRecords(rand.New(rand.NewPCG(11, 12)), 60_000) {
		warm := learned.Learned()
		dl, dr := learned.Classify(r.md, r.value), rules.Classify(r.md, r.value)
		if warm && dl.Source != SourceLabel {
			accL.Observe(dl, r.crisis)
			accR.Observe(dr, r.crisis)
			cal.Observe(dl.Score, r.crisis)
		}
	}
	fl, fr := accL.Report().Overall.F1, accR.Report().Overall.F1
	if !(fl > fr+0.05) {
		t.Errorf("unlabelled F1: learned %.3f, rules %.3f; want learned ahead by > 0.05", fl, fr)
	}
	h := learned.HeldOut()
	if h.ECE() > 0.05 || h.N() == 0 {
		t.Errorf("held-out labelled ECE %.3f over %d, want ≤ 0.05", h.ECE(), h.N())
	}
	if cal.ECE() > 0.05 {
		t.Errorf("unlabelled ECE %.3f, want ≤ 0.05", cal.ECE())
	}
	t.Logf("unlabelled F1 learned %.3f rules %.3f; ECE unlabelled %.4f held-out labelled %.4f; threshold %.3f",
		fl, fr, cal.ECE(), h.ECE(), learned.Threshold())
}
