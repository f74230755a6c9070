package train

import (
	"github.com/aelp/aelp/learner/ppo"
	"github.com/aelp/aelp/learner/replay"
	"github.com/aelp/aelp/schemas"
)

// truth is an experience's ground truth, when it carries one.
type truth int8

const (
	truthUnknown truth = iota
	truthRegular
	truthCrisis
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
	produced []int64 // Experience.Timestamp, unix ns; 0 unknown
	truth    []truth
	used     []bool // drawn into a batch at least once

	batch    replay.Batch[struct{}]
	pb       ppo.Batch
	firstUse []int64
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
		truth:    make([]truth, capacity),
		used:     make([]bool, capacity),
	}
}

func (s *slotStore) obsOf(slot int) []float64  { return s.obs[slot*s.dim : (slot+1)*s.dim] }
func (s *slotStore) nextOf(slot int) []float64 { return s.next[slot*s.dim : (slot+1)*s.dim] }

// put writes te into slot; its states are s.dim wide (Trainer.store
// checks).
func (s *slotStore) put(slot int, te *schemas.TaggedExperience, tr truth) {
	o, n := s.obsOf(slot), s.nextOf(slot)
	for i := range o {
		o[i] = float64(te.State[i])
		n[i] = float64(te.NextState[i])
	}
	s.action[slot] = te.Action
	s.logp[slot] = te.BehaviorLogProb
	s.reward[slot] = te.Reward
	s.done[slot] = te.Done
	s.version[slot] = te.PolicyVersion
	s.produced[slot] = 0
	if !te.Timestamp.IsZero() {
		s.produced[slot] = te.Timestamp.UnixNano()
	}
	s.truth[slot] = tr
	s.used[slot] = false
}

// fill copies the sampled slots of s.batch into the PPO batch with their IS
// weights, collects in s.firstUse the production times of the slots drawn
// for the first time (those with a known time), and returns the PPO batch
// with the number of items of known ground truth and how many of them are
// truly crisis.
func (s *slotStore) fill() (pb *ppo.Batch, known, crisis int) {
	pb = &s.pb
	pb.Reset()
	s.firstUse = s.firstUse[:0]
	b := &s.batch
	for j, slot := range b.Indices {
		pb.Append(s.obsOf(slot), s.nextOf(slot), int(s.action[slot]), s.logp[slot],
			s.reward[slot], b.Weights[j], s.done[slot], s.version[slot])
		switch s.truth[slot] {
		case truthCrisis:
			known++
			crisis++
		case truthRegular:
			known++
		}
		if !s.used[slot] {
			s.used[slot] = true
			if s.produced[slot] > 0 {
				s.firstUse = append(s.firstUse, s.produced[slot])
			}
		}
	}
	return pb, known, crisis
}

// heldIDs is the set of the ids the buffer holds, one per slot: O(1)
// lookup, and O(1) update when a slot is overwritten (its old id leaves
// the set with the experience the buffer evicted). Empty ids are not kept.
// The caller puts only ids the set does not hold (Insert and Refill drop
// the others), so no two slots hold one id and a slot's old id leaves the
// set without a lookup of which slot holds it (the set's lookups were
// most of the learner's ingest time in the profile of aelp run).
type heldIDs struct {
	bySlot []string
	set    map[string]struct{}
}

func newHeldIDs(capacity int) heldIDs {
	return heldIDs{bySlot: make([]string, capacity), set: make(map[string]struct{}, capacity)}
}

func (h *heldIDs) has(id string) bool {
	_, ok := h.set[id]
	return ok
}

// put records that slot now holds id, which the set does not hold (or is
// empty), forgetting the slot's previous id.
func (h *heldIDs) put(slot int, id string) {
	if old := h.bySlot[slot]; old != "" {
		delete(h.set, old)
	}
	h.bySlot[slot] = id
	if id != "" {
		h.set[id] = struct{}{}
	}
}
