// Package replay is the learner's importance-weighted replay buffer: a ring
// of experiences, each a crisis-parent or a regular-parent event, sampled in
// proportion to a priority and returned with the importance-sampling (IS)
// weights that undo the sampling bias in the loss.
//
// Priority, probability and weight (DESIGN.md, "Importance-weighted replay
// buffer"):
//
//	p_i  = w(type_i)·f_i                      w(crisis) = CrisisWeight, w(regular) = RegularWeight,
//	                                          f_i a per-item factor (default 1, e.g. |TD error|)
//	q_i  = p_i^(α/T) = w(s)^(α/T)·g_i         g_i = f_i^(α/T) written once into the item's tree leaf
//	P(i) = q_i / Σ_k q_k                      (before the crisis floor)
//	w_i  = (N·P(i))^(−β) / max_j (N·P(j))^(−β) = (P_min / P(i))^β
//	β_t  = min(1, β0 + (1 − β0)·t/AnnealSteps)
//
// Each stratum s is its own sum tree + min tree over the factor parts g_i;
// the stratum's weight part w(s)^(α/T) multiplies its tree's sum and minimum
// at draw time, so the mass of stratum s is S_s = w(s)^(α/T)·Σ_{i∈s} g_i.
// SetCrisisWeight therefore changes one number, in O(1), and touches no
// tree node, and every probability and IS weight below follows the new
// weight exactly from the next draw on.
//
// Crisis floor: with S_c and S_r the crisis and regular strata's masses
// (Σ q over each), the crisis share is S_c/(S_c+S_r). When both strata are
// non-empty and this share is below MinCrisisRatio = m, the stratum
// probabilities become ρ_c = m and ρ_r = 1 − m, and
//
//	P(i) = ρ_s · q_i / S_s                    for item i in stratum s,
//
// so crisis items are scaled up and regular items down; P_min, and so every
// IS weight, uses these floored probabilities (the probabilities actually
// used). S_c, S_r and the minimum leaf of each stratum are read in O(1);
// Add, Sample (per draw) and UpdateFactors cost O(log N).
//
// Normalising by the buffer-wide maximum keeps weights in (0, 1] and only
// rescales the loss: at β = 1, mean_j(w_j·x_j)/(N·P_min) is an unbiased
// estimate of the uniform mean of any per-item statistic x.
//
// With a crisis fraction f of the buffer and all factors 1, the expected
// crisis share of a batch is ExpectedCrisisShare(f, w, α, T) =
// f·w^(α/T) / (f·w^(α/T) + 1 − f): 22.6% at f = 0.1, w = 5, α = 0.6, T = 1.
//
// The package knows nothing of Kafka, of the experience schema or of the
// learner: items are of any type T.
package replay

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
)

// ErrEmpty is returned by Sample when the buffer holds no items.
var ErrEmpty = errors.New("replay: sample from an empty buffer")

// Stratum indices into Buffer.trees and Buffer.counts.
const (
	regular = 0
	crisis  = 1
)

// Batch is a sample drawn by Buffer.Sample. All slices have the same length,
// the batch size; entry j describes draw j. The caller owns the Batch and
// reuses it across calls: Sample reuses the slices' backing arrays when their
// capacity suffices, so a warmed-up Batch makes Sample allocation-free.
type Batch[T any] struct {
	// Items are the sampled items (copies of the stored values of type T).
	Items []T
	// Weights are the IS weights w_j = (P_min / P(j))^β, in (0, 1].
	Weights []float64
	// Indices are the slots the items were drawn from, for UpdateFactors.
	Indices []int
	// Probs are the probabilities P(j) the items were drawn with (after the
	// crisis floor).
	Probs []float64
	// Crisis reports whether each item is a crisis item.
	Crisis []bool
}

// Len returns the number of draws in the batch.
func (b *Batch[T]) Len() int { return len(b.Indices) }

// Stats are the buffer's figures for metrics (DESIGN.md, "Metrics").
type Stats struct {
	// Size is the number of items held.
	Size int
	// Capacity is the configured capacity.
	Capacity int
	// CrisisCount is the number of crisis items held.
	CrisisCount int
	// CrisisFraction is CrisisCount/Size (0 when empty).
	CrisisFraction float64
	// LastBatchSize is the size of the last sampled batch (0 before the first Sample).
	LastBatchSize int
	// LastBatchCrisisRatio is the fraction of crisis items in the last batch.
	LastBatchCrisisRatio float64
	// ExpectedBatchCrisisRatio is the crisis stratum's sampling probability
	// ρ_c computed from the current tree masses after the floor; in uniform
	// mode it is CrisisFraction.
	ExpectedBatchCrisisRatio float64
	// FloorActive reports whether MinCrisisRatio currently raises the
	// crisis stratum's mass.
	FloorActive bool
	// WeightMean is the mean IS weight of the last batch.
	WeightMean float64
	// WeightStd is the population standard deviation (divisor n) of the IS
	// weights of the last batch.
	WeightStd float64
	// WeightMin is the smallest IS weight of the last batch.
	WeightMin float64
	// WeightMax is the largest IS weight of the last batch.
	WeightMax float64
	// Beta is the current IS exponent β.
	Beta float64
	// CrisisWeight is the current priority weight w(crisis) (see
	// SetCrisisWeight).
	CrisisWeight float64
}

// batchStats are the figures of the last batch kept for Stats.
type batchStats struct {
	n                 int
	crisisRatio       float64
	mean, std, lo, hi float64
}

// Buffer is a fixed-capacity ring of items of type T sampled by priority.
// An item is addressed by its slot index in [0, Len()); slots fill in order
// 0, 1, …, Capacity−1 and then wrap, the new item replacing the oldest.
//
// An index returned by Add or Sample names a slot, not an item. A slot is
// overwritten by the Add that evicts its item (in a full buffer, the item
// added Capacity adds earlier) and emptied by Reset; if that happens between
// Sample and UpdateFactors, UpdateFactors changes the new occupant's factor
// (or panics if the slot is no longer live). That is the caller's concern:
// update before adding Capacity more items, or accept that one item's
// priority is set from another's statistic.
//
// A Buffer is not safe for concurrent use; guard it with a mutex when an
// ingest goroutine and a training goroutine share it.
type Buffer[T any] struct {
	cfg Config
	rng *rand.Rand
	exp float64    // α/T
	qw  [2]float64 // w(s)^(α/T), the weight part of stratum s's priorities

	items   []T
	crisis  []bool
	factors []float64
	trees   [2]sumMinTree
	counts  [2]int
	size    int // items held
	next    int // slot the next Add writes

	step int64
	beta float64
	last batchStats
}

// New returns an empty buffer configured by cfg that draws its randomness
// from rng. It returns an error if cfg is invalid or rng is nil.
func New[T any](cfg Config, rng *rand.Rand) (*Buffer[T], error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if rng == nil {
		return nil, errors.New("replay: nil random source")
	}
	b := &Buffer[T]{
		cfg:     cfg,
		rng:     rng,
		exp:     cfg.Alpha / cfg.Temperature,
		items:   make([]T, cfg.Capacity),
		crisis:  make([]bool, cfg.Capacity),
		factors: make([]float64, cfg.Capacity),
		trees:   [2]sumMinTree{newSumMinTree(cfg.Capacity), newSumMinTree(cfg.Capacity)},
	}
	b.qw[regular] = math.Pow(cfg.RegularWeight, b.exp)
	b.qw[crisis] = math.Pow(cfg.CrisisWeight, b.exp)
	b.SetStep(0)
	return b, nil
}

// Config returns the buffer's configuration, CrisisWeight the current one
// (see SetCrisisWeight).
func (b *Buffer[T]) Config() Config { return b.cfg }

// CrisisWeight returns the current priority weight w(crisis).
func (b *Buffer[T]) CrisisWeight() float64 { return b.cfg.CrisisWeight }

// SetCrisisWeight sets the priority weight w(crisis) of every crisis item,
// held and future: from the next draw on, P(i) and the IS weights are those
// of the new weight, exactly. It costs O(1): the trees hold the factor
// parts f_i^(α/T) only, and the weight part w^(α/T) multiplies a stratum's
// sum and minimum at draw time, so no leaf or node is rewritten. It
// returns an error, and changes nothing, unless w is finite and positive.
func (b *Buffer[T]) SetCrisisWeight(w float64) error {
	if math.IsNaN(w) || math.IsInf(w, 0) || w <= 0 {
		return fmt.Errorf("replay: crisis weight %v must be finite and positive", w)
	}
	b.cfg.CrisisWeight = w
	b.qw[crisis] = math.Pow(w, b.exp)
	return nil
}

// Len returns the number of items held.
func (b *Buffer[T]) Len() int { return b.size }

// Cap returns the capacity.
func (b *Buffer[T]) Cap() int { return b.cfg.Capacity }

// Get returns the item in slot i. It panics if i is not in [0, Len()).
func (b *Buffer[T]) Get(i int) T {
	b.check(i)
	return b.items[i]
}

// IsCrisis reports whether the item in slot i is a crisis item. It panics if
// i is not in [0, Len()).
func (b *Buffer[T]) IsCrisis(i int) bool {
	b.check(i)
	return b.crisis[i]
}

// Factor returns the per-item factor f_i of slot i (after the MinFactor
// clamp). It panics if i is not in [0, Len()).
func (b *Buffer[T]) Factor(i int) float64 {
	b.check(i)
	return b.factors[i]
}

// check panics if i is not a live slot.
func (b *Buffer[T]) check(i int) {
	if i < 0 || i >= b.size {
		panic(fmt.Sprintf("replay: index %d out of range [0, %d)", i, b.size))
	}
}

// stratum returns the stratum index of a crisis flag.
func stratum(isCrisis bool) int {
	if isCrisis {
		return crisis
	}
	return regular
}

// leafValue returns g = f^(α/T), the value written to the leaf; the item's
// q is w(s)^(α/T)·g. The exponent is applied to f here and nowhere else,
// once per write (and to w once per weight, in New and SetCrisisWeight).
func (b *Buffer[T]) leafValue(f float64) float64 {
	if f == 1 {
		return 1
	}
	return math.Pow(f, b.exp)
}

// mass returns S_s = w(s)^(α/T)·Σ_{i∈s} g_i, stratum s's unfloored mass.
func (b *Buffer[T]) mass(s int) float64 { return b.qw[s] * b.trees[s].total() }

// clampFactor validates a factor and raises it to MinFactor. It panics on
// NaN, ±Inf or a negative factor: those are programmer errors (a priority is
// a magnitude).
func (b *Buffer[T]) clampFactor(f float64, i int) float64 {
	if math.IsNaN(f) || math.IsInf(f, 0) || f < 0 {
		panic(fmt.Sprintf("replay: factor %v for index %d is not a finite non-negative number", f, i))
	}
	return math.Max(f, b.cfg.MinFactor)
}

// Add stores item with factor f = 1 and returns its slot index; when the
// buffer is full the oldest item is evicted. Cost O(log N).
func (b *Buffer[T]) Add(item T, isCrisis bool) int {
	return b.AddWithFactor(item, isCrisis, 1)
}

// AddWithFactor stores item with per-item factor f, so p = w(type)·f, and
// returns its slot index; when the buffer is full the oldest item is
// evicted. Factors below MinFactor (including 0) are raised to it. It panics
// if f is NaN, infinite or negative. Cost O(log N).
func (b *Buffer[T]) AddWithFactor(item T, isCrisis bool, f float64) int {
	i := b.next
	f = b.clampFactor(f, i)
	s := stratum(isCrisis)
	if b.size == b.cfg.Capacity { // evict the oldest, which lives in slot i
		old := stratum(b.crisis[i])
		b.counts[old]--
		if old != s {
			b.trees[old].clear(i)
		}
	} else {
		b.size++
	}
	b.items[i] = item
	b.crisis[i] = isCrisis
	b.factors[i] = f
	b.trees[s].set(i, b.leafValue(f))
	b.counts[s]++
	b.next++
	if b.next == b.cfg.Capacity {
		b.next = 0
	}
	return i
}

// UpdateFactors sets f_i = factors[k] for slot i = indices[k], rewriting the
// leaf q_i = (w(type_i)·f_i)^(α/T). Factors below MinFactor are raised to
// it. It panics if the lengths differ, an index is not in [0, Len()), or a
// factor is NaN, infinite or negative. An index names a slot: see Buffer for
// what happens when the slot was refilled since it was sampled. Cost
// O(log N) per index.
func (b *Buffer[T]) UpdateFactors(indices []int, factors []float64) {
	if len(indices) != len(factors) {
		panic(fmt.Sprintf("replay: %d indices but %d factors", len(indices), len(factors)))
	}
	for k, i := range indices {
		b.check(i)
		f := b.clampFactor(factors[k], i)
		s := stratum(b.crisis[i])
		b.factors[i] = f
		b.trees[s].set(i, b.leafValue(f))
	}
}

// SetStep sets the annealing step t (negative t counts as 0) and with it
// β_t = min(1, β0 + (1 − β0)·t/AnnealSteps).
func (b *Buffer[T]) SetStep(t int64) {
	if t < 0 {
		t = 0
	}
	b.step = t
	b.beta = math.Min(1, b.cfg.Beta0+(1-b.cfg.Beta0)*float64(t)/float64(b.cfg.AnnealSteps))
}

// Step returns the annealing step set by SetStep.
func (b *Buffer[T]) Step() int64 { return b.step }

// Beta returns the current IS exponent β_t, in [β0, 1].
func (b *Buffer[T]) Beta() float64 { return b.beta }

// strata returns the stratum probabilities ρ_c, ρ_r and whether the floor is
// active. Without the floor ρ_c = S_c/(S_c+S_r); with it ρ_c = MinCrisisRatio.
// An empty stratum has probability 0.
func (b *Buffer[T]) strata() (rhoC, rhoR float64, floored bool) {
	switch {
	case b.counts[crisis] == 0:
		return 0, 1, false
	case b.counts[regular] == 0:
		return 1, 0, false
	}
	sc, sr := b.mass(crisis), b.mass(regular)
	share := sc / (sc + sr)
	if m := b.cfg.MinCrisisRatio; share < m {
		return m, 1 - m, true
	}
	return share, sr / (sc + sr), false
}

// probOf returns P of a leaf value g in stratum s given the strata state,
// with q = w(s)^(α/T)·g. Unfloored: q/(S_c+S_r). Floored: ρ_s·q/S_s =
// ρ_s·g/Σ_{i∈s} g_i (the weight part cancels). Both are monotone in g
// within a stratum, so the minimum leaves give P_min exactly and every
// weight is ≤ 1.
func (b *Buffer[T]) probOf(s int, g, rhoC, rhoR float64, floored bool) float64 {
	if !floored {
		return b.qw[s] * g / (b.mass(crisis) + b.mass(regular))
	}
	if s == crisis {
		return rhoC * g / b.trees[crisis].total()
	}
	return rhoR * g / b.trees[regular].total()
}

// minProb returns P_min = min_j P(j) over the whole buffer (after the floor).
func (b *Buffer[T]) minProb(rhoC, rhoR float64, floored bool) float64 {
	if !floored {
		q := math.Min(b.qw[crisis]*b.trees[crisis].minimum(), b.qw[regular]*b.trees[regular].minimum())
		return q / (b.mass(crisis) + b.mass(regular))
	}
	return math.Min(
		b.probOf(crisis, b.trees[crisis].minimum(), rhoC, rhoR, true),
		b.probOf(regular, b.trees[regular].minimum(), rhoC, rhoR, true))
}

// Prob returns the probability P(i) with which one draw picks slot i, after
// the crisis floor; 1/N in uniform mode. It panics if i is not in [0, Len()).
func (b *Buffer[T]) Prob(i int) float64 {
	b.check(i)
	if b.cfg.Uniform {
		return 1 / float64(b.size)
	}
	s := stratum(b.crisis[i])
	rhoC, rhoR, floored := b.strata()
	return b.probOf(s, b.trees[s].leaf(i), rhoC, rhoR, floored)
}

// Weight returns the IS weight slot i would get if drawn now,
// w_i = (P_min/P(i))^β; 1 in uniform mode. It panics if i is not in
// [0, Len()).
func (b *Buffer[T]) Weight(i int) float64 {
	b.check(i)
	if b.cfg.Uniform {
		return 1
	}
	rhoC, rhoR, floored := b.strata()
	s := stratum(b.crisis[i])
	p := b.probOf(s, b.trees[s].leaf(i), rhoC, rhoR, floored)
	return math.Pow(b.minProb(rhoC, rhoR, floored)/p, b.beta)
}

// Sample draws n items with replacement into dst, resizing its slices to n.
// The draws are stratified over the total (floored) mass: [0, 1) is split
// into n equal segments and one point u_j is drawn uniformly in each; u_j
// falls in the crisis stratum when u_j < ρ_c and is then located in that
// stratum's sum tree (and likewise for the regular stratum), so the
// batch's crisis count is within one of n·ρ_c and the batch has lower
// variance than n independent draws. The batch is then shuffled: each entry
// is drawn from a uniformly random segment, so its marginal probability is
// P(i), and any prefix of the batch is a uniformly random subset of the
// draws. Weights use the current β (see SetStep).
//
// Sample returns ErrEmpty if the buffer is empty and panics if n < 1. It
// does not allocate once dst's slices have capacity n. Cost O(n log N).
func (b *Buffer[T]) Sample(dst *Batch[T], n int) error {
	if n < 1 {
		panic(fmt.Sprintf("replay: batch size %d must be at least 1", n))
	}
	if b.size == 0 {
		return ErrEmpty
	}
	dst.Items = resize(dst.Items, n)
	dst.Weights = resize(dst.Weights, n)
	dst.Indices = resize(dst.Indices, n)
	dst.Probs = resize(dst.Probs, n)
	dst.Crisis = resize(dst.Crisis, n)

	if b.cfg.Uniform {
		b.sampleUniform(dst, n)
	} else {
		b.samplePrioritized(dst, n)
	}
	// Fisher–Yates over the parallel slices.
	for j := n - 1; j > 0; j-- {
		k := b.rng.IntN(j + 1)
		dst.Items[j], dst.Items[k] = dst.Items[k], dst.Items[j]
		dst.Weights[j], dst.Weights[k] = dst.Weights[k], dst.Weights[j]
		dst.Indices[j], dst.Indices[k] = dst.Indices[k], dst.Indices[j]
		dst.Probs[j], dst.Probs[k] = dst.Probs[k], dst.Probs[j]
		dst.Crisis[j], dst.Crisis[k] = dst.Crisis[k], dst.Crisis[j]
	}
	b.recordBatch(dst)
	return nil
}

// segment returns u_j, a uniform point in the j-th of n equal segments of [0, 1).
func (b *Buffer[T]) segment(j, n int) float64 {
	u := (float64(j) + b.rng.Float64()) / float64(n)
	if u >= 1 { // (n−1 + 0.99…)/n can round up to 1
		u = math.Nextafter(1, 0)
	}
	return u
}

// sampleUniform fills dst with stratified uniform draws over the N slots:
// P(i) = 1/N, w_i = 1.
func (b *Buffer[T]) sampleUniform(dst *Batch[T], n int) {
	p := 1 / float64(b.size)
	for j := range n {
		i := int(b.segment(j, n) * float64(b.size))
		if i >= b.size {
			i = b.size - 1
		}
		b.fill(dst, j, i, p, 1)
	}
}

// samplePrioritized fills dst with stratified draws from the two strata.
func (b *Buffer[T]) samplePrioritized(dst *Batch[T], n int) {
	rhoC, rhoR, floored := b.strata()
	gc, gr := b.trees[crisis].total(), b.trees[regular].total() // Σ g per stratum
	sc := b.mass(crisis)
	pmin := b.minProb(rhoC, rhoR, floored)
	beta := b.beta
	// Items with the same leaf value in the same stratum share P and w;
	// remembering the last one per stratum skips math.Pow for the common
	// case of default factors (two distinct leaf values in the buffer).
	memoQ := [2]float64{-1, -1}
	var memoP, memoW [2]float64
	for j := range n {
		u := b.segment(j, n)
		var s int
		var target float64
		if floored {
			if u < rhoC {
				s, target = crisis, u/rhoC*gc
			} else {
				s, target = regular, (u-rhoC)/rhoR*gr
			}
		} else {
			// u < ρ_c = S_c/(S_c+S_r) picks the crisis stratum; the point's
			// offset inside the stratum's mass, divided by w(s)^(α/T), is
			// its prefix sum in the tree of g.
			if u < rhoC {
				s, target = crisis, u*(sc+b.mass(regular))/b.qw[crisis]
			} else {
				s, target = regular, (u-rhoC)*(sc+b.mass(regular))/b.qw[regular]
			}
		}
		if b.counts[s] == 0 { // rounding at a boundary picked an empty stratum
			s = 1 - s
			target = b.trees[s].total()
		}
		i := b.trees[s].find(target)
		if q := b.trees[s].leaf(i); q != memoQ[s] {
			p := b.probOf(s, q, rhoC, rhoR, floored)
			memoQ[s], memoP[s], memoW[s] = q, p, math.Pow(pmin/p, beta)
		}
		b.fill(dst, j, i, memoP[s], memoW[s])
	}
}

// fill writes draw j (slot i, probability p, weight w) into dst.
func (b *Buffer[T]) fill(dst *Batch[T], j, i int, p, w float64) {
	dst.Items[j] = b.items[i]
	dst.Indices[j] = i
	dst.Crisis[j] = b.crisis[i]
	dst.Probs[j] = p
	dst.Weights[j] = w
}

// recordBatch keeps the figures of the batch in dst for Stats.
func (b *Buffer[T]) recordBatch(dst *Batch[T]) {
	n := len(dst.Weights)
	var nc int
	lo, hi := math.Inf(1), math.Inf(-1)
	var sum float64
	for j, w := range dst.Weights {
		if dst.Crisis[j] {
			nc++
		}
		sum += w
		lo = math.Min(lo, w)
		hi = math.Max(hi, w)
	}
	mean := sum / float64(n)
	var ss float64
	for _, w := range dst.Weights {
		d := w - mean
		ss += d * d
	}
	b.last = batchStats{
		n:           n,
		crisisRatio: float64(nc) / float64(n),
		mean:        mean,
		std:         math.Sqrt(ss / float64(n)),
		lo:          lo,
		hi:          hi,
	}
}

// resize returns s with length n, reusing its backing array when it is large enough.
func resize[E any](s []E, n int) []E {
	if cap(s) < n {
		return make([]E, n)
	}
	return s[:n]
}

// Stats returns the buffer's current figures and those of the last batch.
func (b *Buffer[T]) Stats() Stats {
	st := Stats{
		Size:                 b.size,
		Capacity:             b.cfg.Capacity,
		CrisisCount:          b.counts[crisis],
		LastBatchSize:        b.last.n,
		LastBatchCrisisRatio: b.last.crisisRatio,
		WeightMean:           b.last.mean,
		WeightStd:            b.last.std,
		WeightMin:            b.last.lo,
		WeightMax:            b.last.hi,
		Beta:                 b.beta,
		CrisisWeight:         b.cfg.CrisisWeight,
	}
	if b.size > 0 {
		st.CrisisFraction = float64(b.counts[crisis]) / float64(b.size)
		if b.cfg.Uniform {
			st.ExpectedBatchCrisisRatio = st.CrisisFraction
		} else {
			st.ExpectedBatchCrisisRatio, _, st.FloorActive = b.strata()
		}
	}
	return st
}

// Reset empties the buffer: items are zeroed (dropping references), both
// trees are cleared and the next Add writes slot 0. The annealing step and
// β are kept; the last-batch figures are cleared.
func (b *Buffer[T]) Reset() {
	clear(b.items)
	clear(b.crisis)
	clear(b.factors)
	b.trees[regular].reset()
	b.trees[crisis].reset()
	b.counts = [2]int{}
	b.size, b.next = 0, 0
	b.last = batchStats{}
}

// ExpectedCrisisShare returns the expected crisis share of a batch when a
// fraction f of the buffer is crisis items of weight w, the rest regular
// items of weight 1, all factors 1, and no floor applies:
//
//	share = f·w^(α/T) / (f·w^(α/T) + 1 − f)
//
// It is 22.6% at f = 0.1, w = 5, α = 0.6, T = 1. A probability ratio r
// between a crisis and a regular item needs w = r^(T/α).
func ExpectedCrisisShare(f, w, alpha, temp float64) float64 {
	c := f * math.Pow(w, alpha/temp)
	return c / (c + 1 - f)
}
