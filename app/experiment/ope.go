package experiment

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/aelp/aelp/consumers"
	"github.com/aelp/aelp/consumers/classify"
	"github.com/aelp/aelp/learner/ope"
	"github.com/aelp/aelp/learner/ppo"
	"github.com/aelp/aelp/producers"
	"github.com/aelp/aelp/producers/sim"
	"github.com/aelp/aelp/schemas"
)

// Segments of an OPE cell: every user, and the simulator's true segments.
const (
	SegmentAll     = "all"
	SegmentCrisis  = "crisis"
	SegmentRegular = "regular"
)

// opeSegments maps a cell's segment to the ope report's segment name.
var opeSegments = []struct{ cell, report string }{
	{SegmentAll, ope.KindAll},
	{SegmentCrisis, ope.KindTrue + " " + sim.SegmentCrisis},
	{SegmentRegular, ope.KindTrue + " " + sim.SegmentRegular},
}

// OPEConfig configures the off-policy evaluation experiment of `aelp
// experiment ope`: for every seed, a learner trained as the learn role
// trains (on uniformly logged journeys of the seed, stream 0) gives
// snapshots at Snapshots updates; the logging policy μ = (1 − Epsilon)·π₀
// + Epsilon·uniform, π₀ the first snapshot, logs Journeys journeys
// (stream 1 of the seed), each converted and tagged as the simulate and
// aggregate roles do; every target (μ itself, each snapshot, uniform) is
// estimated from them with every estimator and compared with its
// on-policy value on TruthEpisodes held-out journeys
// (sim.HeldOutSeed(seed)), what `aelp evaluate` computes. The zero value
// of a field takes the default named in its comment.
type OPEConfig struct {
	// Sim is the simulator. Default sim.DefaultConfig().
	Sim sim.Config
	// PPO configures the learner. Default train.DefaultPPO for the
	// simulator's shape, with Workers 1 (as Config's).
	PPO ppo.Config
	// Classifier tags the logged experiences as the aggregator does.
	// Default classify.DefaultConfig().
	Classifier classify.Config
	// Snapshots are the numbers of PPO updates after which a snapshot is
	// taken, increasing; the first is the logging policy's base π₀.
	// Default 100, 400.
	Snapshots []int
	// Epsilon is the logging policy's share of uniform exploration, in
	// (0, 1]: every action keeps probability ≥ Epsilon/NumActions, the
	// support every estimator needs. Default 0.3.
	Epsilon float64
	// Journeys is the number of journeys logged under μ per seed. Default
	// 20,000.
	Journeys int
	// TruthEpisodes is the number of held-out journeys of each target's
	// on-policy value. Default 100,000.
	TruthEpisodes int
	// Seeds is the number of seeds, FirstSeed … FirstSeed+Seeds−1.
	// Default 5; FirstSeed default 1.
	Seeds     int
	FirstSeed uint64
	// OPE configures the estimators; its Seed is replaced by each seed.
	// Default ope.DefaultConfig().
	OPE ope.Config
	// Workers is the number of seeds run in parallel. Default GOMAXPROCS.
	Workers int
	// Progress receives one line per finished seed. Default io.Discard.
	Progress io.Writer
}

// DefaultOPEConfig returns the defaults.
func DefaultOPEConfig() OPEConfig {
	var c OPEConfig
	c.setDefaults()
	return c
}

func (c *OPEConfig) setDefaults() {
	learn := Config{Sim: c.Sim, PPO: c.PPO, Classifier: c.Classifier}.WithDefaults()
	c.Sim, c.PPO, c.Classifier = learn.Sim, learn.PPO, learn.Classifier
	if c.Snapshots == nil {
		c.Snapshots = []int{100, 400}
	}
	if c.Epsilon == 0 {
		c.Epsilon = 0.3
	}
	if c.Journeys == 0 {
		c.Journeys = 20_000
	}
	if c.TruthEpisodes == 0 {
		c.TruthEpisodes = 100_000
	}
	if c.Seeds == 0 {
		c.Seeds = 5
	}
	if c.FirstSeed == 0 {
		c.FirstSeed = 1
	}
	if c.OPE == (ope.Config{}) {
		c.OPE = ope.DefaultConfig()
	}
	if c.Workers == 0 {
		c.Workers = runtime.GOMAXPROCS(0)
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
}

// WithDefaults returns c with the documented defaults filled in.
func (c OPEConfig) WithDefaults() OPEConfig { c.setDefaults(); return c }

// learnConfig is the A/B experiment's configuration whose importance-
// sampling arm trains the snapshots (the learn role's training core and
// defaults).
func (c OPEConfig) learnConfig() Config {
	return Config{Sim: c.Sim, PPO: c.PPO, Classifier: c.Classifier}.WithDefaults()
}

// Validate reports the first invalid field (after defaults).
func (c OPEConfig) Validate() error {
	c.setDefaults()
	if err := c.learnConfig().Validate(); err != nil {
		return err
	}
	if err := c.OPE.Validate(); err != nil {
		return err
	}
	switch {
	case len(c.Snapshots) == 0:
		return errors.New("snapshots: need at least one")
	case c.Snapshots[0] < 0 || !slices.IsSorted(c.Snapshots) || len(slices.Compact(slices.Clone(c.Snapshots))) != len(c.Snapshots):
		return fmt.Errorf("snapshots %v: want distinct non-negative update counts in increasing order", c.Snapshots)
	case c.Snapshots[len(c.Snapshots)-1] > 1_000_000:
		return fmt.Errorf("snapshots %v: at most 1000000 updates", c.Snapshots)
	case !(c.Epsilon > 0 && c.Epsilon <= 1):
		return fmt.Errorf("epsilon %v not in (0, 1]", c.Epsilon)
	case c.Journeys < 2 || c.TruthEpisodes < 2:
		return errors.New("journeys and truth episodes must be at least 2")
	case c.Seeds < 1:
		return fmt.Errorf("seeds %d: must be at least 1", c.Seeds)
	case c.FirstSeed+uint64(c.Seeds)-1 > sim.MaxTrainingSeed:
		return fmt.Errorf("seeds %d…%d overlap the held-out evaluation seeds", c.FirstSeed, c.FirstSeed+uint64(c.Seeds)-1)
	case c.Workers < 1:
		return fmt.Errorf("workers %d: must be at least 1", c.Workers)
	}
	return nil
}

// OPECell is one target on one segment of one seed: the estimates beside
// the on-policy value.
type OPECell struct {
	// Seed is the seed; Target names the policy; Segment is SegmentAll,
	// SegmentCrisis or SegmentRegular (true segments).
	Seed    uint64
	Target  string
	Segment string
	// Journeys is the number of logged journeys of the segment; ESS their
	// effective sample size under the target's weights.
	Journeys int
	ESS      float64
	// Logged is the segment's mean logged return (μ's observed value).
	Logged float64
	// Truth is the target's mean return on the held-out journeys of the
	// segment; TruthCI the half-width of its 95% interval; TruthEpisodes
	// their number.
	Truth, TruthCI float64
	TruthEpisodes  int
	// Estimates are the estimators' values and intervals.
	Estimates []ope.Estimate
}

// Covered reports whether estimate e's interval holds the truth.
func (c *OPECell) Covered(e ope.Estimate) bool { return e.Lo <= c.Truth && c.Truth <= e.Hi }

// OPESeed is what one seed ran: its targets' reports and the logging.
type OPESeed struct {
	// Seed is the seed.
	Seed uint64
	// Counts are the collector's figures of the logged journeys.
	Counts ope.Counts
	// Reports are the targets' reports, in target order.
	Reports []ope.Report
	// Elapsed is the seed's wall time.
	Elapsed time.Duration
}

// OPEResult is the outcome of the OPE experiment.
type OPEResult struct {
	// Config is the configuration run, defaults filled in.
	Config OPEConfig
	// Seeds are the seeds' runs, in seed order.
	Seeds []OPESeed
	// Cells are every (seed, target, segment), in that order.
	Cells []OPECell
	// Elapsed is the wall time of the experiment.
	Elapsed time.Duration
}

// ExecuteOPE runs the OPE experiment, Workers seeds at a time. Each seed
// is deterministic whatever the scheduling. Cancelling ctx stops the
// training at the next update and returns ctx's error.
func ExecuteOPE(ctx context.Context, cfg OPEConfig) (OPEResult, error) {
	if err := prepare(&cfg, "experiment ope"); err != nil {
		return OPEResult{}, err
	}
	start := time.Now()
	res := OPEResult{Config: cfg, Seeds: make([]OPESeed, cfg.Seeds)}
	cells := make([][]OPECell, cfg.Seeds)
	var mu sync.Mutex
	done := 0
	err := forSeeds(ctx, cfg.Workers, cfg.FirstSeed, cfg.Seeds, 1, func(ctx context.Context, i int, seed uint64, _ int) error {
		s, c, err := runOPESeed(ctx, cfg, seed)
		if err != nil {
			return err
		}
		res.Seeds[i], cells[i] = s, c
		mu.Lock()
		done++
		fmt.Fprintf(cfg.Progress, "[%3.0fs] %d/%d seed %d: %d targets on %d logged journeys in %.1fs\n",
			time.Since(start).Seconds(), done, cfg.Seeds, seed, len(s.Reports), s.Counts.Journeys, s.Elapsed.Seconds())
		mu.Unlock()
		return nil
	})
	if err != nil {
		return res, err
	}
	for _, c := range cells {
		res.Cells = append(res.Cells, c...)
	}
	res.Elapsed = time.Since(start)
	return res, nil
}

// opeTarget is one policy to estimate: as the estimators read it and as
// the simulator runs it.
type opeTarget struct {
	ope.Target
	run sim.Policy
}

// runOPESeed trains the seed's snapshots, logs journeys under μ and
// estimates every target.
func runOPESeed(ctx context.Context, cfg OPEConfig, seed uint64) (OPESeed, []OPECell, error) {
	start := time.Now()
	snaps, err := trainSnapshots(ctx, cfg, seed)
	if err != nil {
		return OPESeed{}, nil, err
	}
	defer func() {
		for _, s := range snaps {
			s.agent.Close()
		}
	}()
	nA := cfg.Sim.NumActions()
	mu := EpsilonMix{Base: snaps[0].pol, Epsilon: cfg.Epsilon, N: nA}
	targets := []opeTarget{{Target: ope.Target{Name: fmt.Sprintf("logging (%.2f-uniform mix of snapshot %d)", cfg.Epsilon, snaps[0].updates),
		Policy: ope.ProbPolicy{P: mu, N: nA}}, run: mu}}
	for _, s := range snaps {
		targets = append(targets, opeTarget{Target: ope.Target{Name: fmt.Sprintf("snapshot %d", s.updates), Policy: s.pol, Value: s.agent.Value}, run: s.pol})
	}
	uni := sim.Uniform{N: nA}
	targets = append(targets, opeTarget{Target: ope.Target{Name: "uniform", Policy: ope.ProbPolicy{P: uni, N: nA}}, run: uni})

	js, counts, err := LogJourneys(cfg.Sim, cfg.Classifier, mu, cfg.Journeys, seed)
	if err != nil {
		return OPESeed{}, nil, err
	}
	out := OPESeed{Seed: seed, Counts: counts}
	var cells []OPECell
	oc := cfg.OPE
	oc.Seed = seed
	for _, t := range targets {
		if err := ctx.Err(); err != nil {
			return OPESeed{}, nil, err
		}
		rep, err := ope.Evaluate(t.Target, js, oc)
		if err != nil {
			return OPESeed{}, nil, fmt.Errorf("experiment ope: seed %d, %s: %w", seed, t.Name, err)
		}
		truth, err := sim.Evaluate(cfg.Sim, t.run, cfg.TruthEpisodes, sim.HeldOutSeed(seed))
		if err != nil {
			return OPESeed{}, nil, fmt.Errorf("experiment ope: seed %d, %s: %w", seed, t.Name, err)
		}
		out.Reports = append(out.Reports, rep)
		cells = append(cells, cellsOf(seed, &rep, truth)...)
	}
	out.Elapsed = time.Since(start)
	return out, cells, nil
}

// cellsOf pairs a report's segments with the held-out truth.
func cellsOf(seed uint64, rep *ope.Report, truth sim.EvalReport) []OPECell {
	var out []OPECell
	for _, s := range opeSegments {
		seg, ok := rep.Segment(s.report)
		if !ok {
			continue
		}
		c := OPECell{Seed: seed, Target: rep.Target, Segment: s.cell, Journeys: seg.Journeys, ESS: seg.ESS,
			Logged: seg.Logged.Value, Estimates: seg.Estimates}
		switch s.cell {
		case SegmentAll:
			c.Truth, c.TruthCI, c.TruthEpisodes = truth.ValuePerUser, truth.ValuePerUserCI, truth.Episodes
		case SegmentCrisis:
			c.Truth, c.TruthCI, c.TruthEpisodes = truth.Crisis.MeanReturn, truth.Crisis.ReturnCI, truth.Crisis.Episodes
		default:
			c.Truth, c.TruthCI, c.TruthEpisodes = truth.Regular.MeanReturn, truth.Regular.ReturnCI, truth.Regular.Episodes
		}
		out = append(out, c)
	}
	return out
}

// snapshot is a frozen copy of the learner at some update: its policy and
// its value head.
type snapshot struct {
	updates int
	pol     *ppo.Policy
	agent   *ppo.Agent
}

// trainSnapshots trains the learn role's core on the seed's uniformly
// logged stream (as an A/B experiment's importance-sampling arm) and
// freezes a copy of the agent after each of cfg.Snapshots updates.
func trainSnapshots(ctx context.Context, cfg OPEConfig, seed uint64) ([]snapshot, error) {
	a, err := newArm(cfg.learnConfig(), seed, false)
	if err != nil {
		return nil, err
	}
	defer a.tr.Agent().Close()
	stream, err := sim.New(cfg.Sim, seed, 0)
	if err != nil {
		return nil, fmt.Errorf("experiment ope: %w", err)
	}
	var out []snapshot
	take := func() error {
		for len(out) < len(cfg.Snapshots) && a.updates == cfg.Snapshots[len(out)] {
			s, err := freeze(a.tr.Agent(), a.updates, seed)
			if err != nil {
				return err
			}
			out = append(out, s)
		}
		return nil
	}
	stepErr := take()
	logging := sim.Uniform{N: cfg.Sim.NumActions()}
	for len(out) < len(cfg.Snapshots) && stepErr == nil {
		if err := ctx.Err(); err != nil {
			stepErr = err
			break
		}
		stream.RunEpisode(logging, func(tr *sim.Transition) {
			if stepErr != nil {
				return
			}
			a.insert(tr)
			for len(out) < len(cfg.Snapshots) && a.tr.Due() && stepErr == nil {
				if stepErr = a.update(); stepErr == nil {
					stepErr = take()
				}
			}
		})
	}
	if stepErr != nil {
		for _, s := range out {
			s.agent.Close()
		}
		return nil, stepErr
	}
	return out, nil
}

// freeze returns a copy of the agent (restored from its checkpoint), so
// that training on does not change it.
func freeze(agent *ppo.Agent, updates int, seed uint64) (snapshot, error) {
	data, err := agent.MarshalCheckpoint()
	if err != nil {
		return snapshot{}, fmt.Errorf("experiment ope: snapshot %d: %w", updates, err)
	}
	cp, err := ppo.Restore(data, rand.New(rand.NewPCG(seed, uint64(updates))))
	if err != nil {
		return snapshot{}, fmt.Errorf("experiment ope: snapshot %d: %w", updates, err)
	}
	return snapshot{updates: updates, pol: cp.Snapshot(), agent: cp}, nil
}

// EpsilonMix is the policy (1 − Epsilon)·Base + Epsilon·uniform over N
// actions: Base with exploration, every action at least Epsilon/N.
type EpsilonMix struct {
	Base    sim.Policy
	Epsilon float64
	N       int
}

// ActionProbs writes the mixture's probabilities into dst.
func (m EpsilonMix) ActionProbs(obs, dst []float64) {
	m.Base.ActionProbs(obs, dst)
	u := m.Epsilon / float64(m.N)
	for i, p := range dst {
		dst[i] = (1-m.Epsilon)*p + u
	}
}

// LogJourneys logs n journeys of policy mu on stream 1 of seed, each step
// converted as the simulate role publishes it (producers.FillExperience),
// tagged as the aggregator tags it (classify with cfg, consumers.
// ApplyDecision) and read back as an off-policy record (ope.RecordOf) with
// μ's full distribution, and returns the complete journeys assembled by an
// ope.Collector.
func LogJourneys(sc sim.Config, cc classify.Config, mu sim.Policy, n int, seed uint64) ([]ope.Journey, ope.Counts, error) {
	l, err := NewJourneyLogger(sc, cc, mu, seed)
	if err != nil {
		return nil, ope.Counts{}, err
	}
	js, counts := l.Next(n)
	return js, counts, nil
}

// JourneyLogger logs journeys of a policy as LogJourneys does, its stream
// going on from one Next to the next (the first Next's journeys are
// LogJourneys's).
type JourneyLogger struct {
	stream *sim.Sim
	cls    *classify.Classifier
	mu     sim.Policy
	nA     int
	dim    int
}

// NewJourneyLogger logs journeys of mu on stream 1 of seed.
func NewJourneyLogger(sc sim.Config, cc classify.Config, mu sim.Policy, seed uint64) (*JourneyLogger, error) {
	stream, err := sim.New(sc, seed, 1)
	if err != nil {
		return nil, fmt.Errorf("experiment ope: %w", err)
	}
	cls, err := classify.New(cc)
	if err != nil {
		return nil, fmt.Errorf("experiment ope: %w", err)
	}
	return &JourneyLogger{stream: stream, cls: cls, mu: mu, nA: sc.NumActions(), dim: sc.StateDim}, nil
}

// Next logs the next n journeys and returns the complete ones with the
// collector's counts.
func (l *JourneyLogger) Next(n int) ([]ope.Journey, ope.Counts) {
	dst := ope.NewJourneys(n)
	col := ope.NewCollector(ope.CollectorConfig{NumActions: l.nA, StateDim: l.dim}, dst)
	var te schemas.TaggedExperience
	probs := make([]float64, l.nA)
	for range n {
		l.stream.RunEpisode(l.mu, func(tr *sim.Transition) {
			producers.FillExperience(&te.Experience, tr, "", -1, time.Time{})
			consumers.ApplyDecision(&te, l.cls.Classify(tr.Metadata, tr.Value), time.Time{})
			rec := ope.RecordOf(&te)
			l.mu.ActionProbs(tr.State, probs)
			rec.Probs = probs
			col.Add(&rec)
		})
	}
	return dst.Snapshot(), col.Counts()
}
