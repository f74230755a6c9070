package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"

	"github.com/aelp/aelp/internal/kafkatest"
	"github.com/aelp/aelp/internal/kafkax"
)

// BenchmarkJoinStage runs the join row of `aelp bench` alone: each op
// simulates the live stream of Config.Users/4 users into fresh topics and
// measures the pass-through of both topics and then the join over them
// (measureJoin, as Run does). It reports both rates and their ratio, the
// figure of the row; profile the join with
//
//	go test -run '^$' -bench JoinStage -benchtime 2x -cpuprofile cpu.out ./app/bench/
func BenchmarkJoinStage(b *testing.B) {
	c := kafkatest.Start(b, kafkatest.Options{})
	ctx := context.Background()
	cfg := DefaultConfig()
	cfg.setDefaults()
	kcfg := c.Config().WithDefaults()
	var join, pass Measure
	for b.Loop() {
		var rid [4]byte
		if _, err := rand.Read(rid[:]); err != nil {
			b.Fatal(err)
		}
		id := hex.EncodeToString(rid[:])
		t := newTopics(id)
		var specs []kafkax.TopicSpec
		for _, name := range []string{t.decisions, t.outcomes, t.joinPass, t.joined, t.late} {
			specs = append(specs, kafkax.TopicSpec{Name: name, Partitions: cfg.Partitions})
		}
		specs = append(specs, kafkax.TopicSpec{Name: t.dlq, Partitions: 1}, kafkax.TopicSpec{Name: t.policy, Partitions: 1, Compact: true})
		if err := kafkax.EnsureTopics(ctx, kcfg, specs...); err != nil {
			b.Fatal(err)
		}
		var rep Report
		if err := measureJoin(ctx, cfg, kcfg, t, "bench-"+id, &rep, func(string, ...any) {}); err != nil {
			b.Fatal(err)
		}
		b.Logf("join %.0f records/s, pass-through %.0f records/s, ratio %.2f", rep.Join.Rate(), rep.JoinPass.Rate(), rep.Join.Rate()/rep.JoinPass.Rate())
		join.Records += rep.Join.Records
		join.Elapsed += rep.Join.Elapsed
		pass.Records += rep.JoinPass.Records
		pass.Elapsed += rep.JoinPass.Elapsed
	}
	b.ReportMetric(join.Rate(), "join-records/s")
	b.ReportMetric(pass.Rate(), "pass-records/s")
	b.ReportMetric(join.Rate()/pass.Rate(), "ratio")
}
