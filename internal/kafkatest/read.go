package kafkatest

import (
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/aelp/aelp/internal/kafkax"
	"github.com/segmentio/kafka-go"
)

// readStall is how long ReadAll may see no progress before it fails.
const readStall = time.Minute

// ReadAll returns every record of topic, from the first offset of each
// partition up to the end offsets seen at the call (the last stable
// offsets: read_committed, so no record of an aborted transaction and no
// transaction marker), independently of any consumer group, partition by
// partition in offset order. It fails the test when listing the offsets
// takes a minute, or when the read makes no progress for a minute: the
// bound is on progress, so a long read on a slow machine is not cut short.
func ReadAll(t testing.TB, cfg kafkax.Config, topic string) []kafka.Message {
	t.Helper()
	r, err := kafkax.NewReader(cfg, topic, kafkax.ReadOptions{LookupTimeout: readStall})
	if err != nil {
		t.Fatalf("read %s: %v", topic, err)
	}
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), readStall)
	offs, err := r.ListOffsets(ctx)
	cancel()
	if err != nil {
		t.Fatalf("read %s: %v", topic, err)
	}
	// The read is cancelled with errStalled when no batch came for readStall.
	rctx, stop := context.WithCancelCause(context.Background())
	defer stop(nil)
	watchdog := time.AfterFunc(readStall, func() { stop(errStalled) })
	defer watchdog.Stop()
	parts := map[int][]kafka.Message{}
	err = r.Read(rctx, offs.First, offs.End, func(b *kafkax.Batch) error {
		watchdog.Reset(readStall)
		parts[b.Partition] = append(parts[b.Partition], b.Messages...)
		return nil
	})
	if err != nil {
		if cause := context.Cause(rctx); cause != nil {
			err = fmt.Errorf("%w: %w", cause, err)
		}
		t.Fatalf("read %s up to the end offsets %v: %v", topic, offs.End, err)
	}
	var out []kafka.Message
	for _, p := range slices.Sorted(maps.Keys(parts)) {
		out = append(out, parts[p]...)
	}
	return out
}

var errStalled = fmt.Errorf("no record for %s", readStall)

// GroupLag returns how many records of topic the consumer group has not
// committed (kafkax.Reader.GroupLag: up to the last stable offsets), or
// math.MaxInt64 while that is not known: the offsets cannot be listed, or
// the group coordinator is not ready or rebalancing.
func GroupLag(cfg kafkax.Config, group, topic string) int64 {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := kafkax.NewReader(cfg, topic, kafkax.ReadOptions{LookupTimeout: 10 * time.Second})
	if err != nil {
		return math.MaxInt64
	}
	defer r.Close()
	lag, err := r.GroupLag(ctx, group)
	if err != nil {
		return math.MaxInt64
	}
	return lag
}
