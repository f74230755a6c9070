// Package consumers holds the roles that read from Kafka: the aggregator,
// which tags crisis parents (package classify) and republishes, and the
// operator tools that tail and record topics. The classifier itself knows
// nothing of Kafka; this package moves records between topics and it.
package consumers
