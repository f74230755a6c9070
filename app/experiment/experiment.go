// Package experiment runs the A/B experiment of `aelp experiment ab`:
// importance sampling (crisis experiences drawn more often, the bias undone
// by IS weights) against uniform sampling, on identical simulated streams,
// for the same number of PPO updates, over several seeds; each learned
// policy is then evaluated on held-out journeys beside the logging policy
// and the exact oracle.
//
// The learners run in-process, without Kafka, so that the experiment fits
// in minutes: each arm feeds a replay.Buffer and a ppo.Agent directly from
// sim episodes generated with the uniform logging policy, tags each
// experience with the aggregator's classifier (consumers/classify, the same
// rules and defaults as `aelp aggregate`), and trains with the learn role's
// settings (learner.DefaultPPO, batch 256, min buffer 1,000, one sample per
// insert). The replay buffer is seeded exactly as the learn role seeds it.
// The stream, the tags, the agent's initialisation and the held-out users
// are the same for both arms of a seed; only the sampling differs.
//
// It knows nothing of Kafka; it wires the pure cores (sim, classify, replay,
// ppo) and computes statistics over seeds.
package experiment

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
	"time"

	"github.com/aelp/aelp/consumers/classify"
	"github.com/aelp/aelp/learner"
	"github.com/aelp/aelp/learner/ppo"
	"github.com/aelp/aelp/learner/replay"
	"github.com/aelp/aelp/producers/sim"
	"golang.org/x/sync/errgroup"
)

// Arm names used in the result and the table.
const (
	// ArmIS is the importance-sampling arm.
	ArmIS = "importance sampling"
	// ArmUniform is the uniform-sampling arm.
	ArmUniform = "uniform sampling"
)

// evalSeedBase is added to a training seed to get its held-out evaluation
// seed; training seeds are below it, so evaluation users are never trained
// on.
const evalSeedBase = 1 << 40

// Config configures an A/B experiment. The zero value of a field takes the
// default named in its comment (see DefaultConfig).
type Config struct {
	// Sim is the simulator. Default sim.DefaultConfig().
	Sim sim.Config
	// Replay configures the importance-sampling arm's buffer; the uniform
	// arm uses the same with Uniform set. Uniform must be false. Default:
	// replay.DefaultConfig() with AnnealSteps 2,000 (the CLI's
	// --beta-anneal-updates default).
	Replay replay.Config
	// PPO configures both agents. Default learner.DefaultPPO.
	PPO ppo.Config
	// Classifier tags experiences as the aggregator does. Default
	// classify.DefaultConfig().
	Classifier classify.Config
	// TagWithTruth tags with the simulator's ground truth instead of the
	// classifier (an upper bound on what better tagging could buy).
	TagWithTruth bool
	// MinBuffer is the number of items before the first update. Default 1,000.
	MinBuffer int
	// BatchSize is the number of samples per update. Default 256.
	BatchSize int
	// SamplesPerInsert is the rate limiter's ratio: an update is made each
	// time SamplesPerInsert·inserted reaches sampled + BatchSize. Default 1.
	SamplesPerInsert float64
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
	if c.Replay == (replay.Config{}) {
		c.Replay = replay.DefaultConfig()
		c.Replay.AnnealSteps = 2000
	}
	if c.PPO.ObsDim == 0 && c.PPO.NumActions == 0 {
		c.PPO = learner.DefaultPPO(c.Sim.StateDim, c.Sim.NumActions())
		// The runs themselves go Workers at a time; one goroutine per
		// agent keeps the cores from being oversubscribed (and Workers 1
		// is the serial path, whose results do not depend on the machine).
		c.PPO.Workers = 1
	}
	if c.Classifier.LabelKey == "" && c.Classifier.Keywords == nil {
		c.Classifier = classify.DefaultConfig()
	}
	if c.MinBuffer == 0 {
		c.MinBuffer = 1000
	}
	if c.BatchSize == 0 {
		c.BatchSize = 256
	}
	if c.SamplesPerInsert == 0 {
		c.SamplesPerInsert = 1
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
	if err := c.Replay.Validate(); err != nil {
		return err
	}
	if err := c.PPO.Validate(); err != nil {
		return err
	}
	if _, err := classify.New(c.Classifier); err != nil {
		return err
	}
	switch {
	case c.Replay.Uniform:
		return errors.New("replay config of the importance-sampling arm has Uniform set")
	case c.PPO.ObsDim != c.Sim.StateDim || c.PPO.NumActions != c.Sim.NumActions():
		return fmt.Errorf("ppo network is %d×%d but the simulator is %d×%d", c.PPO.ObsDim, c.PPO.NumActions, c.Sim.StateDim, c.Sim.NumActions())
	case c.MinBuffer < 1 || c.MinBuffer > c.Replay.Capacity:
		return fmt.Errorf("min buffer %d: must be in [1, capacity %d]", c.MinBuffer, c.Replay.Capacity)
	case c.BatchSize < 1:
		return fmt.Errorf("batch size %d: must be at least 1", c.BatchSize)
	case !(c.SamplesPerInsert > 0) || math.IsInf(c.SamplesPerInsert, 0):
		return fmt.Errorf("samples per insert %v: must be positive and finite", c.SamplesPerInsert)
	case c.Updates < 1:
		return fmt.Errorf("updates %d: must be at least 1", c.Updates)
	case c.Seeds < 2:
		return fmt.Errorf("seeds %d: need at least 2 for a confidence interval", c.Seeds)
	case c.FirstSeed+uint64(c.Seeds) > evalSeedBase:
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
	// IS and Uniform are the arms' runs, one per seed, in seed order.
	IS, Uniform []Run
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
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return Result{}, fmt.Errorf("experiment: %w", err)
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
	var progMu sync.Mutex
	done := 0
	total := 2 * cfg.Seeds
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(cfg.Workers)
	for i := range cfg.Seeds {
		seed := cfg.FirstSeed + uint64(i)
		for _, uniform := range []bool{false, true} {
			g.Go(func() error {
				r, err := runArm(gctx, cfg, seed, uniform)
				if err != nil {
					return err
				}
				name, dst := ArmIS, &res.IS[i]
				if uniform {
					name, dst = ArmUniform, &res.Uniform[i]
				}
				*dst = r
				progMu.Lock()
				done++
				fmt.Fprintf(cfg.Progress, "[%3.0fs] %d/%d seed %d %-19s %d updates in %.1fs: held-out crisis return %.3f, value per user %.3f\n",
					time.Since(start).Seconds(), done, total, seed, name, r.Updates, r.Elapsed.Seconds(),
					r.Eval.Crisis.MeanReturn, r.Eval.ValuePerUser)
				progMu.Unlock()
				return nil
			})
		}
	}
	if err := g.Wait(); err != nil {
		return res, err
	}
	for i := range cfg.Seeds {
		seed := cfg.FirstSeed + uint64(i)
		rep, err := sim.Evaluate(cfg.Sim, sim.Uniform{N: cfg.Sim.NumActions()}, cfg.EvalEpisodes, evalSeedBase+seed)
		if err != nil {
			return res, fmt.Errorf("experiment: evaluate logging policy: %w", err)
		}
		res.Logging[i] = rep
	}
	res.Elapsed = time.Since(start)
	return res, nil
}

// arm holds one run's state: the stream, the tagger, the buffer, the agent
// and the experiences by buffer slot (struct of arrays, as the learn role
// keeps them).
type arm struct {
	cfg   Config
	buf   *replay.Buffer[struct{}]
	agent *ppo.Agent
	cls   *classify.Classifier
	dim   int

	obs, next []float64
	action    []int
	logp      []float64
	reward    []float64
	done      []bool
	truth     []bool

	batch replay.Batch[struct{}]
	pb    ppo.Batch
	acc   classify.Counts
	run   Run

	batchCrisisSum, expectedSum, trueSum, weightSum float64
}

// runArm trains one arm on one seed and evaluates it.
func runArm(ctx context.Context, cfg Config, seed uint64, uniform bool) (Run, error) {
	start := time.Now()
	rc := cfg.Replay
	rc.Uniform = uniform
	// Seeded as learner.New seeds the learn role's buffer and agent.
	buf, err := replay.New[struct{}](rc, rand.New(rand.NewPCG(seed, 0xb0ff_e4)))
	if err != nil {
		return Run{}, fmt.Errorf("experiment: %w", err)
	}
	agent, err := ppo.New(cfg.PPO, rand.New(rand.NewPCG(seed, 0x5eed_b0f)))
	if err != nil {
		return Run{}, fmt.Errorf("experiment: %w", err)
	}
	cls, err := classify.New(cfg.Classifier)
	if err != nil {
		return Run{}, fmt.Errorf("experiment: %w", err)
	}
	stream, err := sim.New(cfg.Sim, seed, 0)
	if err != nil {
		return Run{}, fmt.Errorf("experiment: %w", err)
	}
	n, d := rc.Capacity, cfg.Sim.StateDim
	a := &arm{
		cfg: cfg, buf: buf, agent: agent, cls: cls, dim: d,
		obs: make([]float64, n*d), next: make([]float64, n*d),
		action: make([]int, n), logp: make([]float64, n), reward: make([]float64, n),
		done: make([]bool, n), truth: make([]bool, n),
	}
	a.run = Run{Seed: seed, EvalSeed: evalSeedBase + seed, WeightMin: math.Inf(1), WeightMax: math.Inf(-1)}
	curveAt := curveSchedule(cfg.Updates, cfg.CurvePoints)
	if err := a.curvePoint(); err != nil {
		return Run{}, err
	}
	logging := sim.Uniform{N: cfg.Sim.NumActions()}
	var stepErr error
	for a.run.Updates < cfg.Updates && stepErr == nil {
		if err := ctx.Err(); err != nil {
			return Run{}, err
		}
		stream.RunEpisode(logging, func(tr *sim.Transition) {
			if stepErr != nil {
				return
			}
			a.insert(tr)
			for a.run.Updates < cfg.Updates && a.canSample() {
				if stepErr = a.update(); stepErr != nil {
					return
				}
				if len(curveAt) > 0 && a.run.Updates == curveAt[0] {
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
	if a.run.Eval, err = sim.Evaluate(cfg.Sim, agent.Snapshot(), cfg.EvalEpisodes, a.run.EvalSeed); err != nil {
		return Run{}, fmt.Errorf("experiment: evaluate: %w", err)
	}
	u := float64(a.run.Updates)
	a.run.BatchCrisisShare = a.batchCrisisSum / u
	a.run.ExpectedCrisisShare = a.expectedSum / u
	a.run.TrueCrisisShare = a.trueSum / u
	a.run.WeightMean = a.weightSum / u
	a.run.FinalBeta = buf.Beta()
	a.run.TagPrecision, a.run.TagRecall = a.acc.Precision(), a.acc.Recall()
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

// insert tags tr and adds it to the buffer, as the aggregator and the learn
// role would.
func (a *arm) insert(tr *sim.Transition) {
	var crisis bool
	if a.cfg.TagWithTruth {
		crisis = tr.Crisis
	} else {
		dec := a.cls.Classify(tr.Metadata, tr.Value)
		crisis = dec.Crisis
	}
	switch {
	case crisis && tr.Crisis:
		a.acc.TP++
	case crisis:
		a.acc.FP++
	case tr.Crisis:
		a.acc.FN++
	default:
		a.acc.TN++
	}
	slot := a.buf.Add(struct{}{}, crisis)
	o, nx := a.obs[slot*a.dim:(slot+1)*a.dim], a.next[slot*a.dim:(slot+1)*a.dim]
	copy(o, tr.State)
	copy(nx, tr.NextState)
	a.action[slot] = tr.Action
	a.logp[slot] = tr.BehaviorLogProb
	a.reward[slot] = tr.Reward
	a.done[slot] = tr.Done
	a.truth[slot] = tr.Crisis
	a.agent.ObserveObs(o)
	a.run.Inserted++
}

// canSample is the rate limiter: the buffer holds MinBuffer items and one
// more batch keeps sampled ≤ SamplesPerInsert·inserted.
func (a *arm) canSample() bool {
	return a.buf.Len() >= a.cfg.MinBuffer &&
		float64(a.run.Sampled+int64(a.cfg.BatchSize)) <= a.cfg.SamplesPerInsert*float64(a.run.Inserted)
}

// update draws one batch and makes one PPO update, as the learn role does.
func (a *arm) update() error {
	a.buf.SetStep(int64(a.run.Updates))
	if err := a.buf.Sample(&a.batch, a.cfg.BatchSize); err != nil {
		return fmt.Errorf("experiment: sample: %w", err)
	}
	a.pb.Reset()
	truth := 0
	for j, slot := range a.batch.Indices {
		a.pb.Append(a.obs[slot*a.dim:(slot+1)*a.dim], a.next[slot*a.dim:(slot+1)*a.dim], a.action[slot],
			a.logp[slot], a.reward[slot], a.batch.Weights[j], a.done[slot], -1)
		if a.truth[slot] {
			truth++
		}
	}
	a.run.Last = a.agent.Update(&a.pb)
	a.run.Updates++
	a.run.Sampled += int64(a.cfg.BatchSize)
	bs := a.buf.Stats()
	a.batchCrisisSum += bs.LastBatchCrisisRatio
	a.expectedSum += bs.ExpectedBatchCrisisRatio
	a.trueSum += float64(truth) / float64(a.batch.Len())
	a.weightSum += bs.WeightMean
	a.run.WeightMin = math.Min(a.run.WeightMin, bs.WeightMin)
	a.run.WeightMax = math.Max(a.run.WeightMax, bs.WeightMax)
	return nil
}

// curvePoint evaluates the current policy on the run's held-out seed.
func (a *arm) curvePoint() error {
	rep, err := sim.Evaluate(a.cfg.Sim, a.agent.Snapshot(), a.cfg.CurveEpisodes, a.run.EvalSeed)
	if err != nil {
		return fmt.Errorf("experiment: curve: %w", err)
	}
	a.run.Curve = append(a.run.Curve, CurvePoint{
		Updates: a.run.Updates, CrisisReturn: rep.Crisis.MeanReturn,
		RegularReturn: rep.Regular.MeanReturn, ValuePerUser: rep.ValuePerUser,
	})
	return nil
}
