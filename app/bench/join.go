package bench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/aelp/aelp/consumers"
	"github.com/aelp/aelp/consumers/join"
	"github.com/aelp/aelp/internal/kafkax"
	"github.com/aelp/aelp/producers"
	"github.com/aelp/aelp/producers/sim"
	"github.com/aelp/aelp/schemas"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
	"golang.org/x/sync/errgroup"
)

// The join stage's settings. The throughput stage joins a live simulator
// stream of Config.Users/joinUserShare users arriving at joinArrivalRate
// per second of event time, so the stream spans several default windows
// (10 min) and most experiences are emitted by a watermark, not by the
// final flush. The latency phase uses a short window so that it closes
// within the phase.
const (
	joinUserShare   = 4
	joinArrivalRate = 1.0
	// joinRounds is how many times the pass-through and the join each
	// read the stream, in turn; their rates are over the rounds summed.
	joinRounds = 3
	// JoinLatencyWindow and JoinLatencyGrace are the join's window and
	// grace in the latency phase.
	JoinLatencyWindow = 5 * time.Second
	JoinLatencyGrace  = time.Second
)

// JoinMeasure is what MeasureJoin measured.
type JoinMeasure struct {
	// Measure counts the input records (decisions and outcomes) after the
	// first poll, from that poll to the last experience written.
	Measure
	// Decisions and Outcomes are the records joined; ByWatermark the
	// experiences a watermark emitted (the others the final flush).
	Decisions, Outcomes, ByWatermark int64
}

// MeasureJoin runs a joiner configured by cfg over a stream that holds
// decisions decision records and outcomes outcome records, and measures it
// as PassThrough is measured: the clock starts at the first poll's records
// (the group join and the first fetch excluded) and the records of that
// poll are not counted; once every record was read the joiner is flushed
// (the end of the input closes every window) and the clock stops when the
// last experience is written. Invalid records fail it.
func MeasureJoin(ctx context.Context, cfg consumers.JoinConfig, decisions, outcomes int64) (JoinMeasure, error) {
	j, err := consumers.NewJoiner(cfg)
	if err != nil {
		return JoinMeasure{}, err
	}
	jctx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- j.Run(jctx) }()
	read := func(st consumers.JoinStats) int64 { return st.Read[0] + st.Read[1] }
	t := time.NewTicker(pollEvery)
	defer t.Stop()
	var start time.Time
	var first int64
	var m JoinMeasure
	for {
		st := j.Stats()
		if start.IsZero() && read(st) > 0 {
			start, first = time.Now(), read(st)
		}
		if read(st) >= decisions+outcomes {
			j.Flush()
		}
		if st.DeadLettered > 0 {
			stop()
			<-done
			return JoinMeasure{}, fmt.Errorf("join: %d records dead-lettered (%v)", st.DeadLettered, st.DeadLetterReasons)
		}
		if st.Written >= decisions && !start.IsZero() {
			m = JoinMeasure{Measure: Measure{Records: read(st) - first, Elapsed: time.Since(start)},
				Decisions: st.Written, Outcomes: st.Read[1], ByWatermark: st.EventLatencyN}
			break
		}
		select {
		case <-ctx.Done():
			stop()
			<-done
			return JoinMeasure{}, ctx.Err()
		case err := <-done:
			if err == nil {
				err = errors.New("stopped before writing every experience")
			}
			return JoinMeasure{}, fmt.Errorf("join: %w", err)
		case <-t.C:
		}
	}
	stop()
	if err := <-done; err != nil {
		return JoinMeasure{}, err
	}
	return m, nil
}

// measureJoin publishes a live stream (decisions and delayed outcomes),
// then measures, joinRounds times in turn, the pass-through of both topics
// and the join over them, each round with a new consumer group; the
// measures are the rounds' records and elapsed times summed.
func measureJoin(ctx context.Context, cfg Config, kcfg kafkax.Config, t topics, expID string, rep *Report, progress func(string, ...any)) error {
	live := sim.DefaultLiveConfig()
	live.ArrivalRate = joinArrivalRate
	s, err := producers.NewLiveSimulator(producers.LiveSimulateConfig{
		SimulateConfig: producers.SimulateConfig{Kafka: kcfg, PolicyTopic: t.policy, ExperimentID: expID + "-live",
			Users: int64(max(1, cfg.Users/joinUserShare)), Seed: cfg.Seed, Sim: cfg.Sim, Partitions: cfg.Partitions,
			ProgressEvery: -1, Log: cfg.Log},
		DecisionsTopic: t.decisions, OutcomesTopic: t.outcomes, Live: live,
	})
	if err != nil {
		return err
	}
	srep, err := s.Run(ctx)
	if err != nil {
		return err
	}
	progress("live simulate: %d decisions, %d outcomes", srep.Decisions, srep.Outcomes)
	jc := consumers.DefaultJoinConfig()
	jc.Kafka, jc.DecisionsTopic, jc.OutcomesTopic, jc.OutTopic = kcfg, t.decisions, t.outcomes, t.joined
	jc.LateTopic, jc.DeadLetterTopic = t.late, t.dlq
	jc.Partitions, jc.Log = cfg.Partitions, cfg.Log
	jc.Join.Limits = cfg.limits()
	// The rounds alternate, so that a change of the machine's load
	// during the stage weighs on both alike.
	rep.Join, rep.JoinPass = JoinMeasure{}, Measure{}
	for round := range joinRounds {
		pass, err := PassThrough(ctx, PassThroughConfig{
			Kafka: kcfg, In: t.decisions, More: []string{t.outcomes}, Out: t.joinPass,
			Group: fmt.Sprintf("aelp-bench-joinpass-%s-%d", expID, round), Records: srep.Decisions + srep.Outcomes,
		})
		if err != nil {
			return err
		}
		progress("pass-through of decisions and outcomes, round %d: %d records in %s", round+1, pass.Records, pass.Elapsed.Round(time.Millisecond))
		jc.Group = fmt.Sprintf("aelp-bench-join-%s-%d", expID, round)
		m, err := MeasureJoin(ctx, jc, srep.Decisions, srep.Outcomes)
		if err != nil {
			return err
		}
		progress("join, round %d: %d records in %s (%d experiences, %d by a watermark)", round+1, m.Records,
			m.Elapsed.Round(time.Millisecond), m.Decisions, m.ByWatermark)
		rep.JoinPass.Records += pass.Records
		rep.JoinPass.Elapsed += pass.Elapsed
		m.Records += rep.Join.Records
		m.Elapsed += rep.Join.Elapsed
		rep.Join = m
	}
	return nil
}

// joinLatency runs a join (window JoinLatencyWindow, grace
// JoinLatencyGrace) beside a producer that writes, at cfg.Rate records per
// second, decisions stamped with the wall clock and an impression for each
// at once, and measures from each decision's window end (its timestamp +
// the window) to its experience's arrival at a reader of the join's
// output. The decisions of the first cfg.LatencyDuration are measured; the
// producer goes on for a window and twice the grace more, so that the
// stream's own watermark closes them, not the idle advance.
func joinLatency(ctx context.Context, cfg Config, kcfg kafkax.Config, t topics, rep *Report, progress func(string, ...any)) error {
	jc := consumers.DefaultJoinConfig()
	jc.Kafka, jc.DecisionsTopic, jc.OutcomesTopic, jc.OutTopic = kcfg, t.lDecisions, t.lOutcomes, t.lJoined
	jc.LateTopic, jc.DeadLetterTopic, jc.Group = t.late, t.dlq, "aelp-bench-joinlat-"+t.lJoined
	jc.Partitions, jc.Log = cfg.Partitions, cfg.Log
	jc.Join.Limits, jc.Join.Windows, jc.Join.Grace = cfg.limits(), join.Windows{Default: JoinLatencyWindow}, JoinLatencyGrace
	j, err := consumers.NewJoiner(jc)
	if err != nil {
		return err
	}
	jp, err := startJoinProbe(ctx, kcfg, t.lJoined, JoinLatencyWindow)
	if err != nil {
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	jctx, stopJoin := context.WithCancel(gctx)
	defer stopJoin()
	g.Go(func() error { return j.Run(jctx) })
	g.Go(func() error {
		defer stopJoin()
		n, elapsed, err := sendDecisions(gctx, cfg, kcfg, t, cfg.LatencyDuration, cfg.LatencyDuration+JoinLatencyWindow+2*JoinLatencyGrace)
		if err != nil {
			return err
		}
		rep.JoinStreamRate = Measure{Records: 2 * n, Elapsed: elapsed}
		return jp.waitFor(gctx, n, 2*time.Minute)
	})
	runErr := g.Wait()
	lat, perr := jp.finish()
	if runErr != nil && !errors.Is(runErr, context.Canceled) {
		return fmt.Errorf("join latency phase: %w", runErr)
	}
	if perr != nil {
		return perr
	}
	if st := j.Stats(); st.DeadLettered > 0 {
		return fmt.Errorf("join latency phase: %d records dead-lettered (%v)", st.DeadLettered, st.DeadLetterReasons)
	}
	rep.JoinLatency = lat
	progress("join latency phase: %d decisions measured at %.0f records/s", lat.Records, rep.JoinStreamRate.Rate())
	return nil
}

// sendDecisions writes, for total wall time, decisions stamped with the
// wall clock and one impression for each, cfg.Rate records per second in
// batches of 2×32; the decisions of the first measured wall time get ids
// with the prefix measuredPrefix. It returns how many of those it wrote
// and the time it took to write them.
func sendDecisions(ctx context.Context, cfg Config, kcfg kafkax.Config, t topics, measured, total time.Duration) (int64, time.Duration, error) {
	dw, err := kafkax.NewWriter(kcfg, t.lDecisions, kafkax.WriterOptions{})
	if err != nil {
		return 0, 0, err
	}
	defer dw.Close()
	ow, err := kafkax.NewWriter(kcfg, t.lOutcomes, kafkax.WriterOptions{})
	if err != nil {
		return 0, 0, err
	}
	defer ow.Close()
	const batch = 32
	probs := make([]float64, cfg.Sim.NumActions())
	for i := range probs {
		probs[i] = 1 / float64(len(probs))
	}
	state := make([]float32, cfg.Sim.StateDim)
	start := time.Now()
	var seq, n int64
	var took time.Duration
	decs, outs := make([]kafka.Message, batch), make([]kafka.Message, batch)
	for time.Since(start) < total {
		now := time.Now().Truncate(time.Millisecond)
		inMeasure := now.Sub(start) < measured
		for i := range batch {
			seq++
			prefix := "fill-"
			if inMeasure {
				prefix = measuredPrefix
			}
			id, user := prefix+strconv.FormatInt(seq, 10), "u-"+strconv.FormatInt(seq%1000, 10)
			d := schemas.Decision{DecisionID: id, ExperimentID: "bench-join", UserID: user, EpisodeID: id, Timestamp: now,
				State: state, BehaviorLogProb: math.Log(probs[0]), ActionProbs: probs, PolicyVersion: -1}
			o := schemas.Outcome{OutcomeID: id + "-imp", DecisionID: id, UserID: user, Timestamp: now, Kind: schemas.KindImpression, Cost: 0.01}
			dv, err := schemas.MarshalDecision(nil, &d)
			if err != nil {
				return 0, 0, err
			}
			ov, err := schemas.MarshalOutcome(nil, &o)
			if err != nil {
				return 0, 0, err
			}
			decs[i] = kafka.Message{Key: []byte(user), Value: dv, Time: now}
			outs[i] = kafka.Message{Key: []byte(user), Value: ov, Time: now}
		}
		if err := kafkax.WriteAll(ctx, kcfg, dw, zerolog.Nop(), decs); err != nil {
			return 0, 0, err
		}
		if err := kafkax.WriteAll(ctx, kcfg, ow, zerolog.Nop(), outs); err != nil {
			return 0, 0, err
		}
		if inMeasure {
			n += batch
			took = time.Since(start)
		}
		due := start.Add(time.Duration(float64(2*seq) / cfg.Rate * float64(time.Second)))
		if d := time.Until(due); d > 0 {
			select {
			case <-ctx.Done():
				return 0, 0, ctx.Err()
			case <-time.After(d):
			}
		}
	}
	return n, took, nil
}

// measuredPrefix starts the ids of the decisions joinLatency measures.
const measuredPrefix = "lat-"

// startJoinProbe starts a probe of the join's output topic that records,
// per measured experience, its arrival time minus its decision's window
// end.
func startJoinProbe(ctx context.Context, kcfg kafkax.Config, topic string, window time.Duration) (*probe, error) {
	var e schemas.Experience
	return startProbeFunc(ctx, kcfg, topic, func(m *kafka.Message, now time.Time) (float64, bool, error) {
		if err := schemas.UnmarshalExperience(m.Value, &e); err != nil {
			return 0, false, fmt.Errorf("decode experience: %w", err)
		}
		return now.Sub(e.Timestamp.Add(window)).Seconds(), strings.HasPrefix(e.ID, measuredPrefix), nil
	})
}
