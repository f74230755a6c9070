package kafkatest

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/aelp/aelp/internal/kafkax"
	"github.com/segmentio/kafka-go"
)

// ReadAll returns every record of topic, from the first offset of each
// partition up to the end offsets seen at the call, independently of any
// consumer group. It fails the test when listing the offsets takes a
// minute, or when a partition yields no record for a minute: the bound is
// on progress, so a long read on a slow machine is not cut short.
func ReadAll(t testing.TB, cfg kafkax.Config, topic string) []kafka.Message {
	t.Helper()
	const stall = time.Minute
	ctx, cancel := context.WithTimeout(context.Background(), stall)
	offs, err := kafkax.ListOffsets(ctx, cfg, topic)
	cancel()
	if err != nil {
		t.Fatalf("read %s: %v", topic, err)
	}
	var out []kafka.Message
	for p, end := range offs.End {
		first := offs.First[p]
		if end <= first {
			continue
		}
		// A short MaxWait: closing a reader waits for its fetch in flight,
		// which at the default 2 s costs about a second per partition.
		r, err := kafkax.NewPartitionReader(cfg, topic, p, first, kafkax.ReaderOptions{MaxWait: 100 * time.Millisecond})
		if err != nil {
			t.Fatalf("read %s/%d: %v", topic, p, err)
		}
		for next := first; ; {
			ctx, cancel := context.WithTimeout(context.Background(), stall)
			m, err := r.FetchMessage(ctx)
			cancel()
			if err != nil {
				r.Close()
				t.Fatalf("read %s/%d: no record at offset %d (end %d) for %s: %v", topic, p, next, end, stall, err)
			}
			out = append(out, m)
			next = m.Offset + 1
			if next >= end {
				break
			}
		}
		r.Close()
	}
	return out
}

// GroupLag returns how many records of topic the consumer group has not
// committed, or math.MaxInt64 while that is not known: the offsets cannot
// be listed, or the group coordinator is not ready (real Kafka first
// answers NOT_COORDINATOR with no partitions) or rebalancing.
func GroupLag(cfg kafkax.Config, group, topic string) int64 {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	offs, err := kafkax.ListOffsets(ctx, cfg, topic)
	if err != nil {
		return math.MaxInt64
	}
	client, err := cfg.Client()
	if err != nil {
		return math.MaxInt64
	}
	parts := make([]int, 0, len(offs.End))
	for p := range offs.End {
		parts = append(parts, p)
	}
	resp, err := client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: parts}})
	if err != nil || resp.Error != nil || len(resp.Topics[topic]) != len(parts) {
		return math.MaxInt64
	}
	var lag int64
	for _, p := range resp.Topics[topic] {
		if p.Error != nil {
			return math.MaxInt64
		}
		committed := p.CommittedOffset
		if committed < 0 {
			committed = offs.First[p.Partition]
		}
		lag += offs.End[p.Partition] - committed
	}
	return lag
}
