package pipeline

import (
	"bytes"
	"context"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aelp/aelp/consumers"
	"github.com/aelp/aelp/internal/kafkatest"
	"github.com/aelp/aelp/internal/kafkax"
	"github.com/aelp/aelp/learner"
	"github.com/aelp/aelp/schemas"
	"github.com/rs/zerolog"
)

// TestRunEndToEnd runs the whole loop — simulator, aggregator, learner,
// snapshots back to the simulator — on a short fixed-seed run, and checks
// what `make run` promises: every published experience is tagged and
// learned from, the summary reports it, and the learned policy's
// crisis-segment return is above the logging policy's on held-out
// journeys.
//
// The run is small (4,000 users) so that it stays under a minute under
// -race on a busy 2-core machine; three samples drawn per insert give the
// learner more updates than a run of 8,000 users gives at one (357
// against 247), and one PPO worker trains faster than two when the cores
// are shared (the race detector makes their hand-offs costly). The learned
// policy's quality varies from run to run (the pipeline's timing decides
// which snapshots act): under -race its crisis return was 24.7–38.0 in
// ten runs, so the policies are compared on 8,000 held-out journeys,
// where the 95% intervals are about ±1.7 (the logging policy: 19.5).
func TestRunEndToEnd(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.Options{})
	// ctx only ends a hung run: the run itself is bounded by its users.
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	var progress bytes.Buffer
	// The roles log concurrently; warnings is read only once Run has
	// returned and every role has stopped.
	var warnings bytes.Buffer
	net := learner.DefaultPPO(16, 12)
	net.Workers = 1
	const curveEpisodes = 300
	sum, err := Run(ctx, Config{Kafka: c.Config(), DataDir: t.TempDir(), ExperimentID: "e2e", Episodes: 4000, Seed: 42,
		MaxAhead: 4000, Learner: learner.Config{SamplesPerInsert: 3, SnapshotEvery: 50, PPO: net},
		EvalEpisodes: 8000, CurveEpisodes: curveEpisodes, Progress: &progress,
		Log: zerolog.New(zerolog.SyncWriter(&warnings)).Level(zerolog.WarnLevel)})
	if err != nil {
		t.Fatalf("run: %v\nprogress:\n%s\nwarnings:\n%s", err, progress.String(), warnings.String())
	}
	var table bytes.Buffer
	sum.Print(&table)
	t.Logf("%s", table.String())
	defer func() {
		if t.Failed() {
			t.Logf("progress:\n%s\nwarnings:\n%s", progress.String(), warnings.String())
		}
	}()

	// Delivery is at least once: a retried produce or a redelivered batch
	// repeats a record, never loses one. Every id the simulator had
	// acknowledged is in the raw topic, every raw record was tagged (none
	// dead-lettered), and the learner ingested every tagged record.
	rawIDs, acted := map[string]bool{}, 0
	raw := kafkatest.ReadAll(t, c.Config(), kafkax.TopicRaw)
	for _, m := range raw {
		var e schemas.Experience
		if err := schemas.UnmarshalExperience(m.Value, &e); err != nil {
			t.Fatal(err)
		}
		rawIDs[e.ID] = true
		if e.PolicyVersion >= 0 {
			acted++
		}
	}
	offs, err := kafkax.ListOffsets(ctx, c.Config(), kafkax.TopicTagged)
	if err != nil {
		t.Fatal(err)
	}
	tagged := offs.Total()
	t.Logf("raw topic %d records (%d ids), tagged topic %d records; published %d, tagged %d, ingested %d",
		len(raw), len(rawIDs), tagged, sum.Sim.Experiences, sum.Agg.Tagged, sum.Learn.Ingested)
	if int64(len(rawIDs)) != sum.Sim.Experiences {
		t.Errorf("published %d, raw topic holds %d ids: want equal", sum.Sim.Experiences, len(rawIDs))
	}
	if sum.Agg.DeadLettered != 0 || sum.Agg.Tagged < int64(len(raw)) {
		t.Errorf("raw topic holds %d records, the aggregator tagged %d and dead-lettered %d: want all tagged",
			len(raw), sum.Agg.Tagged, sum.Agg.DeadLettered)
	}
	if sum.Agg.Tagged != tagged || sum.Learn.Ingested != tagged {
		t.Errorf("tagged topic holds %d records, the aggregator reports %d tagged, the learner %d ingested: want all equal",
			tagged, sum.Agg.Tagged, sum.Learn.Ingested)
	}
	// The run's aggregator is in aelp aggregate's default group, and the
	// run ended once that group had committed the whole raw topic: an
	// aelp aggregate started on these topics has nothing to tag again.
	group := consumers.DefaultAggregateConfig().Group
	if lag := kafkatest.GroupLag(c.Config(), group, kafkax.TopicRaw); lag != 0 {
		t.Errorf("group %s lags %d records on %s after the run, want 0", group, lag, kafkax.TopicRaw)
	}
	if sum.Sim.PolicyVersion < 0 {
		t.Errorf("no policy snapshot reached the simulator")
	}
	// The learner's loop is one goroutine inside the stream: its time in
	// updates and waiting for records fits in the streaming time.
	if l := sum.Learn; l.UpdateTime <= 0 || l.WaitTime < 0 || l.UpdateTime+l.WaitTime > sum.Elapsed || sum.HeldBack < 0 {
		t.Errorf("learner updating %v and waiting %v, simulators held back %v, of %v streaming", l.UpdateTime, l.WaitTime, sum.HeldBack, sum.Elapsed)
	}
	if !strings.Contains(table.String(), "learner's loop: updating / waiting for records") {
		t.Error("the summary has no line of the learner's loop")
	}
	if acted == 0 {
		t.Errorf("no experience carries a learned policy's version")
	}
	// The Bayes limit is over the run's own records, each once, under
	// the logging policy and the snapshots that acted; no tagger beats it
	// beyond the sample's luck.
	if lim := sum.TagLimit; lim == nil {
		t.Error("no Bayes limit of the run's stream")
	} else {
		if int64(lim.Records) != sum.Sim.Experiences || lim.Users != 4000 || lim.Versions < 2 {
			t.Errorf("Bayes limit over %d records of %d users, %d policies; published %d", lim.Records, lim.Users, lim.Versions, sum.Sim.Experiences)
		}
		if tg, b := lim.Unlabelled[0].F1, lim.Unlabelled[1].F1; tg > b+0.02 || b < 0.8 {
			t.Errorf("unlabelled records: tagger F1 %.3f, Bayes limit %.3f", tg, b)
		}
	}
	if h := sum.Agg.TaggerHeldOut; int64(h.N()) != sum.Agg.TaggerLabelled || h.N() == 0 || !(h.ECE() <= 0.1) {
		t.Errorf("held-out calibration over %d records (%d labelled trained on), ECE %.4f", h.N(), sum.Agg.TaggerLabelled, h.ECE())
	}
	if !strings.Contains(table.String(), "Bayes limit of this run's stream") || !strings.Contains(table.String(), "held-out labelled records") {
		t.Errorf("summary lacks the Bayes limit:\n%s", table.String())
	}
	metrics := kafkatest.ReadAll(t, c.Config(), kafkax.TopicMetrics)
	if len(metrics) == 0 {
		t.Fatal("no metrics records")
	}
	for _, m := range metrics {
		var tm schemas.TrainingMetrics
		if err := schemas.UnmarshalTrainingMetrics(m.Value, &tm); err != nil {
			t.Fatalf("metrics record %d: %v", m.Offset, err)
		}
	}

	l := sum.Learn
	// se is the standard error of the mean batch crisis share with the
	// population variance (divisor n), as before the running statistics.
	b := l.Batches
	n := float64(b.CrisisShare.N())
	meas, exp := b.CrisisShare.Mean(), b.ExpectedCrisisShare.Mean()
	se := math.Sqrt(b.CrisisShare.Var() * (n - 1) / n / n)
	if math.Abs(meas-exp) > 3*se+1e-12 {
		t.Errorf("mean batch crisis ratio %.5f, expected %.5f: more than 3 s.e. (%.5f) apart", meas, exp, se)
	}
	if exp <= l.Buffer.CrisisFraction {
		t.Errorf("importance sampling did not raise the crisis share: expected batch ratio %.3f, buffer %.3f", exp, l.Buffer.CrisisFraction)
	}

	// The learning rate fell linearly over the run: a third of its start
	// at the last possible update, a little above that at the last one.
	if lr0, last := learner.DefaultPPO(16, 12).LR, l.Last.LearningRate; !(last >= lr0/3 && last <= lr0/2) {
		t.Errorf("last learning rate %g, want in [%g, %g] (decayed over the run)", last, lr0/3, lr0/2)
	}

	learned, logging := sum.Learned.Crisis, sum.Logging.Crisis
	if learned.MeanReturn-learned.ReturnCI <= logging.MeanReturn+logging.ReturnCI {
		t.Errorf("learned crisis return %.2f ± %.2f is not above the logging policy's %.2f ± %.2f",
			learned.MeanReturn, learned.ReturnCI, logging.MeanReturn, logging.ReturnCI)
	}
	// The learning curve has every snapshot, the final one last, each
	// evaluated on the asked number of journeys.
	if len(sum.Curve) < 2 {
		t.Fatalf("learning curve has %d points, want the periodic and the final snapshots", len(sum.Curve))
	}
	for i, p := range sum.Curve {
		if p.Eval.Episodes != curveEpisodes || (i > 0 && p.Version <= sum.Curve[i-1].Version) {
			t.Errorf("curve point %d: version %d, %d journeys", i, p.Version, p.Eval.Episodes)
		}
	}
	if last := sum.Curve[len(sum.Curve)-1].Version; last != l.PolicyVersion {
		t.Errorf("last curve point v%d, want the final snapshot v%d", last, l.PolicyVersion)
	}
	if !strings.Contains(table.String(), "learning curve") {
		t.Errorf("summary lacks the learning curve:\n%s", table.String())
	}
	if !strings.Contains(table.String(), "learned (PPO)") || !strings.Contains(table.String(), "oracle (exact)") {
		t.Errorf("summary table lacks the policy rows:\n%s", table.String())
	}
}

func TestDecayUpdates(t *testing.T) {
	cfg := Config{Episodes: 60_000}
	cfg.setDefaults()
	l := learner.Config{SamplesPerInsert: 1, BatchSize: 256}
	// 60,000 users × 8 steps / 256 = 1,875 possible updates; 1.5 × that.
	if got := decayUpdates(cfg, l); got != 2813 {
		t.Errorf("decayUpdates = %d, want 2813", got)
	}
	l.SamplesPerInsert = 2
	if got := decayUpdates(cfg, l); got != 5625 {
		t.Errorf("decayUpdates at 2 samples per insert = %d, want 5625", got)
	}
}

// TestRunLive runs simulate (decisions and outcomes) → join → aggregate →
// learn, small, on an embedded broker: every decision becomes one
// experience, every experience is tagged and ingested, the learner
// updates, and the summary has its join section.
func TestRunLive(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cfg := DefaultConfig()
	cfg.DataDir, cfg.Episodes, cfg.EvalEpisodes, cfg.Live = t.TempDir(), 300, 200, true
	cfg.Learner.MinBuffer, cfg.Learner.BatchSize = 128, 64
	sum, err := Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Join == nil {
		t.Fatal("no join figures")
	}
	j := sum.Join
	if j.Read[0] != sum.Sim.Experiences || j.Written != j.Read[0] {
		t.Errorf("%d decisions published, %d read, %d experiences written", sum.Sim.Experiences, j.Read[0], j.Written)
	}
	if sum.Agg.Tagged != j.Written || sum.Learn.Ingested != j.Written {
		t.Errorf("%d joined, %d tagged, %d ingested", j.Written, sum.Agg.Tagged, sum.Learn.Ingested)
	}
	if sum.Learn.Updates == 0 || j.Core.Pending != 0 {
		t.Errorf("%d updates, %d decisions pending at the end", sum.Learn.Updates, j.Core.Pending)
	}
	var out strings.Builder
	sum.Print(&out)
	if !strings.Contains(out.String(), "join (live: decisions and delayed outcomes)") {
		t.Errorf("summary without the join section:\n%s", out.String())
	}
}

// TestRunKeepsTaggerState: on brokers that outlive a run, the run's
// aggregator keeps its learned tagger's state in the data directory, and
// the next run's aggregator — which resumes from the group's committed
// offsets — resumes with what the first had learned; the summary says so.
func TestRunKeepsTaggerState(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	dir := t.TempDir()
	run := func(id string) Summary {
		cfg := DefaultConfig()
		cfg.Kafka, cfg.DataDir, cfg.ExperimentID, cfg.Episodes, cfg.EvalEpisodes = c.Config(), dir, id, 400, 200
		cfg.Learner.MinBuffer, cfg.Learner.BatchSize = 128, 64
		sum, err := Run(ctx, cfg)
		if err != nil {
			t.Fatalf("run %s: %v", id, err)
		}
		return sum
	}
	first := run("first")
	if first.Agg.TaggerResumed != 0 || first.Agg.TaggerLabelled == 0 {
		t.Fatalf("first run: resumed %d, labelled %d; want 0 and some", first.Agg.TaggerResumed, first.Agg.TaggerLabelled)
	}
	second := run("second")
	if second.Agg.TaggerResumed != first.Agg.TaggerLabelled || second.Agg.TaggerLabelled <= second.Agg.TaggerResumed {
		t.Errorf("second run: resumed %d, labelled %d; want %d and more", second.Agg.TaggerResumed, second.Agg.TaggerLabelled, first.Agg.TaggerLabelled)
	}
	var out strings.Builder
	second.Print(&out)
	if want := "resumed with " + strconv.FormatInt(first.Agg.TaggerLabelled, 10) + " labelled records"; !strings.Contains(out.String(), want) {
		t.Errorf("summary lacks %q:\n%s", want, out.String())
	}
	if got := taggerStatePath(Config{DataDir: dir}); got != "" {
		t.Errorf("an in-memory embedded broker keeps the tagger state in %q, want nowhere", got)
	}
}

// TestPPOWorkers checks that a run's learner computes its updates on
// PPOWorkers goroutines both from DefaultConfig and when the learner's
// configuration is left zero (and that a count given is kept).
func TestPPOWorkers(t *testing.T) {
	kcfg := kafkax.DefaultConfig()
	d := DefaultConfig()
	if got := d.learnerConfig(kcfg).PPO.Workers; got != PPOWorkers {
		t.Errorf("DefaultConfig: %d PPO workers, want %d", got, PPOWorkers)
	}
	zero := Config{Sim: d.Sim}
	if got := zero.learnerConfig(kcfg).PPO.Workers; got != PPOWorkers {
		t.Errorf("zero learner configuration: %d PPO workers, want %d", got, PPOWorkers)
	}
	d.Learner.PPO.Workers = 3
	if got := d.learnerConfig(kcfg).PPO.Workers; got != 3 {
		t.Errorf("--ppo-workers 3: %d PPO workers", got)
	}
}
