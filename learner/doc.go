// Package learner is the learn role: it consumes tagged experiences from
// Kafka into the training core (package train: the importance-weighted
// replay buffer, the PPO agent, the rate limiter and the batch
// statistics), makes the updates the core's rate limiter allows, and
// publishes training metrics and policy snapshots back to Kafka, with
// checkpoints on disk. The core knows nothing of Kafka; this package is the
// edge between it and the log: reading, dead letters, publishing,
// checkpoints and offsets.
package learner
