package ppo

import "math"

// Tasks a worker runs.
const (
	taskPrepare    = iota // worker.prepareBatch
	taskRows              // worker.rowsTask
	taskGrads             // worker.gradsTask
	taskAdam              // worker.adam
	taskRowPrepare        // worker.prepareRows (per-row path)
	taskRowGrad           // worker.accumulateRows (per-row path)
	taskRowReduce         // worker.reduceRows (per-row path)
)

// preChunk is the number of samples the pre-update pass of a worker
// evaluates at once (outside the first minibatch).
const preChunk = 64

// worker evaluates a part of the work of an update. Worker 0 runs on the
// caller's goroutine; every other worker runs its tasks on a goroutine of
// its own (see [Agent.startWorkers]). Workers share read-only inputs
// (parameters, prepared arrays) and write disjoint rows of the shared
// minibatch buffers, disjoint indices of the per-sample arrays and
// disjoint parameter ranges.
type worker struct {
	a           *Agent
	pre         *rowsWork // the pre-update pass's chunks (created on first use)
	logp, probs []float64

	// The task of the current dispatch.
	task        int
	part, parts int     // taskPrepare, taskGrads: this worker's part of parts
	lo, hi      int     // taskRows: minibatch rows [lo, hi); per-row tasks: samples
	mb          []int   // taskRows, taskRowGrad: the minibatch (its part, per-row)
	cached      bool    // taskRows, taskRowGrad: activations come from prepare
	mu, sd      float64 // advantage normalisation
	inv         float64 // 1/m, m the whole minibatch's size
	plo, phi    int     // taskAdam, taskRowReduce: parameters [plo, phi)

	lg *legacyWorker // per-row path state, nil until used

	// wake hands the worker's goroutine its orders (capacity 1): true
	// runs the task set in the fields above, after which the goroutine
	// sends on Agent.done; false makes it return. The channel operations
	// order the plain fields between the two goroutines.
	wake chan bool

	// loopFn is w.loop, bound once so that `go w.loopFn()` does not
	// allocate a closure per Update.
	loopFn func()
}

func (a *Agent) newWorker() *worker {
	w := &worker{
		a:     a,
		logp:  make([]float64, a.cfg.NumActions),
		probs: make([]float64, a.cfg.NumActions),
		wake:  make(chan bool, 1),
	}
	w.loopFn = w.loop
	return w
}

// numWorkers returns the number of workers to use for n units of work:
// min(max(1, Workers), n), at least 1.
func (a *Agent) numWorkers(n int) int {
	return max(1, min(a.cfg.Workers, n))
}

// ensureWorkers creates the workers Config.Workers asks for that do not
// exist yet (after this, Update does not allocate).
func (a *Agent) ensureWorkers() {
	if a.done == nil {
		a.done = make(chan struct{}, MaxWorkers)
	}
	for len(a.workers) < max(1, a.cfg.Workers) {
		a.workers = append(a.workers, a.newWorker())
	}
	if a.perRow {
		a.ensureLegacy()
	}
}

// startWorkers starts the goroutines of workers[1:Workers] for the caller.
// Until stopWorkers each waits, blocked on its wake channel, for its next
// task; it takes no CPU between tasks. [Agent.Update] starts them once
// (before its serial preparation, so that the threads wake while it runs)
// and stops them before it returns, so no goroutine outlives an Update
// for longer than it takes to return; a dispatch outside Update (tests)
// does both itself.
func (a *Agent) startWorkers() {
	if a.running > 0 || a.cfg.Workers <= 1 {
		return
	}
	a.ensureWorkers()
	ws := a.workers[1:a.cfg.Workers]
	a.running = len(ws)
	for _, w := range ws {
		a.wg.Add(1)
		go w.loopFn()
	}
}

// stopWorkers tells the started goroutines to return, after the tasks of
// a dispatch that did not finish (the caller's part panicked) are done;
// it does not wait for them to return ([Agent.Close] does).
func (a *Agent) stopWorkers() {
	if a.running == 0 {
		return
	}
	for ; a.pending > 0; a.pending-- {
		<-a.done
	}
	for _, w := range a.workers[1 : 1+a.running] {
		w.wake <- false
	}
	a.running = 0
}

// dispatch runs the tasks set on workers[:nw]: worker 0 on the calling
// goroutine, the others on their goroutines; it returns when all are done.
func (a *Agent) dispatch(nw int) {
	if nw == 1 {
		a.workers[0].run()
		return
	}
	if a.running == 0 {
		a.startWorkers()
		defer a.stopWorkers()
	}
	ws := a.workers[1:nw]
	a.pending = len(ws)
	for _, w := range ws {
		w.wake <- true
	}
	a.workers[0].run()
	for ; a.pending > 0; a.pending-- {
		<-a.done
	}
}

// loop runs the worker's tasks until it is told to return.
func (w *worker) loop() {
	defer w.a.wg.Done()
	for <-w.wake {
		w.run()
		w.a.done <- struct{}{}
	}
}

func (w *worker) run() {
	switch w.task {
	case taskPrepare:
		w.prepareBatch()
	case taskRows:
		w.rowsTask()
	case taskGrads:
		w.gradsTask()
	case taskAdam:
		if w.a.perRow {
			w.adamRows()
		} else {
			w.adam()
		}
	case taskRowPrepare:
		w.prepareRows()
	case taskRowGrad:
		w.accumulateRows()
	case taskRowReduce:
		w.reduceRows()
	}
}

// dispatchParams runs task (taskAdam or taskRowReduce) over the parameters,
// cut into min(Workers, len) contiguous ranges, one per worker, and
// returns the number of workers used.
func (a *Agent) dispatchParams(task int) int {
	n := len(a.params)
	nw := a.numWorkers(n)
	for c, w := range a.workers[:nw] {
		w.task, w.plo, w.phi = task, c*n/nw, (c+1)*n/nw
	}
	a.dispatch(nw)
	return nw
}

// adam applies the Adam step set up by [Agent.step] to the worker's
// parameter range; each parameter is updated on its own, so the result
// does not depend on the split.
func (w *worker) adam() {
	a := w.a
	adamUpdate(a.params[w.plo:w.phi], a.adamM[w.plo:w.phi], a.adamV[w.plo:w.phi], a.grad[w.plo:w.phi], &a.adamK)
}

// prepareBatch is part w.part of w.parts of the pre-update pass of
// [Agent.prepare] over a.batch, each sample computed on its own: an equal
// share of the samples that bootstrap (V_old(s′) into a.vnext), of the
// samples outside the first minibatch (log π_θold(a|s) into a.lpOld,
// V_old(s) into a.vold, the normalised s into a.xs), both in chunks of
// preChunk through the worker's own buffers, and last of the first
// minibatch, whose rows it evaluates in a.mb and leaves there.
func (w *worker) prepareBatch() {
	a, b := w.a, w.a.batch
	c, nw := w.part, w.parts
	if w.pre == nil {
		w.pre = a.newRowsWork(preChunk, false)
	}
	mean := a.normMeanFixed()
	d := a.cfg.ObsDim
	polP, valP := a.polParams(), a.valParams()
	polT, valT := a.wt[:a.pol.n], a.wt[a.pol.n:]
	vl := a.val.layers() - 1

	// Next states: the value network alone.
	next := a.next[c*len(a.next)/nw : (c+1)*len(a.next)/nw]
	for len(next) > 0 {
		chunk := next[:min(preChunk, len(next))]
		next = next[len(chunk):]
		for p, k := range chunk {
			i := a.rows[k]
			normalizeDen(w.pre.x[p*d:(p+1)*d], b.NextObs[i*d:(i+1)*d], mean, a.den)
		}
		a.val.forwardRows(valP, valT, w.pre.x, w.pre.val.act, 0, len(chunk))
		for p, k := range chunk {
			a.vnext[k] = w.pre.val.act[vl][p]
		}
	}

	// States outside the first minibatch, then the first minibatch.
	first := a.mbRows
	rest := a.perm[first:]
	rest = rest[c*len(rest)/nw : (c+1)*len(rest)/nw]
	for len(rest) > 0 {
		chunk := rest[:min(preChunk, len(rest))]
		rest = rest[len(chunk):]
		w.preStates(chunk, w.pre, 0, len(chunk), mean, polP, valP, polT, valT)
	}
	lo, hi := c*first/nw, (c+1)*first/nw
	w.preStates(a.perm[lo:hi], a.mb, lo, hi, mean, polP, valP, polT, valT)
}

// preStates normalises the states of samples ks into rows [lo, hi) of r
// (and into a.xs), runs both networks over those rows and records
// log π_θold(a|s) and V_old(s) of each sample.
func (w *worker) preStates(ks []int, r *rowsWork, lo, hi int, mean, polP, valP, polT, valT []float64) {
	a, b := w.a, w.a.batch
	d, na := a.cfg.ObsDim, a.cfg.NumActions
	for p, k := range ks {
		i := a.rows[k]
		x := r.x[(lo+p)*d : (lo+p+1)*d]
		normalizeDen(x, b.Obs[i*d:(i+1)*d], mean, a.den)
		copy(a.xs[k*d:(k+1)*d], x)
	}
	a.pol.forwardRows(polP, polT, r.x, r.pol.act, lo, hi)
	a.val.forwardRows(valP, valT, r.x, r.val.act, lo, hi)
	logits, vout := r.pol.act[a.pol.layers()-1], r.val.act[a.val.layers()-1]
	for p, k := range ks {
		row := lo + p
		logSoftmax(w.logp, w.probs, logits[row*na:(row+1)*na])
		a.lpOld[k] = w.logp[a.act[k]]
		a.vold[k] = vout[row]
	}
}

// rowsTask evaluates the rows [w.lo, w.hi) of the minibatch w.mb in a.mb:
// unless cached, it gathers their normalised states and runs both
// networks forward; then, per sample, the loss terms (into a.rowRes) and
// the output deltas of [Agent.lossAndGrad]; then it propagates the deltas
// back through both networks.
func (w *worker) rowsTask() {
	a, r := w.a, w.a.mb
	lo, hi, mb := w.lo, w.hi, w.mb
	if lo >= hi {
		return
	}
	d, na := a.cfg.ObsDim, a.cfg.NumActions
	polP, valP := a.polParams(), a.valParams()
	if !w.cached {
		for p := lo; p < hi; p++ {
			k := mb[p]
			copy(r.x[p*d:(p+1)*d], a.xs[k*d:(k+1)*d])
		}
		a.pol.forwardRows(polP, a.wt[:a.pol.n], r.x, r.pol.act, lo, hi)
		a.val.forwardRows(valP, a.wt[a.pol.n:], r.x, r.val.act, lo, hi)
	}
	eps, cv := a.cfg.ClipEps, a.cfg.ValueCoef
	inv, mu, sd := w.inv, w.mu, w.sd
	pl, vl := a.pol.layers()-1, a.val.layers()-1
	logits, vout := r.pol.act[pl], r.val.act[vl]
	pdelta, vdelta := r.pol.delta[pl], r.val.delta[vl]
	for p := lo; p < hi; p++ {
		k := mb[p]
		A := a.adv[k]
		if a.cfg.NormalizeAdvantage {
			A = (A - mu) / (sd + advEps)
		}
		wk := a.w[k]
		scale := wk * inv

		H, logRatio, ratio, pg := w.policyDelta(pdelta[p*na:(p+1)*na], logits[p*na:(p+1)*na], a.act[k], a.refLogp[k], A, scale)
		vloss, dv := a.valueLoss(vout[p], k)
		vdelta[p] = 0
		if scale != 0 {
			vdelta[p] = scale * cv * dv
		}

		a.rowRes[p] = rowResult{w: wk, pg: pg, vl: vloss, h: H, kl: (ratio - 1) - logRatio, clip: math.Abs(ratio-1) > eps}
	}
	a.pol.backwardRows(polP, r.pol.act, r.pol.delta, lo, hi, a.zeros)
	a.val.backwardRows(valP, r.val.act, r.val.delta, lo, hi, a.zeros)
}

// policyDelta computes one sample's policy terms from its logits: the
// entropy H of π(·|s), the log-ratio and ratio r = π_θ(a|s)/π_θold(a|s), the
// clipped surrogate loss pg = −min(r·Â, clip(r, 1±ε)·Â), and writes into dz
// the loss's gradient with respect to the logits, scaled by scale (zeros
// when scale is 0, whatever the terms, as a skipped sample adds nothing).
func (w *worker) policyDelta(dz, logits []float64, act int, refLogp, A, scale float64) (H, logRatio, ratio, pg float64) {
	eps, ce := w.a.cfg.ClipEps, w.a.cfg.EntropyCoef
	H = logSoftmax(w.logp, w.probs, logits)
	logRatio = w.logp[act] - refLogp
	ratio = math.Exp(logRatio)
	rc := math.Max(1-eps, math.Min(1+eps, ratio))
	var gr float64
	if s1, s2 := ratio*A, rc*A; s1 <= s2 {
		pg, gr = -s1, -A*ratio
	} else {
		pg = -s2
	}
	if scale == 0 {
		clear(dz)
		return H, logRatio, ratio, pg
	}
	for j, lp := range w.logp {
		pj := w.probs[j]
		g := ce * pj * (lp + H)
		if j == act {
			g += gr * (1 - pj)
		} else {
			g -= gr * pj
		}
		dz[j] = scale * g
	}
	return H, logRatio, ratio, pg
}

// valueLoss returns sample k's value loss ½(V(s) − target)² at value v, or
// with Config.ClipValue the larger of it and the clipped one, and its
// derivative with respect to v (0 where the clipped term is the larger).
func (a *Agent) valueLoss(v float64, k int) (vloss, dv float64) {
	t := a.target[k]
	vloss, dv = 0.5*(v-t)*(v-t), v-t
	if a.cfg.ClipValue {
		eps := a.cfg.ClipEps
		vo := a.vold[k]
		vc := vo + math.Max(-eps, math.Min(eps, v-vo))
		if l2 := 0.5 * (vc - t) * (vc - t); l2 > vloss {
			vloss, dv = l2, 0
		}
	}
	return vloss, dv
}

// gradsTask writes part w.part of w.parts of the minibatch gradient into
// a.grad (see [mlp.gradPart]), from the deltas the rows tasks left in
// a.mb.
func (w *worker) gradsTask() {
	a, r := w.a, w.a.mb
	a.pol.gradPart(a.polGrad(), r.x, r.pol.act, r.pol.delta, a.mbRows, w.part, w.parts, a.zeros)
	a.val.gradPart(a.valGrad(), r.x, r.val.act, r.val.delta, a.mbRows, w.part, w.parts, a.zeros)
}
