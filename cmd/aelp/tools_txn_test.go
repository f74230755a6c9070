package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aelp/aelp/internal/kafkatest"
	"github.com/aelp/aelp/internal/kafkax"
	"github.com/aelp/aelp/internal/kafkax/kafkaxtest"
	"github.com/aelp/aelp/learner"
	"github.com/aelp/aelp/schemas"
)

// TestToolsTransactions runs aelp tail and aelp record on a topic holding
// committed and aborted transactions interleaved with plain records: by
// default they show and record the plain and committed records only, never
// an aborted one or a transaction marker; --isolation-level
// read_uncommitted shows every data record, still no marker.
func TestToolsTransactions(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.Options{})
	cfg := c.Config()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const topic = "tools.txn"
	if err := kafkax.EnsureTopics(ctx, cfg, kafkax.TopicSpec{Name: topic, Partitions: 2}); err != nil {
		t.Fatal(err)
	}
	log := kafkaxtest.WriteTransactions(t, cfg, topic, false)
	common := []string{"--brokers=" + c.Addr(), "--log-level=error", "--topic=" + topic}

	tail := func(extra ...string) map[int][]string {
		t.Helper()
		var out bytes.Buffer
		args := append(append(slices.Clone(common), "--from-beginning", "--until-end", "--format=json"), extra...)
		if err := tailCmd(ctx, args, &out, false); err != nil {
			t.Fatalf("aelp tail %s: %v", strings.Join(args, " "), err)
		}
		got := map[int][]string{}
		for _, l := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
			var e struct {
				Partition int    `json:"partition"`
				Value     string `json:"value_base64"`
			}
			if err := json.Unmarshal([]byte(l), &e); err != nil {
				t.Fatalf("tail line %q: %v", l, err)
			}
			v, _ := base64.StdEncoding.DecodeString(e.Value)
			got[e.Partition] = append(got[e.Partition], string(v))
		}
		return got
	}
	check := func(what string, got, want map[int][]string) {
		t.Helper()
		for _, p := range kafkaxtest.Partitions {
			if !slices.Equal(got[p], want[p]) {
				t.Errorf("%s: partition %d = %q, want %q", what, p, got[p], want[p])
			}
		}
	}
	check("tail", tail(), log.Committed)
	check("tail --isolation-level=read_uncommitted", tail("--isolation-level=read_uncommitted"), log.Uncommitted)

	file := filepath.Join(t.TempDir(), "txn.avro")
	var stdout, stderr bytes.Buffer
	if err := recordCmd(ctx, append(slices.Clone(common), "--out="+file), &stdout, &stderr, false); err != nil {
		t.Fatalf("aelp record: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stdout.String(), "offsets in the range held no record") {
		t.Errorf("record summary does not say that offsets held no record:\n%s", stdout.String())
	}
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rr, err := schemas.NewRecordingReader(f)
	if err != nil {
		t.Fatal(err)
	}
	got := map[int][]string{}
	for {
		e, err := rr.Next()
		if err != nil {
			break
		}
		got[e.Partition] = append(got[e.Partition], string(e.Value))
	}
	check("record", got, log.Committed)

	var out, errOut bytes.Buffer
	if code := realMain([]string{"tail", "--isolation-level=dirty"}, &out, &errOut); code != 2 || strings.Count(errOut.String(), "\n") != 1 {
		t.Errorf("aelp tail --isolation-level=dirty: exit %d, stderr %q; want 2 and one line", code, errOut.String())
	}
}

// TestLearnTransactions runs aelp learn --bounded on a tagged topic holding
// plain records and a transactional producer's committed and aborted
// transactions, the log ending with an aborted one: the learner trains on
// the plain and committed records only, dead-letters nothing (no
// transaction marker reaches it), and ends having read every partition to
// its end although the last offsets hold no record it sees.
func TestLearnTransactions(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.Options{})
	cfg := c.Config()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const exp, topic = "txn-exp", "txn.tagged"
	writeTagged(t, ctx, cfg, topic, exp, 400)
	// Tagged records to re-publish in transactions.
	writeTagged(t, ctx, cfg, "txn.scratch", exp, 300)
	more := kafkatest.ReadAll(t, cfg, "txn.scratch")
	kafkaxtest.ProduceTransaction(t, cfg, topic, true, more[:150])
	kafkaxtest.ProduceTransaction(t, cfg, topic, false, more[150:220])
	kafkaxtest.ProduceTransaction(t, cfg, topic, true, more[220:270])
	kafkaxtest.ProduceTransaction(t, cfg, topic, false, more[270:])
	const committed = 400 + 150 + 50

	ckpt := filepath.Join(t.TempDir(), "learner.ckpt")
	var stdout, stderr bytes.Buffer
	code := realMain([]string{"learn", "--brokers=" + c.Addr(), "--log-level=error", "--experiment=" + exp,
		"--tagged-topic=" + topic, "--metrics-topic=txn.metrics", "--policy-topic=txn.policy", "--dead-letter-topic=txn.dlq",
		"--bounded", "--fresh", "--checkpoint=" + ckpt, "--min-buffer=200", "--batch-size=64", "--metrics-every=5"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("learn --bounded exit %d: %s", code, stderr.String())
	}
	cp, err := learner.ReadCheckpoint(ckpt)
	if err != nil {
		t.Fatal(err)
	}
	if cp.Inserted != committed {
		t.Errorf("learned from %d records, want the %d plain and committed ones", cp.Inserted, committed)
	}
	offs, err := kafkax.ListOffsets(ctx, cfg, topic)
	if err != nil {
		t.Fatal(err)
	}
	for p, end := range offs.End {
		if cp.Offsets[p] != end {
			t.Errorf("partition %d read up to %d, want its end %d", p, cp.Offsets[p], end)
		}
	}
	if dl := kafkatest.ReadAll(t, cfg, "txn.dlq"); len(dl) != 0 {
		t.Errorf("%d dead letters (first: %s), want none", len(dl), dl[0].Headers)
	}
}
