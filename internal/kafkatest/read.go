package kafkatest

import (
	"context"
	"testing"
	"time"

	"github.com/aelp/aelp/internal/kafkax"
	"github.com/segmentio/kafka-go"
)

// ReadAll returns every record of topic, from the first offset of each
// partition up to the end offsets seen at the call, independently of any
// consumer group. It fails the test after a minute.
func ReadAll(t testing.TB, cfg kafkax.Config, topic string) []kafka.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	offs, err := kafkax.ListOffsets(ctx, cfg, topic)
	if err != nil {
		t.Fatalf("read %s: %v", topic, err)
	}
	var out []kafka.Message
	for p, end := range offs.End {
		first := offs.First[p]
		if end <= first {
			continue
		}
		r, err := kafkax.NewPartitionReader(cfg, topic, p, first, kafkax.ReaderOptions{})
		if err != nil {
			t.Fatalf("read %s/%d: %v", topic, p, err)
		}
		for {
			m, err := r.FetchMessage(ctx)
			if err != nil {
				r.Close()
				t.Fatalf("read %s/%d: %v", topic, p, err)
			}
			out = append(out, m)
			if m.Offset+1 >= end {
				break
			}
		}
		r.Close()
	}
	return out
}
