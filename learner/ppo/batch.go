package ppo

// Batch is a set of replayed samples for one [Agent.Update], stored as
// parallel slices (struct of arrays). Obs and NextObs are row-major
// N()×ObsDim. Weights may be nil (all 1) and PolicyVersion may be nil (no
// staleness check); every other slice must have one entry per sample.
type Batch struct {
	// Obs holds the raw (unnormalised) states s, row-major.
	Obs []float64
	// NextObs holds the raw next states s′, row-major; ignored where Dones.
	NextObs []float64
	// Actions holds the actions taken, in [0, NumActions).
	Actions []int
	// BehaviorLogProb holds log μ(a|s) of the policy that acted.
	BehaviorLogProb []float64
	// Rewards holds the rewards.
	Rewards []float64
	// Weights holds the importance-sampling weights w ≥ 0 from the buffer.
	Weights []float64
	// Dones marks terminal transitions (no bootstrap from s′).
	Dones []bool
	// PolicyVersion holds the version of the policy that acted; −1 for a
	// logging or heuristic policy.
	PolicyVersion []int64
}

// N returns the number of samples.
func (b *Batch) N() int { return len(b.Actions) }

// Reset empties the batch, keeping the capacity of every slice.
func (b *Batch) Reset() {
	b.Obs = b.Obs[:0]
	b.NextObs = b.NextObs[:0]
	b.Actions = b.Actions[:0]
	b.BehaviorLogProb = b.BehaviorLogProb[:0]
	b.Rewards = b.Rewards[:0]
	b.Weights = b.Weights[:0]
	b.Dones = b.Dones[:0]
	b.PolicyVersion = b.PolicyVersion[:0]
}

// Append adds one sample; obs and nextObs are copied.
func (b *Batch) Append(obs, nextObs []float64, action int, behaviorLogProb, reward, weight float64, done bool, policyVersion int64) {
	b.Obs = append(b.Obs, obs...)
	b.NextObs = append(b.NextObs, nextObs...)
	b.Actions = append(b.Actions, action)
	b.BehaviorLogProb = append(b.BehaviorLogProb, behaviorLogProb)
	b.Rewards = append(b.Rewards, reward)
	b.Weights = append(b.Weights, weight)
	b.Dones = append(b.Dones, done)
	b.PolicyVersion = append(b.PolicyVersion, policyVersion)
}
