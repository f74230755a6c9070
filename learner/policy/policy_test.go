package policy

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aelp/aelp/internal/kafkatest"
	"github.com/aelp/aelp/internal/kafkax"
	"github.com/aelp/aelp/internal/kafkax/kafkaxtest"
	"github.com/aelp/aelp/learner/policy/policytest"
	"github.com/aelp/aelp/schemas"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
)

func versions(snaps []*schemas.PolicySnapshot) []int64 {
	out := make([]int64, len(snaps))
	for i, s := range snaps {
		out[i] = s.Version
	}
	return out
}

// TestSource writes snapshots of two experiments, an undecodable record,
// and snapshots in an aborted and a committed transaction: ReadAll and
// Latest see the experiment's decodable committed snapshots only, and
// Follow sees them, then a new one, and returns nil when ctx ends.
func TestSource(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.Options{})
	cfg := c.Config()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const topic = "policy.test"
	if err := kafkax.EnsureTopics(ctx, cfg, kafkax.TopicSpec{Name: topic, Partitions: 1, Compact: true}); err != nil {
		t.Fatal(err)
	}
	w, err := kafkax.NewWriter(cfg, topic, kafkax.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := kafkax.WriteAll(ctx, cfg, w, zerolog.Nop(), []kafka.Message{policytest.SnapshotMessage(t, "a", 1, 1),
		policytest.SnapshotMessage(t, "b", 2, 2), {Key: []byte("a"), Value: []byte("not a snapshot")}}); err != nil {
		t.Fatal(err)
	}
	kafkaxtest.ProduceTransaction(t, cfg, topic, false, []kafka.Message{policytest.SnapshotMessage(t, "a", 3, 3)})
	kafkaxtest.ProduceTransaction(t, cfg, topic, true, []kafka.Message{policytest.SnapshotMessage(t, "a", 4, 4)})
	src := Source{Kafka: cfg, Topic: topic, ExperimentID: "a", Log: zerolog.Nop()}

	var all []*schemas.PolicySnapshot
	if err := src.ReadAll(ctx, func(s *schemas.PolicySnapshot) { all = append(all, s) }); err != nil {
		t.Fatal(err)
	}
	if got := versions(all); !slices.Equal(got, []int64{1, 4}) {
		t.Errorf("ReadAll: versions %v, want [1 4] (3 was aborted)", got)
	}
	latest, err := src.Latest(ctx)
	if err != nil || latest == nil || latest.Version != 4 {
		t.Errorf("Latest = %v, %v; want version 4", latest, err)
	}
	if none, err := (Source{Kafka: cfg, Topic: topic, ExperimentID: "c"}).Latest(ctx); none != nil || err != nil {
		t.Errorf("Latest of an experiment without snapshots = %v, %v", none, err)
	}

	var mu sync.Mutex
	var followed []*schemas.PolicySnapshot
	got := make(chan struct{}, 16)
	fctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- src.Follow(fctx, func(s *schemas.PolicySnapshot) {
			mu.Lock()
			followed = append(followed, s)
			mu.Unlock()
			got <- struct{}{}
		})
	}()
	wait := func(n int) {
		t.Helper()
		for {
			mu.Lock()
			k := len(followed)
			mu.Unlock()
			if k >= n {
				return
			}
			select {
			case <-got:
			case err := <-done:
				t.Fatalf("Follow returned %v", err)
			case <-ctx.Done():
				t.Fatalf("followed %d snapshots, want %d", k, n)
			}
		}
	}
	wait(2)
	if err := kafkax.WriteAll(ctx, cfg, w, zerolog.Nop(), []kafka.Message{policytest.SnapshotMessage(t, "a", 5, 5)}); err != nil {
		t.Fatal(err)
	}
	wait(3)
	stop()
	if err := <-done; err != nil {
		t.Errorf("Follow ended with %v, want nil", err)
	}
	if v := versions(followed); !slices.Equal(v, []int64{1, 4, 5}) {
		t.Errorf("Follow: versions %v, want [1 4 5]", v)
	}
}
