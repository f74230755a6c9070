// Package ppo is the PPO agent of the aelp learner: a categorical policy MLP
// and a separate value MLP (tanh, float64, on gonum) trained with a clipped
// surrogate on replayed, importance-weighted, off-policy samples.
//
// Each sample carries the log-probability log μ(a|s) of the policy that acted
// and an importance-sampling weight w from the replay buffer. One call to
// [Agent.Update] runs K epochs × M minibatches over the batch the caller passes:
//
//	per update, with θ_old the parameters at the start of the update:
//	  r₀ = exp(log π_θold(a|s) − log μ(a|s))          behaviour ratio
//	  ρ  = min(ρ̄, r₀)                                 truncated IS (V-trace, ρ̄ = 1)
//	  δ  = reward + γ(1 − done)·V_old(s′) − V_old(s)
//	  Â  = ρ·δ                                          one-step V-trace advantage
//	  V_target = V_old(s) + ρ·δ                         one-step V-trace target
//	per minibatch:
//	  A  = (Â − mean_w Â)/(std_w Â + 1e-8)              weighted by w
//	  r  = exp(log π_θ(a|s) − log π_ref(a|s))           π_ref: see [Config.Ratio]
//	  L_i = w_i·[−min(r·A, clip(r, 1±ε)·A) + c_v·½(V_θ(s) − V_target)² − c_e·H(π_θ(·|s))]
//	  L  = (1/m)·Σ_i L_i
//
// ρ, V_old(s′), V_old(s), Â, A and V_target are constants: they are computed
// once per update with the pre-update parameters and no gradient flows
// through them. Gradients flow only through log π_θ(a|s) (inside r),
// V_θ(s) in the value loss and H(π_θ(·|s)). The IS weight w_i multiplies each
// sample's loss exactly once.
//
// The package knows nothing of Kafka, Avro or the replay buffer; it imports
// no other aelp package. A [Policy] (from [Agent.Snapshot] or [LoadPolicy])
// runs the very same forward code as the agent, so a simulator acting with a
// snapshot reports log μ(a|s) bit-for-bit equal to what the agent recomputes
// for the same parameters and inputs.
package ppo
