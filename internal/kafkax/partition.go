package kafkax

import (
	"fmt"
	"strings"

	"github.com/segmentio/kafka-go"
)

// Partitioner is the hash that puts a keyed record on a partition. Every
// producer of a topic must use the same one for a key's records to share a
// partition, and two topics joined by key need the same one on both
// (co-partitioning).
type Partitioner int8

const (
	// Murmur2, the default, is the Java client's partitioner (and so Kafka
	// Streams', Flink's and most JVM producers'): murmur2 of the key,
	// masked positive, modulo the partition count. A record with a null
	// key goes to a random partition (the Java client picks a sticky one).
	Murmur2 Partitioner = iota
	// FNV1a is kafka-go's Hash (and sarama's default): FNV-1a of the key
	// as a signed 32-bit number, its absolute value modulo the count. It
	// was aelp's partitioner before Murmur2; null keys go round-robin.
	FNV1a
	// CRC32 is librdkafka's default, consistent_random (confluent-kafka
	// clients, kcat): CRC-32 of the key modulo the count; a null or empty
	// key goes to a random partition.
	CRC32
)

// ParsePartitioner parses a partitioner's name: murmur2, fnv1a or crc32
// (any case).
func ParsePartitioner(s string) (Partitioner, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "murmur2":
		return Murmur2, nil
	case "fnv1a", "fnv-1a":
		return FNV1a, nil
	case "crc32":
		return CRC32, nil
	}
	return Murmur2, fmt.Errorf("partitioner %q: want murmur2, fnv1a or crc32", s)
}

// String returns the partitioner's name as ParsePartitioner takes it.
func (p Partitioner) String() string {
	switch p {
	case Murmur2:
		return "murmur2"
	case FNV1a:
		return "fnv1a"
	case CRC32:
		return "crc32"
	}
	return fmt.Sprintf("Partitioner(%d)", int8(p))
}

// valid reports whether p is one of the partitioners above.
func (p Partitioner) valid() bool { return p >= Murmur2 && p <= CRC32 }

// Balancer returns the kafka-go balancer that partitions as p does.
func (p Partitioner) Balancer() kafka.Balancer {
	switch p {
	case FNV1a:
		return &kafka.Hash{}
	case CRC32:
		return kafka.CRC32Balancer{}
	}
	return kafka.Murmur2Balancer{}
}

// Partition returns the partition, of n, of a record with key (non-nil,
// and non-empty for CRC32: other keys are placed at random).
func (p Partitioner) Partition(key []byte, n int) int {
	parts := make([]int, n)
	for i := range parts {
		parts[i] = i
	}
	return p.Balancer().Balance(kafka.Message{Key: key}, parts...)
}
