// Package train is the learner's training core: the importance-weighted
// replay buffer (package replay) and the PPO agent (package ppo) it owns,
// the experiences of every buffer slot, the rate limiter that paces
// sampling against inserting, one update (sample a batch, fill the PPO
// batch with its IS weights, agent.Update), running statistics of the
// batches, the accuracy of the crisis tags against ground truth and the
// mean episode return per true segment.
//
// The learn role (package learner) feeds it the tagged experiences it
// reads from Kafka; `aelp experiment ab` (app/experiment) feeds it
// simulated journeys converted and tagged as the simulate and aggregate
// roles would; both make their updates through it, so the A/B experiment
// measures the learner's own training. The benchmarks call it too.
//
// It knows nothing of Kafka, Prometheus, clocks or files: what only a role
// needs (first-use latency, metrics, checkpoints) it returns as values.
// A Trainer is not safe for concurrent use; one goroutine owns it.
package train
