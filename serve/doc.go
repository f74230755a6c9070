// Package serve is the decision server (`aelp serve`): an HTTP API through
// which a live ad server acts with the experiment's current policy and
// logs what it did, so that the join, the learner and the off-policy
// estimates see exactly the propensities that were used.
//
//	POST /v1/decide    state → action, bid, creative, the distribution sampled, its propensity
//	POST /v1/activate  a deferred decision was shown: log it now
//	POST /v1/outcome   impression, click, conversion, end → aelp.outcomes
//	GET  /v1/policy    the serving policy's version, architecture, load time
//	GET  /v1/openapi.json, /metrics, /healthz
//
// The server follows the policy topic (aelp.policy, the learner's and the
// gate's output) and swaps to each newer snapshot of its experiment with
// one atomic pointer store: a request reads the pointer once and answers
// entirely from the policy it read, so a swap neither fails nor stalls a
// request. The served distribution mixes the policy with ε-uniform
// exploration and a propensity floor (see Mix), so every action keeps
// support for off-policy evaluation.
//
// Every answered decision is written as a schemas.Decision on
// aelp.decisions, keyed by user id, with action_probs the served
// distribution and behavior_logprob the log of the served propensity.
// Logging goes through a bounded buffer drained by one batching writer
// (see Config.LogSync for the two guarantees); a full buffer is answered
// with 503 and Retry-After, never by dropping a record.
//
// The package knows the policy network only through learner/ppo (the same
// forward pass and observation normalisation as the simulators) and the
// action layout only through producers/sim (Config.Decode); it imports no
// other role.
package serve
