package sim

import (
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/aelp/aelp/internal/stats"
)

// mixPolicy has the shape of app/experiment's logging policy μ:
// (1 − eps)·base + eps·uniform, then the actions in zero set to 0 and the
// rest renormalised.
type mixPolicy struct {
	base Policy
	eps  float64
	zero []int
}

func (m mixPolicy) ActionProbs(obs, dst []float64) {
	m.base.ActionProbs(obs, dst)
	u := m.eps / float64(len(dst))
	for i, p := range dst {
		dst[i] = (1-m.eps)*p + u
	}
	if len(m.zero) == 0 {
		return
	}
	for _, a := range m.zero {
		dst[a] = 0
	}
	sum := 0.0
	for _, p := range dst {
		sum += p
	}
	for i := range dst {
		dst[i] /= sum
	}
}

// calibBins are the upper edges of the bins of q = μ(a|s_t) in which
// calibration is checked per action (stats.Calibration.BinZ): an error
// that depends on the state (probabilities of another state than the one
// acted on) shows in them even where it averages out over all rows.
var calibBins = []float64{0.03, 0.06, 0.12, 0.25, math.Inf(1)}

// perturb writes into dst the distribution q with every action's
// probability off by a relative ±rel (alternating signs), renormalised.
func perturb(dst, q []float64, rel float64) {
	sum := 0.0
	for a, qa := range q {
		s := rel
		if a%2 == 1 {
			s = -rel
		}
		dst[a] = qa * (1 + s)
		sum += dst[a]
	}
	for a := range dst {
		dst[a] /= sum
	}
}

// propensityRun is what TestLoggedPropensitiesCalibrated measured on one
// policy: the calibration of the logged probabilities and of two wrong
// ones, on the same draws.
type propensityRun struct {
	logged, off1, next *stats.Calibration
}

// runPropensities runs journeys of p until steps steps and feeds each to
// the calibrations: of the logged distribution Transition.ActionProbs;
// with controls, of that distribution off by 1% per action and, on every
// tenth step, of NextState's distribution (the probabilities of another
// state than the one acted on). On every tenth step it also checks that
// the logged distribution is p's for the logged State (as
// app/experiment's JourneyLogger recomputes μ) and gives BehaviorLogProb.
func runPropensities(t *testing.T, cfg Config, p Policy, steps int, controls bool) propensityRun {
	t.Helper()
	nA := cfg.NumActions()
	s := mustNew(t, cfg, 2026, 3)
	run := propensityRun{stats.NewCalibration(nA, calibBins), stats.NewCalibration(nA, calibBins), stats.NewCalibration(nA, calibBins)}
	q, q1 := make([]float64, nA), make([]float64, nA)
	var bad error
	for run.logged.Rows() < steps && bad == nil {
		s.RunEpisode(p, func(tr *Transition) {
			run.logged.Add(tr.ActionProbs, tr.Action)
			if controls {
				perturb(q1, tr.ActionProbs, 0.01)
				run.off1.Add(q1, tr.Action)
			}
			if run.logged.Rows()%10 != 0 {
				return
			}
			p.ActionProbs(tr.State, q)
			if !slices.Equal(q, tr.ActionProbs) || tr.BehaviorLogProb != math.Log(q[tr.Action]) {
				bad = fmt.Errorf("step %d: logged probs %v, log-prob %v; recomputed from State %v", tr.Step, tr.ActionProbs, tr.BehaviorLogProb, q)
			}
			if controls {
				p.ActionProbs(tr.NextState, q)
				run.next.Add(q, tr.Action)
			}
		})
	}
	if bad != nil {
		t.Fatal(bad)
	}
	return run
}

// TestLoggedPropensitiesCalibrated checks, through RunEpisode, that the
// action drawn at each step has exactly the logged distribution: over
// many steps of a state-dependent policy, per action a, the sum
// Σ_t (1{a_t = a} − q_t(a)) with q_t the logged distribution is zero-mean
// with variance Σ_t q_t(a)(1 − q_t(a)), and the vector of these sums has
// covariance Σ_t (diag(q_t) − q_t q_tᵀ), so X² = dᵀΣ⁻¹d is χ²(nA − 1).
// The test asserts every per-action z, and every z within a bin of
// q_t(a), within ±4.5 (about 70 z: a chance of about 5e-4 under
// calibration that one exceeds it; the draws are seeded) and X²'s upper
// tail probability above 1e-4. On the same draws it checks that it sees
// a 1% error: with every action's probability mis-stated by ±1% (relative,
// renormalised) X²'s tail is below 1e-6 and some |z| exceeds 4.5; with the
// next state's probabilities logged instead (on a tenth of the steps),
// some binned |z| exceeds 4.5.
// The second policy gives two actions, the last among them, probability 0
// (the inverse CDF's skipped and last buckets): they must never be drawn,
// and the rest must be calibrated (1,000,000 steps, no controls). Under
// -race the draws are 10× fewer and only the calibrated cases are
// asserted.
func TestLoggedPropensitiesCalibrated(t *testing.T) {
	cfg := DefaultConfig()
	nA := cfg.NumActions()
	soft := newSoftmax(nA, cfg.StateDim)
	for _, tc := range []struct {
		name     string
		p        Policy
		steps    int
		controls bool
	}{
		{"0.7 softmax + 0.3 uniform", mixPolicy{base: soft, eps: 0.3}, 3_000_000, true},
		{"the same, actions 1 and last at 0", mixPolicy{base: soft, eps: 0.3, zero: []int{1, nA - 1}}, 1_000_000, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			steps := tc.steps
			if raceEnabled {
				steps /= 10
			}
			run := runPropensities(t, cfg, tc.p, steps, tc.controls)
			logCalibration(t, "logged", run.logged, true)
			checkCalibrated(t, run.logged)
			if tc.controls {
				logCalibration(t, "1% off", run.off1, true)
				logCalibration(t, "next state's", run.next, false)
				if !raceEnabled {
					checkSees(t, run)
				}
			}
		})
	}
}

// logCalibration logs c's figures, its X² only with withX2.
func logCalibration(t *testing.T, name string, c *stats.Calibration, withX2 bool) {
	t.Helper()
	x2 := "no X²"
	if withX2 {
		v, df, p := mustChi2(t, c)
		x2 = fmt.Sprintf("X² %.1f (df %d, p %.2g)", v, df, p)
	}
	bz := c.BinZ(1000)
	t.Logf("%s probabilities, %d steps: z per action %s; %s; binned z largest %+.2f of %d",
		name, c.Rows(), stats.FormatZ(c.Z()), x2, stats.MaxAbs(bz), len(bz))
}

// mustChi2 is c.Chi2, the test failed on its error.
func mustChi2(t *testing.T, c *stats.Calibration) (x2 float64, df int, p float64) {
	t.Helper()
	x2, df, p, err := c.Chi2()
	if err != nil {
		t.Fatal(err)
	}
	return x2, df, p
}

func checkCalibrated(t *testing.T, c *stats.Calibration) {
	t.Helper()
	if n := c.DrawnZero(); n > 0 {
		t.Errorf("%d draws of an action logged with probability 0", n)
	}
	if z := stats.MaxAbs(c.Z()); math.Abs(z) > 4.5 {
		t.Errorf("largest per-action z %+.2f; want within ±4.5", z)
	}
	if z := stats.MaxAbs(c.BinZ(1000)); math.Abs(z) > 4.5 {
		t.Errorf("largest binned z %+.2f; want within ±4.5", z)
	}
	if x2, df, p := mustChi2(t, c); p < 1e-4 {
		t.Errorf("X² %.1f on %d df, p %.2g; want p ≥ 1e-4", x2, df, p)
	}
}

func checkSees(t *testing.T, run propensityRun) {
	t.Helper()
	if x2, df, p := mustChi2(t, run.off1); p > 1e-6 || math.Abs(stats.MaxAbs(run.off1.Z())) <= 4.5 {
		t.Errorf("1%% off: X² %.1f on %d df (p %.2g), largest z %+.2f; want p ≤ 1e-6 and |z| > 4.5", x2, df, p, stats.MaxAbs(run.off1.Z()))
	}
	if z := stats.MaxAbs(run.next.BinZ(1000)); math.Abs(z) <= 4.5 {
		t.Errorf("next state's probabilities: largest binned z %+.2f; want beyond ±4.5", z)
	}
}
