// Package producers holds the roles that put records on Kafka: the
// simulate role, which runs the Monte Carlo ad simulator (package sim) and
// publishes Avro Experience records, and the replayer, which republishes a
// recorded Avro container file. The simulator model itself knows nothing of
// Kafka; this package moves its output onto the wire.
package producers
