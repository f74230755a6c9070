package ppo

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"
)

// parallelFixture returns gradFixture's agent (perturbed parameters, 40
// prepared samples, ratios away from 1) with Config.Workers = workers.
func parallelFixture(t *testing.T, workers int, clipValue bool) *Agent {
	t.Helper()
	cfg := DefaultConfig(5, 4)
	cfg.Hidden = []int{8, 7}
	cfg.EntropyCoef = 0.05
	cfg.ClipValue = clipValue
	cfg.Workers = workers
	return gradFixture(t, cfg, 3, 40)
}

// TestWorkersMatchSerial checks that the prepared constants, the first
// minibatch's activations kept by prepare, the minibatch loss figures and
// the gradient are bit-identical for Workers = 1, 2, 3 and 7 (no sum
// depends on the split), and that the per-row reference path, with its
// own order of summation, agrees with them to rounding: 1e-12 relative
// for the prepared constants and loss figures, and per gradient component
// 1e-12·max_i |g_i| (a component that nearly cancels has no meaningful
// relative error of its own).
func TestWorkersMatchSerial(t *testing.T) {
	for _, clipValue := range []bool{false, true} {
		a1 := parallelFixture(t, 1, clipValue)
		mb := a1.perm[:a1.n]
		first := a1.n / a1.cfg.Minibatches
		acts1 := firstMinibatchActs(a1, first)
		r1 := a1.lossAndGrad(mb, false)
		g1 := append([]float64(nil), a1.grad...)
		gmax := 0.0
		for _, g := range g1 {
			gmax = math.Max(gmax, math.Abs(g))
		}
		for _, workers := range []int{2, 3, 7} {
			t.Run(fmt.Sprintf("clipValue=%v/workers=%d", clipValue, workers), func(t *testing.T) {
				a := parallelFixture(t, workers, clipValue)
				for _, arr := range []struct {
					name      string
					got, want []float64
				}{
					{"xs", a.xs, a1.xs}, {"adv", a.adv, a1.adv},
					{"target", a.target, a1.target}, {"vold", a.vold, a1.vold},
					{"refLogp", a.refLogp, a1.refLogp}, {"lpOld", a.lpOld, a1.lpOld},
					{"vnext", a.vnext, a1.vnext}, {"params", a.params, a1.params},
					{"first minibatch activations", firstMinibatchActs(a, first), acts1},
				} {
					if len(arr.got) != len(arr.want) {
						t.Fatalf("prepared %s: %d values, want %d", arr.name, len(arr.got), len(arr.want))
					}
					for i := range arr.want {
						if math.Float64bits(arr.got[i]) != math.Float64bits(arr.want[i]) {
							t.Fatalf("prepared %s[%d] = %v, want %v bit for bit", arr.name, i, arr.got[i], arr.want[i])
						}
					}
				}
				if r := a.lossAndGrad(mb, false); r != r1 {
					t.Errorf("minibatch figures %+v, want %+v (workers 1) bit for bit", r, r1)
				}
				for i := range g1 {
					if math.Float64bits(a.grad[i]) != math.Float64bits(g1[i]) {
						t.Fatalf("grad[%d] = %v, want %v (workers 1) bit for bit", i, a.grad[i], g1[i])
					}
				}
			})
		}
		for _, workers := range []int{1, 3} {
			t.Run(fmt.Sprintf("clipValue=%v/per-row/workers=%d", clipValue, workers), func(t *testing.T) {
				a := parallelFixtureRows(t, workers, clipValue)
				for _, arr := range []struct {
					name      string
					got, want []float64
				}{
					{"xs", a.xs, a1.xs}, {"adv", a.adv, a1.adv},
					{"target", a.target, a1.target}, {"vold", a.vold, a1.vold},
					{"refLogp", a.refLogp, a1.refLogp},
				} {
					for i := range arr.want {
						if math.Abs(arr.got[i]-arr.want[i]) > 1e-12*math.Abs(arr.want[i]) {
							t.Fatalf("per-row prepared %s[%d] = %.17g, want %.17g (batched)", arr.name, i, arr.got[i], arr.want[i])
						}
					}
				}
				r := a.lossAndGrad(mb, false)
				for _, f := range []struct {
					name      string
					got, want float64
				}{
					{"loss", r.loss, r1.loss}, {"policy loss", r.policyLoss, r1.policyLoss},
					{"value loss", r.valueLoss, r1.valueLoss}, {"entropy", r.entropy, r1.entropy},
					{"approx kl", r.approxKL, r1.approxKL}, {"clip frac", r.clipFrac, r1.clipFrac},
				} {
					if math.Abs(f.got-f.want) > 1e-12*math.Abs(f.want) {
						t.Errorf("per-row %s %.17g, want %.17g (batched)", f.name, f.got, f.want)
					}
				}
				for i := range g1 {
					if math.Abs(a.grad[i]-g1[i]) > 1e-12*gmax {
						t.Fatalf("per-row grad[%d] = %.17g, want %.17g (batched)", i, a.grad[i], g1[i])
					}
				}
			})
		}
	}
}

// parallelFixtureRows is parallelFixture on the per-row path.
func parallelFixtureRows(t *testing.T, workers int, clipValue bool) *Agent {
	t.Helper()
	cfg := DefaultConfig(5, 4)
	cfg.Hidden = []int{8, 7}
	cfg.EntropyCoef = 0.05
	cfg.ClipValue = clipValue
	cfg.Workers = workers
	return gradFixtureWith(t, cfg, 3, 40, true)
}

// firstMinibatchActs returns a copy of the inputs and activations that
// prepare left in a.mb for the first rows samples of the first minibatch.
func firstMinibatchActs(a *Agent, rows int) []float64 {
	out := append([]float64(nil), a.mb.x[:rows*a.cfg.ObsDim]...)
	for _, nr := range []struct {
		m    *mlp
		acts [][]float64
	}{{&a.pol, a.mb.pol.act}, {&a.val, a.mb.val.act}} {
		for l, s := range nr.m.sizes[1:] {
			out = append(out, nr.acts[l][:rows*s]...)
		}
	}
	return out
}

// TestWorkersDeterministic checks that two agents with the same seed and
// Workers = 2 end with bit-identical parameters, Adam moments and stats
// after several updates (including minibatches smaller than the worker
// count and a batch with unusable samples).
func TestWorkersDeterministic(t *testing.T) {
	run := func() (*Agent, []Stats) {
		cfg := DefaultConfig(16, 12)
		cfg.Epochs, cfg.Minibatches = 2, 4
		cfg.Workers = 2
		a := testAgent(t, cfg, 11)
		rng := rand.New(rand.NewPCG(12, 13))
		var sts []Stats
		for _, n := range []int{256, 256, 5, 1, 100, 256} {
			b := randomBatch(cfg, n, rng)
			if n == 100 {
				b.Rewards[3] = math.NaN()
			}
			a.ObserveObs(b.Obs)
			sts = append(sts, a.Update(b))
		}
		return a, sts
	}
	a, sa := run()
	b, sb := run()
	for i := range sa {
		if sa[i] != sb[i] {
			t.Fatalf("update %d: stats %+v vs %+v", i, sa[i], sb[i])
		}
	}
	for i := range a.params {
		if a.params[i] != b.params[i] || a.adamM[i] != b.adamM[i] || a.adamV[i] != b.adamV[i] {
			t.Fatalf("param %d: %v vs %v (adam m %v vs %v, v %v vs %v)", i, a.params[i], b.params[i],
				a.adamM[i], b.adamM[i], a.adamV[i], b.adamV[i])
		}
	}
	if a.Version() != 6 {
		t.Errorf("version %d, want 6", a.Version())
	}
}

// TestUpdateNoAllocsWorkers checks that Update with Workers = 2 and 3 (the
// learner's schedule: 2 epochs × 4 minibatches of 64) allocates nothing
// after warm-up: the goroutines run pre-bound method values.
func TestUpdateNoAllocsWorkers(t *testing.T) {
	for _, workers := range []int{2, 3} {
		cfg := DefaultConfig(16, 12)
		cfg.Epochs, cfg.Minibatches = 2, 4
		cfg.Workers = workers
		a := testAgent(t, cfg, 1)
		b := randomBatch(cfg, 256, rand.New(rand.NewPCG(1, 1)))
		a.ObserveObs(b.Obs)
		a.Update(b)
		if n := testing.AllocsPerRun(5, func() { a.Update(b) }); n != 0 {
			t.Errorf("workers %d: Update allocates %v times per run, want 0", workers, n)
		}
	}
}

// TestCheckpointKeepsWorkers checks that Workers survives a checkpoint,
// that the restored agent takes bit-identical updates with it, and that
// SetWorkers changes it and rejects values outside [0, MaxWorkers].
func TestCheckpointKeepsWorkers(t *testing.T) {
	cfg := smallConfig()
	cfg.Workers = 2
	a := testAgent(t, cfg, 31)
	b := randomBatch(cfg, 48, rand.New(rand.NewPCG(31, 31)))
	a.ObserveObs(b.Obs)
	a.Update(b)
	data, err := a.MarshalCheckpoint()
	if err != nil {
		t.Fatal(err)
	}
	r, err := Restore(data, rand.New(rand.NewPCG(5, 5)))
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Config().Workers; got != 2 {
		t.Fatalf("restored workers %d, want 2", got)
	}
	a.rng = rand.New(rand.NewPCG(5, 5))
	if sa, sr := a.Update(b), r.Update(b); sa != sr {
		t.Fatalf("stats differ after restore: %+v vs %+v", sa, sr)
	}
	for i := range a.params {
		if a.params[i] != r.params[i] {
			t.Fatalf("param %d: %v vs %v after identical updates", i, a.params[i], r.params[i])
		}
	}
	if err := r.SetWorkers(3); err != nil || r.Config().Workers != 3 {
		t.Errorf("SetWorkers(3): err %v, workers %d", err, r.Config().Workers)
	}
	r.Update(b)
	for _, n := range []int{-1, MaxWorkers + 1} {
		if err := r.SetWorkers(n); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("SetWorkers(%d): err %v, want ErrInvalidConfig", n, err)
		}
	}
	if r.Config().Workers != 3 {
		t.Errorf("workers %d after rejected SetWorkers, want 3", r.Config().Workers)
	}
}

// TestWorkersManyUpdates runs many small updates with Workers = 3
// (minibatches smaller than the worker count), some back to back (so an
// Update starts its goroutines while the last one's are still returning)
// and some after a pause, and checks that each returns with finite
// parameters; a lost hand-off between Update and its workers hangs it.
// Every Update tells its goroutines to return: once the agent is idle
// they must have left.
func TestWorkersManyUpdates(t *testing.T) {
	cfg := smallConfig()
	cfg.Workers = 3
	a := testAgent(t, cfg, 41)
	rng := rand.New(rand.NewPCG(41, 42))
	for u := range 300 {
		b := randomBatch(cfg, 1+u%9, rng)
		a.Update(b)
		if u%10 == 0 {
			time.Sleep(time.Duration(u%3) * time.Millisecond / 2)
		}
	}
	if !allFinite(a.params) {
		t.Fatal("non-finite parameters")
	}
	// The goroutines return on their own; allow them a bounded time. A
	// leaked worker never does.
	left := make(chan struct{})
	go func() { a.wg.Wait(); close(left) }()
	select {
	case <-left:
	case <-time.After(5 * time.Second):
		t.Error("worker goroutines still running 5 s after the last Update")
	}
}

// TestDispatchPanicRecovers checks that when the caller's part of a
// dispatch panics, the workers' goroutines finish their parts and are
// told to return, the done signals of that dispatch are not taken for a
// later one's, and the next Update computes bit for bit what an agent
// that never panicked computes.
func TestDispatchPanicRecovers(t *testing.T) {
	cfg := smallConfig()
	cfg.Workers = 3
	a, ref := testAgent(t, cfg, 61), testAgent(t, cfg, 61)
	defer ref.Close()
	defer a.Close()
	b := randomBatch(cfg, 48, rand.New(rand.NewPCG(61, 62)))
	a.ObserveObs(b.Obs)
	ref.ObserveObs(b.Obs)
	a.Update(b)
	ref.Update(b)
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("dispatch with a bad task on the caller's worker did not panic")
			}
		}()
		// Worker 0 (the caller's) indexes a nil minibatch; the others
		// have empty row ranges and return at once.
		for i, w := range a.workers[:3] {
			w.task, w.lo, w.hi, w.mb = taskRows, 0, 0, nil
			if i == 0 {
				w.hi = 1
			}
		}
		a.dispatch(3)
	}()
	if a.running != 0 || a.pending != 0 || len(a.done) != 0 {
		t.Fatalf("after the panic: %d goroutines started, %d tasks pending, %d stale done signals", a.running, a.pending, len(a.done))
	}
	sa, sr := a.Update(b), ref.Update(b)
	if sa != sr {
		t.Fatalf("stats after the panic %+v, want %+v", sa, sr)
	}
	for i := range a.params {
		if math.Float64bits(a.params[i]) != math.Float64bits(ref.params[i]) {
			t.Fatalf("param %d after the panic: %v, want %v", i, a.params[i], ref.params[i])
		}
	}
}

// TestCloseStopsWorkers checks that Close stops the worker goroutines and
// waits for them: when it returns every worker is gone and the process's
// goroutine count comes back to at most what it was before the agent
// started them (polled, yielding, until it does; the deadline only ends a
// hung test). Close is idempotent, and an Update after Close starts the
// workers again and computes bit for bit what an agent that was never
// closed computes.
func TestCloseStopsWorkers(t *testing.T) {
	before := runtime.NumGoroutine()
	cfg := smallConfig()
	cfg.Workers = 3
	a, ref := testAgent(t, cfg, 51), testAgent(t, cfg, 51)
	defer ref.Close()
	b := randomBatch(cfg, 48, rand.New(rand.NewPCG(51, 52)))
	a.ObserveObs(b.Obs)
	ref.ObserveObs(b.Obs)
	a.Update(b)
	ref.Update(b)
	for range 2 {
		if err := a.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if a.running != 0 {
			t.Fatalf("%d worker goroutines started after Close, want 0", a.running)
		}
		// A worker's goroutine is done with the agent when Close returns;
		// it may still be on its way out of the runtime.
		deadline := time.Now().Add(time.Minute)
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				t.Fatalf("%d goroutines a minute after Close, %d before the agent", runtime.NumGoroutine(), before)
			}
			runtime.Gosched()
		}
	}
	sa, sr := a.Update(b), ref.Update(b)
	if sa != sr {
		t.Fatalf("stats after Close %+v, want %+v", sa, sr)
	}
	for i := range a.params {
		if a.params[i] != ref.params[i] {
			t.Fatalf("param %d after Close and Update: %v, want %v", i, a.params[i], ref.params[i])
		}
	}
	if err := a.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	// Close on an agent without worker goroutines is a no-op.
	if err := testAgent(t, smallConfig(), 1).Close(); err != nil {
		t.Fatalf("Close without workers: %v", err)
	}
}
