package ppo

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
)

// Adam's fixed moment decay rates.
const (
	adamBeta1 = 0.9
	adamBeta2 = 0.999
	advEps    = 1e-8
)

// Agent is the trainable PPO agent: policy and value networks, Adam state,
// observation normalisation and version counters. An Agent is not safe for
// concurrent use: the caller serialises Update, ObserveObs, Close and the
// other methods (the learner loop owns it); hand a [Policy] from
// [Agent.Snapshot] to other goroutines. With Config.Workers > 1, Update
// spreads its work over Workers − 1 goroutines of its own besides the
// caller's, which wait blocked between their tasks, and tells them to
// return before it returns (even when it panics); [Agent.Close] waits
// until they have.
type Agent struct {
	cfg      Config
	rng      *rand.Rand
	pol, val mlp
	// params = [policy | value], grad and the Adam moments share the layout.
	params, grad, adamM, adamV []float64
	adamT                      int64
	norm                       runningNorm
	version, updates           int64

	// wt holds the transposed weights of params (see transposeWeights),
	// rebuilt before every batched forward pass, and den the denominators
	// √(var + 1e-8) of the normalisation (see normDen).
	wt, den []float64
	// Single-row workspace of LogProbs and Value.
	x      []float64
	single *rowsWork
	probs  []float64

	// workers[0] runs on the caller's goroutine; workers[1:] are created
	// by the first task that needs them.
	workers []*worker
	running int           // number of worker goroutines started (workers[1:1+running])
	pending int           // tasks of the current dispatch not yet done
	done    chan struct{} // a worker's goroutine sends when its task is done
	wg      sync.WaitGroup
	batch   *Batch // the batch being prepared, nil otherwise

	// per-update sample arrays, compacted over the usable samples
	n                       int
	xs                      []float64 // normalised s, row-major
	act                     []int
	w, refLogp, adv, target []float64
	vold, lpOld, vnext      []float64 // V_old(s), log π_θold(a|s), V_old(s′)
	rows                    []int     // rows[k]: batch row of compacted sample k
	perm                    []int     // sample order of the current epoch
	next                    []int     // compacted samples that bootstrap from s′

	// The minibatch being evaluated: its rows' inputs, activations and
	// deltas (shared by the workers: each writes its own rows, then reads
	// all of them), the per-row loss terms and the number of rows. After
	// prepare it holds the first minibatch of epoch 0, computed with the
	// pre-update parameters θ_old, so that minibatch needs no second
	// forward pass.
	mb     *rowsWork
	mbRows int
	rowRes []rowResult
	zeros  []float64 // the zero start of gemm's chains, max width long

	// gradSS is ‖a.grad‖² as summed by the last lossAndGrad; adamK holds
	// the constants of the step being applied by the workers.
	gradSS float64
	adamK  adamConsts

	// perRow selects the per-row path of legacy.go for Update (the
	// benchmark's baseline, the tests' reference); lg is its state.
	perRow bool
	lg     *legacyAgent
}

// rowsWork holds, for up to rows samples, the network input and, for each
// network, the activations and (when allocated) deltas of a batched pass.
type rowsWork struct {
	rows     int
	x        []float64 // rows × ObsDim
	pol, val netRows
}

// netRows are the per-layer buffers of one network for a rowsWork.
type netRows struct {
	act, delta [][]float64 // [layer], rows × width, row-major
}

func newNetRows(m *mlp, rows int, deltas bool) netRows {
	var nr netRows
	for _, s := range m.sizes[1:] {
		nr.act = append(nr.act, make([]float64, rows*s))
		if deltas {
			nr.delta = append(nr.delta, make([]float64, rows*s))
		}
	}
	return nr
}

func (a *Agent) newRowsWork(rows int, deltas bool) *rowsWork {
	return &rowsWork{
		rows: rows,
		x:    make([]float64, rows*a.cfg.ObsDim),
		pol:  newNetRows(&a.pol, rows, deltas),
		val:  newNetRows(&a.val, rows, deltas),
	}
}

// rowResult holds one sample's terms of the minibatch loss figures.
type rowResult struct {
	w, pg, vl, h, kl float64
	clip             bool
}

// Stats reports one [Agent.Update]. Loss figures are means over the
// minibatches evaluated (including the one that triggered an early stop).
type Stats struct {
	// PolicyLoss is the IS-weighted clipped-surrogate loss
	// mean_i w_i·(−min(r·A, clip(r, 1±ε)·A)).
	PolicyLoss float64
	// ValueLoss is the IS-weighted value loss mean_i w_i·½(V(s) − V_target)²,
	// before the coefficient c_v.
	ValueLoss float64
	// Entropy is the unweighted mean policy entropy H(π(·|s)) in nats.
	Entropy float64
	// ApproxKL is the unweighted mean of (r − 1) − log r.
	ApproxKL float64
	// ClipFrac is the unweighted fraction of samples with |r − 1| > ε.
	ClipFrac float64
	// ExplainedVariance is 1 − Var(V_target − V_old)/Var(V_target) over the
	// usable samples with the pre-update values; 0 when Var(V_target) = 0.
	ExplainedVariance float64
	// GradNorm is the mean global gradient norm before clipping over the
	// steps taken.
	GradNorm float64
	// LearningRate is the Adam learning rate used by this update.
	LearningRate float64
	// EpochsRun counts the epochs started (the last may be partial after an
	// early stop).
	EpochsRun int
	// Samples is the number of usable samples trained on.
	Samples int
	// Dropped counts samples dropped as stale (MaxStaleness).
	Dropped int
	// Invalid counts samples dropped as invalid: action out of range,
	// non-finite observation, reward or log-probability, or a weight that
	// is negative or not finite.
	Invalid int
	// Steps counts the optimizer steps taken.
	Steps int
	// SkippedSteps counts minibatches whose gradient was not finite; their
	// step is skipped so the parameters stay finite.
	SkippedSteps int
	// EarlyStopped reports that approx_kl exceeded TargetKL.
	EarlyStopped bool
}

// New builds an agent with orthogonally initialised networks (√2 hidden,
// 0.01 policy head, 1.0 value head, zero biases) drawn from rng. The agent
// keeps rng for minibatch shuffling.
func New(cfg Config, rng *rand.Rand) (*Agent, error) {
	if rng == nil {
		return nil, fmt.Errorf("new ppo agent: nil rand source")
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("new ppo agent: %w", err)
	}
	a := newAgent(cfg, rng)
	a.pol.initOrthogonal(a.params[:a.pol.n], 0.01, rng)
	a.val.initOrthogonal(a.params[a.pol.n:], 1.0, rng)
	return a, nil
}

// newAgent allocates an agent for a validated config, parameters zero.
func newAgent(cfg Config, rng *rand.Rand) *Agent {
	cfg.Hidden = append([]int(nil), cfg.Hidden...)
	a := &Agent{
		cfg: cfg,
		rng: rng,
		pol: newMLP(layerSizes(cfg.ObsDim, cfg.Hidden, cfg.NumActions)),
		val: newMLP(layerSizes(cfg.ObsDim, cfg.Hidden, 1)),
	}
	n := a.pol.n + a.val.n
	a.params = make([]float64, n)
	a.grad = make([]float64, n)
	a.adamM = make([]float64, n)
	a.adamV = make([]float64, n)
	a.norm = newRunningNorm(cfg.ObsDim)
	a.wt = make([]float64, n)
	a.den = make([]float64, cfg.ObsDim)
	a.x = make([]float64, cfg.ObsDim)
	a.single = a.newRowsWork(1, false)
	a.probs = make([]float64, cfg.NumActions)
	width := max(cfg.ObsDim, cfg.NumActions)
	for _, h := range cfg.Hidden {
		width = max(width, h)
	}
	a.zeros = make([]float64, width)
	a.mb = a.newRowsWork(0, true)
	a.workers = []*worker{a.newWorker()}
	return a
}

// Config returns the agent's configuration.
func (a *Agent) Config() Config {
	c := a.cfg
	c.Hidden = append([]int(nil), c.Hidden...)
	return c
}

// Version returns the policy version: the number of updates that changed
// the parameters. Snapshots are published under it.
func (a *Agent) Version() int64 { return a.version }

// Updates returns the number of Update calls that had usable samples; the
// learning-rate schedule runs on it.
func (a *Agent) Updates() int64 { return a.updates }

func (a *Agent) polParams() []float64 { return a.params[:a.pol.n] }
func (a *Agent) valParams() []float64 { return a.params[a.pol.n:] }
func (a *Agent) polGrad() []float64   { return a.grad[:a.pol.n] }
func (a *Agent) valGrad() []float64   { return a.grad[a.pol.n:] }

// normStats returns the normalisation statistics to apply (nil when off).
func (a *Agent) normStats() (mean, variance []float64) {
	if !a.cfg.NormalizeObs {
		return nil, nil
	}
	return a.norm.mean, a.norm.variance
}

// normMean returns the normalisation mean and refreshes a.den from the
// variance (nil when off).
func (a *Agent) normMean() []float64 {
	if !a.cfg.NormalizeObs {
		return nil
	}
	normDen(a.den, a.norm.variance)
	return a.norm.mean
}

// normMeanFixed returns the normalisation mean (nil when off) without
// touching a.den: for the workers, after refresh.
func (a *Agent) normMeanFixed() []float64 {
	if !a.cfg.NormalizeObs {
		return nil
	}
	return a.norm.mean
}

// refresh rebuilds the transposed weights of both networks and the
// normalisation denominators from the current parameters and statistics,
// and returns the normalisation mean (nil when off).
func (a *Agent) refresh() []float64 {
	a.pol.transposeWeights(a.polParams(), a.wt[:a.pol.n])
	a.val.transposeWeights(a.valParams(), a.wt[a.pol.n:])
	return a.normMean()
}

// ObserveObs merges raw observations (row-major, a multiple of ObsDim
// values) into the running normalisation statistics. The learner calls it on
// ingest; it is a no-op when NormalizeObs is off. Rows holding a NaN or
// ±Inf are ignored. It panics when len(obs) is not a multiple of ObsDim.
func (a *Agent) ObserveObs(obs []float64) {
	if len(obs)%a.cfg.ObsDim != 0 {
		panic(fmt.Sprintf("ppo: %d observation values not a multiple of obs dim %d", len(obs), a.cfg.ObsDim))
	}
	if a.cfg.NormalizeObs {
		a.norm.observe(obs)
	}
}

// ActionProbs writes π(·|obs) for a raw observation into dst, with the same
// code as [Policy.ActionProbs]. It panics on a shape mismatch.
func (a *Agent) ActionProbs(obs, dst []float64) {
	a.LogProbs(obs, dst)
	for j, v := range dst {
		dst[j] = math.Exp(v)
	}
}

// LogProbs writes log π(·|obs) for a raw observation into dst, with the same
// code as [Policy.LogProbs]. It panics on a shape mismatch.
func (a *Agent) LogProbs(obs, dst []float64) {
	if len(obs) != a.cfg.ObsDim || len(dst) != a.cfg.NumActions {
		panic(fmt.Sprintf("ppo: obs %d/dst %d, want %d/%d", len(obs), len(dst), a.cfg.ObsDim, a.cfg.NumActions))
	}
	a.pol.transposeWeights(a.polParams(), a.wt[:a.pol.n])
	policyLogProbs(&a.pol, a.polParams(), a.wt[:a.pol.n], a.normMean(), a.den, obs, a.x, a.single.pol.act, a.probs, dst)
}

// Value returns V(obs) for a raw observation.
func (a *Agent) Value(obs []float64) float64 {
	if len(obs) != a.cfg.ObsDim {
		panic(fmt.Sprintf("ppo: obs %d, want %d", len(obs), a.cfg.ObsDim))
	}
	a.val.transposeWeights(a.valParams(), a.wt[a.pol.n:])
	normalizeDen(a.x, obs, a.normMean(), a.den)
	act := a.single.val.act
	a.val.forwardRows(a.valParams(), a.wt[a.pol.n:], a.x, act, 0, 1)
	return act[len(act)-1][0]
}

// Snapshot returns a Policy with a copy of the current policy parameters
// and normalisation statistics.
func (a *Agent) Snapshot() *Policy {
	var mean, variance []float64
	count := 0.0
	if a.cfg.NormalizeObs {
		mean = append([]float64(nil), a.norm.mean...)
		variance = append([]float64(nil), a.norm.variance...)
		count = a.norm.count
	}
	return newPolicy(a.pol, append([]float64(nil), a.polParams()...), mean, variance, count)
}

// MarshalPolicy returns the fields of a PolicySnapshot: the architecture
// string, the policy parameters (float64 little-endian, layer by layer: W
// row-major out×in, then b) and the normalisation statistics (nil and 0
// when NormalizeObs is off). [LoadPolicy] inverts it exactly.
func (a *Agent) MarshalPolicy() (arch string, params []byte, obsMean, obsVar []float64, obsCount float64, err error) {
	arch = archString(&a.cfg)
	params = encodeFloats(make([]byte, 0, 8*a.pol.n), a.polParams())
	if a.cfg.NormalizeObs {
		obsMean = append([]float64(nil), a.norm.mean...)
		obsVar = append([]float64(nil), a.norm.variance...)
		obsCount = a.norm.count
	}
	return arch, params, obsMean, obsVar, obsCount, nil
}

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

// checkBatch panics on inconsistent slice lengths (programmer errors).
func (a *Agent) checkBatch(b *Batch) {
	n, d := b.N(), a.cfg.ObsDim
	if len(b.Obs) != n*d || len(b.NextObs) != n*d || len(b.BehaviorLogProb) != n ||
		len(b.Rewards) != n || len(b.Dones) != n ||
		(b.Weights != nil && len(b.Weights) != n) || (b.PolicyVersion != nil && len(b.PolicyVersion) != n) {
		panic(fmt.Sprintf("ppo: inconsistent batch: %d actions, obs %d, next obs %d (obs dim %d), logprob %d, rewards %d, dones %d, weights %d, versions %d",
			n, len(b.Obs), len(b.NextObs), d, len(b.BehaviorLogProb), len(b.Rewards), len(b.Dones), len(b.Weights), len(b.PolicyVersion)))
	}
}

// prepare compacts the usable samples of b into the agent's arrays,
// shuffles them into a.perm for the first epoch and computes, with the
// current (pre-update) parameters, the constants of the update:
//
//	r₀ = exp(log π_θold(a|s) − log μ(a|s)),  ρ = min(ρ̄, r₀),
//	δ = reward + γ(1 − done)·V_old(s′) − V_old(s),
//	Â = ρ·δ,  V_target = V_old(s) + ρ·δ,
//
// and the reference log-probability of the clipped ratio (log π_θold(a|s)
// for RatioProximal, log μ(a|s) for RatioBehavior). The forward passes
// run batched over the samples, split among min(Workers, n) workers (see
// [worker.prepareBatch]); each sample's figures are computed alone, so
// they do not depend on Workers. The first minibatch (a.perm[:n/M]) is
// evaluated last, into a.mb, whose activations its backward pass then
// reuses. It fills st.Samples, st.Dropped, st.Invalid and
// st.ExplainedVariance.
func (a *Agent) prepare(b *Batch, st *Stats) {
	a.checkBatch(b)
	n, d := b.N(), a.cfg.ObsDim
	a.rows = grow(a.rows, n)[:0]
	for i := range n {
		act, w := b.Actions[i], 1.0
		if b.Weights != nil {
			w = b.Weights[i]
		}
		if act < 0 || act >= a.cfg.NumActions || !finite(b.BehaviorLogProb[i]) || !finite(b.Rewards[i]) ||
			!(w >= 0) || math.IsInf(w, 1) || !allFinite(b.Obs[i*d:(i+1)*d]) || !allFinite(b.NextObs[i*d:(i+1)*d]) {
			st.Invalid++
			continue
		}
		if a.cfg.MaxStaleness > 0 && b.PolicyVersion != nil {
			if v := b.PolicyVersion[i]; v >= 0 && a.version-v > a.cfg.MaxStaleness {
				st.Dropped++
				continue
			}
		}
		a.rows = append(a.rows, i)
	}
	n = len(a.rows)
	a.n = n
	st.Samples = n
	a.xs = grow(a.xs, n*d)
	for _, p := range []*[]float64{&a.w, &a.refLogp, &a.adv, &a.target, &a.vold, &a.lpOld, &a.vnext} {
		*p = grow(*p, n)
	}
	a.act = grow(a.act, n)
	a.perm = grow(a.perm, n)
	a.next = grow(a.next, n)[:0]
	for k, i := range a.rows {
		a.perm[k] = k
		a.act[k] = b.Actions[i]
		a.w[k] = 1
		if b.Weights != nil {
			a.w[k] = b.Weights[i]
		}
		a.vnext[k] = 0
		if !b.Dones[i] {
			a.next = append(a.next, k)
		}
	}
	a.shuffle()
	if n > 0 {
		a.ensureWorkers()
		if a.perRow {
			a.prepareLegacy(b)
		} else {
			a.prepareBatched(b)
		}
	}
	st.ExplainedVariance = explainedVariance(a.target[:n], a.vold[:n])
}

// prepareBatched runs the pre-update forward passes of prepare on the
// batched path and derives the update's constants from them.
func (a *Agent) prepareBatched(b *Batch) {
	n := a.n
	a.refresh()
	a.ensureRows(n / a.cfg.Minibatches)
	a.mbRows = n / a.cfg.Minibatches
	a.batch = b
	nw := a.numWorkers(n)
	for c, w := range a.workers[:nw] {
		w.task, w.part, w.parts = taskPrepare, c, nw
	}
	a.dispatch(nw)
	a.batch = nil
	gamma, rhoBar := a.cfg.Gamma, a.cfg.RhoBar
	for k, i := range a.rows {
		blp, v := b.BehaviorLogProb[i], a.vold[k]
		rho := math.Min(rhoBar, math.Exp(a.lpOld[k]-blp))
		boot := 0.0
		if !b.Dones[i] {
			boot = gamma * a.vnext[k]
		}
		delta := b.Rewards[i] + boot - v
		a.adv[k] = rho * delta
		a.target[k] = v + rho*delta
		if a.cfg.Ratio == RatioBehavior {
			a.refLogp[k] = blp
		} else {
			a.refLogp[k] = a.lpOld[k]
		}
	}
}

// ensureRows makes a.mb and a.rowRes hold at least rows samples.
func (a *Agent) ensureRows(rows int) {
	if a.mb.rows < rows {
		a.mb = a.newRowsWork(rows, true)
	}
	a.rowRes = grow(a.rowRes, max(rows, len(a.rowRes)))
}

// shuffle permutes a.perm with the agent's rand source.
func (a *Agent) shuffle() {
	a.rng.Shuffle(len(a.perm), func(i, j int) { a.perm[i], a.perm[j] = a.perm[j], a.perm[i] })
}

// explainedVariance returns 1 − Var(y − ŷ)/Var(y), or 0 when Var(y) = 0.
func explainedVariance(y, yhat []float64) float64 {
	if len(y) == 0 {
		return 0
	}
	var my, me float64
	for i := range y {
		my += y[i]
		me += y[i] - yhat[i]
	}
	my /= float64(len(y))
	me /= float64(len(y))
	var vy, ve float64
	for i := range y {
		dy, de := y[i]-my, y[i]-yhat[i]-me
		vy += dy * dy
		ve += de * de
	}
	if vy == 0 {
		return 0
	}
	return 1 - ve/vy
}

// mbResult holds the figures of one minibatch evaluation.
type mbResult struct {
	loss, policyLoss, valueLoss, entropy, approxKL, clipFrac float64
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

// lossAndGrad evaluates the minibatch loss L = (1/m)·Σ_i L_i over the
// prepared samples mb (indices into the compacted arrays) and writes ∂L/∂θ
// into a.grad. Advantages are normalised with the IS-weighted mean and
// standard deviation of Â over the minibatch,
//
//	mean_w = Σ w_i·Â_i / Σ w_i,  std_w = √(Σ w_i·(Â_i − mean_w)² / Σ w_i),
//
// so that they are centred under the distribution the weighted loss
// estimates (the buffer's uniform distribution), not under the
// oversampled one; the statistics are invariant to scaling all weights.
// Per sample, with r = exp(log π_θ(a|s) − refLogp):
//
//	∂L_i/∂z_j = w_i·[g_r·(1[j=a] − p_j) + c_e·p_j·(log p_j + H)],
//	  g_r = −A·r when r·A ≤ clip(r)·A (the unclipped term is the min),
//	  g_r = 0 otherwise (r is outside 1±ε and the constant clipped term wins),
//	∂L_i/∂V = w_i·c_v·(V − V_target)   (0 on the clipped value branch),
//
// z the policy logits; each term is divided by m. With cached set, mb must
// be the first minibatch laid out by prepare and the parameters must still
// be θ_old: the forward activations are then those prepare left in a.mb.
//
// Order of computation (the batched path): the rows of the minibatch are
// cut into min(max(1, Workers), m) contiguous parts, and each worker runs
// the forward pass, the per-sample loss terms and the backward deltas of
// its rows (each row on its own); then the parameters' rows are cut into
// max(1, Workers) parts and each worker sums the gradient of its part
// over all m samples in increasing sample order (see [mlp.gradPart]); the
// loss figures are summed over the samples in order and ‖∂L/∂θ‖² by
// [sumSquares]. No sum depends on the split, so the loss, the gradient
// and everything an Update computes are bit-identical for every Workers
// value.
func (a *Agent) lossAndGrad(mb []int, cached bool) mbResult {
	m := len(mb)
	if m == 0 {
		clear(a.grad)
		return mbResult{}
	}
	inv := 1 / float64(m)
	mu, sd := 0.0, 0.0
	if a.cfg.NormalizeAdvantage {
		var sw, swa float64
		for _, k := range mb {
			sw += a.w[k]
			swa += a.w[k] * a.adv[k]
		}
		if sw > 0 {
			mu = swa / sw
			var sv float64
			for _, k := range mb {
				e := a.adv[k] - mu
				sv += a.w[k] * e * e
			}
			sd = math.Sqrt(sv / sw)
		}
	}
	a.ensureWorkers()
	var res mbResult
	if a.perRow {
		res = a.lossAndGradLegacy(mb, cached, mu, sd, inv)
	} else {
		res = a.lossAndGradBatched(mb, cached, mu, sd, inv)
	}
	res.loss *= inv
	res.policyLoss *= inv
	res.valueLoss *= inv
	res.entropy *= inv
	res.approxKL *= inv
	res.clipFrac *= inv
	return res
}

// lossAndGradBatched is lossAndGrad on the batched path; it returns the
// loss sums, not yet divided by m.
func (a *Agent) lossAndGradBatched(mb []int, cached bool, mu, sd, inv float64) mbResult {
	m := len(mb)
	if !cached {
		a.refresh()
		a.ensureRows(m)
	}
	a.mbRows = m
	nw := a.numWorkers(m)
	for c, w := range a.workers[:nw] {
		w.task, w.lo, w.hi, w.mb, w.cached = taskRows, c*m/nw, (c+1)*m/nw, mb, cached
		w.mu, w.sd, w.inv = mu, sd, inv
	}
	a.dispatch(nw)
	for _, w := range a.workers[:nw] {
		w.mb = nil
	}
	np := max(1, a.cfg.Workers)
	for c, w := range a.workers[:np] {
		w.task, w.part, w.parts = taskGrads, c, np
	}
	a.dispatch(np)
	a.gradSS = sumSquares(a.grad)
	var res mbResult
	cv, ce := a.cfg.ValueCoef, a.cfg.EntropyCoef
	for i := range m {
		r := &a.rowRes[i]
		res.loss += r.w * (r.pg + cv*r.vl - ce*r.h)
		res.policyLoss += r.w * r.pg
		res.valueLoss += r.w * r.vl
		res.entropy += r.h
		res.approxKL += r.kl
		if r.clip {
			res.clipFrac++
		}
	}
	return res
}

// step clips the gradient to MaxGradNorm and applies one Adam step with
// learning rate lr; it returns the norm before clipping and whether the
// step was taken (false when the gradient is not finite). It uses the
// squared norm lossAndGrad summed with the gradient, and spreads the
// element-wise update over the workers by parameter range (the result
// does not depend on the split).
func (a *Agent) step(lr float64) (norm float64, ok bool) {
	norm = math.Sqrt(a.gradSS)
	if !finite(norm) {
		return norm, false
	}
	scale := 1.0
	if mg := a.cfg.MaxGradNorm; mg > 0 && norm > mg {
		scale = mg / (norm + 1e-6)
	}
	a.adamT++
	t := float64(a.adamT)
	bc1 := 1 - math.Pow(adamBeta1, t)
	bc2 := 1 - math.Pow(adamBeta2, t)
	a.adamK = newAdamConsts(scale, lr/bc1, 1/math.Sqrt(bc2), a.cfg.AdamEps)
	a.dispatchParams(taskAdam)
	return norm, true
}

// Update runs one PPO update over b: it drops invalid and stale samples,
// computes the V-trace advantages and targets with the pre-update
// parameters (see prepare), then for each of K epochs shuffles the samples
// and takes one clipped, Adam step per minibatch of the M minibatches,
// stopping early when a minibatch's approx_kl exceeds TargetKL (that
// minibatch's step is not taken). It increments Version when at least one
// step was taken and Updates when there were usable samples. b is not
// modified. It panics when b's slices have inconsistent lengths.
// After warm-up (buffers grown to the batch size) it does not allocate.
func (a *Agent) Update(b *Batch) Stats {
	lr := a.cfg.learningRate(a.updates)
	st := Stats{LearningRate: lr}
	a.checkBatch(b)
	if b.N() > 0 {
		// Started before the serial part of prepare, so that waking
		// their threads overlaps it.
		a.startWorkers()
		defer a.stopWorkers()
	}
	a.prepare(b, &st)
	n := a.n
	if n == 0 {
		return st
	}
	M := a.cfg.Minibatches
	evals := 0
epochs:
	for epoch := range a.cfg.Epochs {
		st.EpochsRun++
		if epoch > 0 {
			a.shuffle() // epoch 0 uses the order prepare drew
		}
		for j := range M {
			mb := a.perm[j*n/M : (j+1)*n/M]
			if len(mb) == 0 {
				continue
			}
			res := a.lossAndGrad(mb, epoch == 0 && j == 0)
			evals++
			st.PolicyLoss += res.policyLoss
			st.ValueLoss += res.valueLoss
			st.Entropy += res.entropy
			st.ApproxKL += res.approxKL
			st.ClipFrac += res.clipFrac
			if a.cfg.TargetKL > 0 && res.approxKL > a.cfg.TargetKL {
				st.EarlyStopped = true
				break epochs
			}
			norm, ok := a.step(lr)
			if !ok {
				st.SkippedSteps++
				continue
			}
			st.GradNorm += norm
			st.Steps++
		}
	}
	if evals > 0 {
		f := 1 / float64(evals)
		st.PolicyLoss *= f
		st.ValueLoss *= f
		st.Entropy *= f
		st.ApproxKL *= f
		st.ClipFrac *= f
	}
	if st.Steps > 0 {
		st.GradNorm /= float64(st.Steps)
		a.version++
	}
	a.updates++
	return st
}

// Close waits for the agent's worker goroutines (Config.Workers > 1),
// which every Update tells to return before it returns, to have returned;
// it holds nothing else. The learner calls it on shutdown. Close is idempotent, and it does not end the agent: a later
// Update (or any method that needs the workers) starts them again, so
// Close may be called whenever no other method of the agent is running.
// It returns no error; the signature matches io.Closer.
func (a *Agent) Close() error {
	a.stopWorkers()
	a.wg.Wait()
	return nil
}

// SetWorkers sets Config.Workers, for example after [Restore] (which keeps
// the value saved in the checkpoint) to match the machine. It returns an
// error wrapping ErrInvalidConfig when n is not in [0, MaxWorkers]. The
// workers' buffers are allocated by the next Update.
func (a *Agent) SetWorkers(n int) error {
	if n < 0 || n > MaxWorkers {
		return fmt.Errorf("set ppo workers: %w: workers %d not in [0, %d]", ErrInvalidConfig, n, MaxWorkers)
	}
	a.cfg.Workers = n
	return nil
}
