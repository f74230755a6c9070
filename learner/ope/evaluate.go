package ope

import (
	"errors"
	"fmt"
	"math"
	"sync"
)

// maxLogWeight bounds ln w of an unclipped cumulative weight: past
// w = e^345 ≈ 1e150 sums of weighted rewards could overflow float64, so
// Evaluate stops with an error that asks for Clip instead.
const maxLogWeight = 345

// ErrWeightOverflow is wrapped by Evaluate's error when an unclipped
// cumulative importance weight exceeds e^345 (≈ 1e150).
var ErrWeightOverflow = errors.New("off-policy evaluation: importance weight overflow")

// data is the evaluation set flattened: journey i's steps are rows
// off[i] … off[i+1]−1.
type data struct {
	n, rows, nA, dim int
	gamma            float64
	ids, tag, truth  []string
	off              []int
	obs              []float32 // rows × dim
	act              []int
	logMu, rew       []float64
	last             []bool
	probs            [][]float64 // behaviour distributions (nil when not logged)
	logPi, pi        []float64   // rows × nA
	w                []float64   // cumulative weight per row (clipped)
	clipped          []bool
	rtg              []float64 // return-to-go per row
	// per journey
	final []float64 // w_{i,H_i−1}
	ret   []float64 // logged return
	pdis  []float64
	dr    []float64
	drv   []float64 // nil without a value head
	wr    []float64 // γ^t w_t r_t per row
	// WDR's per-row terms γ^t w_t (r_t − Q̂_t) and γ^t w_{t−1} V̂_t (nil
	// for ModelNone)
	wq, wv []float64
}

// obsDimmer is a policy that knows its observation width (ppo.Policy).
type obsDimmer interface{ ObsDim() int }

// flatten copies the usable journeys of js into a data, counting those
// left out. dim 0 takes the width of the first journey's first state.
func flatten(js []Journey, dim, nA int, gamma float64) (*data, Skipped) {
	var sk Skipped
	if dim == 0 {
		for i := range js {
			if len(js[i].Steps) > 0 {
				dim = len(js[i].Steps[0].State)
				break
			}
		}
	}
	d := &data{nA: nA, dim: dim, gamma: gamma, off: []int{0}}
	for i := range js {
		j := &js[i]
		if r := checkJourney(j, dim, nA); r >= 0 {
			sk.add(r)
			continue
		}
		d.ids, d.tag, d.truth = append(d.ids, j.ID), append(d.tag, j.Tag), append(d.truth, j.Truth)
		for k := range j.Steps {
			s := &j.Steps[k]
			d.obs = append(d.obs, s.State...)
			d.act = append(d.act, s.Action)
			d.logMu = append(d.logMu, s.LogProb)
			d.rew = append(d.rew, s.Reward)
			d.last = append(d.last, k == len(j.Steps)-1)
			d.probs = append(d.probs, s.Probs)
		}
		d.off = append(d.off, len(d.act))
	}
	d.n, d.rows = len(d.ids), len(d.act)
	return d, sk
}

// parallel runs fn over [0, n) cut into up to workers contiguous parts,
// and waits.
func parallel(n, workers int, fn func(lo, hi int)) {
	workers = max(1, min(workers, n))
	if workers == 1 {
		fn(0, n)
		return
	}
	var wg sync.WaitGroup
	for k := range workers {
		lo, hi := n*k/workers, n*(k+1)/workers
		wg.Go(func() { fn(lo, hi) })
	}
	wg.Wait()
}

// targetProbs fills logPi and pi from the target, checking that every row
// is a distribution: entries NaN-free and ≤ 0 (with 1e-9 slack), summing
// to 1 within 1e-6.
func (d *data) targetProbs(p Policy, workers int) error {
	d.logPi = make([]float64, d.rows*d.nA)
	d.pi = make([]float64, d.rows*d.nA)
	errRow := make([]int, max(1, workers))
	errSum := make([]float64, max(1, workers))
	for k := range errRow {
		errRow[k] = -1
	}
	part := 0
	var mu sync.Mutex
	parallel(d.rows, workers, func(lo, hi int) {
		mu.Lock()
		k := part
		part++
		mu.Unlock()
		obs := make([]float64, d.dim)
		for r := lo; r < hi; r++ {
			for j, v := range d.obs[r*d.dim : (r+1)*d.dim] {
				obs[j] = float64(v)
			}
			lp, pr := d.logPi[r*d.nA:(r+1)*d.nA], d.pi[r*d.nA:(r+1)*d.nA]
			p.LogProbs(obs, lp)
			sum := 0.0
			ok := true
			for a, v := range lp {
				if math.IsNaN(v) || v > 1e-9 {
					ok = false
				}
				pr[a] = math.Exp(v)
				sum += pr[a]
			}
			if !ok || math.Abs(sum-1) > 1e-6 {
				errRow[k], errSum[k] = r, sum
				return
			}
		}
	})
	for k, r := range errRow {
		if r >= 0 {
			i := d.journeyOf(r)
			return fmt.Errorf("target policy: log-probabilities of journey %q step %d are not a distribution (probabilities sum to %v)",
				d.ids[i], r-d.off[i], errSum[k])
		}
	}
	return nil
}

// journeyOf returns the journey of row r.
func (d *data) journeyOf(r int) int {
	lo, hi := 0, d.n-1
	for lo < hi {
		m := (lo + hi + 1) / 2
		if d.off[m] <= r {
			lo = m
		} else {
			hi = m - 1
		}
	}
	return lo
}

// weights computes the per-decision ratios ρ_t = exp(ln π(a_t|s_t) −
// ln μ(a_t|s_t)) and the cumulative weights
//
//	w_t = Π_{k≤t} ρ_k,   or   min(clip, Π_{k≤t} ρ_k) with clipping,
//
// summed in log space (ln w_t = Σ_{k≤t} (ln π − ln μ)), so a weight of 0
// (the target never takes the logged action) stays 0 and an equal target
// and behaviour give exactly 1. It also fills the returns-to-go
// G_t = r_t + γ G_{t+1}.
func (d *data) weights(clip float64) error {
	d.w = make([]float64, d.rows)
	d.clipped = make([]bool, d.rows)
	d.rtg = make([]float64, d.rows)
	d.final = make([]float64, d.n)
	logClip := math.Log(clip)
	for i := range d.n {
		lw := 0.0
		for r := d.off[i]; r < d.off[i+1]; r++ {
			lw += d.logPi[r*d.nA+d.act[r]] - d.logMu[r]
			switch {
			case clip > 0 && lw > logClip:
				d.w[r], d.clipped[r] = clip, true
			case clip == 0 && lw > maxLogWeight:
				return fmt.Errorf("%w: journey %q step %d has ln w = %.1f (> %d); set a clip",
					ErrWeightOverflow, d.ids[i], r-d.off[i], lw, maxLogWeight)
			default:
				d.w[r] = math.Exp(lw)
			}
		}
		d.final[i] = d.w[d.off[i+1]-1]
		g := 0.0
		for r := d.off[i+1] - 1; r >= d.off[i]; r-- {
			g = d.rew[r] + d.gamma*g
			d.rtg[r] = g
		}
	}
	return nil
}

// unsupported returns the steps that logged the behaviour's distribution
// and the target's mean mass, over them, on actions of behaviour
// probability 0.
func (d *data) unsupported() (int, float64) {
	n, mass := 0, 0.0
	for r, p := range d.probs {
		if p == nil {
			continue
		}
		n++
		for a, q := range p {
			if q == 0 {
				mass += d.pi[r*d.nA+a]
			}
		}
	}
	if n == 0 {
		return 0, 0
	}
	return n, mass / float64(n)
}

// estimates computes each journey's PDIS, logged and DR values, and the
// rows' weighted rewards γ^t w_t r_t, with qa = Q̂(s_t, a_t) and
// v = V̂(s_t) per row (nil: Q̂ = 0):
//
//	G_i    = Σ_t γ^t r_t
//	PDIS_i = Σ_t γ^t w_t r_t
//	DR_i   = Σ_t γ^t [ w_t (r_t − Q̂(s_t, a_t)) + w_{t−1} V̂(s_t) ],  w_{−1} = 1
//
// DR_i is Jiang & Li's recursion V_DR^{H−t} = V̂(s_t) + ρ_t (r_t + γ
// V_DR^{H−t−1} − Q̂(s_t, a_t)) unrolled (ρ_t w_{t−1} = w_t); with clipping
// the clipped w_t stand in for the products.
func (d *data) estimates(qa, v []float64) (ret, pdis, dr []float64) {
	ret, pdis, dr = make([]float64, d.n), make([]float64, d.n), make([]float64, d.n)
	if d.wr == nil {
		d.wr = make([]float64, d.rows)
	}
	for i := range d.n {
		disc, prev := 1.0, 1.0
		var g, p, x float64
		for r := d.off[i]; r < d.off[i+1]; r++ {
			w, rw := d.w[r], d.rew[r]
			g += disc * rw
			d.wr[r] = disc * w * rw
			p += d.wr[r]
			if qa != nil {
				x += disc * (w*(rw-qa[r]) + prev*v[r])
			}
			prev = w
			disc *= d.gamma
		}
		ret[i], pdis[i] = g, p
		dr[i] = p
		if qa != nil {
			dr[i] = x
		}
	}
	return ret, pdis, dr
}

// weightedTerms returns DR's per-row terms γ^t w_t (r_t − Q̂(s_t, a_t))
// and γ^t w_{t−1} V̂(s_t) (w_{−1} = 1), whose per-step sums WDR
// normalises.
func (d *data) weightedTerms(qa, v []float64) (wq, wv []float64) {
	wq, wv = make([]float64, d.rows), make([]float64, d.rows)
	for i := range d.n {
		disc, prev := 1.0, 1.0
		for r := d.off[i]; r < d.off[i+1]; r++ {
			wq[r] = disc * d.w[r] * (d.rew[r] - qa[r])
			wv[r] = disc * prev * v[r]
			prev = d.w[r]
			disc *= d.gamma
		}
	}
	return wq, wv
}

// gateModel sets Q̂ and V̂ of every row whose journey's weight before it,
// w_{t−1} (w_{−1} = 1), exceeds max to 0 (see Config.ModelMaxWeight) and
// returns the share of rows it set.
func (d *data) gateModel(qa, v []float64, max float64) float64 {
	gated := 0
	for i := range d.n {
		prev := 1.0
		for r := d.off[i]; r < d.off[i+1]; r++ {
			if prev > max {
				qa[r], v[r] = 0, 0
				gated++
			}
			prev = d.w[r]
		}
	}
	return float64(gated) / float64(d.rows)
}

// Evaluate estimates the value of target t from the logged journeys js
// (see the package documentation for the estimators, the model and the
// intervals). Journeys that cannot be used are left out and counted in
// Report.Skipped; with none left it returns ErrNoJourneys. A target that
// does not give a distribution, an unclipped weight beyond e^345 or a
// figure that would not be finite is an error: a Report never holds a NaN
// or an infinity.
func Evaluate(t Target, js []Journey, cfg Config) (Report, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return Report{}, err
	}
	if t.Policy == nil {
		return Report{}, errors.New("off-policy evaluation: target has no policy")
	}
	nA := t.Policy.NumActions()
	if nA < 1 {
		return Report{}, fmt.Errorf("off-policy evaluation: target has %d actions", nA)
	}
	dim := 0
	if od, ok := t.Policy.(obsDimmer); ok {
		dim = od.ObsDim()
	}
	d, sk := flatten(js, dim, nA, cfg.Gamma)
	if d.n == 0 {
		if sk.Total() > 0 {
			return Report{}, fmt.Errorf("%w (%d given; %s)", ErrNoJourneys, len(js), sk)
		}
		return Report{}, ErrNoJourneys
	}
	if err := d.targetProbs(t.Policy, cfg.Workers); err != nil {
		return Report{}, err
	}
	if err := d.weights(cfg.Clip); err != nil {
		return Report{}, err
	}
	fit, qa, v, err := d.fitModel(cfg)
	if err != nil {
		return Report{}, err
	}
	if qa != nil {
		fit.GatedShare = d.gateModel(qa, v, cfg.ModelMaxWeight)
	}
	d.ret, d.pdis, d.dr = d.estimates(qa, v)
	if qa != nil {
		d.wq, d.wv = d.weightedTerms(qa, v)
	}
	if t.Value != nil {
		vh, err := d.valueHead(t.Value, fit.Lo, fit.Hi)
		if err != nil {
			return Report{}, err
		}
		vq := append([]float64(nil), vh...)
		d.gateModel(vq, vh, cfg.ModelMaxWeight)
		_, _, d.drv = d.estimates(vq, vh)
	}
	rep := Report{Target: t.Name, Journeys: d.n, Steps: d.rows, Skipped: sk, Gamma: cfg.Gamma,
		Confidence: cfg.Confidence, Resamples: cfg.Resamples, Seed: cfg.Seed, Clip: cfg.Clip, Model: fit}
	rep.SupportSteps, rep.UnsupportedMass = d.unsupported()
	rep.Segments = d.segments(cfg)
	rep.Notes = notes(&rep)
	if err := rep.checkFinite(); err != nil {
		return Report{}, err
	}
	return rep, nil
}

// valueHead returns V̂(s_t) = clamp(value(s_t), lo, hi) per row; a NaN
// from the value head is an error.
func (d *data) valueHead(value func([]float64) float64, lo, hi float64) ([]float64, error) {
	out := make([]float64, d.rows)
	obs := make([]float64, d.dim)
	for r := range d.rows {
		for j, x := range d.obs[r*d.dim : (r+1)*d.dim] {
			obs[j] = float64(x)
		}
		v := value(obs)
		if math.IsNaN(v) {
			i := d.journeyOf(r)
			return nil, fmt.Errorf("target value head: NaN at journey %q step %d", d.ids[i], r-d.off[i])
		}
		out[r] = min(max(v, lo), hi)
	}
	return out, nil
}

// fitModel fits DR's Q model and returns, per row, Q̂(s_t, a_t) and
// V̂(s_t) (both nil for ModelNone), each journey's from the model of its
// fold, fitted on the other folds' journeys.
func (d *data) fitModel(cfg Config) (ModelFit, []float64, []float64, error) {
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, g := range d.rtg {
		lo, hi = min(lo, g), max(hi, g)
	}
	fit := ModelFit{Model: cfg.Model, Lo: lo, Hi: hi}
	if cfg.Model == ModelNone {
		return fit, nil, nil, nil
	}
	if !math.IsInf(cfg.ModelMaxWeight, 1) {
		fit.MaxWeight = cfg.ModelMaxWeight
	}
	iters := cfg.Iterations
	if iters == 0 {
		for i := range d.n {
			iters = max(iters, d.off[i+1]-d.off[i])
		}
		iters = min(iters, 100)
	}
	var f features
	if cfg.Model == ModelLinear {
		f = stateFeatures(d.obs, d.rows, d.dim)
	} else {
		f = historyFeatures(d.obs, d.off, d.dim)
	}
	in := &fqeInput{f: f, nA: d.nA, act: d.act, rew: d.rew, last: d.last, pi: d.pi,
		gamma: d.gamma, ridge: cfg.Ridge, iters: iters, lo: lo, hi: hi}
	folds := make([]int, d.n)
	for i := range d.n {
		folds[i] = foldOf(d.ids[i], i, cfg.Folds)
	}
	models := make([]*linearQ, cfg.Folds)
	its := make([]int, cfg.Folds)
	errs := make([]error, cfg.Folds)
	parallel(cfg.Folds, cfg.Workers, func(flo, fhi int) {
		for f := flo; f < fhi; f++ {
			var train []int
			for i := range d.n {
				if folds[i] != f {
					for r := d.off[i]; r < d.off[i+1]; r++ {
						train = append(train, r)
					}
				}
			}
			models[f], its[f], errs[f] = fitFQE(in, train)
		}
	})
	if err := errors.Join(errs...); err != nil {
		return fit, nil, nil, fmt.Errorf("off-policy evaluation: %w", err)
	}
	fit.Folds = cfg.Folds
	for _, it := range its {
		fit.Iterations = max(fit.Iterations, it)
	}
	qa, v := make([]float64, d.rows), make([]float64, d.rows)
	fit.R2 = d.predict(in, models, folds, qa, v)
	return fit, qa, v, nil
}

// predict fills qa and v from each journey's fold model and returns the
// out-of-fold R² of the Bellman targets y = r + γ V̂(s′).
func (d *data) predict(in *fqeInput, models []*linearQ, folds []int, qa, v []float64) float64 {
	scratch := make([]float64, d.nA)
	var ys, res []float64
	for i := range d.n {
		q := models[folds[i]]
		for r := d.off[i]; r < d.off[i+1]; r++ {
			v[r] = q.value(in.f.row(r), d.pi[r*d.nA:(r+1)*d.nA], scratch)
			qa[r] = scratch[d.act[r]]
		}
		for r := d.off[i]; r < d.off[i+1]; r++ {
			y := d.rew[r]
			if !d.last[r] {
				y += d.gamma * v[r+1]
			}
			ys, res = append(ys, y), append(res, y-qa[r])
		}
	}
	return rSquared(ys, res)
}

// rSquared is 1 − Σ res² / Σ (y − ȳ)² (0 when the ys do not vary).
func rSquared(ys, res []float64) float64 {
	mean := 0.0
	for _, y := range ys {
		mean += y
	}
	mean /= float64(len(ys))
	var ss, sr float64
	for k, y := range ys {
		ss += (y - mean) * (y - mean)
		sr += res[k] * res[k]
	}
	if ss == 0 {
		return 0
	}
	return 1 - sr/ss
}
