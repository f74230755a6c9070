// Package learner is the learn role: it consumes tagged experiences from
// Kafka into the importance-weighted replay buffer (package replay), trains
// the PPO agent (package ppo) on batches drawn from it, and publishes
// training metrics and policy snapshots back to Kafka, with checkpoints on
// disk. The buffer and the agent know nothing of Kafka; this package is the
// edge between them and the log.
package learner
