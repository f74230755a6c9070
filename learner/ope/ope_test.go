package ope

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// uniform is the uniform policy over n actions.
type uniform struct{ n int }

func (u uniform) NumActions() int { return u.n }
func (u uniform) LogProbs(_, dst []float64) {
	for i := range dst {
		dst[i] = math.Log(1 / float64(u.n))
	}
}

// constant is the deterministic policy on action a of n.
type constant struct{ a, n int }

func (c constant) NumActions() int { return c.n }
func (c constant) LogProbs(_, dst []float64) {
	for i := range dst {
		dst[i] = math.Inf(-1)
	}
	dst[c.a] = 0
}

func mustEvaluate(t *testing.T, tg Target, js []Journey, cfg Config) Report {
	t.Helper()
	rep, err := Evaluate(tg, js, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func estimate(t *testing.T, rep Report, seg, est string) Estimate {
	t.Helper()
	s, ok := rep.Segment(seg)
	if !ok {
		t.Fatalf("no segment %q", seg)
	}
	e, ok := s.Estimate(est)
	if !ok {
		t.Fatalf("segment %q has no estimate %q", seg, est)
	}
	return e
}

// TestTargetIsBehaviour: with π = μ every weight is exactly 1, so the ESS
// is n, PDIS is the logged mean bit for bit (same resamples, same
// interval), WPDIS and DR-V and DR with Q̂ = 0 equal it within rounding
// (1e-12 relative), and DR with the fitted-Q model differs from it only by
// (1/n) Σ_i Σ_t (V̂(s_t) − Q̂(s_t, a_t)), of expectation 0: within 0.1 at
// n = 4,000 (about 4 standard errors on the smallest segment, 1,200
// journeys; 0.013 is the standard error over all journeys).
func TestTargetIsBehaviour(t *testing.T) {
	m := newToyMDP(1, 3, 4)
	mu := m.randomPolicy(2, 0.1)
	js := m.journeys(mu, 4000, 5)
	value := func(obs []float64) float64 { return float64(len(obs)) * 0.1 }
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"fqe", Config{}},
		{"linear", Config{Model: ModelLinear}},
		{"none", Config{Model: ModelNone}},
		{"clip", Config{Clip: 5}},
		{"gamma", Config{Gamma: 0.9}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep := mustEvaluate(t, Target{Policy: mu, Value: value}, js, tc.cfg)
			for _, s := range rep.Segments {
				if s.ESS != float64(s.Journeys) || s.ClippedShare != 0 {
					t.Errorf("%s: ESS %v of %d journeys, clipped %v: want every weight 1", s.Name, s.ESS, s.Journeys, s.ClippedShare)
				}
				for k, e := range s.StepESS {
					if e != float64(s.Journeys) {
						t.Errorf("%s: step %d ESS %v, want %d", s.Name, k, e, s.Journeys)
					}
				}
				p, _ := s.Estimate(PDIS)
				if p.Interval != s.Logged {
					t.Errorf("%s: PDIS %+v, want the logged %+v exactly", s.Name, p.Interval, s.Logged)
				}
				exact := []string{WPDIS, DRValue}
				if tc.cfg.Model == ModelNone {
					exact = append(exact, DR)
				}
				for _, name := range exact {
					e, _ := s.Estimate(name)
					if d := math.Abs(e.Value - s.Logged.Value); d > 1e-12*math.Abs(s.Logged.Value) {
						t.Errorf("%s: %s %v, logged %v (difference %v)", s.Name, name, e.Value, s.Logged.Value, d)
					}
				}
				dr, _ := s.Estimate(DR)
				if math.Abs(dr.Value-s.Logged.Value) > 0.1 {
					t.Errorf("%s: DR %v, logged %v: beyond 0.1", s.Name, dr.Value, s.Logged.Value)
				}
				// DR-CV lies between PDIS and DR (β̂ ∈ [0, 1]).
				if cv, ok := s.Estimate(DRCV); ok == (tc.cfg.Model == ModelNone) ||
					ok && (cv.Value < min(p.Value, dr.Value)-1e-12 || cv.Value > max(p.Value, dr.Value)+1e-12) {
					t.Errorf("%s: DR-CV %+v (reported %v), PDIS %v, DR %v: want it between them, reported unless the model is none", s.Name, cv, ok, p.Value, dr.Value)
				}
				// Every weight 1: each step's normaliser is n, so WDR is DR.
				if w, ok := s.Estimate(WDR); ok == (tc.cfg.Model == ModelNone) || ok && math.Abs(w.Value-dr.Value) > 1e-12*(1+math.Abs(dr.Value)) {
					t.Errorf("%s: WDR %+v (reported %v), DR %v: want WDR = DR, reported unless the model is none", s.Name, w, ok, dr.Value)
				}
				if n := p.Normalized; s.Logged.Lo > 0 && (n == nil || n.Value != 1) {
					t.Errorf("%s: normalised PDIS %+v, want 1", s.Name, n)
				}
			}
		})
	}
}

// TestKnownValues: on the toy MDP, whose values are computed exactly by
// dynamic programming, every estimator is within its stated tolerance of
// the true value of each target, overall and per segment, at n = 20,000
// journeys of the behaviour policy: PDIS within 0.15, WPDIS, DR and WDR
// within 0.10 (about 3.5–4 standard errors of each; the values are 1–4). The
// targets range from the behaviour itself to a policy whose probabilities
// go down to 0.02 (ESS 45% of n).
func TestKnownValues(t *testing.T) {
	m := newToyMDP(1, 3, 4)
	mu := m.randomPolicy(2, 0.1)
	js := m.journeys(mu, 20000, 5)
	tol := map[string]float64{PDIS: 0.15, WPDIS: 0.10, DR: 0.10, WDR: 0.10, DRCV: 0.10}
	for _, tc := range []struct {
		name string
		p    *tablePolicy
	}{
		{"behaviour", mu},
		{"random", m.randomPolicy(3, 0.02)},
		{"mixture", m.mix(mu, m.randomPolicy(4, 0), 0.5)},
		{"other", m.randomPolicy(9, 0.05)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			perSeg, all := m.trueValue(tc.p)
			rep := mustEvaluate(t, Target{Name: tc.name, Policy: tc.p}, js, Config{Seed: 1})
			truth := map[string]float64{"all": all, "true A": perSeg[0], "true B": perSeg[1], "tag A": perSeg[0], "tag B": perSeg[1]}
			for seg, want := range truth {
				for est, tl := range tol {
					e := estimate(t, rep, seg, est)
					if math.Abs(e.Value-want) > tl {
						t.Errorf("%s %s = %.4f [%.4f, %.4f], true value %.4f: beyond %.2f", seg, est, e.Value, e.Lo, e.Hi, want, tl)
					}
				}
			}
		})
	}
}

// TestCoverage: over 200 seeded trials of n = 300 journeys each (1,000 for
// the second target), the 95% percentile interval (500 resamples) of
// WPDIS, DR and WDR covers the exact value in at least 90% of the trials.
func TestCoverage(t *testing.T) {
	if testing.Short() {
		t.Skip("200 trials per target")
	}
	m := newToyMDP(1, 3, 4)
	mu := m.randomPolicy(2, 0.1)
	for _, tc := range []struct {
		name string
		p    *tablePolicy
		n    int
	}{
		{"random n=300", m.randomPolicy(3, 0.02), 300},
		{"mixture n=1000", m.mix(mu, m.randomPolicy(4, 0), 0.5), 1000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, truth := m.trueValue(tc.p)
			const trials = 200
			// The trials are independent: one goroutine per CPU takes the
			// next; each trial's figures depend only on its number.
			hits := make([][]string, trials)
			errs := make([]error, trials)
			var next atomic.Int64
			var wg sync.WaitGroup
			for range runtime.GOMAXPROCS(0) {
				wg.Go(func() {
					for trial := int(next.Add(1)) - 1; trial < trials; trial = int(next.Add(1)) - 1 {
						js := m.journeys(mu, tc.n, uint64(1000+trial))
						rep, err := Evaluate(Target{Policy: tc.p}, js, Config{Resamples: 500, Seed: uint64(trial)})
						if err != nil {
							errs[trial] = fmt.Errorf("trial %d: %w", trial, err)
							continue
						}
						all, _ := rep.Segment(KindAll)
						for _, e := range all.Estimates {
							if e.Lo <= truth && truth <= e.Hi {
								hits[trial] = append(hits[trial], e.Estimator)
							}
						}
					}
				})
			}
			wg.Wait()
			if err := errors.Join(errs...); err != nil {
				t.Fatal(err)
			}
			cover := map[string]int{}
			for _, h := range hits {
				for _, est := range h {
					cover[est]++
				}
			}
			t.Logf("coverage of %d trials: %v", trials, cover)
			for _, est := range []string{WPDIS, DR, WDR, DRCV} {
				if share := float64(cover[est]) / trials; share < 0.90 {
					t.Errorf("%s covers the true value %.4f in %.1f%% of trials, want ≥ 90%%", est, truth, 100*share)
				}
			}
		})
	}
}

// TestExtremeWeights: behaviour uniform over 12 actions, target
// deterministic on one of them (probability 1/12 under the behaviour) over
// journeys of up to 4 steps, so weights reach 12⁴ = 20,736. Every
// estimator is finite with an interval at least 3 times the logged mean's,
// the ESS is below 2% of n, and no figure is NaN or infinite; clipped, the
// report states the clip and a positive clipped share.
func TestExtremeWeights(t *testing.T) {
	m := newToyMDP(3, 12, 4)
	mu := m.newTablePolicy(func(int, int, int) []float64 {
		p := make([]float64, 12)
		for i := range p {
			p[i] = 1.0 / 12
		}
		return p
	})
	js := m.journeys(mu, 3000, 8)
	for _, cfg := range []Config{{}, {Model: ModelNone}, {Clip: 100}} {
		rep := mustEvaluate(t, Target{Policy: constant{a: 4, n: 12}}, js, cfg)
		all, _ := rep.Segment(KindAll)
		if all.ESS >= 0.02*float64(all.Journeys) {
			t.Errorf("clip %v: ESS %v of %d journeys, want < 2%%", cfg.Clip, all.ESS, all.Journeys)
		}
		logged := all.Logged.Hi - all.Logged.Lo
		for _, e := range all.Estimates {
			if e.Hi-e.Lo < 3*logged {
				t.Errorf("clip %v %s: interval [%v, %v] not wider than 3× the logged one (%v)", cfg.Clip, e.Estimator, e.Lo, e.Hi, logged)
			}
		}
		if cfg.Clip > 0 && (rep.Clip != cfg.Clip || all.ClippedShare <= 0 || !strings.Contains(strings.Join(rep.Notes, "\n"), "clipped at 100")) {
			t.Errorf("clip %v: report clip %v, clipped share %v, notes %q", cfg.Clip, rep.Clip, all.ClippedShare, rep.Notes)
		}
		if _, err := json.Marshal(rep); err != nil {
			t.Errorf("clip %v: %v", cfg.Clip, err)
		}
	}
}

// TestOverflow: an unclipped weight past e^345 is an error that names the
// clip, never an infinite estimate; with a clip it evaluates.
func TestOverflow(t *testing.T) {
	j := Journey{ID: "long"}
	for k := range 400 {
		j.Steps = append(j.Steps, Step{T: k, State: []float32{1}, Action: 0, LogProb: math.Log(0.1), Reward: 1, Done: k == 399})
	}
	_, err := Evaluate(Target{Policy: constant{a: 0, n: 10}}, []Journey{j}, Config{})
	if !errors.Is(err, ErrWeightOverflow) || !strings.Contains(err.Error(), "clip") {
		t.Fatalf("error %v, want ErrWeightOverflow naming the clip", err)
	}
	rep := mustEvaluate(t, Target{Policy: constant{a: 0, n: 10}}, []Journey{j}, Config{Clip: 1e6})
	if all, _ := rep.Segment(KindAll); all.ClippedShare == 0 {
		t.Errorf("clipped share 0 with weights up to 10^400")
	}
}

// TestDRUnrolledIsRecursion: the unrolled DR of estimates equals Jiang &
// Li's recursion V = V̂(s_t) + ρ_t (r_t + γ V′ − Q̂(s_t, a_t)) computed
// backwards, for arbitrary Q̂ and V̂, within 1e-12.
func TestDRUnrolledIsRecursion(t *testing.T) {
	m := newToyMDP(1, 3, 4)
	mu := m.randomPolicy(2, 0.1)
	js := m.journeys(mu, 200, 5)
	d, _ := flatten(js, 0, 3, 0.9)
	if err := d.targetProbs(m.randomPolicy(3, 0.05), 1); err != nil {
		t.Fatal(err)
	}
	if err := d.weights(0); err != nil {
		t.Fatal(err)
	}
	qa, v := make([]float64, d.rows), make([]float64, d.rows)
	for r := range qa {
		qa[r], v[r] = math.Sin(float64(r)), math.Cos(float64(3*r))
	}
	_, _, dr := d.estimates(qa, v)
	for i := range d.n {
		rec := 0.0
		for r := d.off[i+1] - 1; r >= d.off[i]; r-- {
			rho := math.Exp(d.logPi[r*d.nA+d.act[r]] - d.logMu[r])
			rec = v[r] + rho*(d.rew[r]+0.9*rec-qa[r])
		}
		if math.Abs(rec-dr[i]) > 1e-12*(1+math.Abs(rec)) {
			t.Fatalf("journey %d: unrolled DR %v, recursion %v", i, dr[i], rec)
		}
	}
}

// TestDRWithoutModelIsPDIS: with Q̂ = 0 DR is PDIS exactly.
func TestDRWithoutModelIsPDIS(t *testing.T) {
	m := newToyMDP(1, 3, 4)
	js := m.journeys(m.randomPolicy(2, 0.1), 1000, 5)
	rep := mustEvaluate(t, Target{Policy: m.randomPolicy(3, 0.05)}, js, Config{Model: ModelNone})
	for _, s := range rep.Segments {
		p, _ := s.Estimate(PDIS)
		d, _ := s.Estimate(DR)
		if p.Interval != d.Interval {
			t.Errorf("%s: DR %+v, PDIS %+v", s.Name, d.Interval, p.Interval)
		}
	}
}

// TestModelGate: the model's gate (Config.ModelMaxWeight) sets Q̂ and V̂
// to 0 at exactly the steps whose weight before them, w_{t−1}, exceeds
// the gate (w_{−1} = 1, fresh for every journey); gated below every
// weight DR, WDR and DR-CV are PDIS and WPDIS exactly; never gated
// (+Inf) no step is set and the report says so.
func TestModelGate(t *testing.T) {
	d := &data{n: 2, rows: 7, off: []int{0, 4, 7}, w: []float64{2, 60, 300, 50, 150, 0.5, 2}}
	qa, v := []float64{1, 1, 1, 1, 1, 1, 1}, []float64{2, 2, 2, 2, 2, 2, 2}
	share := d.gateModel(qa, v, 100)
	// Journey 0: w_{t−1} = 1, 2, 60, 300 → only its last step; journey 1:
	// 1, 150, 0.5 → its middle step.
	wantQ, wantV := []float64{1, 1, 1, 0, 1, 0, 1}, []float64{2, 2, 2, 0, 2, 0, 2}
	if !slices.Equal(qa, wantQ) || !slices.Equal(v, wantV) || share != 2.0/7 {
		t.Fatalf("gated Q̂ %v V̂ %v share %v, want %v %v %v", qa, v, share, wantQ, wantV, 2.0/7)
	}

	m := newToyMDP(1, 3, 4)
	js := m.journeys(m.randomPolicy(2, 0.1), 1000, 5)
	target := Target{Policy: m.randomPolicy(3, 0.05)}
	rep := mustEvaluate(t, target, js, Config{ModelMaxWeight: 1e-9})
	if rep.Model.GatedShare != 1 {
		t.Fatalf("gate 1e-9: gated share %v, want 1", rep.Model.GatedShare)
	}
	for _, s := range rep.Segments {
		for est, want := range map[string]string{DR: PDIS, WDR: WPDIS, DRCV: PDIS} {
			e, _ := s.Estimate(est)
			w, _ := s.Estimate(want)
			if math.Abs(e.Value-w.Value) > 1e-9*(1+math.Abs(w.Value)) ||
				math.Abs(e.Lo-w.Lo) > 1e-9*(1+math.Abs(w.Lo)) || math.Abs(e.Hi-w.Hi) > 1e-9*(1+math.Abs(w.Hi)) {
				t.Errorf("%s gated everywhere: %s %+v, %s %+v", s.Name, est, e.Interval, want, w.Interval)
			}
		}
	}
	rep = mustEvaluate(t, target, js, Config{ModelMaxWeight: math.Inf(1)})
	if rep.Model.GatedShare != 0 || rep.Model.MaxWeight != 0 || !strings.Contains(rep.Describe(), "never gated") {
		t.Errorf("never gated: share %v max weight %v, %q", rep.Model.GatedShare, rep.Model.MaxWeight, rep.Describe())
	}
	rep = mustEvaluate(t, target, js, Config{})
	if rep.Model.MaxWeight != DefaultModelMaxWeight || !strings.Contains(rep.Describe(), "gated off past weight 100") {
		t.Errorf("default: max weight %v, %q", rep.Model.MaxWeight, rep.Describe())
	}
}

// TestSkipped: journeys with a gap, without a behaviour log-prob, with
// log-prob −Inf, unfinished or invalid are left out and counted; the rest
// are evaluated; with none left the error says why.
func TestSkipped(t *testing.T) {
	good := func(id string) Journey {
		return Journey{ID: id, Steps: []Step{
			{T: 0, State: []float32{0}, Action: 0, LogProb: math.Log(0.5), Reward: 1},
			{T: 1, State: []float32{1}, Action: 1, LogProb: math.Log(0.5), Reward: 2, Done: true},
		}}
	}
	with := func(id string, f func(*Journey)) Journey { j := good(id); f(&j); return j }
	bad := []Journey{
		with("gap", func(j *Journey) { j.Steps[1].T = 2 }),
		with("late start", func(j *Journey) { j.Steps = j.Steps[1:] }),
		with("nan", func(j *Journey) { j.Steps[0].LogProb = math.NaN() }),
		with("-inf", func(j *Journey) { j.Steps[1].LogProb = math.Inf(-1) }),
		with("positive", func(j *Journey) { j.Steps[1].LogProb = 0.5 }),
		with("unfinished", func(j *Journey) { j.Steps[1].Done = false }),
		with("early done", func(j *Journey) { j.Steps[0].Done = true }),
		with("reward", func(j *Journey) { j.Steps[0].Reward = math.Inf(1) }),
		with("state", func(j *Journey) { j.Steps[0].State = []float32{float32(math.NaN())} }),
		with("width", func(j *Journey) { j.Steps[0].State = []float32{0, 1} }),
		with("action", func(j *Journey) { j.Steps[0].Action = 2 }),
		with("probs", func(j *Journey) { j.Steps[0].Probs = []float64{0.9, 0.1} }),
		{ID: "empty"},
	}
	want := Skipped{Gap: 2, Incomplete: 3, MissingLogProb: 1, ImpossibleLogProb: 1, Invalid: 6}
	js := append([]Journey{good("a"), good("b")}, bad...)
	rep := mustEvaluate(t, Target{Policy: uniform{2}}, js, Config{Resamples: 10})
	if rep.Journeys != 2 || rep.Skipped != want {
		t.Errorf("journeys %d, skipped %+v; want 2 and %+v", rep.Journeys, rep.Skipped, want)
	}
	if !strings.Contains(strings.Join(rep.Notes, "\n"), "without a behaviour log-prob") {
		t.Errorf("notes %q do not say what was skipped", rep.Notes)
	}
	_, err := Evaluate(Target{Policy: uniform{2}}, bad, Config{Resamples: 10})
	if !errors.Is(err, ErrNoJourneys) || !strings.Contains(err.Error(), "log-prob −Inf") {
		t.Errorf("all bad: error %v, want ErrNoJourneys saying why", err)
	}
	if _, err := Evaluate(Target{Policy: uniform{2}}, nil, Config{}); !errors.Is(err, ErrNoJourneys) {
		t.Errorf("no journeys: error %v", err)
	}
}

// badTarget returns log-probabilities that are not a distribution.
type badTarget struct{ v float64 }

func (b badTarget) NumActions() int { return 2 }
func (b badTarget) LogProbs(_, dst []float64) {
	for i := range dst {
		dst[i] = b.v
	}
}

// TestBadTarget: a target that does not give a distribution (NaN, sums
// not 1, positive log-probs), or a value head that returns NaN, is an
// error, not a figure.
func TestBadTarget(t *testing.T) {
	m := newToyMDP(1, 2, 3)
	js := m.journeys(m.randomPolicy(2, 0.1), 50, 5)
	for _, v := range []float64{math.NaN(), math.Log(0.3), 0.1} {
		if _, err := Evaluate(Target{Policy: badTarget{v}}, js, Config{Resamples: 10}); err == nil || !strings.Contains(err.Error(), "not a distribution") {
			t.Errorf("log-prob %v: error %v", v, err)
		}
	}
	_, err := Evaluate(Target{Policy: uniform{2}, Value: func([]float64) float64 { return math.NaN() }}, js, Config{Resamples: 10})
	if err == nil || !strings.Contains(err.Error(), "value head") {
		t.Errorf("NaN value head: error %v", err)
	}
	if _, err := Evaluate(Target{}, js, Config{}); err == nil {
		t.Error("no policy: no error")
	}
}

// TestWorkersDeterministic: the report does not depend on Workers.
func TestWorkersDeterministic(t *testing.T) {
	m := newToyMDP(1, 3, 4)
	js := m.journeys(m.randomPolicy(2, 0.1), 2000, 5)
	tg := Target{Policy: m.randomPolicy(3, 0.05), Value: func(obs []float64) float64 { return float64(obs[0]) }}
	one := mustEvaluate(t, tg, js, Config{Seed: 4, Resamples: 200})
	four := mustEvaluate(t, tg, js, Config{Seed: 4, Resamples: 200, Workers: 4})
	if !reflect.DeepEqual(one, four) {
		t.Error("reports of 1 and 4 workers differ")
	}
	other := mustEvaluate(t, tg, js, Config{Seed: 5, Resamples: 200})
	if reflect.DeepEqual(one.Segments[0].Estimates, other.Segments[0].Estimates) {
		t.Error("bootstrap seeds 4 and 5 give the same intervals")
	}
}

// TestNormalisation: a segment whose logged mean's interval lies above 0
// is normalised by it (the logged row is parity, 1.0); one whose interval
// reaches 0 is not, with a note.
func TestNormalisation(t *testing.T) {
	mk := func(id, truth string, r float64) Journey {
		return Journey{ID: id, Truth: truth, Steps: []Step{{State: []float32{0}, LogProb: math.Log(0.5), Reward: r, Done: true}}}
	}
	var js []Journey
	for i := range 200 {
		js = append(js, mk("p"+string(rune('a'+i%26))+string(rune('a'+i/26)), "POS", 2+float64(i%5)))
		js = append(js, mk("z"+string(rune('a'+i%26))+string(rune('a'+i/26)), "ZERO", float64(i%3)-1))
	}
	rep := mustEvaluate(t, Target{Policy: uniform{2}}, js, Config{Resamples: 200})
	pos, _ := rep.Segment("true POS")
	zero, _ := rep.Segment("true ZERO")
	if e, _ := pos.Estimate(WPDIS); e.Normalized == nil || math.Abs(e.Normalized.Value*pos.Logged.Value-e.Value) > 1e-12 {
		t.Errorf("POS: normalised %+v of %v with logged %v", e.Normalized, e.Value, pos.Logged.Value)
	}
	if e, _ := zero.Estimate(WPDIS); e.Normalized != nil {
		t.Errorf("ZERO (logged mean ~0): normalised %+v", e.Normalized)
	}
	if !strings.Contains(strings.Join(rep.Notes, "\n"), "true ZERO: the logged mean return's interval") {
		t.Errorf("notes %q", rep.Notes)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg Config
		ok  bool
	}{
		{Config{}, true},
		{Config{Gamma: 1.5}, false},
		{Config{Gamma: -0.1}, false},
		{Config{Resamples: 1}, false},
		{Config{Confidence: 1}, false},
		{Config{Clip: -1}, false},
		{Config{Clip: math.Inf(1)}, false},
		{Config{Clip: math.NaN()}, false},
		{Config{Model: "mlp"}, false},
		{Config{Ridge: -1}, false},
		{Config{Folds: 1}, false},
		{Config{ModelMaxWeight: -1}, false},
		{Config{ModelMaxWeight: math.NaN()}, false},
		{Config{ModelMaxWeight: math.Inf(1)}, true},
		{Config{ModelMaxWeight: 0.5}, true},
		{Config{Workers: -1}, false},
		{Config{Iterations: -1}, false},
	} {
		err := tc.cfg.Validate()
		if (err == nil) != tc.ok || err != nil && !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%+v: error %v, want ok %v", tc.cfg, err, tc.ok)
		}
	}
}

// TestSupport: a logged behaviour distribution with zero-probability
// actions gives the target's mass on them, with a note.
func TestSupport(t *testing.T) {
	js := []Journey{}
	for i := range 50 {
		js = append(js, Journey{ID: string(rune('a' + i)), Steps: []Step{{State: []float32{0}, Action: 0, LogProb: math.Log(0.5),
			Probs: []float64{0.5, 0.5, 0}, Reward: 1, Done: true}}})
	}
	rep := mustEvaluate(t, Target{Policy: uniform{3}}, js, Config{Resamples: 20})
	if rep.SupportSteps != 50 || math.Abs(rep.UnsupportedMass-1.0/3) > 1e-12 {
		t.Errorf("support steps %d, unsupported mass %v; want 50 and 1/3", rep.SupportSteps, rep.UnsupportedMass)
	}
}

// TestHistoryFeatures: ModelFQE's raw inputs at step t are the state s_t
// and the mean of the journey's states s_0 … s_t — nothing of a later
// step (the action a_t and what follows it), nothing of another journey —
// so DR stays unbiased with them.
func TestHistoryFeatures(t *testing.T) {
	const dim = 2
	obs := []float32{1, 10, 3, 20, 5, 60 /* journey 0 */, 7, -1, 9, -3 /* journey 1 */}
	off := []int{0, 3, 5}
	raw := make([]float64, 5*2*dim)
	historyRaw(obs, off, dim, raw, 2*dim)
	want := []float64{
		1, 10, 1, 10,
		3, 20, 2, 15,
		5, 60, 3, 30,
		7, -1, 7, -1,
		9, -3, 8, -2,
	}
	if !reflect.DeepEqual(raw, want) {
		t.Fatalf("history features %v, want %v", raw, want)
	}
	// Changing a journey's last state changes no earlier row.
	obs[4], obs[5] = 100, 100
	changed := make([]float64, 5*2*dim)
	historyRaw(obs, off, dim, changed, 2*dim)
	for r := range 5 {
		if r == 2 {
			continue
		}
		if !reflect.DeepEqual(changed[r*2*dim:(r+1)*2*dim], want[r*2*dim:(r+1)*2*dim]) {
			t.Errorf("row %d changed with a later state: %v", r, changed[r*2*dim:(r+1)*2*dim])
		}
	}
	f := historyFeatures(obs, off, dim)
	if f.d != 2*dim+randomFeatures+1 || len(f.x) != 5*f.d {
		t.Fatalf("features %d wide, %d values: want %d wide", f.d, len(f.x), 2*dim+randomFeatures+1)
	}
	for r := range 5 {
		if x := f.row(r); x[f.d-1] != 1 {
			t.Errorf("row %d: last feature %v, want the constant 1", r, x[f.d-1])
		}
	}
}

// TestCVBeta: DR-CV's coefficient is 1 when the correction cancels PDIS's
// deviations exactly, 0 when it moves with them or does not vary, and
// −cov/var in between.
func TestCVBeta(t *testing.T) {
	beta := func(p, c []float64) float64 {
		var sp, pc, cc, sc float64
		for i := range p {
			sp, pc, cc, sc = sp+p[i], pc+p[i]*c[i], cc+c[i]*c[i], sc+c[i]
		}
		n := float64(len(p))
		return cvBeta(n, sp/n, pc, cc, sc)
	}
	p := []float64{1, 3, 2, 6}
	for _, tc := range []struct {
		name string
		c    []float64
		want float64
	}{
		{"cancels", []float64{2, 0, 1, -3}, 1},         // c = 3 − p
		{"half", []float64{2, -2, 0, -8}, 0.5},         // c = 2·(2 − p): −cov/var = 1/2
		{"moves with", []float64{1, 3, 2, 6}, 0},       // −cov/var = −1, clamped
		{"constant", []float64{0.5, 0.5, 0.5, 0.5}, 0}, // no variance
	} {
		got := beta(p, tc.c)
		if math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("%s: β̂ %v, want %v", tc.name, got, tc.want)
		}
	}
	// Sums that overflow give 0 (DR-CV = PDIS), never NaN.
	for _, sums := range [][4]float64{{math.Inf(1), math.Inf(1), 1, 1}, {1, math.Inf(1), math.Inf(1), 1}, {math.Inf(-1), math.Inf(1), 1, 1}} {
		if b := cvBeta(4, sums[0], sums[1], sums[2], sums[3]); b != 0 && !(b > 0 && b <= 1) {
			t.Errorf("sums %v: β̂ %v, want a number in [0, 1]", sums, b)
		}
	}
}
