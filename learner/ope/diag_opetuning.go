//go:build opetuning

package ope

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
)

// This file exists only with the opetuning build tag: the diagnostic of
// DR's model correction that app/experiment's TestOPECorrection runs
// (see docs/off-policy-evaluation.md).

// CorrectionStep is step t's figures over the evaluation journeys of a
// segment that reach it: the sample means of A = γ^t w_{t−1} V̂(h_t) and
// B = γ^t w_t Q̂(h_t, a_t), of their difference D = A − B with its
// standard error, and of the single-step term U = V̂(h_t) − ρ_t Q̂(h_t, a_t)
// (zero-mean given h_t, its weight w_{t−1} left out) with its standard
// error.
type CorrectionStep struct {
	T, N              int
	A, B, D, DSE      float64
	U, USE            float64
	WPrev, WPrevMax   float64 // mean and largest w_{t−1}
	Rho, RhoSE        float64 // mean ρ_t − 1 and its s.e. (0 in expectation)
	QSpread, QAbsMean float64 // mean of max_a Q̂ − min_a Q̂, mean |Q̂(h_t, a_t)|
	// WU is the mean of γ^t min(w_{t−1}, 100)·U_t with its standard
	// error: zero-mean too (min(w_{t−1}, 100) is a function of the
	// history before a_t), with the identity checked on the weighted
	// histories but without the weights' heavy tail.
	WU, WUSE float64
}

// CorrectionDiag is what DiagnoseCorrection measured.
type CorrectionDiag struct {
	// Model is the Q̂ used: "fqe" (fitted on the fit journeys, then fixed)
	// or "random" (a fixed random function of the history).
	Model string
	// R2 is the fitted model's R² of the Bellman targets on the
	// evaluation journeys (0 for random).
	R2 float64
	// Steps are the per-step figures.
	Steps []CorrectionStep
	// C, P and W are, per evaluation journey of the segment, its
	// correction Σ_t γ^t (w_{t−1} V̂_t − w_t Q̂_t), its PDIS value and its
	// final weight.
	C, P, W []float64
	// CalibZ is, per action, the z-score of Σ_rows (1{a_t = a} − μ(a|s_t))
	// over every evaluation row that logged μ's distribution: the check
	// that the logged behaviour probabilities are the ones sampled.
	CalibZ []float64
}

// DiagnoseCorrection fits DR's Q̂ for target t (Config.Model's features,
// fitted-Q on every fit journey, no cross-fitting) — or, random, draws a
// fixed random Q̂(h, a) = lo + (hi − lo)·σ(θ_aᵀ(s_t, s̄_t, 1)), θ ~ N(0, 1/dim)
// from PCG(seed, 7), a function of the raw history alone — and measures
// its correction on the eval journeys, which played no part in the fit;
// segment "" takes every journey, otherwise the journeys of that true
// segment. Clipping is not applied.
func DiagnoseCorrection(t Target, fit, eval []Journey, cfg Config, random bool, segment string) (CorrectionDiag, error) {
	cfg.setDefaults()
	nA := t.Policy.NumActions()
	dim := 0
	if od, ok := t.Policy.(obsDimmer); ok {
		dim = od.ObsDim()
	}
	all := append(append([]Journey(nil), fit...), eval...)
	d, sk := flatten(all, dim, nA, cfg.Gamma)
	if sk.Total() > 0 {
		return CorrectionDiag{}, fmt.Errorf("diagnose: %s", sk)
	}
	if err := d.targetProbs(t.Policy, cfg.Workers); err != nil {
		return CorrectionDiag{}, err
	}
	if err := d.weights(0); err != nil {
		return CorrectionDiag{}, err
	}
	_, d.pdis, _ = d.estimates(nil, nil)
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, g := range d.rtg {
		lo, hi = min(lo, g), max(hi, g)
	}
	nFit := len(fit)
	evalLo := d.off[nFit]
	qall := make([]float64, d.rows*nA)
	out := CorrectionDiag{Model: cfg.Model}
	if random {
		out.Model = "random"
		d.randomQ(cfg.Seed, dim, evalLo, lo, hi, qall)
	} else if err := d.fixedFQE(cfg, evalLo, lo, hi, qall); err != nil {
		return CorrectionDiag{}, err
	}
	qa, v := make([]float64, d.rows), make([]float64, d.rows)
	for r := evalLo; r < d.rows; r++ {
		qa[r] = qall[r*nA+d.act[r]]
		for a := range nA {
			v[r] += d.pi[r*nA+a] * qall[r*nA+a]
		}
	}
	if !random {
		out.R2 = d.bellmanR2(qa, v, evalLo)
	}
	accs, cal := d.correctionSums(&out, qall, qa, v, nFit, segment)
	out.Steps = correctionSteps(accs)
	out.CalibZ = cal.z()
	return out, nil
}

// randomQ fills qall's evaluation rows with a fixed random Q̂(h, a) =
// lo + (hi − lo)·σ(θ_aᵀ(s_t, s̄_t, 1)), θ ~ N(0, 1/dim) from PCG(seed, 7).
func (d *data) randomQ(seed uint64, dim, evalLo int, lo, hi float64, qall []float64) {
	nA := d.nA
	raw := make([]float64, d.rows*2*dim)
	historyRaw(d.obs, d.off, dim, raw, 2*dim)
	rng := rand.New(rand.NewPCG(seed, 7))
	theta := make([]float64, nA*(2*dim+1))
	for k := range theta {
		theta[k] = rng.NormFloat64() / math.Sqrt(float64(dim))
	}
	for r := evalLo; r < d.rows; r++ {
		x := raw[r*2*dim : (r+1)*2*dim]
		for a := range nA {
			th := theta[a*(2*dim+1) : (a+1)*(2*dim+1)]
			s := th[2*dim]
			for j, xv := range x {
				s += th[j] * xv
			}
			qall[r*nA+a] = lo + (hi-lo)/(1+math.Exp(-s))
		}
	}
}

// fixedFQE fits cfg.Model's fitted-Q on the rows before evalLo (the fit
// journeys, no cross-fitting) and fills qall's evaluation rows with it.
func (d *data) fixedFQE(cfg Config, evalLo int, lo, hi float64, qall []float64) error {
	nA := d.nA
	var f features
	switch cfg.Model {
	case ModelLinear:
		f = stateFeatures(d.obs, d.rows, d.dim)
	case ModelFQE:
		f = historyFeatures(d.obs, d.off, d.dim)
	default:
		return errors.New("diagnose: model must be fqe or fqe-linear")
	}
	iters := min(d.maxLen(), 100)
	in := &fqeInput{f: f, nA: nA, act: d.act, rew: d.rew, last: d.last, pi: d.pi,
		gamma: d.gamma, ridge: cfg.Ridge, iters: iters, lo: lo, hi: hi}
	train := make([]int, evalLo)
	for r := range train {
		train[r] = r
	}
	q, _, err := fitFQE(in, train)
	if err != nil {
		return err
	}
	for r := evalLo; r < d.rows; r++ {
		q.all(f.row(r), qall[r*nA:(r+1)*nA])
	}
	return nil
}

// bellmanR2 is the model's R² of the Bellman targets r_t + γ V̂(h_{t+1})
// on the evaluation rows.
func (d *data) bellmanR2(qa, v []float64, evalLo int) float64 {
	var ys, res []float64
	for r := evalLo; r < d.rows; r++ {
		y := d.rew[r]
		if !d.last[r] {
			y += d.gamma * v[r+1]
		}
		ys, res = append(ys, y), append(res, y-qa[r])
	}
	return rSquared(ys, res)
}

// stepSums are one step's sums over the journeys that reach it.
type stepSums struct{ n, a, b, d, d2, u, u2, wp, wpMax, rho, rho2, spread, qabs, wu, wu2 float64 }

// calibSums are, per action, Σ (1{a_t = a} − μ(a|s_t)) and its variance.
type calibSums struct{ n, v []float64 }

// z is each action's z-score.
func (c calibSums) z() []float64 {
	out := make([]float64, len(c.n))
	for a := range c.n {
		if c.v[a] > 0 {
			out[a] = c.n[a] / math.Sqrt(c.v[a])
		}
	}
	return out
}

// correctionSums walks the segment's evaluation journeys (from journey
// nFit on): per step the sums of CorrectionStep's terms, per journey its
// correction, PDIS value and final weight (appended to out), and the
// calibration of the logged behaviour probabilities.
func (d *data) correctionSums(out *CorrectionDiag, qall, qa, v []float64, nFit int, segment string) ([]stepSums, calibSums) {
	nA := d.nA
	accs := make([]stepSums, d.maxLen())
	cal := calibSums{n: make([]float64, nA), v: make([]float64, nA)}
	for i := nFit; i < d.n; i++ {
		if segment != "" && d.truth[i] != segment {
			continue
		}
		prev, disc := 1.0, 1.0
		c := 0.0
		for r := d.off[i]; r < d.off[i+1]; r++ {
			w := d.w[r]
			rho := math.Exp(d.logPi[r*nA+d.act[r]] - d.logMu[r])
			A, B := disc*prev*v[r], disc*w*qa[r]
			accs[r-d.off[i]].add(A, B, v[r]-rho*qa[r], disc*min(prev, 100), prev, rho, qall[r*nA:(r+1)*nA], qa[r])
			c += A - B
			if p := d.probs[r]; p != nil {
				for a, q := range p {
					if d.act[r] == a {
						cal.n[a]++
					}
					cal.n[a] -= q
					cal.v[a] += q * (1 - q)
				}
			}
			prev = w
			disc *= d.gamma
		}
		out.C = append(out.C, c)
		out.P = append(out.P, d.pdis[i])
		out.W = append(out.W, d.final[i])
	}
	return accs, cal
}

// add counts one row: A and B, the single-step term U, the capped
// weight-times-discount of U, w_{t−1}, ρ_t, the row's Q̂ over actions and
// Q̂(h_t, a_t).
func (s *stepSums) add(A, B, U, capped, prev, rho float64, qs []float64, qa float64) {
	s.n++
	s.a += A
	s.b += B
	s.d += A - B
	s.d2 += (A - B) * (A - B)
	s.u += U
	s.u2 += U * U
	wu := capped * U
	s.wu += wu
	s.wu2 += wu * wu
	s.wp += prev
	s.wpMax = max(s.wpMax, prev)
	s.rho += rho - 1
	s.rho2 += (rho - 1) * (rho - 1)
	mn, mx := qs[0], qs[0]
	for _, x := range qs {
		mn, mx = min(mn, x), max(mx, x)
	}
	s.spread += mx - mn
	s.qabs += math.Abs(qa)
}

// correctionSteps turns the per-step sums into means and standard errors.
func correctionSteps(accs []stepSums) []CorrectionStep {
	se := func(sum, sum2, n float64) float64 {
		m := sum / n
		return math.Sqrt(max(sum2/n-m*m, 0) / n)
	}
	var steps []CorrectionStep
	for t, s := range accs {
		if s.n == 0 {
			continue
		}
		steps = append(steps, CorrectionStep{T: t, N: int(s.n),
			A: s.a / s.n, B: s.b / s.n, D: s.d / s.n, DSE: se(s.d, s.d2, s.n),
			U: s.u / s.n, USE: se(s.u, s.u2, s.n),
			WPrev: s.wp / s.n, WPrevMax: s.wpMax,
			Rho: s.rho / s.n, RhoSE: se(s.rho, s.rho2, s.n),
			QSpread: s.spread / s.n, QAbsMean: s.qabs / s.n,
			WU: s.wu / s.n, WUSE: se(s.wu, s.wu2, s.n)})
	}
	return steps
}
