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
//
// # Computation
//
// [Agent.Update] runs every forward and backward pass batched over the
// samples of a minibatch (and over those of the pre-update pass, in chunks
// of 64): per layer one matrix product Z = H·Wᵀ + b forward, ∂H = δ·W and
// ∂W = δᵀ·H backward, each a [gemm]. On amd64 processors with AVX2 and FMA
// (CPUID, checked once) gemm, tanh, the softmax's exp, the backward tanh
// factor, the squared gradient norm and the Adam step run in assembly
// (kernel_amd64.s; gemm keeps a 4×12 tile of the product in twelve
// registers and the weights' rows in three more); elsewhere, or when
// built with -tags purego, the pure-Go code of kernel.go runs instead.
// Both compute the same operations in the same order, so the results do
// not depend on the path (TestFallbackBitIdentical). The assembly is used
// because it was measured to be needed: gonum's BLAS (blas64.Dgemm, pure
// Go) was tried first and multiplies these small matrices about seven
// times slower than the assembly kernel (4.9 against 36.8 GFLOP/s on
// 64×64×64), and the pure-Go fallback is slower still (BenchmarkGemm;
// figures in README.md).
//
// Order of summation. A layer's output element starts from its bias and
// adds h_k·W_jk for k in increasing order, one fused multiply-add each;
// a backward delta adds δ_j·W_jk for j in increasing order, then is
// multiplied by 1 − h² (itself rounded once); a minibatch's weight and
// bias gradients add the samples' terms in increasing sample order from
// 0; the loss figures are summed over the samples in order and ‖∂L/∂θ‖²
// in sixteen lanes ([sumSquares]). No sum depends on how the work is
// split, so the results are bit-identical for every Config.Workers value.
// This order differs from the per-row implementation that preceded it (a
// dot product then the bias, gradients accumulated sample by sample with
// separate multiplies and adds, per-worker partial sums) by rounding
// only; that implementation is kept unexported in legacy.go as the
// benchmarks' baseline and the tests' independent reference.
package ppo
