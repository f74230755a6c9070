package train

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/aelp/aelp/consumers/classify"
	"github.com/aelp/aelp/internal/stats"
	"github.com/aelp/aelp/learner/ppo"
	"github.com/aelp/aelp/learner/replay"
	"github.com/aelp/aelp/schemas"
)

// Trainer owns a replay buffer, the experience of each of its slots and a
// PPO agent, and makes updates paced by its rate limiter. A caller inserts
// experiences (Insert, or Refill to reload a buffer) and makes an update
// when CanSample (or, with more data at hand, Due) says so.
type Trainer struct {
	cfg   Config
	tol   float64
	buf   *replay.Buffer[struct{}]
	agent *ppo.Agent
	slots slotStore

	updates, sampled, inserted int64
	duplicates                 int64
	held                       heldIDs
	last                       ppo.Stats
	batches                    BatchStats
	tags                       stats.Confusion
	tagging                    classify.Accuracy
	returns                    episodeTracker
	adapt                      *weightRule // nil unless Config.Adaptive.Enabled
}

// Counters are what a checkpoint keeps of a Trainer beside its agent: the
// rate limiter's counters and the β schedule's step.
type Counters struct {
	// Sampled and Inserted are the rate limiter's counters: samples drawn
	// and live experiences inserted (Refill does not count).
	Sampled, Inserted int64
	// BetaStep is the replay buffer's annealing step.
	BetaStep int64
	// Adaptive is the adaptive crisis weight's state: set by a Trainer
	// with Config.Adaptive on, nil otherwise. Resume restores it when
	// Config.Adaptive is on and ignores it when off; without it an
	// adaptive Trainer starts from Replay.CrisisWeight.
	Adaptive *AdaptiveState
}

// BatchStats summarise the batches of a Trainer's updates (those of this
// Trainer, not of a resumed checkpoint): each accumulator holds one value
// per update.
type BatchStats struct {
	// CrisisShare is the share of items tagged crisis in each batch;
	// ExpectedCrisisShare the crisis stratum's sampling probability ρ_c at
	// that update (replay.Stats.LastBatchCrisisRatio and
	// ExpectedBatchCrisisRatio).
	CrisisShare, ExpectedCrisisShare stats.Running
	// TrueCrisisShare is the share of truly crisis items among the items of
	// known ground truth of each batch; a batch without any is not counted.
	TrueCrisisShare stats.Running
	// WeightMean, WeightMin and WeightMax are the mean, smallest and
	// largest IS weight of each batch: WeightMin.Min() and WeightMax.Max()
	// are the extremes over every batch.
	WeightMean, WeightMin, WeightMax stats.Running
	// CrisisWeight is the crisis weight each batch was drawn with (constant
	// unless Config.Adaptive is on).
	CrisisWeight stats.Running
}

func (b *BatchStats) add(bs replay.Stats, known, crisis int) {
	b.CrisisShare.Add(bs.LastBatchCrisisRatio)
	b.ExpectedCrisisShare.Add(bs.ExpectedBatchCrisisRatio)
	if known > 0 {
		b.TrueCrisisShare.Add(float64(crisis) / float64(known))
	}
	b.WeightMean.Add(bs.WeightMean)
	b.WeightMin.Add(bs.WeightMin)
	b.WeightMax.Add(bs.WeightMax)
	b.CrisisWeight.Add(bs.CrisisWeight)
}

// Stats are a Trainer's figures so far.
type Stats struct {
	// Updates is the number of updates made, those of a resumed
	// checkpoint included.
	Updates int64
	// Inserted and Sampled are the rate limiter's counters (see Counters).
	Inserted, Sampled int64
	// Buffer are the replay buffer's current figures and those of its last
	// batch.
	Buffer replay.Stats
	// Last is the last update's PPO figures.
	Last ppo.Stats
	// Batches summarise the batches of this Trainer's updates.
	Batches BatchStats
	// Tags count the crisis tags of the inserted experiences of known
	// ground truth against it (crisis the positive class).
	Tags stats.Confusion
	// Duplicates is the number of experiences Insert and Refill dropped
	// because the buffer already held their id.
	Duplicates int64
	// CrisisWeight is the crisis weight the next batch will be drawn with
	// (Buffer.CrisisWeight); AdaptiveSignal is the adaptive rule's signal
	// √(e_c/e_r), the smoothed ratio of the crisis and regular strata's
	// root-mean-square TD errors, 0 when Config.Adaptive is off or before
	// both strata have been drawn (a signal is positive).
	CrisisWeight, AdaptiveSignal float64
}

// Result is what one update returns.
type Result struct {
	// PPO is the agent's figures of the update.
	PPO ppo.Stats
	// Buffer are the buffer's figures after the batch was drawn.
	Buffer replay.Stats
	// FirstUse are the production times (Experience.Timestamp, unix ns) of
	// the batch's items drawn for the first time, those with a timestamp
	// only: the learn role's produce-to-first-use latency. The slice is
	// reused by the next Update.
	FirstUse []int64
}

// New validates cfg and returns a Trainer with an empty buffer and a fresh
// agent initialised from cfg.Seed.
func New(cfg Config) (*Trainer, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	agent, err := ppo.New(cfg.PPO, rand.New(rand.NewPCG(cfg.Seed, agentStream)))
	if err != nil {
		return nil, err
	}
	return newTrainer(cfg, agent)
}

// Resume validates cfg and returns a Trainer with an empty buffer (Refill
// it) whose agent is restored from agentState (ppo.Agent.MarshalCheckpoint
// output) and whose counters are c. The restored agent keeps the PPO
// settings of its checkpoint (its learning rate and schedule among them),
// except Workers, which is cfg.PPO.Workers (this process's choice); its
// network must be cfg.PPO.ObsDim × cfg.PPO.NumActions. With
// cfg.Adaptive on and c.Adaptive set, the adaptive rule goes on from
// c.Adaptive: its averages and signal, and its weight for the next batch
// (clamped to cfg.Adaptive.MaxWeight if that is now lower).
func Resume(cfg Config, agentState []byte, c Counters) (*Trainer, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if c.Sampled < 0 || c.Inserted < 0 || c.BetaStep < 0 {
		return nil, fmt.Errorf("counters %+v: must not be negative", c)
	}
	agent, err := ppo.Restore(agentState, rand.New(rand.NewPCG(cfg.Seed, agentStream)))
	if err != nil {
		return nil, err
	}
	if err := agent.SetWorkers(cfg.PPO.Workers); err != nil {
		return nil, err
	}
	if ac := agent.Config(); ac.ObsDim != cfg.PPO.ObsDim || ac.NumActions != cfg.PPO.NumActions {
		return nil, fmt.Errorf("restored network is %d×%d, want %d×%d", ac.ObsDim, ac.NumActions, cfg.PPO.ObsDim, cfg.PPO.NumActions)
	}
	t, err := newTrainer(cfg, agent)
	if err != nil {
		return nil, err
	}
	t.sampled, t.inserted, t.updates = c.Sampled, c.Inserted, agent.Updates()
	t.buf.SetStep(c.BetaStep)
	if t.adapt != nil && c.Adaptive != nil {
		if err := c.Adaptive.Validate(); err != nil {
			return nil, err
		}
		t.adapt.restore(*c.Adaptive)
		if err := t.buf.SetCrisisWeight(min(c.Adaptive.Weight, cfg.Adaptive.MaxWeight)); err != nil {
			return nil, err // unreachable: Validate and MaxWeight ≥ 1 make it ≥ 1
		}
	}
	return t, nil
}

func newTrainer(cfg Config, agent *ppo.Agent) (*Trainer, error) {
	buf, err := replay.New[struct{}](cfg.Replay, rand.New(rand.NewPCG(cfg.Seed, bufferStream)))
	if err != nil {
		return nil, err
	}
	t := &Trainer{
		cfg: cfg, tol: cfg.Tolerance(), buf: buf, agent: agent,
		slots:   newSlotStore(cfg.Replay.Capacity, cfg.PPO.ObsDim),
		held:    newHeldIDs(cfg.Replay.Capacity),
		returns: newEpisodeTracker(),
	}
	if cfg.Adaptive.Enabled {
		t.adapt = newWeightRule(cfg)
	}
	return t, nil
}

// Config returns the Trainer's configuration, defaults filled in.
func (t *Trainer) Config() Config { return t.cfg }

// Agent returns the PPO agent (for snapshots and checkpoints; do not
// update it behind the Trainer's back).
func (t *Trainer) Agent() *ppo.Agent { return t.agent }

// Len returns the number of experiences in the buffer.
func (t *Trainer) Len() int { return t.buf.Len() }

// Insert adds one live experience, tagged crisis when te.EventType is
// EventCrisis: it is stored in the buffer (evicting the oldest when full),
// feeds the agent's observation normaliser and counts as inserted for the
// rate limiter; when te.Metadata holds the ground truth
// (Config.GroundTruthKey), it also feeds the tag accuracy and the
// per-segment returns. te must have states of width PPO.ObsDim (validated
// records do; another width panics). Insert keeps no reference to te.
//
// An experience whose (non-empty) id the buffer already holds is dropped
// and counted in Stats.Duplicates, so an at-least-once upstream (join,
// aggregator or producer retries) never weights one experience twice;
// Insert then returns false.
func (t *Trainer) Insert(te *schemas.TaggedExperience) bool {
	if t.held.has(te.ID) {
		t.duplicates++
		return false
	}
	tr := t.truthOf(te)
	slot := t.store(te, tr)
	t.agent.ObserveObs(t.slots.obsOf(slot))
	if tr != truthUnknown {
		t.tags.Observe(te.EventType == schemas.EventCrisis, tr == truthCrisis)
		t.observeTagging(te, tr == truthCrisis)
		t.returns.observe(te.EpisodeID, te.Reward, te.Done, tr)
	}
	t.inserted++
	return true
}

// Refill adds an experience already seen by the agent (a restarted learn
// role reloading its buffer from the log): it is stored in the buffer
// only, without counting for the rate limiter, the normaliser, the tag
// accuracy or the returns. A duplicate id is dropped as by Insert.
func (t *Trainer) Refill(te *schemas.TaggedExperience) bool {
	if t.held.has(te.ID) {
		t.duplicates++
		return false
	}
	t.store(te, t.truthOf(te))
	return true
}

func (t *Trainer) store(te *schemas.TaggedExperience, tr truth) int {
	if d := t.slots.dim; len(te.State) != d || len(te.NextState) != d {
		panic(fmt.Sprintf("train: insert: state widths %d and %d, want %d", len(te.State), len(te.NextState), d))
	}
	crisis := te.EventType == schemas.EventCrisis
	f := 1.0
	if t.cfg.SoftPriority {
		f = softFactor(t.cfg.Replay, te.TagScore, crisis)
	}
	slot := t.buf.AddWithFactor(struct{}{}, crisis, f)
	t.held.put(slot, te.ID)
	t.slots.put(slot, te, tr)
	return slot
}

// softFactor is the buffer factor f that makes an item's priority
// w(tag)·f equal w_c·p + w_r·(1 − p) (Config.SoftPriority); a score that
// is not a number counts as the hard tag.
func softFactor(rc replay.Config, score float64, crisis bool) float64 {
	w := rc.RegularWeight
	if crisis {
		w = rc.CrisisWeight
	}
	if math.IsNaN(score) {
		return 1
	}
	p := min(max(score, 0), 1)
	return (rc.CrisisWeight*p + rc.RegularWeight*(1-p)) / w
}

// truthOf reads te's ground truth: crisis when the key holds the crisis
// symbol, regular when it holds anything else, unknown without the key.
func (t *Trainer) truthOf(te *schemas.TaggedExperience) truth {
	v, ok := te.Metadata[t.cfg.GroundTruthKey]
	switch {
	case !ok:
		return truthUnknown
	case v == schemas.EventCrisis.String():
		return truthCrisis
	default:
		return truthRegular
	}
}

// CanSample is the rate limiter's training side: the buffer holds
// MinBuffer items and drawing one more batch keeps
//
//	sampled + BatchSize ≤ SamplesPerInsert·inserted + tolerance.
func (t *Trainer) CanSample() bool {
	if t.buf.Len() < t.cfg.MinBuffer {
		return false
	}
	return float64(t.sampled+int64(t.cfg.BatchSize)) <= t.cfg.SamplesPerInsert*float64(t.inserted)+t.tol
}

// CanInsert is the rate limiter's insert side: the buffer is still warming
// up (fewer than MinBuffer items), or inserting one more item keeps
//
//	SamplesPerInsert·(inserted + 1) − sampled ≤ tolerance.
func (t *Trainer) CanInsert() bool {
	if t.buf.Len() < t.cfg.MinBuffer {
		return true
	}
	return t.cfg.SamplesPerInsert*float64(t.inserted+1)-float64(t.sampled) <= t.tol
}

// Due reports whether a caller that always has another experience at hand
// (a backlog, a simulator) should update before its next insert: CanSample
// and not CanInsert. It is the learn role's schedule on a topic it is
// behind on (insert while the rate limiter allows it, then train), so
// inserting one experience at a time and updating while Due trains as the
// learn role does on the same stream.
func (t *Trainer) Due() bool { return t.CanSample() && !t.CanInsert() }

// WantsMore reports whether a run that will get no more data (a bounded
// run at its end offsets) still has training to do: the rate limiter's
// budget, SamplesPerInsert·inserted − sampled > 0, or fewer than
// MinUpdates updates. A buffer smaller than MinBuffer is trained on too,
// since no more data will come; an empty one is not.
func (t *Trainer) WantsMore() bool {
	if t.buf.Len() == 0 {
		return false
	}
	budget := t.cfg.SamplesPerInsert*float64(t.inserted) - float64(t.sampled)
	return budget > 0 || t.updates < t.cfg.MinUpdates
}

// Update makes one update: it sets the buffer's β step to the number of
// updates so far, draws BatchSize samples, fills the PPO batch with them
// and their IS weights, and runs agent.Update on it; with Config.Adaptive
// on, it then sets the crisis weight of the next batch from the update's
// TD errors (see Adaptive; Result.Buffer is the state the batch was drawn
// in). It fails only when the buffer is empty. After warm-up it does not
// allocate.
func (t *Trainer) Update() (Result, error) {
	t.buf.SetStep(t.updates)
	if err := t.buf.Sample(&t.slots.batch, t.cfg.BatchSize); err != nil {
		return Result{}, fmt.Errorf("sample: %w", err)
	}
	pb, known, crisis := t.slots.fill()
	st := t.agent.Update(pb)
	t.updates++
	t.sampled += int64(t.cfg.BatchSize)
	bs := t.buf.Stats()
	t.batches.add(bs, known, crisis)
	t.last = st
	if t.adapt != nil {
		rows, td := t.agent.TDErrors()
		m, has := batchSignal(rows, td, t.slots.batch.Probs, t.slots.batch.Crisis)
		if w, ok := t.adapt.observe(m, has); ok {
			if err := t.buf.SetCrisisWeight(w); err != nil {
				panic(fmt.Sprintf("train: adaptive weight %v: %v", w, err)) // w ∈ [1, MaxWeight] by construction
			}
		}
	}
	return Result{PPO: st, Buffer: bs, FirstUse: t.slots.firstUse}, nil
}

// Stats returns the Trainer's figures so far.
func (t *Trainer) Stats() Stats {
	s := Stats{Updates: t.updates, Inserted: t.inserted, Sampled: t.sampled, Buffer: t.buf.Stats(),
		Last: t.last, Batches: t.batches, Tags: t.tags, Duplicates: t.duplicates,
		CrisisWeight: t.buf.CrisisWeight()}
	if t.adapt != nil {
		s.AdaptiveSignal = t.adapt.signal
	}
	return s
}

// Counters returns what a checkpoint keeps beside the agent (see Resume).
func (t *Trainer) Counters() Counters {
	c := Counters{Sampled: t.sampled, Inserted: t.inserted, BetaStep: t.buf.Step()}
	if t.adapt != nil {
		st := t.adapt.state(t.buf.CrisisWeight())
		c.Adaptive = &st
	}
	return c
}

// TakeReturns returns the returns of the episodes of known ground truth
// that ended since the last call (their last experience inserted), per
// true segment, and starts a new window.
func (t *Trainer) TakeReturns() Returns { return t.returns.take() }
