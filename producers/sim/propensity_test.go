package sim

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/gonum/stat/distuv"
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
// calibration is checked per action: an error that depends on the state
// (probabilities of another state than the one acted on) shows in them
// even where it averages out over all rows.
var calibBins = []float64{0.03, 0.06, 0.12, 0.25, math.Inf(1)}

// calibration accumulates, over rows (q, a) with a drawn from the
// distribution q, the vector d = Σ_rows (e_a − q) and its covariance
// Σ_rows (diag(q) − q qᵀ) (the sum of independent — or martingale —
// categorical deviations; its upper triangle, and only when full), and
// per action the variance Σ_rows q_a(1 − q_a) and, per bin of q_a, the
// sum of 1{a_t = a} − q_a and of its variance.
type calibration struct {
	nA, rows  int
	d, v, cov []float64
	bd, bv    []float64 // action × bin
	drawnZero int       // draws of an action logged with probability 0
}

func newCalibration(nA int, full bool) *calibration {
	nb := nA * len(calibBins)
	c := &calibration{nA: nA, d: make([]float64, nA), v: make([]float64, nA),
		bd: make([]float64, nb), bv: make([]float64, nb)}
	if full {
		c.cov = make([]float64, nA*nA)
	}
	return c
}

func (c *calibration) add(q []float64, act int) {
	c.rows++
	if q[act] == 0 {
		c.drawnZero++
	}
	for a, qa := range q {
		x := -qa
		if a == act {
			x++
		}
		c.d[a] += x
		c.v[a] += qa * (1 - qa)
		if c.cov != nil {
			row := c.cov[a*c.nA : (a+1)*c.nA]
			for b, qb := range q[a:] {
				row[a+b] -= qa * qb
			}
			row[a] += qa
		}
		k := a*len(calibBins) + binOf(qa)
		c.bd[k] += x
		c.bv[k] += qa * (1 - qa)
	}
}

func binOf(q float64) int {
	b := 0
	for q >= calibBins[b] {
		b++
	}
	return b
}

// z returns each action's z = d_a / √cov_aa (0 for an action never given
// probability).
func (c *calibration) z() []float64 {
	z := make([]float64, c.nA)
	for a := range z {
		if v := c.v[a]; v > 0 {
			z[a] = c.d[a] / math.Sqrt(v)
		}
	}
	return z
}

// binZ returns the z of every (action, bin) cell whose variance sum is at
// least minVar (about that many expected draws at small q).
func (c *calibration) binZ(minVar float64) []float64 {
	var z []float64
	for k, v := range c.bv {
		if v >= minVar {
			z = append(z, c.bd[k]/math.Sqrt(v))
		}
	}
	return z
}

// chi2 returns X² = dᵀ Σ⁻¹ d over the actions given probability (one of
// them dropped, since d sums to 0), its degrees of freedom and its upper
// tail probability under χ²(df).
func (c *calibration) chi2() (x2 float64, df int, p float64) {
	var keep []int
	for a := range c.nA {
		if c.v[a] > 0 {
			keep = append(keep, a)
		}
	}
	keep = keep[:len(keep)-1]
	df = len(keep)
	s := mat.NewSymDense(df, nil)
	d := mat.NewVecDense(df, nil)
	for i, a := range keep {
		d.SetVec(i, c.d[a])
		for j, b := range keep[i:] {
			s.SetSym(i, i+j, c.cov[a*c.nA+b])
		}
	}
	var ch mat.Cholesky
	if !ch.Factorize(s) {
		panic("calibration: covariance not positive definite")
	}
	var y mat.VecDense
	if err := ch.SolveVecTo(&y, d); err != nil {
		panic(err)
	}
	x2 = mat.Dot(d, &y)
	return x2, df, distuv.ChiSquared{K: float64(df)}.Survival(x2)
}

func maxAbs(xs []float64) float64 {
	m := 0.0
	for _, x := range xs {
		if math.Abs(x) > math.Abs(m) {
			m = x
		}
	}
	return m
}

func fmtZ(xs []float64) string {
	var b strings.Builder
	for i, x := range xs {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%+.2f", x)
	}
	return b.String()
}

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
	logged, off1, next *calibration
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
	run := propensityRun{newCalibration(nA, true), newCalibration(nA, true), newCalibration(nA, false)}
	q, q1 := make([]float64, nA), make([]float64, nA)
	var bad error
	for run.logged.rows < steps && bad == nil {
		s.RunEpisode(p, func(tr *Transition) {
			run.logged.add(tr.ActionProbs, tr.Action)
			if controls {
				perturb(q1, tr.ActionProbs, 0.01)
				run.off1.add(q1, tr.Action)
			}
			if run.logged.rows%10 != 0 {
				return
			}
			p.ActionProbs(tr.State, q)
			if !slices.Equal(q, tr.ActionProbs) || tr.BehaviorLogProb != math.Log(q[tr.Action]) {
				bad = fmt.Errorf("step %d: logged probs %v, log-prob %v; recomputed from State %v", tr.Step, tr.ActionProbs, tr.BehaviorLogProb, q)
			}
			if controls {
				p.ActionProbs(tr.NextState, q)
				run.next.add(q, tr.Action)
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
			logCalibration(t, "logged", run.logged)
			checkCalibrated(t, run.logged)
			if tc.controls {
				logCalibration(t, "1% off", run.off1)
				logCalibration(t, "next state's", run.next)
				if !raceEnabled {
					checkSees(t, run)
				}
			}
		})
	}
}

func logCalibration(t *testing.T, name string, c *calibration) {
	t.Helper()
	x2 := "no X²"
	if c.cov != nil {
		v, df, p := c.chi2()
		x2 = fmt.Sprintf("X² %.1f (df %d, p %.2g)", v, df, p)
	}
	bz := c.binZ(1000)
	t.Logf("%s probabilities, %d steps: z per action %s; %s; binned z largest %+.2f of %d",
		name, c.rows, fmtZ(c.z()), x2, maxAbs(bz), len(bz))
}

func checkCalibrated(t *testing.T, c *calibration) {
	t.Helper()
	if c.drawnZero > 0 {
		t.Errorf("%d draws of an action logged with probability 0", c.drawnZero)
	}
	if z := maxAbs(c.z()); math.Abs(z) > 4.5 {
		t.Errorf("largest per-action z %+.2f; want within ±4.5", z)
	}
	if z := maxAbs(c.binZ(1000)); math.Abs(z) > 4.5 {
		t.Errorf("largest binned z %+.2f; want within ±4.5", z)
	}
	if x2, df, p := c.chi2(); p < 1e-4 {
		t.Errorf("X² %.1f on %d df, p %.2g; want p ≥ 1e-4", x2, df, p)
	}
}

func checkSees(t *testing.T, run propensityRun) {
	t.Helper()
	if x2, df, p := run.off1.chi2(); p > 1e-6 || math.Abs(maxAbs(run.off1.z())) <= 4.5 {
		t.Errorf("1%% off: X² %.1f on %d df (p %.2g), largest z %+.2f; want p ≤ 1e-6 and |z| > 4.5", x2, df, p, maxAbs(run.off1.z()))
	}
	if z := maxAbs(run.next.binZ(1000)); math.Abs(z) <= 4.5 {
		t.Errorf("next state's probabilities: largest binned z %+.2f; want beyond ±4.5", z)
	}
}
