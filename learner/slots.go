package learner

import (
	"github.com/aelp/aelp/learner/ppo"
	"github.com/aelp/aelp/learner/replay"
	"github.com/aelp/aelp/producers/sim"
	"github.com/aelp/aelp/schemas"
	"github.com/prometheus/client_golang/prometheus"
)

// slotStore keeps the experience of every buffer slot in flat arrays
// indexed by the slot the replay buffer assigned (struct of arrays, no
// pointer per item), and the reusable batches.
type slotStore struct {
	dim      int
	obs      []float64 // slot·dim … slot·dim+dim
	next     []float64
	action   []int32
	logp     []float64
	reward   []float64
	done     []bool
	version  []int64
	produced []int64 // Experience.Timestamp, unix ns
	used     []bool  // drawn into a batch at least once

	batch replay.Batch[struct{}]
	pb    ppo.Batch
}

func newSlotStore(capacity, dim int) slotStore {
	return slotStore{
		dim:      dim,
		obs:      make([]float64, capacity*dim),
		next:     make([]float64, capacity*dim),
		action:   make([]int32, capacity),
		logp:     make([]float64, capacity),
		reward:   make([]float64, capacity),
		done:     make([]bool, capacity),
		version:  make([]int64, capacity),
		produced: make([]int64, capacity),
		used:     make([]bool, capacity),
	}
}

func (s *slotStore) obsOf(slot int) []float64 { return s.obs[slot*s.dim : (slot+1)*s.dim] }

// put writes te into slot (the widths were validated on decode).
func (s *slotStore) put(slot int, te *schemas.TaggedExperience) {
	o, n := s.obs[slot*s.dim:(slot+1)*s.dim], s.next[slot*s.dim:(slot+1)*s.dim]
	for i := range o {
		o[i] = float64(te.State[i])
		n[i] = float64(te.NextState[i])
	}
	s.action[slot] = te.Action
	s.logp[slot] = te.BehaviorLogProb
	s.reward[slot] = te.Reward
	s.done[slot] = te.Done
	s.version[slot] = te.PolicyVersion
	s.produced[slot] = te.Timestamp.UnixNano()
	s.used[slot] = false
}

// fill copies the sampled slots into the PPO batch with their IS weights,
// and records the produce-to-first-use latency of slots drawn for the
// first time.
func (s *slotStore) fill(b *replay.Batch[struct{}], nowNanos int64, firstUse prometheus.Observer) *ppo.Batch {
	pb := &s.pb
	pb.Reset()
	for j, slot := range b.Indices {
		pb.Append(s.obsOf(slot), s.next[slot*s.dim:(slot+1)*s.dim], int(s.action[slot]), s.logp[slot],
			s.reward[slot], b.Weights[j], s.done[slot], s.version[slot])
		if !s.used[slot] {
			s.used[slot] = true
			if firstUse != nil && s.produced[slot] > 0 {
				firstUse.Observe(float64(nowNanos-s.produced[slot]) / 1e9)
			}
		}
	}
	return pb
}

// episodeTracker sums rewards per episode as the behaviour policy's
// records arrive, to report the mean return per true segment. Journeys are
// keyed by user, so one episode's records arrive in order from one
// partition.
type episodeTracker struct {
	open map[string]float64
	// sums and counts per segment, [0] regular, [1] crisis, since the last
	// take.
	sum   [2]float64
	count [2]int64
}

// maxOpenEpisodes bounds the tracker's memory: past it, open episodes are
// forgotten (their records were lost or belong to another reader).
const maxOpenEpisodes = 200_000

func newEpisodeTracker() episodeTracker { return episodeTracker{open: map[string]float64{}} }

func (e *episodeTracker) observe(te *schemas.TaggedExperience) {
	truth, ok := te.Metadata[groundTruthKey]
	if !ok {
		return
	}
	r := e.open[te.EpisodeID] + te.Reward
	if !te.Done {
		if len(e.open) >= maxOpenEpisodes {
			clear(e.open)
		}
		e.open[te.EpisodeID] = r
		return
	}
	delete(e.open, te.EpisodeID)
	seg := 0
	if truth == schemas.EventCrisis.String() {
		seg = 1
	}
	e.sum[seg] += r
	e.count[seg]++
}

// take returns the mean return per segment since the last take (ok false
// for a segment with no finished episode) and starts a new window.
func (e *episodeTracker) take() (mean [2]float64, ok [2]bool) {
	for i := range mean {
		if e.count[i] > 0 {
			mean[i], ok[i] = e.sum[i]/float64(e.count[i]), true
		}
	}
	e.sum, e.count = [2]float64{}, [2]int64{}
	return mean, ok
}

// groundTruthKey is the metadata key the simulator writes the true segment
// under; the learner reads it only to report accuracy and returns.
const groundTruthKey = sim.KeyTrueSegment

// tagAccuracy counts the aggregator's crisis tags against ground truth.
type tagAccuracy struct{ tp, fp, fn int64 }

func (t *tagAccuracy) observe(te *schemas.TaggedExperience) {
	truth, ok := te.Metadata[groundTruthKey]
	if !ok {
		return
	}
	isCrisis := truth == schemas.EventCrisis.String()
	tagged := te.EventType == schemas.EventCrisis
	switch {
	case tagged && isCrisis:
		t.tp++
	case tagged:
		t.fp++
	case isCrisis:
		t.fn++
	}
}

// precisionRecall returns nil pointers while undefined.
func (t *tagAccuracy) precisionRecall() (p, r *float64) {
	if t.tp+t.fp > 0 {
		v := float64(t.tp) / float64(t.tp+t.fp)
		p = &v
	}
	if t.tp+t.fn > 0 {
		v := float64(t.tp) / float64(t.tp+t.fn)
		r = &v
	}
	return p, r
}

// windowCounters count ingest and samples between two metrics records.
type windowCounters struct {
	ingested, sampled int64
	start             int64 // unix ns
}
