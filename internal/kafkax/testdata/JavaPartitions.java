// JavaPartitions prints, for a fixed set of keys and partition counts, the
// partition Apache Kafka's Java producer picks for a keyed record
// (BuiltInPartitioner.partitionForKey: murmur2, the default partitioner of
// the Java client, Kafka Streams and Flink) and the partition of
// librdkafka's default partitioner, consistent_random, for a non-empty key
// (CRC-32 of the key modulo the count; java.util.zip.CRC32 is the same
// CRC-32 as librdkafka's rd_crc32). Regenerate java_partitions.tsv with
//
//	java -cp "$HOME/.cache/aelp/kafka-4.4.0/libs/*" JavaPartitions.java > java_partitions.tsv
//
// (after bash scripts/kafka/fetch.sh).
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.zip.CRC32;
import org.apache.kafka.clients.producer.internals.BuiltInPartitioner;

public class JavaPartitions {
    public static void main(String[] args) {
        List<byte[]> keys = new ArrayList<>();
        for (String s : new String[] {"", "a", "ab", "abc", "abcd", "abcde", "abcdef", "abcdefg", "abcdefgh",
                "experiment-42", "run-1767225600", "u-ünïcødé", "user-with-a-rather-long-identifier-0123456789-abcdefghijklmnopqrstuvwxyz"}) {
            keys.add(s.getBytes(StandardCharsets.UTF_8));
        }
        for (int i = 0; i < 40; i++) {
            keys.add(("user-" + i).getBytes(StandardCharsets.UTF_8));
        }
        keys.add(new byte[] {0});
        keys.add(new byte[] {(byte) 0xff, (byte) 0xfe, (byte) 0x80, 0x7f, 0x01});
        int[] counts = {1, 2, 3, 6, 12, 100};
        HexFormat hex = HexFormat.of();
        System.out.println("key_hex\tpartitions\tmurmur2\tcrc32");
        for (byte[] k : keys) {
            for (int n : counts) {
                CRC32 crc = new CRC32();
                crc.update(k);
                long c = crc.getValue() % n;
                System.out.println(hex.formatHex(k) + "\t" + n + "\t" + BuiltInPartitioner.partitionForKey(k, n) + "\t" + c);
            }
        }
    }
}
