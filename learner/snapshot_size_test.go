package learner

import (
	"context"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aelp/aelp/internal/kafkatest"
	"github.com/aelp/aelp/internal/kafkax"
)

// TestLearnRefusesSnapshotTooLarge: a network whose policy snapshots the
// policy topic cannot take (--hidden 512,512: about 2.2 MB, over the
// default 1 MiB) is refused at start-up with an error naming the limit and
// the snapshot's size, instead of training until the first snapshot stalls
// the learner.
func TestLearnRefusesSnapshotTooLarge(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.Options{})
	cfg := c.Config()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute) // ends only a hung test
	defer cancel()
	n := fillTagged(t, cfg, "tagged-big-net", "exp-big", 20, 3)
	lc := testConfig(cfg, "tagged-big-net", "exp-big", filepath.Join(t.TempDir(), "big.ckpt")).withBounded()
	lc.StateDim, lc.NumActions = 16, 12
	lc.PPO = DefaultPPO(16, 12)
	lc.PPO.Hidden = []int{512, 512}
	l, err := New(lc)
	if err != nil {
		t.Fatal(err)
	}
	err = l.Run(ctx)
	if err == nil {
		t.Fatal("Run with a 512×512 network on a default policy topic: no error")
	}
	msg := err.Error()
	for _, want := range []string{"policy snapshot", kafkax.TopicPolicy, "max.message.bytes " + strconv.Itoa(kafkax.DefaultMaxMessageBytes), "--hidden"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q: want it to say %q", msg, want)
		}
	}
	if s := l.Stats(); s.Ingested != 0 || s.Updates != 0 {
		t.Errorf("stats %+v: want nothing read or trained (of %d records) before the refusal", s, n)
	}
	t.Log(msg)
}
