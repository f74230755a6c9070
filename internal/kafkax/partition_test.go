package kafkax_test

import (
	"bufio"
	"encoding/hex"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/aelp/aelp/internal/kafkax"
)

// TestPartitionersMatchReferences checks aelp's partitioners against
// partition numbers computed by the reference implementations, in
// testdata/java_partitions.tsv (made by testdata/JavaPartitions.java with
// Apache Kafka 4.4.0's kafka-clients):
//
//   - murmur2: org.apache.kafka.clients.producer.internals.BuiltInPartitioner
//     .partitionForKey(key, n), i.e. Utils.toPositive(Utils.murmur2(key)) % n,
//     what the Java producer (and so Kafka Streams and Flink) does with a
//     keyed record;
//   - crc32: librdkafka's consistent_random for a non-empty key
//     (rd_kafka_msg_partitioner_consistent: rd_crc32(key) % partition_cnt),
//     computed with java.util.zip.CRC32, the same CRC-32 (IEEE 802.3,
//     reflected, init and final xor 0xffffffff).
func TestPartitionersMatchReferences(t *testing.T) {
	f, err := os.Open("testdata/java_partitions.tsv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	rows := 0
	for sc.Scan() {
		cols := strings.Split(sc.Text(), "\t")
		if len(cols) != 4 {
			t.Fatalf("line %q: want 4 columns", sc.Text())
		}
		key, err := hex.DecodeString(cols[0])
		if err != nil {
			t.Fatal(err)
		}
		n, err1 := strconv.Atoi(cols[1])
		m2, err2 := strconv.Atoi(cols[2])
		c32, err3 := strconv.Atoi(cols[3])
		if err1 != nil || err2 != nil || err3 != nil {
			t.Fatalf("line %q: bad numbers", sc.Text())
		}
		if key == nil {
			key = []byte{} // an empty key is a key (murmur2 hashes it)
		}
		if got := kafkax.Murmur2.Partition(key, n); got != m2 {
			t.Errorf("murmur2 of %q over %d partitions = %d, Java's BuiltInPartitioner says %d", key, n, got, m2)
		}
		if len(key) > 0 { // librdkafka places an empty key at random
			if got := kafkax.CRC32.Partition(key, n); got != c32 {
				t.Errorf("crc32 of %q over %d partitions = %d, want %d", key, n, got, c32)
			}
		}
		rows++
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if rows < 300 {
		t.Fatalf("%d reference rows, want the whole file", rows)
	}
}

// TestPartitionerNamesAndDefault checks the names --partitioner takes and
// that murmur2 is the default.
func TestPartitionerNamesAndDefault(t *testing.T) {
	if p := kafkax.DefaultConfig().Partitioner; p != kafkax.Murmur2 {
		t.Errorf("default partitioner %s, want murmur2", p)
	}
	for _, p := range []kafkax.Partitioner{kafkax.Murmur2, kafkax.FNV1a, kafkax.CRC32} {
		q, err := kafkax.ParsePartitioner(strings.ToUpper(p.String()))
		if err != nil || q != p {
			t.Errorf("ParsePartitioner(%q) = %s, %v; want %s", strings.ToUpper(p.String()), q, err, p)
		}
	}
	if _, err := kafkax.ParsePartitioner("random"); err == nil {
		t.Error("ParsePartitioner(random): no error")
	}
	cfg := kafkax.DefaultConfig()
	cfg.Partitioner = 7
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "partitioner") {
		t.Errorf("Validate of partitioner 7: %v, want an error naming the partitioner", err)
	}
	// FNV1a is kafka-go's Hash, aelp's partitioner before murmur2: the
	// two disagree on some key (or the flag would change nothing).
	differ := false
	for i := range 20 {
		k := []byte("user-" + strconv.Itoa(i))
		if kafkax.FNV1a.Partition(k, 6) != kafkax.Murmur2.Partition(k, 6) {
			differ = true
		}
	}
	if !differ {
		t.Error("fnv1a and murmur2 agree on 20 keys over 6 partitions")
	}
}
