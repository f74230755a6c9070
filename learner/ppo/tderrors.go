package ppo

// TDErrors returns the samples the last Update trained on, as their rows
// in that update's Batch, with their one-step V-trace TD errors
//
//	ρ_k·δ_k = min(ρ̄, π_θold(a|s)/μ(a|s))·(r + γ·V_old(s′)·(1 − done) − V_old(s))
//
// computed with the pre-update parameters θ_old: the advantages of that
// update before the per-minibatch normalisation, and minus the error of
// its value loss. Samples dropped as stale or invalid are absent. Both
// slices are the agent's own, valid until the next Update; the caller
// must not modify them. Before the first Update both are empty.
func (a *Agent) TDErrors() (rows []int, tdErrors []float64) {
	return a.rows[:a.n], a.adv[:a.n]
}
