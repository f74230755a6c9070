package learner

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/aelp/aelp/internal/kafkatest"
	"github.com/aelp/aelp/internal/kafkax"
	"github.com/aelp/aelp/learner/ope"
	"github.com/aelp/aelp/producers"
	"github.com/aelp/aelp/producers/sim"
	"github.com/aelp/aelp/schemas"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
)

// tilted is the state-independent policy giving share of its mass, evenly,
// to the actions favoured and the rest evenly to the others.
func tilted(nA int, favoured []int, share float64) []float64 {
	p := make([]float64, nA)
	for i := range p {
		p[i] = (1 - share) / float64(nA-len(favoured))
	}
	for _, a := range favoured {
		p[a] = share / float64(len(favoured))
	}
	return p
}

// constProbs is a sim.Policy of fixed probabilities.
type constProbs []float64

func (c constProbs) ActionProbs(_ []float64, dst []float64) { copy(dst, c) }

// setConstantPolicy rewrites snap's network to one that ignores the state:
// every weight 0, so every hidden unit is tanh(0) = 0 and the logits are the
// output layer's bias, ln p (the last NumActions parameters, the layout of
// ppo's snapshot format).
func setConstantPolicy(snap *schemas.PolicySnapshot, p []float64) {
	params := make([]byte, len(snap.Params))
	off := len(params) - 8*len(p)
	for i, v := range p {
		binary.LittleEndian.PutUint64(params[off+8*i:], math.Float64bits(math.Log(v)))
	}
	snap.Params = params
}

func TestHeldOut(t *testing.T) {
	n, in := 100_000, 0
	for i := range n {
		u := fmt.Sprintf("user-%d", i)
		if heldOut(u, 0.1) {
			in++
		}
		if heldOut(u, 0.1) != heldOut(u, 0.1) || heldOut(u, 0) {
			t.Fatal("held-out users are not a function of the user id")
		}
		if heldOut(u, 0.1) && !heldOut(u, 0.2) {
			t.Fatalf("%s held out at 10%% but not at 20%%", u)
		}
	}
	// Binomial(100000, 0.1): sd ≈ 95; 6 sd either way.
	if in < 9_430 || in > 10_570 {
		t.Fatalf("%d of %d users held out at 0.1", in, n)
	}
	// The simulator's ids, per seed and stream: 20,000 users of one
	// stream, at shares 0.1 and 0.3 (sd ≤ 0.0033; 6 sd either way).
	for _, seed := range []uint64{1, 42} {
		for stream := range uint64(3) {
			for _, share := range []float64{0.1, 0.3} {
				const users = 20_000
				in := 0
				for i := range users {
					if heldOut(fmt.Sprintf("u-%x-%x-%d", seed, stream, i), share) {
						in++
					}
				}
				if got := float64(in) / users; math.Abs(got-share) > 0.02 {
					t.Errorf("seed %d stream %d: %.3f of the simulator's users held out at %.1f", seed, stream, got, share)
				}
			}
		}
	}
}

func TestOPEConfigValidate(t *testing.T) {
	ok := OPEConfig{Holdout: 0.1, Promote: PromoteLCB, ProtectSegment: "crisis"}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]OPEConfig{
		"lcb without holdout":   {Promote: PromoteLCB},
		"holdout 1":             {Holdout: 1},
		"negative holdout":      {Holdout: -0.1},
		"unknown promote":       {Holdout: 0.1, Promote: "mean"},
		"protect without lcb":   {Holdout: 0.1, ProtectSegment: "crisis"},
		"unknown estimator":     {Holdout: 0.1, Estimator: "DR-V"},
		"min above set":         {Holdout: 0.1, Journeys: 100, MinJourneys: 200},
		"bad eval confidence":   {Holdout: 0.1, Eval: ope.Config{Confidence: 1.5}},
		"NaN holdout":           {Holdout: math.NaN()},
		"negative min journeys": {Holdout: 0.1, MinJourneys: -1},
	} {
		if err := c.Validate(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// TestGateOnEmbeddedBroker: the learner holds out 80% of the users of a
// uniformly logged topic and gates its snapshots with --promote lcb
// --protect-segment crisis. Its snapshots are replaced (snapshotHook):
// while the evaluation set is short they are held back for too few
// journeys; the first evaluated one is a deliberately worse policy (40% of
// its choices the lifestyle creative at the two highest bids, for everyone)
// and is held back with its reason, never reaching the policy topic; the
// next is a better one (40% on the urgent creative at high bids), promoted;
// the same policy again does not beat itself and is held back. A
// simulator following the policy topic meanwhile never acts with a
// held-back snapshot and ends acting with the promoted one.
func TestGateOnEmbeddedBroker(t *testing.T) {
	if testing.Short() {
		t.Skip("reads 115,000 records")
	}
	c := kafkatest.Start(t, kafkatest.Options{})
	cfg := c.Config()
	const exp = "exp-gate"
	sc := sim.DefaultConfig()
	worse := tilted(12, []int{sc.Action(3, 2), sc.Action(2, 2)}, 0.4)
	better := tilted(12, []int{sc.Action(3, 0), sc.Action(2, 0), sc.Action(3, 1)}, 0.4)
	// The truth, on the simulator: worse is below the logging policy
	// overall and on crisis parents, better above.
	truth := func(p []float64) sim.EvalReport {
		r, err := sim.Evaluate(sc, constProbs(p), 40_000, sim.HeldOutSeed(9))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	tu, tw, tb := truth(tilted(12, nil, 0)), truth(worse), truth(better)
	if !(tw.ValuePerUser < tu.ValuePerUser && tu.ValuePerUser < tb.ValuePerUser &&
		tw.Crisis.MeanReturn < tu.Crisis.MeanReturn && tu.Crisis.MeanReturn < tb.Crisis.MeanReturn) {
		t.Fatalf("true values: worse %.3f/%.2f, uniform %.3f/%.2f, better %.3f/%.2f (all/crisis): the test's premise fails",
			tw.ValuePerUser, tw.Crisis.MeanReturn, tu.ValuePerUser, tu.Crisis.MeanReturn, tb.ValuePerUser, tb.Crisis.MeanReturn)
	}

	n := fillTagged(t, cfg, "tagged-gate", exp, 15_000, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	// A simulator acting with whatever the policy topic serves.
	simr, err := producers.NewSimulator(producers.SimulateConfig{Kafka: cfg, ExperimentID: exp, Rate: 500, Workers: 1, Seed: 5,
		FollowPolicy: true, BatchRecords: 64, ProgressEvery: -1, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	simCtx, stopSim := context.WithCancel(ctx)
	simDone := make(chan error, 1)
	go func() { _, err := simr.Run(simCtx); simDone <- err }()

	lc := testConfig(cfg, "tagged-gate", exp, "").withBounded()
	// A quarter of a sample per training record: few updates, the test is
	// about the snapshots.
	lc.SnapshotEvery, lc.MetricsEvery, lc.SamplesPerInsert = 5, 5, 0.25
	lc.OPE = OPEConfig{Holdout: 0.8, Journeys: 20_000, MinJourneys: 7_000, Promote: PromoteLCB, ProtectSegment: "crisis",
		Eval: ope.Config{Resamples: 200, Workers: 2}}
	l, err := New(lc)
	if err != nil {
		t.Fatal(err)
	}
	var worseV, betterV int64 = -1, -1
	var heldForFew int
	l.snapshotHook = func(s *schemas.PolicySnapshot) {
		switch {
		case l.eval.set.Len() < lc.OPE.MinJourneys:
			heldForFew++
		case worseV < 0:
			worseV = s.Version
			setConstantPolicy(s, worse)
		default:
			if betterV < 0 {
				betterV = s.Version
			}
			setConstantPolicy(s, better)
		}
	}
	if err := l.Run(ctx); err != nil {
		t.Fatal(err)
	}
	st := l.Stats()
	if st.Ingested+st.HeldOut != int64(n) || st.HeldOut < int64(n)*7/10 {
		t.Fatalf("ingested %d + held out %d of %d records", st.Ingested, st.HeldOut, n)
	}
	if worseV < 0 || betterV < 0 {
		t.Fatalf("the evaluation set (%d journeys) never reached %d before two snapshots (worse v%d, better v%d)",
			st.EvalJourneys, lc.OPE.MinJourneys, worseV, betterV)
	}

	// The policy topic holds the better snapshot only.
	policyRecs := kafkatest.ReadAll(t, cfg, kafkax.TopicPolicy)
	if len(policyRecs) != 1 {
		t.Fatalf("%d snapshots on the policy topic, want 1 (the better one)", len(policyRecs))
	}
	if v, reason := snapshotOf(t, policyRecs[0]); v != betterV || reason != ReasonBeatsServing {
		t.Fatalf("policy topic: v%d (%s), want the better v%d (%s)", v, reason, betterV, ReasonBeatsServing)
	}
	// The candidates topic: the short-set ones, the worse one, and the
	// better policy again (equal to the serving one: not above it).
	reasons := map[int64]string{}
	for _, m := range kafkatest.ReadAll(t, cfg, kafkax.TopicCandidates) {
		v, reason := snapshotOf(t, m)
		reasons[v] = reason
		switch {
		case v == worseV:
			if reason != ReasonLCBNotAbove {
				t.Fatalf("the worse snapshot v%d held back for %q, want %q", v, reason, ReasonLCBNotAbove)
			}
		case v < worseV:
			if reason != ReasonTooFewJourneys {
				t.Fatalf("snapshot v%d before the set was full held back for %q", v, reason)
			}
		case v > betterV:
			if reason != ReasonLCBNotAbove {
				t.Fatalf("the better policy again (v%d) held back for %q, want %q", v, reason, ReasonLCBNotAbove)
			}
		default:
			t.Fatalf("snapshot v%d on the candidates topic (%s)", v, reason)
		}
	}
	if _, ok := reasons[worseV]; !ok || int64(len(reasons)) != st.HeldBack {
		t.Fatalf("candidates %v: the worse v%d missing, or not every held-back snapshot (%d) there", reasons, worseV, st.HeldBack)
	}

	// The metrics topic carries the evaluations: the worse one's figures,
	// and its bound below the logging policy's, overall and for crisis.
	var worseEval, betterEval *schemas.OffPolicyEvaluation
	for _, m := range kafkatest.ReadAll(t, cfg, kafkax.TopicMetrics) {
		var tm schemas.TrainingMetrics
		if err := schemas.UnmarshalTrainingMetrics(m.Value, &tm); err != nil {
			t.Fatal(err)
		}
		if tm.OPE != nil && tm.OPE.PolicyVersion == worseV {
			worseEval = tm.OPE
		}
		if tm.OPE != nil && tm.OPE.PolicyVersion == betterV {
			betterEval = tm.OPE
		}
	}
	if betterEval == nil || !betterEval.Promoted || betterEval.Reason != ReasonBeatsServing {
		t.Fatalf("metrics of the better snapshot: %+v", betterEval)
	}
	for _, s := range betterEval.Segments[:2] {
		t.Logf("better v%d %-18s journeys %5d estimate %8.3f [%8.3f, %8.3f] ESS %7.0f; logging's LCB %.3f",
			betterV, s.Segment, s.Journeys, s.Estimate, s.LCB, s.UCB, s.ESS, *s.ServingLCB)
	}
	if worseEval == nil || worseEval.Promoted || worseEval.ServingVersion != -1 || len(worseEval.Segments) < 2 {
		t.Fatalf("metrics of the worse snapshot: %+v", worseEval)
	}
	for _, s := range worseEval.Segments {
		if s.ServingLCB == nil || !(s.ESS > 0) || !(s.LCB <= s.Estimate && s.Estimate <= s.UCB) {
			t.Fatalf("worse snapshot, segment %+v", s)
		}
		if (s.Segment == "all" || s.Segment == "tag CRISIS_PARENT") && s.LCB >= *s.ServingLCB {
			t.Fatalf("worse snapshot, %s: lower bound %.3f not below the logging policy's %.3f", s.Segment, s.LCB, *s.ServingLCB)
		}
		t.Logf("worse v%d %-18s journeys %5d estimate %8.3f [%8.3f, %8.3f] ESS %7.0f; logging's LCB %.3f",
			worseV, s.Segment, s.Journeys, s.Estimate, s.LCB, s.UCB, s.ESS, *s.ServingLCB)
	}

	// The simulator acts with the promoted snapshot, and never acted with
	// a held-back one.
	for simr.Stats().PolicyVersion != betterV {
		select {
		case err := <-simDone:
			t.Fatalf("the simulator stopped: %v", err)
		case <-ctx.Done():
			t.Fatalf("the simulator never acted with v%d: %v (acting with v%d)", betterV, ctx.Err(), simr.Stats().PolicyVersion)
		case <-time.After(20 * time.Millisecond):
		}
	}
	seen := simr.Stats().Experiences
	for simr.Stats().Experiences < seen+200 {
		select {
		case err := <-simDone:
			t.Fatalf("the simulator stopped: %v", err)
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	stopSim()
	if err := <-simDone; err != nil {
		t.Fatal(err)
	}
	acted := map[int64]int{}
	for _, m := range kafkatest.ReadAll(t, cfg, kafkax.TopicRaw) {
		var e schemas.Experience
		if err := schemas.UnmarshalExperience(m.Value, &e); err != nil {
			t.Fatal(err)
		}
		acted[e.PolicyVersion]++
	}
	for v, k := range acted {
		if v != -1 && v != betterV {
			t.Fatalf("the simulator acted with v%d (%d records): not promoted (acted %v)", v, k, acted)
		}
	}
	if acted[betterV] < 200 {
		t.Fatalf("%d records acted with the promoted v%d (acted %v)", acted[betterV], betterV, acted)
	}
}

// snapshotOf returns the version and the gate's reason header of a
// snapshot record.
func snapshotOf(t *testing.T, m kafka.Message) (int64, string) {
	t.Helper()
	var s schemas.PolicySnapshot
	if err := schemas.UnmarshalPolicySnapshot(m.Value, &s); err != nil {
		t.Fatal(err)
	}
	reason := ""
	for _, h := range m.Headers {
		if h.Key == HeaderGateReason {
			reason = string(h.Value)
		}
	}
	return s.Version, reason
}

// TestHoldoutCountsUnusableRecords: records of held-out users without a
// behaviour log-prob (NaN) or with log-prob −Inf are dead-lettered with
// their reason, as any record that fails validation, and counted by the
// evaluation set's collector, which drops their journeys (a journey with
// a step missing has no importance weight); the learner goes on, and the
// other held-out journeys are evaluated.
func TestHoldoutCountsUnusableRecords(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.Options{})
	cfg := c.Config()
	const topic, exp, share = "tagged-unusable", "exp-unusable", 0.5
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := kafkax.EnsureTopics(ctx, cfg, kafkax.TopicSpec{Name: topic, Partitions: 3}); err != nil {
		t.Fatal(err)
	}
	s, err := sim.New(sim.DefaultConfig(), 4, 0)
	if err != nil {
		t.Fatal(err)
	}
	var msgs []kafka.Message
	var nanUser, infUser string
	n, heldJourneys := 0, 0
	for range 600 {
		s.RunEpisode(sim.Uniform{N: 12}, func(tr *sim.Transition) {
			n++
			te := schemas.TaggedExperience{Experience: schemas.Experience{ExperimentID: exp}, TagSource: schemas.TagLabel}
			producers.FillExperience(&te.Experience, tr, fmt.Sprintf("%s-%d", exp, n), -1, time.Now())
			te.TaggedAt = te.Timestamp
			held := heldOut(tr.UserID, share)
			if held && tr.Step == 0 {
				heldJourneys++
			}
			switch {
			case held && tr.Step == 1 && nanUser == "":
				nanUser, te.BehaviorLogProb = tr.UserID, math.NaN()
			case held && tr.Step == 0 && nanUser != "" && infUser == "" && tr.UserID != nanUser:
				infUser, te.BehaviorLogProb = tr.UserID, math.Inf(-1)
			}
			val, err := schemas.MarshalTaggedExperience(nil, &te)
			if err != nil {
				t.Fatal(err)
			}
			msgs = append(msgs, kafka.Message{Key: []byte(tr.UserID), Value: val})
		})
	}
	if nanUser == "" || infUser == "" {
		t.Fatal("no held-out user to corrupt")
	}
	w, err := kafkax.NewWriter(cfg, topic, kafkax.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	w.Close()

	lc := testConfig(cfg, topic, exp, "").withBounded()
	lc.OPE = OPEConfig{Holdout: share, Journeys: 1000, MinJourneys: 50, Eval: ope.Config{Resamples: 50}}
	l, err := New(lc)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Run(ctx); err != nil {
		t.Fatal(err)
	}
	st := l.Stats()
	ec := st.EvalCounts
	t.Logf("%d records, %d held-out journeys; dead-lettered %d; evaluation set: %s", n, heldJourneys, st.DeadLettered, ec)
	if st.DeadLettered != 2 || ec.MissingLogProb != 1 || ec.ImpossibleLogProb != 1 || ec.Gaps != 2 {
		t.Fatalf("dead-lettered %d, evaluation set %s: want 2 dead letters, 1 record without a behaviour log-prob, 1 with −Inf, 2 journeys dropped",
			st.DeadLettered, ec)
	}
	if ec.Journeys != int64(heldJourneys-2) || st.EvalJourneys != heldJourneys-2 {
		t.Fatalf("evaluation set holds %d journeys (collector %d), want the %d held out less the 2 dropped", st.EvalJourneys, ec.Journeys, heldJourneys)
	}
	if st.LastOPE == nil || len(st.LastOPE.Segments) == 0 {
		t.Fatalf("no snapshot evaluated on the set: %+v", st.LastOPE)
	}
	reasons := map[string]int{}
	for _, m := range kafkatest.ReadAll(t, cfg, kafkax.TopicDeadLetter) {
		for _, h := range m.Headers {
			if h.Key == kafkax.HeaderError {
				reasons[string(h.Value)]++
			}
		}
	}
	if reasons["invalid:behavior_logprob"] != 2 {
		t.Fatalf("dead-letter reasons %v, want 2 invalid:behavior_logprob", reasons)
	}
}
