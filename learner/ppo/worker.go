package ppo

import (
	"math"
	"runtime"
	"sync/atomic"
	"time"

	"gonum.org/v1/gonum/floats"
)

// Tasks a worker runs.
const (
	taskPrepare = iota // worker.prepareRows
	taskGrad           // worker.accumulate
	taskReduce         // worker.reduce
	taskAdam           // worker.adam
)

// worker evaluates a contiguous part of the per-sample work of an update:
// the pre-update forward passes of prepare or the forward/backward passes
// of one minibatch. Worker 0 runs on the caller's goroutine with the
// agent's own workspaces and accumulates into a.grad; every other worker
// has its own workspaces and a private gradient buffer and runs its tasks
// on a goroutine of its own (see [Agent.startWorkers]). Workers share
// read-only inputs (parameters, prepared arrays, the activation cache) and
// write only their own buffers and disjoint indices of the agent's
// per-sample arrays.
type worker struct {
	a              *Agent
	pw, vw         *mlpWork
	pown, vown     [][]float64 // the workspaces' own activation buffers
	logp, dlog, dv []float64
	grad           []float64 // a.grad for worker 0

	// The task of the current dispatch.
	task   int
	lo, hi int   // taskPrepare: compacted samples [lo, hi)
	mb     []int // taskGrad: this worker's part of the minibatch
	pos0   int   // taskGrad: position of mb[0] in the minibatch
	cached bool  // taskGrad: activations come from the cache
	mu, sd float64
	inv    float64 // 1/m, m the whole minibatch's size
	res    mbResult
	plo    int // taskReduce, taskAdam: parameters [plo, phi)
	phi    int
	parts  int     // taskReduce: gradient buffers to add (workers[:parts])
	ss     float64 // taskReduce: Σ g² over the worker's parameters

	// Hand-off with the dispatching goroutine: it sets the task fields and
	// then increments start; the worker runs the task and then stores the
	// value of start it ran in done. The atomics order the plain fields.
	start, done atomic.Uint64
	// state is workerGone, workerIdle or workerHeld.
	state atomic.Int32

	// loopFn is w.loop, bound once so that `go w.loopFn()` does not
	// allocate a closure per Update.
	loopFn func()
}

func (a *Agent) newWorker(pw, vw *mlpWork, grad []float64) *worker {
	w := &worker{
		a:    a,
		pw:   pw,
		vw:   vw,
		pown: append([][]float64(nil), pw.act...),
		vown: append([][]float64(nil), vw.act...),
		logp: make([]float64, a.cfg.NumActions),
		dlog: make([]float64, a.cfg.NumActions),
		dv:   make([]float64, 1),
		grad: grad,
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
	for len(a.workers) < max(1, a.cfg.Workers) {
		a.workers = append(a.workers, a.newWorker(a.pol.newWork(), a.val.newWork(), make([]float64, len(a.params))))
	}
}

// Worker goroutine states (worker.state).
const (
	workerGone = iota // no goroutine: the next startWorkers starts one
	workerIdle        // running, between Updates; leaves after workerLinger
	workerHeld        // running, reserved by an Update: does not leave
)

// workerLinger is how long a worker goroutine keeps spinning after an
// Update before it leaves. Starting (or waking) a goroutine on an idle
// processor costs 50–100 µs on a virtual machine, about a tenth of a
// minibatch update, while a learner calls Update back to back with a
// fraction of a millisecond of ingest in between: lingering keeps the
// goroutines ready for the next call, and leaving bounds the CPU an idle
// agent burns.
const workerLinger = 2 * time.Millisecond

// startWorkers reserves the goroutines of workers[1:Workers] for the
// caller, starting those that have left (or never ran). Until stopWorkers
// they busy-wait (yielding the processor with runtime.Gosched on every
// check) for their next task: waking a parked thread costs as much as a
// quarter of a minibatch of 64, while the gap between two tasks (the
// serial part of an optimizer step) is a few microseconds. [Agent.Update]
// reserves them once and releases them before it returns; a dispatch
// outside Update (tests) does both itself.
func (a *Agent) startWorkers() {
	if a.running > 0 || a.cfg.Workers <= 1 {
		return
	}
	a.ensureWorkers()
	ws := a.workers[1:a.cfg.Workers]
	a.running = len(ws)
	for _, w := range ws {
		if w.state.CompareAndSwap(workerIdle, workerHeld) {
			continue // still spinning from the last call
		}
		// Gone: its goroutine has returned or is returning, and touches
		// no field of w but the wait group any more.
		w.state.Store(workerHeld)
		a.wg.Add(1)
		go w.loopFn()
	}
}

// stopWorkers waits for the reserved workers to finish their tasks and
// releases them: each goroutine returns after workerLinger without a new
// reservation.
func (a *Agent) stopWorkers() {
	if a.running == 0 {
		return
	}
	for _, w := range a.workers[1 : 1+a.running] {
		w.wait()
		w.state.Store(workerIdle)
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
	for _, w := range ws {
		w.start.Add(1)
	}
	a.workers[0].run()
	for _, w := range ws {
		w.wait()
	}
}

// wait returns when the worker has run its last task.
func (w *worker) wait() {
	for w.done.Load() != w.start.Load() {
		runtime.Gosched()
	}
}

// loop runs the worker's tasks until it has been idle (released by
// stopWorkers) for workerLinger and wins the race to leave against
// startWorkers' reservation.
func (w *worker) loop() {
	defer w.a.wg.Done()
	// Only this goroutine writes done, and a worker is released only with
	// done == start: tasks of earlier Updates are not run again.
	seen := w.done.Load()
	var idleSince time.Time
	for spins := 0; ; spins++ {
		if s := w.start.Load(); s != seen {
			seen = s
			w.run()
			w.done.Store(seen)
			continue
		}
		// The clock is read every 64th check only: the check itself is a
		// few nanoseconds, a clock read tens.
		switch {
		case w.state.Load() != workerIdle:
			idleSince = time.Time{}
		case spins%64 != 0:
		case idleSince.IsZero():
			idleSince = time.Now()
		case time.Since(idleSince) > workerLinger && w.state.CompareAndSwap(workerIdle, workerGone):
			return
		}
		runtime.Gosched()
	}
}

func (w *worker) run() {
	switch w.task {
	case taskPrepare:
		w.prepareRows()
	case taskGrad:
		w.accumulate()
	case taskReduce:
		w.reduce()
	case taskAdam:
		w.adam()
	}
}

// bindCache points the activation buffers of the worker's workspaces at
// the cache rows of first-minibatch position slot, or back at their own
// buffers when slot < 0.
func (w *worker) bindCache(slot int) {
	a := w.a
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
	bind(w.pw, w.pown, a.pcache, &a.pol)
	bind(w.vw, w.vown, a.vcache, &a.val)
}

// prepareRows computes, for the compacted samples [w.lo, w.hi) of
// a.batch, the constants of the update described at [Agent.prepare]. Each
// sample is computed on its own, so the result does not depend on how the
// samples are split among workers.
func (w *worker) prepareRows() {
	a, b := w.a, w.a.batch
	d := a.cfg.ObsDim
	mean, variance := a.normStats()
	polP, valP := a.polParams(), a.valParams()
	gamma, rhoBar := a.cfg.Gamma, a.cfg.RhoBar
	for k := w.lo; k < w.hi; k++ {
		i := a.rows[k]
		act, blp := b.Actions[i], b.BehaviorLogProb[i]
		x := a.xs[k*d : (k+1)*d]
		normalizeObs(x, b.Obs[i*d:(i+1)*d], mean, variance)
		w.bindCache(a.slot[k])
		logSoftmax(w.logp, w.pw.probs, a.pol.forward(polP, x, w.pw))
		v := a.val.forward(valP, x, w.vw)[0]
		w.bindCache(-1)
		lpOld := w.logp[act]
		rho := math.Min(rhoBar, math.Exp(lpOld-blp))
		boot := 0.0
		if !b.Dones[i] {
			xn := a.xn[k*d : (k+1)*d]
			normalizeObs(xn, b.NextObs[i*d:(i+1)*d], mean, variance)
			boot = gamma * a.val.forward(valP, xn, w.vw)[0]
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

// accumulate clears w.grad, adds to it the gradient terms of the samples
// w.mb (see [Agent.lossAndGrad]; each already divided by the minibatch
// size) and leaves in w.res the sums of the per-sample loss figures, not
// yet divided by the minibatch size.
func (w *worker) accumulate() {
	a := w.a
	clear(w.grad)
	w.res = mbResult{}
	res := &w.res
	d := a.cfg.ObsDim
	eps, ce, cv := a.cfg.ClipEps, a.cfg.EntropyCoef, a.cfg.ValueCoef
	polP, valP := a.polParams(), a.valParams()
	polG, valG := w.grad[:a.pol.n], w.grad[a.pol.n:]
	inv, mu, sd := w.inv, w.mu, w.sd
	cached := w.cached
	if cached {
		defer w.bindCache(-1)
	}
	for i, k := range w.mb {
		x := a.xs[k*d : (k+1)*d]
		var logits, vout []float64
		if cached {
			w.bindCache(w.pos0 + i)
			logits, vout = w.pw.act[len(w.pw.act)-1], w.vw.act[len(w.vw.act)-1]
		} else {
			logits = a.pol.forward(polP, x, w.pw)
		}
		A := a.adv[k]
		if a.cfg.NormalizeAdvantage {
			A = (A - mu) / (sd + advEps)
		}
		wk := a.w[k]
		scale := wk * inv

		// Policy.
		H := logSoftmax(w.logp, w.pw.probs, logits)
		act := a.act[k]
		logRatio := w.logp[act] - a.refLogp[k]
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
			for j, lp := range w.logp {
				p := w.pw.probs[j]
				g := ce * p * (lp + H)
				if j == act {
					g += gr * (1 - p)
				} else {
					g -= gr * p
				}
				w.dlog[j] = scale * g
			}
			a.pol.backward(polP, polG, x, w.dlog, w.pw)
		}

		// Value.
		if !cached {
			vout = a.val.forward(valP, x, w.vw)
		}
		v := vout[0]
		t := a.target[k]
		vl, dv := 0.5*(v-t)*(v-t), v-t
		if a.cfg.ClipValue {
			vo := a.vold[k]
			vc := vo + math.Max(-eps, math.Min(eps, v-vo))
			if l2 := 0.5 * (vc - t) * (vc - t); l2 > vl {
				vl, dv = l2, 0
			}
		}
		if scale != 0 {
			w.dv[0] = scale * cv * dv
			a.val.backward(valP, valG, x, w.dv, w.vw)
		}

		res.loss += wk * (pg + cv*vl - ce*H)
		res.policyLoss += wk * pg
		res.valueLoss += wk * vl
		res.entropy += H
	}
}

// add adds the sums of o to r.
func (r *mbResult) add(o *mbResult) {
	r.loss += o.loss
	r.policyLoss += o.policyLoss
	r.valueLoss += o.valueLoss
	r.entropy += o.entropy
	r.approxKL += o.approxKL
	r.clipFrac += o.clipFrac
}

// reduceGrads adds the private gradients of workers[1:parts] to a.grad,
// in worker order, and returns the squared norm of the sum. Each element
// is summed in the same order whatever the split (see dispatchParams), and
// the ranges' sums of squares are added in range order (with one range
// that is a single sum in parameter order).
func (a *Agent) reduceGrads(parts int) float64 {
	for _, w := range a.workers {
		w.parts = parts
	}
	ss := 0.0
	for _, w := range a.workers[:a.dispatchParams(taskReduce)] {
		ss += w.ss
	}
	return ss
}

// dispatchParams runs task (taskReduce or taskAdam) over the parameters,
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

// reduce adds the gradients of workers[1:w.parts] into a.grad over the
// worker's parameter range and leaves the sum of squares in w.ss.
func (w *worker) reduce() {
	a := w.a
	g := a.grad[w.plo:w.phi]
	for _, o := range a.workers[1:w.parts] {
		floats.Add(g, o.grad[w.plo:w.phi])
	}
	ss := 0.0
	for _, v := range g {
		ss += v * v
	}
	w.ss = ss
}

// adam applies the Adam step set up by [Agent.step] to the worker's
// parameter range; each parameter is updated on its own, so the result
// does not depend on the split.
func (w *worker) adam() {
	a := w.a
	scale, stepSize, invSqrtBC2, eps := a.adamScale, a.adamStep, a.adamInvSqrtBC2, a.cfg.AdamEps
	g := a.grad[w.plo:w.phi]
	p, m, v := a.params[w.plo:w.phi], a.adamM[w.plo:w.phi], a.adamV[w.plo:w.phi]
	p, m, v = p[:len(g)], m[:len(g)], v[:len(g)]
	for i, gi := range g {
		gi *= scale
		mi := adamBeta1*m[i] + (1-adamBeta1)*gi
		vi := adamBeta2*v[i] + (1-adamBeta2)*gi*gi
		m[i], v[i] = mi, vi
		p[i] -= stepSize * mi / (math.Sqrt(vi)*invSqrtBC2 + eps)
	}
}
