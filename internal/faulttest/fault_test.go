package faulttest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aelp/aelp/consumers"
	"github.com/aelp/aelp/internal/kafkatest"
	"github.com/aelp/aelp/internal/kafkax"
	"github.com/aelp/aelp/learner"
	"github.com/aelp/aelp/learner/ppo"
	"github.com/aelp/aelp/producers"
	"github.com/aelp/aelp/schemas"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
)

// limits are the simulator's default dimensions, checked by the roles.
var limits = schemas.Limits{StateDim: 16, NumActions: 12}

// pipeline is an in-process simulator (unbounded, rate-capped) feeding an
// in-process aggregator, each with its own context and log buffer.
type pipeline struct {
	sim            *producers.Simulator
	agg            *consumers.Aggregator
	simLog, aggLog syncBuffer
	stopSim        context.CancelFunc
	stopAgg        context.CancelFunc
	simDone        chan error
	aggDone        chan error
	simRep         producers.SimulateReport
}

// startPipeline starts the simulator (rate experiences per second) and an
// aggregator in group. Both are stopped by the test's cleanup if the test
// did not stop them.
func startPipeline(t *testing.T, cfg kafkax.Config, experiment, group string, rate float64, seed uint64) *pipeline {
	t.Helper()
	p := &pipeline{simDone: make(chan error, 1), aggDone: make(chan error, 1)}
	var err error
	p.sim, err = producers.NewSimulator(producers.SimulateConfig{Kafka: cfg, ExperimentID: experiment, Rate: rate,
		Workers: 2, Seed: seed, BatchRecords: 256, ProgressEvery: -1, Log: zerolog.New(&p.simLog)})
	if err != nil {
		t.Fatal(err)
	}
	p.agg, err = consumers.NewAggregator(consumers.AggregateConfig{Kafka: cfg, Group: group, Limits: limits,
		ProgressEvery: -1, Log: zerolog.New(&p.aggLog)})
	if err != nil {
		t.Fatal(err)
	}
	simCtx, stopSim := context.WithCancel(context.Background())
	aggCtx, stopAgg := context.WithCancel(context.Background())
	p.stopSim, p.stopAgg = stopSim, stopAgg
	go func() { // exits when simCtx ends (Run flushes and returns)
		rep, err := p.sim.Run(simCtx)
		p.simRep = rep
		p.simDone <- err
	}()
	go func() { p.aggDone <- p.agg.Run(aggCtx) }() // exits when aggCtx ends
	t.Cleanup(func() {
		stopSim()
		stopAgg()
		for _, ch := range []chan error{p.simDone, p.aggDone} {
			select {
			case <-ch:
			case <-time.After(90 * time.Second):
				t.Errorf("a role did not stop within 90 s of its cancel")
			}
		}
		if t.Failed() {
			t.Logf("simulator log (last 20 lines):\n%s", lastLines(p.simLog.String(), 20))
			t.Logf("aggregator log (last 20 lines):\n%s", lastLines(p.aggLog.String(), 20))
		}
	})
	return p
}

// stopSimulator cancels the simulator, which flushes every record it
// simulated, and returns its report.
func (p *pipeline) stopSimulator(t *testing.T) producers.SimulateReport {
	t.Helper()
	p.stopSim()
	select {
	case err := <-p.simDone:
		p.simDone <- err // for the cleanup
		if err != nil {
			t.Fatalf("simulate: %v", err)
		}
	case <-time.After(90 * time.Second):
		t.Fatal("the simulator did not stop within 90 s of its cancel")
	}
	return p.simRep
}

// stopAggregator cancels the aggregator and fails the test on its error.
func (p *pipeline) stopAggregator(t *testing.T) {
	t.Helper()
	p.stopAgg()
	select {
	case err := <-p.aggDone:
		p.aggDone <- err // for the cleanup
		if err != nil {
			t.Fatalf("aggregate: %v", err)
		}
	case <-time.After(90 * time.Second):
		t.Fatal("the aggregator did not stop within 90 s of its cancel")
	}
}

// TestBrokerKilledMidStream: a simulator, an aggregator and a learner run
// in-process while the broker is SIGKILLed and, once the aggregator has
// logged a failed connection, started again on the same data, on a
// PLAINTEXT listener and on a SASL_SSL one (SCRAM-SHA-512): a cut
// connection under SASL is a broker restart, not a refused credential.
// The roles must recover on their own (retry with backoff), every id the
// simulator had acknowledged must reach the tagged topic, and the learner
// must ingest every tagged record.
func TestBrokerKilledMidStream(t *testing.T) {
	requireReal(t)
	for _, tc := range []struct {
		name string
		sasl bool
	}{{"PLAINTEXT", false}, {"SASL_SSL", true}} {
		t.Run(tc.name, func(t *testing.T) { brokerKilledMidStream(t, tc.sasl) })
	}
}

// startLearner runs an unbounded learner of experiment until the test's
// cleanup, logging into log.
func startLearner(t *testing.T, cfg kafkax.Config, experiment string, log *syncBuffer) *learner.Learner {
	t.Helper()
	l, err := learner.New(learner.Config{Kafka: cfg, ExperimentID: experiment, Fresh: true, MinBuffer: 100, BatchSize: 64,
		StateDim: limits.StateDim, NumActions: limits.NumActions, ProgressEvery: -1, Log: zerolog.New(log)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }() // exits when ctx ends
	t.Cleanup(func() {
		stop()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("learn: %v", err)
			}
		case <-time.After(90 * time.Second):
			t.Errorf("the learner did not stop within 90 s of its cancel")
		}
		if t.Failed() {
			t.Logf("learner log (last 20 lines):\n%s", lastLines(log.String(), 20))
		}
	})
	return l
}

func brokerKilledMidStream(t *testing.T, sasl bool) {
	c := kafkatest.Start(t, kafkatest.Options{SASL: sasl})
	cfg := c.Config()
	const experiment, group = "faultbroker", "fault-broker-agg"
	p := startPipeline(t, cfg, experiment, group, 4000, 21)
	var lrnLog syncBuffer
	lrn := startLearner(t, cfg, experiment, &lrnLog)
	ingested := func() int64 { return lrn.Stats().Ingested }

	tagged := func() int64 { return p.agg.Stats().Tagged }
	waitFor(t, 2*time.Minute, func() string { return fmt.Sprintf("only %d records tagged before the kill", tagged()) },
		func() bool { return tagged() >= 5000 })
	warnsBefore := countLevel(p.aggLog.String(), "warn")
	c.Kill(t)
	killedAt := p.sim.Stats().Experiences
	// Keep the broker down until the roles have seen the outage: the
	// aggregator's reader logs a failed connection.
	waitFor(t, 2*time.Minute, func() string { return "the aggregator to log a connection failure after the kill" },
		func() bool { return countLevel(p.aggLog.String(), "warn") > warnsBefore })
	c.StartAgain(t)
	restartedAt, taggedAtRestart, ingestedAtRestart := p.sim.Stats().Experiences, tagged(), ingested()
	t.Logf("killed the broker at %d acknowledged records; %d acknowledged when it served again", killedAt, restartedAt)

	// Recovery without help: every role makes progress on the restarted broker.
	waitFor(t, 3*time.Minute, func() string {
		return fmt.Sprintf("no recovery: %d acknowledged (%d at restart), %d tagged (%d at restart), %d ingested (%d at restart)",
			p.sim.Stats().Experiences, restartedAt, tagged(), taggedAtRestart, ingested(), ingestedAtRestart)
	}, func() bool {
		return p.sim.Stats().Experiences >= restartedAt+5000 && tagged() >= taggedAtRestart+5000 && ingested() >= ingestedAtRestart+5000
	})
	rep := p.stopSimulator(t)
	waitFor(t, 3*time.Minute, func() string { return fmt.Sprintf("group lag %d", kafkatest.GroupLag(cfg, group, kafkax.TopicRaw)) },
		func() bool { return kafkatest.GroupLag(cfg, group, kafkax.TopicRaw) == 0 })
	p.stopAggregator(t)
	// The learner ingests every tagged record, duplicates included.
	waitFor(t, 3*time.Minute, func() string {
		return fmt.Sprintf("the learner ingested %d of %d tagged records", ingested(), endTotal(cfg, kafkax.TopicTagged))
	}, func() bool { return ingested() >= endTotal(cfg, kafkax.TopicTagged) })

	// The outage must have been seen: the aggregator's reader logs every
	// failed connection. (The simulator's writer may ride out a short
	// outage inside its own retries without a warning.)
	if n := countLevel(p.aggLog.String(), "warn"); n == 0 {
		t.Error("the aggregator logged no connection failure: the kill did not interrupt the stream")
	}
	t.Logf("warnings logged: simulator %d, aggregator %d, learner %d", countLevel(p.simLog.String(), "warn"),
		countLevel(p.aggLog.String(), "warn"), countLevel(lrnLog.String(), "warn"))
	for name, log := range map[string]string{"simulator": p.simLog.String(), "aggregator": p.aggLog.String(), "learner": lrnLog.String()} {
		if strings.Contains(log, "authentication failed") {
			t.Errorf("the %s took the restart for a refused credential:\n%s", name, lastLines(log, 10))
		}
	}
	if s := p.agg.Stats(); s.DeadLettered != 0 {
		t.Errorf("aggregator dead-lettered %d records (%v), want 0", s.DeadLettered, s.DeadLetterReasons)
	}
	raw := experienceIDs(t, cfg, kafkax.TopicRaw, false)
	out := experienceIDs(t, cfg, kafkax.TopicTagged, true)
	seen := append(append([]string{}, raw...), out...)
	inRaw := account(t, rep.Experiences, seen, raw)
	acc := account(t, rep.Experiences, seen, out)
	t.Logf("broker SIGKILL, raw topic: %v", inRaw)
	t.Logf("broker SIGKILL: %v", acc)
	if inRaw.Lost != 0 {
		t.Errorf("%d acknowledged ids missing from the raw topic (e.g. %v)", inRaw.Lost, inRaw.Missing)
	}
	if acc.Lost != 0 {
		t.Errorf("%d acknowledged ids missing from the tagged topic (e.g. %v)", acc.Lost, acc.Missing)
	}
}

// aggregatorBatchMax is the aggregator's default BatchMax, which the
// binary uses.
const aggregatorBatchMax = 2000

// TestAggregatorProcessKilled: an `aelp aggregate` process is SIGKILLed
// while it tags a pre-filled raw topic and started again in the same
// group, three times over. No id may be lost; ids tagged but not committed
// before a kill are tagged again (duplicates), at most one batch per
// partition per kill.
func TestAggregatorProcessKilled(t *testing.T) {
	requireReal(t)
	aelpBinary(t) // before the broker starts: the build takes a while
	c := kafkatest.Start(t, kafkatest.Options{})
	cfg := c.Config()
	const experiment, group, partitions = "faultagg", "fault-agg-proc", 6
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := producers.NewSimulator(producers.SimulateConfig{Kafka: cfg, ExperimentID: experiment, Users: 8000,
		Workers: 2, Seed: 31, Partitions: partitions, ProgressEvery: -1, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := s.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}

	args := append(append([]string{"aggregate"}, kafkaArgs(cfg)...),
		"--group", group, "--partitions", strconv.Itoa(partitions), "--log-format", "json")
	// Kill it three times, at 15%, 35% and 55% of the input tagged. Aim
	// each kill at the window between a batch's publish and its commit,
	// as the broker shows it (the tagged topic and the group's committed
	// offsets, polled without pause): freeze the process (SIGSTOP), let
	// its requests in flight land (settle), and look whether the tagged
	// topic is ahead of the commits; if not, let it run (SIGCONT) for a
	// slice of its own CPU time or to its next step the broker sees and
	// freeze it again, until it is caught in the window or has tagged
	// another 10% of the input; then SIGKILL it. Nothing waits for a
	// wall-clock time: on a loaded machine the slices are the same work.
	var probe *prober // once the first run has created the tagged topic
	var procs []*proc
	var beyond []int64
	for i, share := range []int64{15, 35, 55} {
		p := startAelp(t, fmt.Sprintf("aggregate (run %d)", i+1), kafkaEnv(cfg), args...)
		procs = append(procs, p)
		want := rep.Experiences * share / 100
		if probe == nil {
			waitFor(t, 2*time.Minute, func() string { return fmt.Sprintf("the tagged topic (aggregator running: %v)", p.Running()) },
				func() bool { return !p.Running() || endTotal(cfg, kafkax.TopicTagged) > 0 })
			probe = newProber(t, cfg, group)
		}
		var dups int64 // tagged twice after the earlier kills
		for _, b := range beyond {
			dups += b
		}
		limit := want + rep.Experiences/10
		// ahead is the number of records this run tagged beyond the
		// committed offsets, as far as a progress read shows it.
		ahead := func(s aggProgress) int64 { return s.tagged - dups - s.committed }
		polls, stops := 0, 0
		// pollUntil reads the progress without pause until cond holds for a
		// read, and returns that read; it fails the test when the progress
		// stops moving for two minutes (a hung aggregator or broker) or the
		// aggregator exits.
		pollUntil := func(what string, cond func(aggProgress) bool) aggProgress {
			last, since := aggProgress{}, time.Now()
			for {
				if !p.Running() {
					t.Fatalf("aelp %s exited before the kill (waiting for %s): %v", p.Name, what, p.Err())
				}
				polls++
				s, ok := probe.read()
				if ok && cond(s) {
					return s
				}
				if ok && s != last {
					last, since = s, time.Now()
				} else if time.Since(since) > 2*time.Minute {
					t.Fatalf("no progress for 2 minutes waiting for %s: %+v", what, last)
				}
			}
		}
		pollUntil(fmt.Sprintf("%d records tagged", want+dups), func(s aggProgress) bool { return s.tagged-dups >= want })
		for {
			p.Signal(t, syscall.SIGSTOP)
			stops++
			s := probe.settle(t)
			if ahead(s) > 0 || s.tagged-dups >= limit {
				break
			}
			// Let it run for another slice of its own CPU time (a few per
			// batch), or to its next step the broker sees (a partition of a
			// batch published, a commit), whichever comes first, and freeze
			// it there. Where the CPU time cannot be read, the broker's
			// view alone ends the slice.
			cpu0, _ := cpuTime(p.Cmd.Process.Pid)
			slice := time.Duration(1+len(beyond)) * time.Millisecond
			p.Signal(t, syscall.SIGCONT)
			pollUntil("the aggregator's next slice of work", func(cur aggProgress) bool {
				cpu, ok := cpuTime(p.Cmd.Process.Pid)
				return cur != s || (ok && cpu-cpu0 >= slice)
			})
		}
		p.Kill(t)
		// A produce or commit request sent before the SIGSTOP may still be
		// in the broker's hands: count once it has landed.
		s := probe.settle(t)
		lag := rep.Experiences - s.committed
		if lag == 0 {
			t.Fatalf("group lag 0 at kill %d: the kill did not land mid-stream", i+1)
		}
		// The tagged topic holds the committed records, the duplicates of
		// the earlier kills, and what this run tagged beyond its commits.
		beyond = append(beyond, ahead(s))
		t.Logf("kill %d: %d records tagged, lag %d, %d tagged beyond the commits (%d progress reads, %d stops)",
			i+1, s.tagged, lag, ahead(s), polls, stops)
	}

	last := startAelp(t, "aggregate (final run)", kafkaEnv(cfg), args...)
	procs = append(procs, last)
	waitFor(t, 3*time.Minute, func() string {
		return fmt.Sprintf("group lag %d (aggregator running: %v)", kafkatest.GroupLag(cfg, group, kafkax.TopicRaw), last.Running())
	}, func() bool { return !last.Running() || kafkatest.GroupLag(cfg, group, kafkax.TopicRaw) == 0 })
	if err := last.Stop(t, time.Minute); err != nil {
		t.Fatalf("restarted aggregator: %v", err)
	}
	for _, p := range procs {
		if n := countLevel(p.Stderr.String(), "error"); n != 0 {
			t.Errorf("aelp %s logged %d errors", p.Name, n)
		}
	}

	raw := experienceIDs(t, cfg, kafkax.TopicRaw, false)
	out := experienceIDs(t, cfg, kafkax.TopicTagged, true)
	acc := account(t, rep.Experiences, append(append([]string{}, raw...), out...), out)
	bound := int64(len(beyond) * aggregatorBatchMax * partitions)
	t.Logf("aggregator SIGKILL ×%d: %v", len(beyond), acc)
	t.Logf("records tagged beyond the committed offsets at each kill: %v; duplicate bound %d (one batch per partition per kill)", beyond, bound)
	if acc.Lost != 0 {
		t.Errorf("%d ids lost (e.g. %v)", acc.Lost, acc.Missing)
	}
	if acc.Duplicated > bound {
		t.Errorf("%d duplicates after %d kills, want at most one batch per partition per kill (%d)", acc.Duplicated, len(beyond), bound)
	}
	// Exactly the records tagged but not committed at a kill are read and
	// tagged again by the next run: no more, no fewer.
	var wantDup int64
	for _, b := range beyond {
		wantDup += b
	}
	if acc.Duplicated != wantDup {
		t.Errorf("%d duplicates, want %d: the records tagged beyond the committed offsets at the kills", acc.Duplicated, wantDup)
	}
	if len(out) != int(rep.Experiences+acc.Duplicated) {
		t.Errorf("tagged topic holds %d records, want %d produced + %d duplicates", len(out), rep.Experiences, acc.Duplicated)
	}
}

// aggProgress is what the broker shows of an aggregator group's work:
// the records on the tagged topic and the records of the raw topic below
// the group's committed offsets.
type aggProgress struct{ tagged, committed int64 }

// prober reads an aggregator group's progress over one client whose
// connections stay open, about a millisecond a read on loopback: fast
// enough to see the window between a batch's publish and its commit.
type prober struct {
	client   *kafka.Client
	tr       *kafka.Transport
	group    string
	tagged   []kafka.OffsetRequest
	raw      []int
	rawFirst map[int]int64
}

// newProber returns a prober of group on the raw and tagged topics, which
// must exist; its connections are closed by the test's cleanup.
func newProber(t *testing.T, cfg kafkax.Config, group string) *prober {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tagged, err := kafkax.ListOffsets(ctx, cfg, kafkax.TopicTagged)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := kafkax.ListOffsets(ctx, cfg, kafkax.TopicRaw)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := cfg.WithDefaults().Transport()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tr.CloseIdleConnections)
	p := &prober{client: &kafka.Client{Addr: kafka.TCP(cfg.Brokers...), Transport: tr, Timeout: 30 * time.Second},
		tr: tr, group: group, rawFirst: raw.First}
	for part := range tagged.End {
		p.tagged = append(p.tagged, kafka.LastOffsetOf(part))
	}
	for part := range raw.End {
		p.raw = append(p.raw, part)
	}
	return p
}

// read reads the tagged topic's end offsets, then the group's committed
// offsets, in that order: when the result shows the tagged topic ahead of
// the commits, it was so at the second read. ok is false when either read
// fails or the coordinator does not answer for every partition (real Kafka
// answers NOT_COORDINATOR at first).
func (p *prober) read() (s aggProgress, ok bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	lo, err := p.client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{kafkax.TopicTagged: p.tagged}})
	if err != nil || len(lo.Topics[kafkax.TopicTagged]) != len(p.tagged) {
		return s, false
	}
	for _, po := range lo.Topics[kafkax.TopicTagged] {
		if po.Error != nil {
			return s, false
		}
		s.tagged += po.LastOffset
	}
	of, err := p.client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: p.group, Topics: map[string][]int{kafkax.TopicRaw: p.raw}})
	if err != nil || of.Error != nil || len(of.Topics[kafkax.TopicRaw]) != len(p.raw) {
		return s, false
	}
	for _, po := range of.Topics[kafkax.TopicRaw] {
		if po.Error != nil {
			return s, false
		}
		if po.CommittedOffset >= 0 {
			s.committed += po.CommittedOffset - p.rawFirst[po.Partition]
		}
	}
	return s, true
}

// settle returns the group's progress once two reads 50 ms apart agree:
// the requests a frozen or killed aggregator had in flight (a produce, a
// commit) have landed, and nothing else moves it. A slow broker makes it
// wait longer; it fails the test if the progress keeps moving or stays
// unknown for two minutes.
func (p *prober) settle(t *testing.T) aggProgress {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	prev, prevOK := p.read()
	for {
		time.Sleep(50 * time.Millisecond)
		cur, ok := p.read()
		if ok && prevOK && cur == prev {
			return cur
		}
		if time.Now().After(deadline) {
			t.Fatalf("the aggregator group's progress did not settle in 2 minutes: %+v (known: %v)", cur, ok)
		}
		prev, prevOK = cur, ok
	}
}

// jsonLine finds the first zerolog JSON line of out whose message is msg
// and returns it decoded (nil when there is none).
func jsonLine(out, msg string) map[string]any {
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil && m["message"] == msg {
			return m
		}
	}
	return nil
}

// metricsRecord is one TrainingMetrics record and its offset.
type metricsRecord struct {
	offset int64
	m      schemas.TrainingMetrics
}

// readMetrics returns the experiment's TrainingMetrics records.
func readMetrics(t *testing.T, cfg kafkax.Config, experiment string) []metricsRecord {
	t.Helper()
	var out []metricsRecord
	for _, msg := range kafkatest.ReadAll(t, cfg, kafkax.TopicMetrics) {
		var m schemas.TrainingMetrics
		if err := schemas.UnmarshalTrainingMetrics(msg.Value, &m); err != nil {
			t.Fatalf("metrics @%d: %v", msg.Offset, err)
		}
		if m.ExperimentID == experiment {
			out = append(out, metricsRecord{msg.Offset, m})
		}
	}
	return out
}

// checkpointUpdates returns the update count stored in a checkpoint.
func checkpointUpdates(t *testing.T, ck *learner.Checkpoint) int64 {
	t.Helper()
	a, err := ppo.Restore(ck.Agent, rand.New(rand.NewPCG(1, 2)))
	if err != nil {
		t.Fatal(err)
	}
	return a.Updates()
}

// TestLearnerKilledResumes: an `aelp learn --fresh` process trains on a
// tagged topic that keeps growing (simulator and aggregator in-process),
// is SIGKILLed once it has written a checkpoint, and is started again
// without --fresh. It must restore the checkpoint (its parameters, update
// count and offsets), continue the update count above it, keep training
// and publishing metrics, and consume every record exactly from where the
// checkpoint left off.
func TestLearnerKilledResumes(t *testing.T) {
	requireReal(t)
	aelpBinary(t) // before the broker starts: the build takes a while
	c := kafkatest.Start(t, kafkatest.Options{})
	cfg := c.Config()
	const experiment = "faultlearn"
	p := startPipeline(t, cfg, experiment, "fault-learn-agg", 1500, 41)
	waitFor(t, 2*time.Minute, func() string { return fmt.Sprintf("%d records tagged", p.agg.Stats().Tagged) },
		func() bool { return p.agg.Stats().Tagged >= 3000 })

	ckpt := filepath.Join(t.TempDir(), "learner.ckpt")
	args := func(fresh bool) []string {
		a := append(append([]string{"learn"}, kafkaArgs(cfg)...),
			"--experiment", experiment, "--checkpoint", ckpt, "--checkpoint-every", "20", "--metrics-every", "10",
			"--snapshot-every", "50", "--min-buffer", "500", "--batch-size", "64", "--seed", "5", "--log-format", "json")
		if fresh {
			a = append(a, "--fresh")
		}
		return a
	}
	first := startAelp(t, "learn (first)", kafkaEnv(cfg), args(true)...)
	// Kill it once it has checkpointed and trained past the checkpoint
	// (metrics at 30 updates or more), so the restart has work to redo.
	firstReached := int64(0)
	waitFor(t, 3*time.Minute, func() string {
		return fmt.Sprintf("first learner at %d updates (running: %v)", firstReached, first.Running())
	}, func() bool {
		if !first.Running() {
			return true
		}
		if _, err := os.Stat(ckpt); err != nil {
			return false
		}
		for _, r := range readMetrics(t, cfg, experiment) {
			firstReached = max(firstReached, r.m.Updates)
		}
		return firstReached >= 30
	})
	if !first.Running() {
		t.Fatalf("the learner exited before the kill: %v", first.Err())
	}
	first.Kill(t)
	if ws, ok := first.Cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("first learner ended with %v, want killed by SIGKILL", first.Err())
	}
	ck, err := learner.ReadCheckpoint(ckpt) // the last one written before the kill
	if err != nil {
		t.Fatal(err)
	}
	ckUpdates := checkpointUpdates(t, ck)
	if ckUpdates < 20 || ckUpdates%20 != 0 {
		t.Fatalf("checkpoint at %d updates, want a positive multiple of --checkpoint-every 20", ckUpdates)
	}
	var ckConsumed int64
	for _, o := range ck.Offsets {
		ckConsumed += o
	}
	before := readMetrics(t, cfg, experiment)
	var firstMax, firstIngested int64
	for _, r := range before {
		firstMax = max(firstMax, r.m.Updates)
		firstIngested = max(firstIngested, r.m.ExperiencesIngested)
	}
	metricsEnd := endTotal(cfg, kafkax.TopicMetrics)

	second := startAelp(t, "learn (restarted)", kafkaEnv(cfg), args(false)...)
	var after []metricsRecord
	target := max(firstMax, ckUpdates) + 20
	waitFor(t, 3*time.Minute, func() string {
		return fmt.Sprintf("restarted learner published %d metrics records, none at %d updates or more (running: %v)", len(after), target, second.Running())
	}, func() bool {
		if !second.Running() {
			return true
		}
		after = after[:0]
		for _, r := range readMetrics(t, cfg, experiment) {
			if r.offset >= metricsEnd {
				after = append(after, r)
			}
		}
		return len(after) > 0 && after[len(after)-1].m.Updates >= target
	})
	if !second.Running() {
		t.Fatalf("the restarted learner exited: %v", second.Err())
	}
	// More records keep arriving while it trains; stop the sources first so
	// the final count below is of a topic that no longer grows.
	p.stopSimulator(t)
	p.stopAggregator(t)
	if err := second.Stop(t, time.Minute); err != nil {
		t.Fatalf("restarted learner: %v", err)
	}

	log := second.Stderr.String()
	restored := jsonLine(log, "restored checkpoint")
	if restored == nil {
		t.Fatal(`the restarted learner did not log "restored checkpoint"`)
	}
	if got, _ := restored["updates"].(float64); int64(got) != ckUpdates {
		t.Errorf("restored checkpoint at %v updates, the file had %d", restored["updates"], ckUpdates)
	}
	if refill := jsonLine(log, "buffer refilled from the log"); refill == nil {
		t.Error("the restarted learner did not refill its buffer from the log")
	} else if n, _ := refill["records"].(float64); n < 500 {
		t.Errorf("refilled %v records, want at least --min-buffer 500", refill["records"])
	}
	for i, r := range after {
		if r.m.Updates <= ckUpdates {
			t.Errorf("metrics after the restart at %d updates, want above the checkpoint's %d (counting restarted?)", r.m.Updates, ckUpdates)
		}
		if i > 0 && r.m.Updates <= after[i-1].m.Updates {
			t.Errorf("metrics after the restart not increasing: %d then %d updates", after[i-1].m.Updates, r.m.Updates)
		}
	}
	final, err := learner.ReadCheckpoint(ckpt)
	if err != nil {
		t.Fatal(err)
	}
	finalUpdates := checkpointUpdates(t, final)
	if finalUpdates < target {
		t.Errorf("final checkpoint at %d updates, want at least %d", finalUpdates, target)
	}

	// Delivery across the kill: the restarted learner reads from the
	// checkpoint's offsets to its final ones, every record once.
	//   produced   = records below the final offsets (all of the experiment),
	//   delivered  = consumed up to the checkpoint + ingested after the restart,
	//   duplicated = re-read after the restart though the killed learner had
	//                ingested them (a lower bound: its last metrics record's
	//                count minus the checkpoint's).
	var produced int64
	for _, o := range final.Offsets {
		produced += o
	}
	ingested := learnedFrom(t, second.Stdout.String())
	acc := tally{Produced: produced, Delivered: ckConsumed + ingested, Duplicated: max(0, firstIngested-ckConsumed)}
	acc.Lost = acc.Produced - acc.Delivered
	t.Logf("learner SIGKILL: %v", acc)
	t.Logf("checkpoint at %d updates (first run reached %d), restarted run reached %d; %d metrics records after the restart",
		ckUpdates, firstMax, finalUpdates, len(after))
	if acc.Lost != 0 {
		t.Errorf("lost = %d: the restarted learner did not consume exactly from the checkpoint's offsets", acc.Lost)
	}
}

// learnedFrom parses `aelp learn`'s final line, "learned from N
// experiences: …", and returns N.
func learnedFrom(t *testing.T, stdout string) int64 {
	t.Helper()
	var n int64
	i := strings.Index(stdout, "learned from ")
	if i < 0 {
		t.Fatalf("aelp learn printed no summary: %q", stdout)
	}
	if _, err := fmt.Sscanf(stdout[i:], "learned from %d experiences", &n); err != nil {
		t.Fatalf("aelp learn summary %q: %v", stdout[i:], err)
	}
	return n
}
