// Package ope estimates, from journeys logged under a behaviour policy μ,
// the value another (target) policy π would have had: off-policy
// evaluation, per segment, with bootstrap intervals and effective sample
// sizes. It is pure Go and knows nothing of Kafka or Avro; the roles and
// commands hand it journeys (see Collector and RecordOf).
//
// # Notation
//
// Journey i = 1 … n has steps t = 0 … H_i−1 with state s_t, action a_t,
// reward r_t and the logged behaviour log-probability ln μ(a_t|s_t). The
// per-decision ratio and the cumulative weight are
//
//	ρ_t = π(a_t|s_t) / μ(a_t|s_t) = exp(ln π(a_t|s_t) − ln μ(a_t|s_t))
//	w_t = Π_{k≤t} ρ_k              (w_{−1} = 1; w_t = w_{H−1} for t ≥ H)
//
// summed in log space; with Config.Clip = c > 0, w_t = min(c, Π_{k≤t} ρ_k).
// The value estimated is E_π[Σ_t γ^t r_t] (γ = 1 by default: the journey
// return).
//
// # Estimators
//
//	logged  V̂ = (1/n) Σ_i Σ_t γ^t r_{i,t}                    (μ's own value)
//	PDIS    V̂ = (1/n) Σ_i Σ_t γ^t w_{i,t} r_{i,t}
//	WPDIS   V̂ = Σ_t γ^t Σ_i w_{i,t} r_{i,t} / Σ_i w_{i,t}
//	DR      V̂ = (1/n) Σ_i Σ_t γ^t [ w_{i,t} (r_{i,t} − Q̂(s_{i,t}, a_{i,t})) + w_{i,t−1} V̂(s_{i,t}) ]
//
// with V̂(s) = Σ_a π(a|s) Q̂(s, a). PDIS (per-decision importance sampling,
// Precup et al. 2000) is unbiased; WPDIS normalises each step's weights by
// their sum over the journeys (a finished journey keeps its final weight),
// biased but consistent and of far lower variance; DR is Jiang & Li's
// (2016) doubly robust recursion V_DR^{H−t} = V̂(s_t) + ρ_t (r_t +
// γ V_DR^{H−t−1} − Q̂(s_t, a_t)) unrolled, unbiased when the weights are
// exact whatever Q̂ is, and of low variance when Q̂ is good. WDR (the
// WDR constant) normalises DR's two terms per step as WPDIS does. DR-CV
// (DRCV) is PDIS + β̂·(DR − PDIS): DR's correction C_i = DR_i − PDIS_i,
// of expectation 0, used as a control variate with the coefficient of
// least variance β̂ = clamp(−cov(PDIS_i, C_i)/var(C_i), 0, 1) fitted on
// the segment's journeys (and refitted in every bootstrap resample): DR
// where the model's correction removes noise, PDIS where it adds noise.
//
// When π = μ every ρ_t is exactly 1 and PDIS and WPDIS equal the logged
// mean. DR then equals the logged mean plus (1/n) Σ_i Σ_t γ^t (V̂(s_t) −
// Q̂(s_t, a_t)), a term of expectation 0 (a_t is drawn from π) that
// vanishes exactly when Q̂ does not depend on the action (DR-V) or is 0.
//
// # The Q model
//
// DR uses the model of Config.Model:
//   - ModelFQE (default): fitted-Q evaluation of the target policy,
//     Q̂(h_t, a) = clamp(θ_aᵀ x(h_t), lo, hi), linear in features of the
//     journey's history up to the state s_t (see historyFeatures): the
//     standardised state, the mean of the journey's states so far and 64
//     fixed random ReLU features of both; one weight vector per action,
//     fitted by ridge regression on the Bellman targets r + γ V̂(h′)
//     iterated from θ = 0 (see fitFQE). DR stays unbiased with any Q̂ of
//     the history before the action. It is cross-fitted: the journeys are split into
//     Config.Folds folds by a hash of their id and each journey's Q̂ is
//     fitted on the other folds only, so that no journey's correction term
//     uses a model fitted on itself. Predictions are clamped to the range
//     [lo, hi] of the logged returns-to-go, the guard against the model
//     blow-ups of weighted DR (ReAgent issue #89).
//   - ModelLinear: the same, with x(s) = ((s − m)/σ, 1) linear in the
//     standardised current state alone (the default before ModelFQE's
//     history features; kept for comparison).
//   - ModelNone: Q̂ = 0, with which DR is PDIS.
//
// A Target with a value head (Target.Value, e.g. the PPO agent's value
// network) also gets DR-V: DR with Q̂(s, a) = V̂(s) = clamp(Value(s)) for
// every action, the candidate's own estimate of its value.
//
// Every model is gated by the journey's weight (Config.ModelMaxWeight,
// default 100): at a step whose history weight w_{t−1} exceeds the gate,
// Q̂ = V̂ = 0 and the step's term is PDIS's. The gate depends only on the
// history before a_t, so it is itself a Q̂ of the history and DR stays
// unbiased; it keeps the correction's terms bounded where the rare
// journeys that follow the target for many steps would otherwise give
// it a tail too long and too skewed for a sample of tens of thousands
// to hold its share of.
//
// # Intervals, ESS, segments, normalisation
//
// Every interval is a seeded percentile bootstrap over journeys: Config.
// Resamples (1,000) resamples of n journeys drawn with replacement from
// the n, each estimator recomputed on each (WPDIS's normalisers included),
// and the 2.5% and 97.5% quantiles taken. Resamples have the sample's size
// (Efron's n-out-of-n bootstrap), not ReAgent's 25% subsamples, whose
// spread is that of an estimate from n/4 journeys (an interval twice as
// wide). The Q model is held fixed over the resamples.
//
// The effective sample size of the final per-journey weights is
// ESS = (Σ_i w_{i,H_i−1})² / Σ_i w_{i,H_i−1}² (n when π = μ, near 1 when
// one journey carries all the weight); Segment.StepESS has it per step.
//
// Every figure is given for all journeys, per tag (the tagged event type
// of a journey's first step) and per true segment (when the ground-truth
// metadata key schemas.KeyTrueSegment is present). A segment's resample is
// the part of the overall resample that falls in it. A tag that depends on
// the logged actions (the aggregator's VALUE rule reads the logged value)
// makes the tagged segment itself depend on μ: the true segments, drawn
// before any action, are the ones the proof against truth uses.
//
// Estimates are also given normalised by the segment's logged mean return
// (1.0 = parity with the logging policy), when the logged mean's interval
// lies above 0; the normalised interval divides the estimate's interval
// by the logged mean.
//
// # Bad input
//
// Journeys with a gap, without a Done last step, or with a step whose
// behaviour log-prob is missing (NaN), −Inf or above 0, or whose reward or
// state is not finite, are skipped and counted (Report.Skipped). Evaluate
// returns an error, and never a report holding a NaN or an infinity, when
// no journey is left, when the target does not give a distribution, when
// an unclipped weight exceeds e^345, or when a figure overflows.
package ope
