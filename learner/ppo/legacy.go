package ppo

import (
	"math"

	"gonum.org/v1/gonum/floats"
)

// The per-row path: the update as it was computed before the batched
// kernels (one sample at a time, a matrix–vector product per layer with
// gonum's floats.Dot and floats.AddScaled, scalar tanh, softmax and Adam, private
// gradient buffers per worker added in worker order). It is kept,
// unexported, as the baseline of BenchmarkUpdate and as an independent
// reference for the tests of the batched path (the two agree to
// rounding, not bit for bit: their orders of summation differ). It is
// selected by Agent.perRow and only ever changes how Update computes;
// LogProbs, Value and Policy always run the batched forward pass.

// legacyAgent is the per-row path's state of an Agent.
type legacyAgent struct {
	// slot[k]: position of compacted sample k in the first minibatch, or
	// −1. The first minibatch's activations, kept from the pre-update
	// pass (its parameters are still θ_old), are in pcache and vcache.
	slot           []int
	pcache, vcache []float64
	xn             []float64 // normalised s′, row-major
}

// legacyWorker is a worker's per-row state: single-sample workspaces and,
// except for worker 0 (which uses a.grad), a private gradient buffer.
type legacyWorker struct {
	pw, vw         *mlpWork
	pown, vown     [][]float64 // the workspaces' own activation buffers
	logp, dlog, dv []float64
	grad           []float64
	res            mbResult
	pos0           int     // taskRowGrad: position of mb[0] in the minibatch
	parts          int     // taskRowReduce: gradient buffers to add (workers[:parts])
	ss             float64 // taskRowReduce: Σ g² over the worker's parameters
}

func (a *Agent) newLegacyWorker(grad []float64) *legacyWorker {
	pw, vw := a.pol.newWork(), a.val.newWork()
	return &legacyWorker{
		pw: pw, vw: vw,
		pown: append([][]float64(nil), pw.act...),
		vown: append([][]float64(nil), vw.act...),
		logp: make([]float64, a.cfg.NumActions),
		dlog: make([]float64, a.cfg.NumActions),
		dv:   make([]float64, 1),
		grad: grad,
	}
}

// ensureLegacy allocates the per-row state of the agent and its workers.
func (a *Agent) ensureLegacy() {
	if a.lg == nil {
		a.lg = &legacyAgent{}
	}
	for c, w := range a.workers {
		if w.lg == nil {
			g := a.grad
			if c > 0 {
				g = make([]float64, len(a.params))
			}
			w.lg = a.newLegacyWorker(g)
		}
	}
}

// mlpWork holds the activations of one forward pass and the backpropagated
// deltas; one per goroutine.
type mlpWork struct {
	act   [][]float64 // act[l]: output of layer l (tanh for hidden, linear last)
	delta [][]float64 // delta[l]: ∂L/∂(pre-activation of layer l)
	probs []float64   // softmax of the output (see logSoftmax)
}

func (m *mlp) newWork() *mlpWork {
	w := &mlpWork{}
	for l := 0; l < m.layers(); l++ {
		w.act = append(w.act, make([]float64, m.sizes[l+1]))
		w.delta = append(w.delta, make([]float64, m.sizes[l+1]))
	}
	w.probs = make([]float64, m.out())
	return w
}

// forwardRow computes the network output for input x and returns it (a
// slice of w, valid until the next forwardRow with w):
//
//	h_0 = x,  h_l = tanh(W_l·h_{l−1} + b_l) for hidden layers,
//	out = W_L·h_{L−1} + b_L,
//
// with b_l added after the dot product floats.Dot.
func (m *mlp) forwardRow(p, x []float64, w *mlpWork) []float64 {
	in := x
	last := m.layers() - 1
	for l := 0; l <= last; l++ {
		nin, nout := m.sizes[l], m.sizes[l+1]
		wl := p[m.woff[l] : m.woff[l]+nout*nin]
		bl := p[m.boff[l] : m.boff[l]+nout]
		h := w.act[l]
		for j := range nout {
			h[j] = bl[j] + floats.Dot(wl[j*nin:(j+1)*nin], in)
		}
		if l < last {
			tanhScalar(h)
		}
		in = h
	}
	return in
}

// backwardRow accumulates into g (same layout as p) the gradient of a
// scalar loss whose derivative with respect to the network output is
// dout, for the forward pass last run with x and w:
//
//	∂L/∂W_l += δ_l ⊗ h_{l−1},  ∂L/∂b_l += δ_l,
//	δ_{l−1} = (W_lᵀ·δ_l) ⊙ (1 − h_{l−1}²).
//
// dout may alias w.delta of the last layer.
func (m *mlp) backwardRow(p, g, x, dout []float64, w *mlpWork) {
	last := m.layers() - 1
	if &dout[0] != &w.delta[last][0] {
		copy(w.delta[last], dout)
	}
	for l := last; l >= 0; l-- {
		nin, nout := m.sizes[l], m.sizes[l+1]
		in := x
		if l > 0 {
			in = w.act[l-1]
		}
		d := w.delta[l]
		gw := g[m.woff[l] : m.woff[l]+nout*nin]
		gb := g[m.boff[l] : m.boff[l]+nout]
		for j, dj := range d {
			if dj == 0 {
				continue
			}
			floats.AddScaled(gw[j*nin:(j+1)*nin], dj, in)
			gb[j] += dj
		}
		if l == 0 {
			break
		}
		prev := w.delta[l-1]
		clear(prev)
		wl := p[m.woff[l] : m.woff[l]+nout*nin]
		for j, dj := range d {
			if dj == 0 {
				continue
			}
			floats.AddScaled(prev, dj, wl[j*nin:(j+1)*nin])
		}
		h := w.act[l-1]
		for k := range prev {
			prev[k] *= 1 - h[k]*h[k]
		}
	}
}

// logSoftmaxPerRow is logSoftmax as the per-row path computed it, with
// math.Max and math.Exp.
func logSoftmaxPerRow(dst, probs, z []float64) (entropy float64) {
	mx := math.Inf(-1)
	for _, v := range z {
		mx = math.Max(mx, v)
	}
	probs = probs[:len(z)]
	s := 0.0
	for j, v := range z {
		e := math.Exp(v - mx)
		probs[j] = e
		s += e
	}
	logS := math.Log(s)
	inv := 1 / s
	for j, v := range z {
		lp := (v - mx) - logS
		dst[j] = lp
		p := probs[j] * inv
		probs[j] = p
		entropy -= p * lp
	}
	return entropy
}

// actLen returns the number of activations of one forward pass of m.
func actLen(m *mlp) int {
	n := 0
	for _, s := range m.sizes[1:] {
		n += s
	}
	return n
}

// prepareLegacy is the per-row pre-update pass of prepare: the samples
// are cut into min(Workers, n) contiguous parts computed in parallel by
// prepareRows, and the activations of the first minibatch are kept.
func (a *Agent) prepareLegacy(b *Batch) {
	a.ensureLegacy()
	lg, n, d := a.lg, a.n, a.cfg.ObsDim
	lg.xn = grow(lg.xn, n*d)
	lg.slot = grow(lg.slot, n)
	for k := range lg.slot {
		lg.slot[k] = -1
	}
	first := n / a.cfg.Minibatches
	for p, k := range a.perm[:first] {
		lg.slot[k] = p
	}
	lg.pcache = grow(lg.pcache, first*actLen(&a.pol))
	lg.vcache = grow(lg.vcache, first*actLen(&a.val))
	a.batch = b
	nw := a.numWorkers(n)
	for c, w := range a.workers[:nw] {
		w.task, w.lo, w.hi = taskRowPrepare, c*n/nw, (c+1)*n/nw
	}
	a.dispatch(nw)
	a.batch = nil
}

// lossAndGradLegacy is lossAndGrad on the per-row path: the samples are
// cut into W = min(max(1, Workers), m) contiguous parts; part c is
// evaluated by worker c into its own gradient buffer and loss sums, which
// are then added in the order c = 0, 1, …, W−1.
func (a *Agent) lossAndGradLegacy(mb []int, cached bool, mu, sd, inv float64) mbResult {
	a.ensureLegacy()
	m := len(mb)
	nw := a.numWorkers(m)
	for c, w := range a.workers[:nw] {
		lo, hi := c*m/nw, (c+1)*m/nw
		w.task, w.mb, w.lg.pos0, w.cached = taskRowGrad, mb[lo:hi], lo, cached
		w.mu, w.sd, w.inv = mu, sd, inv
	}
	a.dispatch(nw)
	res := a.workers[0].lg.res
	for _, w := range a.workers[1:nw] {
		res.add(&w.lg.res)
		w.mb = nil
	}
	a.workers[0].mb = nil
	a.gradSS = a.reduceGrads(nw)
	return res
}

// reduceGrads adds the private gradients of workers[1:parts] to a.grad,
// in worker order, and returns the squared norm of the sum. Each element
// is summed in the same order whatever the split (see dispatchParams), and
// the ranges' sums of squares are added in range order (with one range
// that is a single sum in parameter order).
func (a *Agent) reduceGrads(parts int) float64 {
	for _, w := range a.workers {
		w.lg.parts = parts
	}
	ss := 0.0
	for _, w := range a.workers[:a.dispatchParams(taskRowReduce)] {
		ss += w.lg.ss
	}
	return ss
}

// bindCache points the activation buffers of the worker's workspaces at
// the cache rows of first-minibatch position slot, or back at their own
// buffers when slot < 0.
func (w *worker) bindCache(slot int) {
	a, lw := w.a, w.lg
	bind := func(ws *mlpWork, own [][]float64, cache []float64, m *mlp) {
		if slot < 0 {
			copy(ws.act, own)
			return
		}
		off := slot * actLen(m)
		for l, s := range m.sizes[1:] {
			ws.act[l] = cache[off : off+s : off+s]
			off += s
		}
	}
	bind(lw.pw, lw.pown, a.lg.pcache, &a.pol)
	bind(lw.vw, lw.vown, a.lg.vcache, &a.val)
}

// prepareRows computes, for the compacted samples [w.lo, w.hi) of
// a.batch, the constants of the update described at [Agent.prepare]. Each
// sample is computed on its own, so the result does not depend on how the
// samples are split among workers.
func (w *worker) prepareRows() {
	a, b, lw := w.a, w.a.batch, w.lg
	d := a.cfg.ObsDim
	mean, variance := a.normStats()
	polP, valP := a.polParams(), a.valParams()
	gamma, rhoBar := a.cfg.Gamma, a.cfg.RhoBar
	for k := w.lo; k < w.hi; k++ {
		i := a.rows[k]
		act, blp := b.Actions[i], b.BehaviorLogProb[i]
		x := a.xs[k*d : (k+1)*d]
		normalizeObs(x, b.Obs[i*d:(i+1)*d], mean, variance)
		w.bindCache(a.lg.slot[k])
		logSoftmaxPerRow(lw.logp, lw.pw.probs, a.pol.forwardRow(polP, x, lw.pw))
		v := a.val.forwardRow(valP, x, lw.vw)[0]
		w.bindCache(-1)
		lpOld := lw.logp[act]
		rho := math.Min(rhoBar, math.Exp(lpOld-blp))
		boot := 0.0
		if !b.Dones[i] {
			xn := a.lg.xn[k*d : (k+1)*d]
			normalizeObs(xn, b.NextObs[i*d:(i+1)*d], mean, variance)
			boot = gamma * a.val.forwardRow(valP, xn, lw.vw)[0]
		}
		delta := b.Rewards[i] + boot - v
		a.act[k], a.vold[k] = act, v
		a.w[k] = 1
		if b.Weights != nil {
			a.w[k] = b.Weights[i]
		}
		a.adv[k] = rho * delta
		a.target[k] = v + rho*delta
		if a.cfg.Ratio == RatioBehavior {
			a.refLogp[k] = blp
		} else {
			a.refLogp[k] = lpOld
		}
	}
}

// accumulateRows clears the worker's gradient buffer, adds to it the
// gradient terms of the samples w.mb (see [Agent.lossAndGrad]; each
// already divided by the minibatch size) and leaves in w.lg.res the sums
// of the per-sample loss figures, not yet divided by the minibatch size.
func (w *worker) accumulateRows() {
	a, lw := w.a, w.lg
	clear(lw.grad)
	lw.res = mbResult{}
	res := &lw.res
	d := a.cfg.ObsDim
	eps, ce, cv := a.cfg.ClipEps, a.cfg.EntropyCoef, a.cfg.ValueCoef
	polP, valP := a.polParams(), a.valParams()
	polG, valG := lw.grad[:a.pol.n], lw.grad[a.pol.n:]
	inv, mu, sd := w.inv, w.mu, w.sd
	cached := w.cached
	if cached {
		defer w.bindCache(-1)
	}
	for i, k := range w.mb {
		x := a.xs[k*d : (k+1)*d]
		var logits, vout []float64
		if cached {
			w.bindCache(lw.pos0 + i)
			logits, vout = lw.pw.act[len(lw.pw.act)-1], lw.vw.act[len(lw.vw.act)-1]
		} else {
			logits = a.pol.forwardRow(polP, x, lw.pw)
		}
		A := a.adv[k]
		if a.cfg.NormalizeAdvantage {
			A = (A - mu) / (sd + advEps)
		}
		wk := a.w[k]
		scale := wk * inv

		// Policy.
		H := logSoftmaxPerRow(lw.logp, lw.pw.probs, logits)
		act := a.act[k]
		logRatio := lw.logp[act] - a.refLogp[k]
		r := math.Exp(logRatio)
		res.approxKL += (r - 1) - logRatio
		if math.Abs(r-1) > eps {
			res.clipFrac++
		}
		rc := math.Max(1-eps, math.Min(1+eps, r))
		var pg, gr float64
		if s1, s2 := r*A, rc*A; s1 <= s2 {
			pg, gr = -s1, -A*r
		} else {
			pg = -s2
		}
		if scale != 0 {
			for j, lp := range lw.logp {
				p := lw.pw.probs[j]
				g := ce * p * (lp + H)
				if j == act {
					g += gr * (1 - p)
				} else {
					g -= gr * p
				}
				lw.dlog[j] = scale * g
			}
			a.pol.backwardRow(polP, polG, x, lw.dlog, lw.pw)
		}

		// Value.
		if !cached {
			vout = a.val.forwardRow(valP, x, lw.vw)
		}
		vl, dv := a.valueLoss(vout[0], k)
		if scale != 0 {
			lw.dv[0] = scale * cv * dv
			a.val.backwardRow(valP, valG, x, lw.dv, lw.vw)
		}

		res.loss += wk * (pg + cv*vl - ce*H)
		res.policyLoss += wk * pg
		res.valueLoss += wk * vl
		res.entropy += H
	}
}

// reduceRows adds the gradients of workers[1:parts] into a.grad over the
// worker's parameter range and leaves the sum of squares in w.lg.ss.
func (w *worker) reduceRows() {
	a := w.a
	g := a.grad[w.plo:w.phi]
	for _, o := range a.workers[1:w.lg.parts] {
		floats.Add(g, o.lg.grad[w.plo:w.phi])
	}
	ss := 0.0
	for _, v := range g {
		ss += v * v
	}
	w.lg.ss = ss
}

// adamRows is the Adam step of the per-row path, the scalar loop of
// adamOne (the same bits as adamUpdate).
func (w *worker) adamRows() {
	a := w.a
	scale, stepSize, invSqrtBC2, eps := a.adamK[0], a.adamK[1], a.adamK[2], a.adamK[3]
	g := a.grad[w.plo:w.phi]
	p, m, v := a.params[w.plo:w.phi], a.adamM[w.plo:w.phi], a.adamV[w.plo:w.phi]
	p, m, v = p[:len(g)], m[:len(g)], v[:len(g)]
	for i, gi := range g {
		gi *= scale
		mi := float64(adamBeta1*m[i]) + float64((1-adamBeta1)*gi)
		vi := float64(adamBeta2*v[i]) + float64(float64((1-adamBeta2)*gi)*gi)
		m[i], v[i] = mi, vi
		p[i] -= float64(stepSize*mi) / (float64(math.Sqrt(vi)*invSqrtBC2) + eps)
	}
}
