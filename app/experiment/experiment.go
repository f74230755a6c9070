// Package experiment runs the A/B experiment of `aelp experiment ab`:
// importance sampling (crisis experiences drawn more often, the bias undone
// by IS weights) against uniform sampling, on identical simulated streams,
// for the same number of PPO updates, over several seeds; each learned
// policy is then evaluated on held-out journeys beside the logging policy
// and the exact oracle.
//
// The learners run in-process, without a broker, so that the experiment
// fits in minutes, but each arm is the learn role's training core
// (learner/train) with the learn role's defaults: it inserts sim episodes
// generated with the uniform logging policy, each converted as `aelp
// simulate` publishes it (producers.FillExperience) and tagged as `aelp
// aggregate` tags it (consumers/classify with its defaults,
// consumers.ApplyDecision), and updates on the learn role's schedule for a
// topic it is behind on (train.Trainer.Due: insert while the rate limiter
// with its tolerance allows, then train). The buffer and the agent are
// seeded as the learn role seeds them. The stream, the tags, the agent's
// initialisation and the held-out users (sim.HeldOutSeed) are the same for
// both arms of a seed; only the sampling differs. With Config.AdaptiveArm
// a third arm, the adaptive crisis weight (train.Adaptive), runs on the
// same streams.
//
// `aelp experiment sweep` (ExecuteSweep) runs the same runs over a grid of
// crisis weight × α × β schedule, each cell against the uniform baseline.
//
// It uses no Kafka; it wires the simulator, the tagging and the training
// core, and computes statistics over seeds.
package experiment

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"time"

	"github.com/aelp/aelp/consumers"
	"github.com/aelp/aelp/consumers/classify"
	"github.com/aelp/aelp/learner/ppo"
	"github.com/aelp/aelp/learner/replay"
	"github.com/aelp/aelp/learner/train"
	"github.com/aelp/aelp/producers"
	"github.com/aelp/aelp/producers/sim"
	"github.com/aelp/aelp/schemas"
	"golang.org/x/sync/errgroup"
)

// Arm names used in the result and the table.
const (
	// ArmIS is the importance-sampling arm.
	ArmIS = "importance sampling"
	// ArmUniform is the uniform-sampling arm.
	ArmUniform = "uniform sampling"
	// ArmAdaptive is the adaptive-crisis-weight arm (Config.AdaptiveArm).
	ArmAdaptive = "adaptive crisis weight"
)

// Config configures an A/B experiment. The zero value of a field takes the
// default named in its comment (see DefaultConfig).
type Config struct {
	// Sim is the simulator. Default sim.DefaultConfig().
	Sim sim.Config
	// Replay configures the importance-sampling arm's buffer; the uniform
	// arm uses the same with Uniform set. Uniform must be false. Default
	// train.DefaultReplay(), the learn role's.
	Replay replay.Config
	// PPO configures both agents. Default train.DefaultPPO with Workers 1
	// (the runs themselves go Workers at a time).
	PPO ppo.Config
	// Classifier tags experiences as the aggregator does. Default
	// classify.DefaultConfig().
	Classifier classify.Config
	// AdaptiveArm adds a third arm: importance sampling with the adaptive
	// crisis weight (train.Adaptive with Adaptive's MaxWeight and
	// Smoothing), starting from Replay.CrisisWeight, on the same streams.
	// Default false (two arms).
	AdaptiveArm bool
	// Adaptive holds the adaptive arm's MaxWeight and Smoothing; its
	// Enabled is set per arm (on for the adaptive arm only). Default
	// train's (14.6, 100 updates).
	Adaptive train.Adaptive
	// TagWithTruth tags with the simulator's ground truth instead of the
	// classifier (an upper bound on what better tagging could buy).
	TagWithTruth bool
	// SoftPriority gives the importance-sampling arm's experiences the
	// priority w·p + (1 − p) from their tag_score p instead of their hard
	// tag's weight (train.Config.SoftPriority). Default false.
	SoftPriority bool
	// MinBuffer is the number of items before the first update, BatchSize
	// the number of samples per update, SamplesPerInsert and RateTolerance
	// the rate limiter's ratio and tolerance, as in train.Config. Defaults
	// the learn role's: 1,000, 256, 1 and 0 (derived: max(MinBuffer,
	// 10·BatchSize)·SamplesPerInsert).
	MinBuffer, BatchSize            int
	SamplesPerInsert, RateTolerance float64
	// Updates is the number of PPO updates per arm and seed. Default 4,000.
	Updates int
	// Seeds is the number of training seeds, FirstSeed … FirstSeed+Seeds−1.
	// Default 5.
	Seeds int
	// FirstSeed is the first training seed. Default 1.
	FirstSeed uint64
	// EvalEpisodes is the number of held-out journeys each final policy is
	// evaluated on, per seed. Default 20,000.
	EvalEpisodes int
	// CurvePoints is the number of evaluations during training (at evenly
	// spaced updates, plus one before the first update). Default 10.
	CurvePoints int
	// CurveEpisodes is the number of held-out journeys of each curve point.
	// Default 4,000.
	CurveEpisodes int
	// Workers is the number of (seed, arm) runs in parallel. Default
	// GOMAXPROCS.
	Workers int
	// Progress receives one line per finished run. Default io.Discard.
	Progress io.Writer
}

// DefaultConfig returns the experiment's defaults, sized to finish within
// about 15 minutes on 2 cores.
func DefaultConfig() Config {
	var c Config
	c.setDefaults()
	return c
}

func (c *Config) setDefaults() {
	if c.Sim == (sim.Config{}) {
		c.Sim = sim.DefaultConfig()
	}
	if c.PPO.ObsDim == 0 && c.PPO.NumActions == 0 {
		c.PPO = train.DefaultPPO(c.Sim.StateDim, c.Sim.NumActions())
		// The runs themselves go Workers at a time; one goroutine per
		// agent keeps the cores from being oversubscribed (and Workers 1
		// is the serial path, whose results do not depend on the machine).
		c.PPO.Workers = 1
	}
	// The training core's defaults, in one place.
	t := c.trainConfig(0, c.Replay.Uniform).WithDefaults()
	c.Replay, c.MinBuffer, c.BatchSize, c.SamplesPerInsert = t.Replay, t.MinBuffer, t.BatchSize, t.SamplesPerInsert
	c.Adaptive = t.Adaptive
	if c.Classifier.LabelKey == "" && c.Classifier.Keywords == nil {
		c.Classifier = classify.DefaultConfig()
	}
	if c.Updates == 0 {
		c.Updates = 4000
	}
	if c.Seeds == 0 {
		c.Seeds = 5
	}
	if c.FirstSeed == 0 {
		c.FirstSeed = 1
	}
	if c.EvalEpisodes == 0 {
		c.EvalEpisodes = 20_000
	}
	if c.CurvePoints == 0 {
		c.CurvePoints = 10
	}
	if c.CurveEpisodes == 0 {
		c.CurveEpisodes = 4000
	}
	if c.Workers == 0 {
		c.Workers = runtime.GOMAXPROCS(0)
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
}

// Validate reports the first invalid field (after defaults).
func (c Config) Validate() error {
	c.setDefaults()
	if err := c.Sim.Validate(); err != nil {
		return err
	}
	if err := c.trainConfig(0, c.Replay.Uniform).Validate(); err != nil {
		return err
	}
	if c.AdaptiveArm {
		if err := c.adaptiveArm().trainConfig(0, false).Validate(); err != nil {
			return fmt.Errorf("adaptive arm: %w", err)
		}
	}
	if _, err := classify.New(c.Classifier); err != nil {
		return err
	}
	switch {
	case c.Replay.Uniform:
		return errors.New("replay config of the importance-sampling arm has Uniform set")
	case c.PPO.ObsDim != c.Sim.StateDim || c.PPO.NumActions != c.Sim.NumActions():
		return fmt.Errorf("ppo network is %d×%d but the simulator is %d×%d", c.PPO.ObsDim, c.PPO.NumActions, c.Sim.StateDim, c.Sim.NumActions())
	case c.Updates < 1:
		return fmt.Errorf("updates %d: must be at least 1", c.Updates)
	case c.Seeds < 2:
		return fmt.Errorf("seeds %d: need at least 2 for a confidence interval", c.Seeds)
	case c.FirstSeed+uint64(c.Seeds)-1 > sim.MaxTrainingSeed:
		return fmt.Errorf("seeds %d…%d overlap the held-out evaluation seeds", c.FirstSeed, c.FirstSeed+uint64(c.Seeds)-1)
	case c.EvalEpisodes < 1 || c.CurveEpisodes < 1:
		return errors.New("eval and curve episodes must be at least 1")
	case c.CurvePoints < 1 || c.CurvePoints > c.Updates:
		return fmt.Errorf("curve points %d: must be in [1, updates %d]", c.CurvePoints, c.Updates)
	case c.Workers < 1:
		return fmt.Errorf("workers %d: must be at least 1", c.Workers)
	}
	return nil
}

// WithDefaults returns c with the documented defaults filled in.
func (c Config) WithDefaults() Config { c.setDefaults(); return c }

// trainConfig returns the training core's configuration of one arm: the
// learn role's core with the experiment's buffer, agent and rate limiter,
// sampling uniformly when uniform (and then never adaptive).
func (c Config) trainConfig(seed uint64, uniform bool) train.Config {
	rc := c.Replay
	rc.Uniform = uniform
	ad := c.Adaptive
	ad.Enabled = ad.Enabled && !uniform
	return train.Config{
		Replay: rc, PPO: c.PPO, MinBuffer: c.MinBuffer, BatchSize: c.BatchSize,
		SamplesPerInsert: c.SamplesPerInsert, RateTolerance: c.RateTolerance, Seed: seed,
		SoftPriority: c.SoftPriority, Adaptive: ad,
	}
}

// fixedArm and adaptiveArm return c for the fixed-weight and the adaptive
// arms: Adaptive.Enabled off and on.
func (c Config) fixedArm() Config    { c.Adaptive.Enabled = false; return c }
func (c Config) adaptiveArm() Config { c.Adaptive.Enabled = true; return c }

// CurvePoint is one held-out evaluation during training.
type CurvePoint struct {
	// Updates is the number of PPO updates made before the evaluation.
	Updates int
	// CrisisReturn and RegularReturn are the mean held-out journey returns
	// per segment; ValuePerUser over all users.
	CrisisReturn, RegularReturn, ValuePerUser float64
}

// Run is one arm trained on one seed.
type Run struct {
	// Seed is the training seed (simulator stream, sampler, agent init);
	// EvalSeed the held-out seed the policy was evaluated on.
	Seed, EvalSeed uint64
	// Eval is the final policy's held-out evaluation.
	Eval sim.EvalReport
	// Curve are the evaluations during training, in update order.
	Curve []CurvePoint
	// Updates, Inserted and Sampled count the training.
	Updates           int
	Inserted, Sampled int64
	// Episodes is the number of training journeys simulated.
	Episodes int64
	// BatchCrisisShare and ExpectedCrisisShare are the mean measured and
	// expected crisis share of the batches; TrueCrisisShare is the mean
	// share of batch items whose user truly was a crisis parent.
	BatchCrisisShare, ExpectedCrisisShare, TrueCrisisShare float64
	// WeightMean, WeightMin and WeightMax summarise the IS weights over all
	// batches; FinalBeta is β at the last update.
	WeightMean, WeightMin, WeightMax, FinalBeta float64
	// CrisisWeightMean is the mean crisis weight the batches were drawn
	// with, FinalCrisisWeight the weight after the last update (they are
	// Replay.CrisisWeight unless the arm is adaptive) and FinalSignal the
	// adaptive rule's last signal (0 when not adaptive).
	CrisisWeightMean, FinalCrisisWeight, FinalSignal float64
	// TagPrecision and TagRecall measure the crisis tags against ground truth.
	TagPrecision, TagRecall float64
	// Last is the last update's PPO figures.
	Last ppo.Stats
	// Elapsed is the wall time of the run (training and evaluation).
	Elapsed time.Duration
}

// Result is the outcome of an experiment.
type Result struct {
	// Config is the configuration run, defaults filled in.
	Config Config
	// IS and Uniform are the arms' runs, one per seed, in seed order;
	// Adaptive the adaptive arm's (nil without Config.AdaptiveArm).
	IS, Uniform, Adaptive []Run
	// Logging are the uniform logging policy's evaluations on the same
	// held-out seeds.
	Logging []sim.EvalReport
	// Oracle is the exact model-derived reference.
	Oracle sim.OracleReport
	// Elapsed is the wall time of the whole experiment.
	Elapsed time.Duration
}

// Execute runs the experiment: for every seed, both arms and the logging
// policy's evaluation, Workers at a time. Each run is deterministic given
// its seed, whatever the scheduling. Cancelling ctx stops the runs at the
// next update and returns ctx's error.
func Execute(ctx context.Context, cfg Config) (Result, error) {
	if err := prepare(&cfg, "experiment"); err != nil {
		return Result{}, err
	}
	start := time.Now()
	res := Result{
		Config:  cfg,
		IS:      make([]Run, cfg.Seeds),
		Uniform: make([]Run, cfg.Seeds),
		Logging: make([]sim.EvalReport, cfg.Seeds),
	}
	var err error
	if res.Oracle, err = sim.Oracle(cfg.Sim); err != nil {
		return res, fmt.Errorf("experiment: oracle: %w", err)
	}
	arms := []armJob{{ArmIS, cfg.fixedArm(), false, res.IS}, {ArmUniform, cfg.fixedArm(), true, res.Uniform}}
	if cfg.AdaptiveArm {
		res.Adaptive = make([]Run, cfg.Seeds)
		arms = append(arms, armJob{ArmAdaptive, cfg.adaptiveArm(), false, res.Adaptive})
	}
	prog := newProgress(cfg.Progress, len(arms)*cfg.Seeds, start)
	if err := runArms(ctx, cfg.Workers, cfg.FirstSeed, cfg.Seeds, arms, prog, 22); err != nil {
		return res, err
	}
	for i := range cfg.Seeds {
		seed := cfg.FirstSeed + uint64(i)
		rep, err := sim.Evaluate(cfg.Sim, sim.Uniform{N: cfg.Sim.NumActions()}, cfg.EvalEpisodes, sim.HeldOutSeed(seed))
		if err != nil {
			return res, fmt.Errorf("experiment: evaluate logging policy: %w", err)
		}
		res.Logging[i] = rep
	}
	res.Elapsed = time.Since(start)
	return res, nil
}

// prepare fills in cfg's defaults and validates it, naming what in the
// error.
func prepare[C any, P interface {
	*C
	setDefaults()
	Validate() error
}](cfg P, what string) error {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// forSeeds calls job(ctx, i, seed, k) for every seed i = 0 … seeds−1
// (seed first+i) and every k < perSeed, seed-major (every job of a seed
// before the next seed's, so an experiment stopped early has whole seeds),
// workers at a time. The first error cancels the context the other jobs
// see and is returned; a job must write only its own results.
func forSeeds(ctx context.Context, workers int, first uint64, seeds, perSeed int,
	job func(ctx context.Context, i int, seed uint64, k int) error) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(workers)
	for i := range seeds {
		seed := first + uint64(i)
		for k := range perSeed {
			g.Go(func() error { return job(gctx, i, seed, k) })
		}
	}
	return g.Wait()
}

// armJob is one arm of an experiment: its name, configuration, logging
// (uniform or not) and its runs, one per seed.
type armJob struct {
	name    string
	cfg     Config
	uniform bool
	runs    []Run
}

// runArms runs every arm on every seed (forSeeds), each finished run
// reported to prog with its name padded to width.
func runArms(ctx context.Context, workers int, first uint64, seeds int, arms []armJob, prog *progress, width int) error {
	return forSeeds(ctx, workers, first, seeds, len(arms), func(ctx context.Context, i int, seed uint64, k int) error {
		a := arms[k]
		r, err := runArm(ctx, a.cfg, seed, a.uniform)
		if err != nil {
			return err
		}
		a.runs[i] = r
		prog.finish(fmt.Sprintf("seed %d %-*s", seed, width, a.name), r)
		return nil
	})
}

// progress writes one line per finished run to w.
type progress struct {
	mu              sync.Mutex
	w               io.Writer
	finished, total int
	start           time.Time
}

func newProgress(w io.Writer, total int, start time.Time) *progress {
	return &progress{w: w, total: total, start: start}
}

// finish reports run r, named what, as finished.
func (p *progress) finish(what string, r Run) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.finished++
	fmt.Fprintf(p.w, "[%4.0fs] %d/%d %s %d updates in %.1fs: held-out crisis return %.3f, value per user %.3f\n",
		time.Since(p.start).Seconds(), p.finished, p.total, what, r.Updates, r.Elapsed.Seconds(),
		r.Eval.Crisis.MeanReturn, r.Eval.ValuePerUser)
}

// arm is one run: the training core of the learn role, fed by the
// simulator through the aggregator's tagging.
type arm struct {
	cfg     Config
	tr      *train.Trainer
	cls     *classify.Classifier
	te      schemas.TaggedExperience
	updates int
	run     Run
}

// newArm returns the arm of seed, sampling uniformly when uniform.
func newArm(cfg Config, seed uint64, uniform bool) (*arm, error) {
	tr, err := train.New(cfg.trainConfig(seed, uniform))
	if err != nil {
		return nil, fmt.Errorf("experiment: %w", err)
	}
	cls, err := classify.New(cfg.Classifier)
	if err != nil {
		return nil, fmt.Errorf("experiment: %w", err)
	}
	return &arm{cfg: cfg, tr: tr, cls: cls, run: Run{Seed: seed, EvalSeed: sim.HeldOutSeed(seed)}}, nil
}

// runArm trains one arm on one seed and evaluates it.
func runArm(ctx context.Context, cfg Config, seed uint64, uniform bool) (Run, error) {
	start := time.Now()
	a, err := newArm(cfg, seed, uniform)
	if err != nil {
		return Run{}, err
	}
	// The agent's PPO workers (Config.Workers > 1) stop with the arm.
	defer a.tr.Agent().Close()
	stream, err := sim.New(cfg.Sim, seed, 0)
	if err != nil {
		return Run{}, fmt.Errorf("experiment: %w", err)
	}
	curveAt := curveSchedule(cfg.Updates, cfg.CurvePoints)
	if err := a.curvePoint(); err != nil {
		return Run{}, err
	}
	logging := sim.Uniform{N: cfg.Sim.NumActions()}
	var stepErr error
	for a.updates < cfg.Updates && stepErr == nil {
		if err := ctx.Err(); err != nil {
			return Run{}, err
		}
		stream.RunEpisode(logging, func(tr *sim.Transition) {
			if stepErr != nil {
				return
			}
			a.insert(tr)
			for a.updates < cfg.Updates && a.tr.Due() {
				if stepErr = a.update(); stepErr != nil {
					return
				}
				if len(curveAt) > 0 && a.updates == curveAt[0] {
					curveAt = curveAt[1:]
					if stepErr = a.curvePoint(); stepErr != nil {
						return
					}
				}
			}
		})
		a.run.Episodes++
	}
	if stepErr != nil {
		return Run{}, stepErr
	}
	if a.run.Eval, err = sim.Evaluate(cfg.Sim, a.tr.Agent().Snapshot(), cfg.EvalEpisodes, a.run.EvalSeed); err != nil {
		return Run{}, fmt.Errorf("experiment: evaluate: %w", err)
	}
	a.finish()
	a.run.Elapsed = time.Since(start)
	return a.run, nil
}

// curveSchedule returns the updates after which to evaluate: points evenly
// spaced, the last at updates.
func curveSchedule(updates, points int) []int {
	out := make([]int, 0, points)
	for i := 1; i <= points; i++ {
		u := updates * i / points
		if len(out) == 0 || u > out[len(out)-1] {
			out = append(out, u)
		}
	}
	return out
}

// insert converts tr as the simulate role publishes it, tags it as the
// aggregator does (or with the ground truth) and inserts it, as the learn
// role inserts a tagged record.
func (a *arm) insert(tr *sim.Transition) {
	producers.FillExperience(&a.te.Experience, tr, "", -1, time.Time{})
	if a.cfg.TagWithTruth {
		consumers.ApplyDecision(&a.te, classify.Decision{Crisis: tr.Crisis, Source: classify.SourceLabel, Score: 1}, time.Time{})
	} else {
		consumers.ApplyDecision(&a.te, a.cls.Classify(tr.Metadata, tr.Value), time.Time{})
	}
	a.tr.Insert(&a.te)
}

// update makes one update of the training core.
func (a *arm) update() error {
	if _, err := a.tr.Update(); err != nil {
		return fmt.Errorf("experiment: %w", err)
	}
	a.updates++
	return nil
}

// finish copies the training core's figures into the run.
func (a *arm) finish() {
	s := a.tr.Stats()
	b := s.Batches
	r := &a.run
	r.Updates, r.Inserted, r.Sampled = int(s.Updates), s.Inserted, s.Sampled
	r.BatchCrisisShare, r.ExpectedCrisisShare = b.CrisisShare.Mean(), b.ExpectedCrisisShare.Mean()
	r.TrueCrisisShare, r.WeightMean = b.TrueCrisisShare.Mean(), b.WeightMean.Mean()
	r.WeightMin, r.WeightMax, r.FinalBeta = b.WeightMin.Min(), b.WeightMax.Max(), s.Buffer.Beta
	r.TagPrecision, r.TagRecall = s.Tags.Precision(), s.Tags.Recall()
	r.CrisisWeightMean, r.FinalCrisisWeight, r.FinalSignal = b.CrisisWeight.Mean(), s.CrisisWeight, s.AdaptiveSignal
	r.Last = s.Last
}

// curvePoint evaluates the current policy on the run's held-out seed.
func (a *arm) curvePoint() error {
	rep, err := sim.Evaluate(a.cfg.Sim, a.tr.Agent().Snapshot(), a.cfg.CurveEpisodes, a.run.EvalSeed)
	if err != nil {
		return fmt.Errorf("experiment: curve: %w", err)
	}
	a.run.Curve = append(a.run.Curve, CurvePoint{
		Updates: a.updates, CrisisReturn: rep.Crisis.MeanReturn,
		RegularReturn: rep.Regular.MeanReturn, ValuePerUser: rep.ValuePerUser,
	})
	return nil
}
