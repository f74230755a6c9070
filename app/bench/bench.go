// Package bench measures the aelp pipeline against raw Kafka for `aelp
// bench`: the records per second each stage sustains (simulate, aggregate,
// learn ingest, PPO updates), each beside a raw kafka-go pass over records
// of the same size in the same run, the latency from produce to a tagged
// record and to its first use in a training batch beside a raw
// produce→consume pass at the same rate. The in-process micro-benchmarks
// (codec, classifier, simulator, buffer, PPO update) are Go benchmarks of
// their packages, for `go test -bench`; this package links no testing.
//
// It wires the roles (producers, consumers, learner) exactly as the CLI
// does and adds only measurement; the raw baselines use the same writer and
// reader constructors (internal/kafkax) so that the ratio isolates what the
// roles add: simulation, Avro encoding and decoding, classification,
// training.
package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/aelp/aelp/consumers"
	"github.com/aelp/aelp/internal/broker"
	"github.com/aelp/aelp/internal/kafkax"
	"github.com/aelp/aelp/learner"
	"github.com/aelp/aelp/producers"
	"github.com/aelp/aelp/producers/sim"
	"github.com/aelp/aelp/schemas"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"
)

// Config configures a bench run. The zero value of a field takes the
// default named in its comment.
type Config struct {
	// Kafka is the connection; with no Brokers an embedded broker is
	// started in-process on a free port.
	Kafka kafkax.Config
	// Users is the number of simulated users (journeys) pushed through the
	// throughput stages. Default 20,000 (about 100,000 records). The join
	// stage joins the live stream of a quarter of them.
	Users int
	// Workers is the number of simulator goroutines (and of raw producer
	// goroutines). Default 2.
	Workers int
	// Partitions of every topic the run creates. Default 6.
	Partitions int
	// Rate is the records per second of the latency phase, below what the
	// learner sustains so that latency does not grow with the run's
	// length. Default 3,000.
	Rate float64
	// LatencyDuration is how long the latency phase produces, for the
	// pipeline and again for the raw baseline. Default 15 s.
	LatencyDuration time.Duration
	// SkipLatency skips the latency phase.
	SkipLatency bool
	// Seed seeds the simulator and the learner. Default 1.
	Seed uint64
	// Sim is the simulator model. Default sim.DefaultConfig().
	Sim sim.Config
	// Progress receives one line per finished measurement. Default
	// io.Discard.
	Progress io.Writer
	// Log receives the roles' logs. Default: none.
	Log zerolog.Logger
}

// DefaultConfig returns the defaults of `aelp bench`: 20,000 users on 2
// goroutines, 6 partitions, a latency phase of 15 s at 3,000 records/s,
// seed 1, sim.DefaultConfig(), an embedded broker; every zero field takes
// the value given here.
func DefaultConfig() Config {
	return Config{Users: 20_000, Workers: 2, Partitions: 6, Rate: 3000, LatencyDuration: 15 * time.Second, Seed: 1,
		Sim: sim.DefaultConfig()}
}

func (c *Config) setDefaults() {
	d := DefaultConfig()
	if c.Users == 0 {
		c.Users = d.Users
	}
	if c.Workers == 0 {
		c.Workers = d.Workers
	}
	if c.Partitions == 0 {
		c.Partitions = d.Partitions
	}
	if c.Rate == 0 {
		c.Rate = d.Rate
	}
	if c.LatencyDuration == 0 {
		c.LatencyDuration = d.LatencyDuration
	}
	if c.Seed == 0 {
		c.Seed = d.Seed
	}
	if c.Sim == (sim.Config{}) {
		c.Sim = d.Sim
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
}

// Validate reports the first invalid field (after defaults).
func (c Config) Validate() error {
	c.setDefaults()
	switch {
	case c.Users < 1:
		return fmt.Errorf("users %d: must be at least 1", c.Users)
	case c.Workers < 1:
		return fmt.Errorf("workers %d: must be at least 1", c.Workers)
	case c.Partitions < 1:
		return fmt.Errorf("partitions %d: must be at least 1", c.Partitions)
	case !(c.Rate > 0) || math.IsInf(c.Rate, 0):
		return fmt.Errorf("rate %v: must be positive and finite", c.Rate)
	case c.LatencyDuration < time.Second:
		return fmt.Errorf("latency duration %s: must be at least 1s", c.LatencyDuration)
	}
	if err := c.Sim.Validate(); err != nil {
		return err
	}
	if len(c.Kafka.Brokers) > 0 {
		return c.Kafka.Validate()
	}
	return nil
}

// Report is what a bench run measured.
type Report struct {
	// Config is the configuration run, defaults filled in.
	Config Config
	// Brokers are where it ran; Embedded reports an in-process broker.
	Brokers  []string
	Embedded bool
	// RawSize and TaggedSize are the mean value sizes of the Experience and
	// TaggedExperience records, in bytes.
	RawSize, TaggedSize float64

	// Simulate is the simulate role publishing Users journeys; RawProduce
	// the raw kafka-go writer sending pre-encoded records of the same sizes.
	Simulate, RawProduce Measure
	// Aggregate is the aggregator over the simulated records; PassThrough
	// the same bytes consumed and produced without decoding.
	Aggregate, PassThrough Measure
	// Learn is the bounded learner at the default schedule over the tagged
	// records (see MeasureLearn); LearnUpdates its updates until the last.
	// LearnFast is the same with samples per insert 1/64 (ingest limited by
	// the read path, not by training).
	Learn, LearnFast, LearnUpdates Measure
	// RawConsume is the tagged topic read by partition readers without
	// decoding; Decode the decode and validation of those values on one
	// goroutine.
	RawConsume, Decode Measure

	// StreamRate is the pipeline's produce rate in the latency phase;
	// ToTagged the latency from an experience's timestamp to its tagged
	// record arriving at a reader (two hops: raw topic, aggregator, tagged
	// topic); FirstUse to its first use in a training batch, from the
	// learner's aelp_learn_first_use_latency_seconds histogram.
	StreamRate         Measure
	ToTagged, FirstUse Latency
	// FirstUseFromHistogram marks FirstUse percentiles as interpolated
	// within the histogram's factor-2 buckets.
	FirstUseFromHistogram bool
	// RawLatency is the raw kafka-go pass at the same rate over two hops
	// (produce, pass-through, consume), RawLatencyRate its produce rate.
	RawLatency     Latency
	RawLatencyRate Measure

	// Join is the join over a live simulator stream (see MeasureJoin);
	// JoinPass the pass-through of the same decision and outcome records
	// (both topics, one group), measured the same way.
	Join     JoinMeasure
	JoinPass Measure
	// JoinLatency is the latency from a decision's window end to its
	// experience's arrival at a reader (window JoinLatencyWindow, grace
	// JoinLatencyGrace), JoinStreamRate the records per second (decisions
	// and outcomes) written while it was measured.
	JoinLatency    Latency
	JoinStreamRate Measure

	// Elapsed is the run's wall time.
	Elapsed time.Duration
}

// topics are one run's topic names, unique per run so that a run against
// a shared cluster never reads another's records.
type topics struct {
	raw, rawBytes, tagged, pass, dlq, metrics, policy string
	sRaw, sTagged, sPolicy, sMetrics, lRaw, lPass     string
	decisions, outcomes, joinPass, joined, late       string
	lDecisions, lOutcomes, lJoined                    string
}

func newTopics(id string) topics {
	p := "aelp.bench." + id + "."
	return topics{
		raw: p + "raw", rawBytes: p + "rawbytes", tagged: p + "tagged", pass: p + "pass",
		dlq: p + "deadletter", metrics: p + "metrics", policy: p + "policy",
		sRaw: p + "stream.raw", sTagged: p + "stream.tagged", sPolicy: p + "stream.policy", sMetrics: p + "stream.metrics",
		lRaw: p + "latency.raw", lPass: p + "latency.pass",
		decisions: p + "decisions", outcomes: p + "outcomes", joinPass: p + "join.pass", joined: p + "joined", late: p + "outcomes.late",
		lDecisions: p + "latency.decisions", lOutcomes: p + "latency.outcomes", lJoined: p + "latency.joined",
	}
}

// Run runs the benchmark: the throughput stages in order (each role on the
// previous stage's output, each beside its raw baseline), then the latency
// phase.
func Run(ctx context.Context, cfg Config) (Report, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return Report{}, fmt.Errorf("bench: %w", err)
	}
	start := time.Now()
	rep := Report{Config: cfg}
	kcfg := cfg.Kafka
	if len(kcfg.Brokers) == 0 {
		b, err := broker.Start(broker.Config{Listen: "127.0.0.1:0", DefaultPartitions: cfg.Partitions, Logger: cfg.Log})
		if err != nil {
			return rep, fmt.Errorf("bench: %w", err)
		}
		defer b.Close()
		kcfg.Brokers = b.Addrs()
		rep.Embedded = true
	}
	kcfg = kcfg.WithDefaults()
	rep.Brokers = kcfg.Brokers
	var rid [4]byte
	if _, err := rand.Read(rid[:]); err != nil {
		return rep, fmt.Errorf("bench: %w", err)
	}
	id := hex.EncodeToString(rid[:])
	t := newTopics(id)
	expID := "bench-" + id
	var specs []kafkax.TopicSpec
	for _, name := range []string{t.raw, t.rawBytes, t.tagged, t.pass, t.sRaw, t.sTagged, t.lRaw, t.lPass,
		t.decisions, t.outcomes, t.joinPass, t.joined, t.late, t.lDecisions, t.lOutcomes, t.lJoined} {
		specs = append(specs, kafkax.TopicSpec{Name: name, Partitions: cfg.Partitions})
	}
	for _, name := range []string{t.dlq, t.metrics, t.sMetrics} {
		specs = append(specs, kafkax.TopicSpec{Name: name, Partitions: 1})
	}
	for _, name := range []string{t.policy, t.sPolicy} {
		specs = append(specs, kafkax.TopicSpec{Name: name, Partitions: 1, Compact: true})
	}
	if err := kafkax.EnsureTopics(ctx, kcfg, specs...); err != nil {
		return rep, fmt.Errorf("bench: %w", kcfg.Explain(err))
	}
	progress := func(format string, a ...any) {
		fmt.Fprintf(cfg.Progress, "[%5.1fs] "+format+"\n", append([]any{time.Since(start).Seconds()}, a...)...)
	}
	if err := throughput(ctx, cfg, kcfg, t, expID, &rep, progress); err != nil {
		return rep, fmt.Errorf("bench: %w", err)
	}
	if !cfg.SkipLatency {
		if err := latency(ctx, cfg, kcfg, t, expID, &rep, progress); err != nil {
			return rep, fmt.Errorf("bench: %w", err)
		}
	}
	rep.Elapsed = time.Since(start)
	return rep, nil
}

// throughput measures the stages one after the other.
func throughput(ctx context.Context, cfg Config, kcfg kafkax.Config, t topics, expID string, rep *Report, progress func(string, ...any)) error {
	simulated, err := measureProduce(ctx, cfg, kcfg, t, expID, rep, progress)
	if err != nil {
		return err
	}
	if err := measureAggregate(ctx, cfg, kcfg, t, expID, simulated, rep, progress); err != nil {
		return err
	}
	if err := measureConsume(ctx, cfg, kcfg, t, expID, rep, progress); err != nil {
		return err
	}
	return measureJoin(ctx, cfg, kcfg, t, expID, rep, progress)
}

// measureProduce measures the raw produce of pre-encoded records of the
// simulate role's sizes, then the simulate role; it returns the records
// simulated.
func measureProduce(ctx context.Context, cfg Config, kcfg kafkax.Config, t topics, expID string, rep *Report, progress func(string, ...any)) (int64, error) {
	rawMsgs, err := SimRecords(cfg.Sim, expID, cfg.Users, cfg.Seed, false)
	if err != nil {
		return 0, err
	}
	rep.RawSize = MeanSize(rawMsgs)
	if rep.RawProduce, err = Produce(ctx, kcfg, t.rawBytes, rawMsgs, cfg.Workers, 512); err != nil {
		return 0, err
	}
	progress("raw produce: %d records of %.0f B in %s", rep.RawProduce.Records, rep.RawSize, rep.RawProduce.Elapsed.Round(time.Millisecond))
	simr, err := producers.NewSimulator(producers.SimulateConfig{
		Kafka: kcfg, Topic: t.raw, PolicyTopic: t.policy, ExperimentID: expID, Users: int64(cfg.Users),
		Workers: cfg.Workers, Seed: cfg.Seed, Sim: cfg.Sim, Partitions: cfg.Partitions, ProgressEvery: -1, Log: cfg.Log,
	})
	if err != nil {
		return 0, err
	}
	srep, err := simr.Run(ctx)
	if err != nil {
		return 0, err
	}
	rep.Simulate = Measure{Records: srep.Experiences, Elapsed: srep.Elapsed}
	progress("simulate: %d records in %s", srep.Experiences, srep.Elapsed.Round(time.Millisecond))
	return srep.Experiences, nil
}

// measureAggregate measures the pass-through, then the aggregator, over
// the n simulated records.
func measureAggregate(ctx context.Context, cfg Config, kcfg kafkax.Config, t topics, expID string, n int64, rep *Report, progress func(string, ...any)) error {
	var err error
	if rep.PassThrough, err = PassThrough(ctx, PassThroughConfig{
		Kafka: kcfg, In: t.raw, Out: t.pass, Group: "aelp-bench-pass-" + expID, Records: n,
	}); err != nil {
		return err
	}
	progress("pass-through: %d records in %s", rep.PassThrough.Records, rep.PassThrough.Elapsed.Round(time.Millisecond))
	var ast consumers.AggregateStats
	if rep.Aggregate, ast, err = MeasureAggregate(ctx, consumers.AggregateConfig{
		Kafka: kcfg, InTopic: t.raw, OutTopic: t.tagged, DeadLetterTopic: t.dlq, Group: "aelp-bench-agg-" + expID,
		Limits: cfg.limits(), Partitions: cfg.Partitions, ProgressEvery: -1, Log: cfg.Log,
	}, n); err != nil {
		return err
	}
	if ast.DeadLettered > 0 {
		return fmt.Errorf("aggregate: %d records dead-lettered (%v)", ast.DeadLettered, ast.DeadLetterReasons)
	}
	progress("aggregate: %d records in %s", rep.Aggregate.Records, rep.Aggregate.Elapsed.Round(time.Millisecond))
	return nil
}

// measureConsume measures the raw consume and the decode of the tagged
// records, then the learner on them, at samples per insert 1 and 1/64.
func measureConsume(ctx context.Context, cfg Config, kcfg kafkax.Config, t topics, expID string, rep *Report, progress func(string, ...any)) error {
	values, consume, err := ConsumeAll(ctx, kcfg, t.tagged)
	if err != nil {
		return err
	}
	rep.RawConsume = consume
	rep.TaggedSize = meanLen(values)
	if rep.Decode, err = DecodeTagged(values, cfg.limits()); err != nil {
		return err
	}
	progress("raw consume + decode of the tagged topic: %d records", rep.RawConsume.Records)
	for _, fast := range []bool{false, true} {
		lcfg := learner.Config{
			Kafka: kcfg, TaggedTopic: t.tagged, MetricsTopic: t.metrics, PolicyTopic: t.policy, DeadLetterTopic: t.dlq,
			ExperimentID: expID, StateDim: cfg.Sim.StateDim, NumActions: cfg.Sim.NumActions(),
			Fresh: true, Bounded: true, Seed: cfg.Seed, ProgressEvery: -1, Log: cfg.Log,
		}
		if fast {
			lcfg.SamplesPerInsert = 1.0 / 64
		}
		m, ups, st, err := MeasureLearn(ctx, lcfg, rep.RawConsume.Records)
		if err != nil {
			return err
		}
		if fast {
			rep.LearnFast = m
		} else {
			rep.Learn, rep.LearnUpdates = m, ups
		}
		progress("learn (samples per insert %g): %d ingested, %d updates in %s", lcfg.WithDefaults().SamplesPerInsert,
			m.Records, st.Updates, m.Elapsed.Round(time.Millisecond))
	}
	return nil
}

// limits are the records' limits of the simulator cfg.Sim.
func (c Config) limits() schemas.Limits {
	return schemas.Limits{StateDim: c.Sim.StateDim, NumActions: c.Sim.NumActions()}
}

func meanLen(values [][]byte) float64 {
	if len(values) == 0 {
		return 0
	}
	n := 0
	for _, v := range values {
		n += len(v)
	}
	return float64(n) / float64(len(values))
}

// latency runs the pipeline at cfg.Rate for cfg.LatencyDuration with a
// probe on the tagged topic, then the raw two-hop pass at the same rate.
func latency(ctx context.Context, cfg Config, kcfg kafkax.Config, t topics, expID string, rep *Report, progress func(string, ...any)) error {
	lim := schemas.Limits{StateDim: cfg.Sim.StateDim, NumActions: cfg.Sim.NumActions()}
	reg := prometheus.NewRegistry()
	simr, err := producers.NewSimulator(producers.SimulateConfig{
		Kafka: kcfg, Topic: t.sRaw, PolicyTopic: t.sPolicy, ExperimentID: expID, Rate: cfg.Rate,
		Workers: cfg.Workers, Seed: cfg.Seed + 1, Sim: cfg.Sim, FollowPolicy: true, Partitions: cfg.Partitions,
		ProgressEvery: -1, Log: cfg.Log,
	})
	if err != nil {
		return err
	}
	agg, err := consumers.NewAggregator(consumers.AggregateConfig{
		Kafka: kcfg, InTopic: t.sRaw, OutTopic: t.sTagged, DeadLetterTopic: t.dlq, Group: "aelp-bench-stream-" + expID,
		Limits: lim, Partitions: cfg.Partitions, ProgressEvery: -1, Log: cfg.Log,
	})
	if err != nil {
		return err
	}
	lrn, err := learner.New(learner.Config{
		Kafka: kcfg, TaggedTopic: t.sTagged, MetricsTopic: t.sMetrics, PolicyTopic: t.sPolicy, DeadLetterTopic: t.dlq,
		ExperimentID: expID, StateDim: cfg.Sim.StateDim, NumActions: cfg.Sim.NumActions(),
		Fresh: true, Seed: cfg.Seed + 1, ProgressEvery: -1, Log: cfg.Log, Registry: reg,
	})
	if err != nil {
		return err
	}
	pr, err := startProbe(ctx, kcfg, t.sTagged)
	if err != nil {
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	aggCtx, stopAgg := context.WithCancel(gctx)
	defer stopAgg()
	g.Go(func() error { return agg.Run(aggCtx) })
	g.Go(func() error {
		defer stopAgg()
		return lrn.Run(gctx)
	})
	g.Go(func() error {
		simCtx, stopSim := context.WithTimeout(gctx, cfg.LatencyDuration)
		defer stopSim()
		srep, err := simr.Run(simCtx)
		if err != nil && gctx.Err() == nil && simCtx.Err() == nil {
			return err
		}
		rep.StreamRate = Measure{Records: srep.Experiences, Elapsed: srep.Elapsed}
		if err := pr.waitFor(gctx, srep.Experiences, 2*time.Minute); err != nil {
			return err
		}
		lrn.Finish()
		return nil
	})
	runErr := g.Wait()
	lat, perr := pr.finish()
	if runErr != nil {
		return fmt.Errorf("latency phase: %w", runErr)
	}
	if perr != nil {
		return perr
	}
	rep.ToTagged = lat
	if rep.FirstUse, err = histogramLatency(reg, "aelp_learn_first_use_latency_seconds"); err != nil {
		return err
	}
	rep.FirstUseFromHistogram = true
	progress("pipeline latency phase: %d records at %.0f/s", rep.StreamRate.Records, rep.StreamRate.Rate())

	tagged, err := SimRecords(cfg.Sim, expID, max(1, int(cfg.Rate)/4), cfg.Seed, true)
	if err != nil {
		return err
	}
	if rep.RawLatency, rep.RawLatencyRate, err = RawLatency(ctx, RawLatencyConfig{
		Kafka: kcfg, Topic: t.lRaw, PassTo: t.lPass, Group: "aelp-bench-lat-" + expID,
		Records: tagged, Rate: cfg.Rate, Duration: cfg.LatencyDuration, Workers: cfg.Workers,
	}); err != nil {
		return err
	}
	progress("raw latency phase: %d records at %.0f/s", rep.RawLatencyRate.Records, rep.RawLatencyRate.Rate())
	return joinLatency(ctx, cfg, kcfg, t, rep, progress)
}

// MeasureAggregate runs an aggregator configured by cfg until it has
// committed n records, measures it as PassThrough is measured (from its
// first published batch to the last commit, the first batch not counted),
// stops it and returns its figures.
func MeasureAggregate(ctx context.Context, cfg consumers.AggregateConfig, n int64) (Measure, consumers.AggregateStats, error) {
	agg, err := consumers.NewAggregator(cfg)
	if err != nil {
		return Measure{}, consumers.AggregateStats{}, err
	}
	aggCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- agg.Run(aggCtx) }()
	m, err := measureStage(ctx, n, func() int64 { return agg.Stats().In }, func() int64 { return agg.Stats().Committed }, done)
	stop()
	if err != nil {
		return Measure{}, agg.Stats(), fmt.Errorf("aggregate: %w", err)
	}
	if err := <-done; err != nil {
		return Measure{}, agg.Stats(), err
	}
	return m, agg.Stats(), nil
}

// MeasureLearn runs a learner configured by cfg (normally Bounded) to the
// end and measures, polling its Stats every millisecond from Run on:
// ingest, the experiences ingested until n of them were (with n ≤ 0, until
// Run returns), so start-up is included but not the final training budget
// nor the closing of the readers; and updates, the updates made until the
// last one. It returns the final Stats.
func MeasureLearn(ctx context.Context, cfg learner.Config, n int64) (ingest, updates Measure, st learner.Stats, err error) {
	l, err := learner.New(cfg)
	if err != nil {
		return Measure{}, Measure{}, learner.Stats{}, err
	}
	t0 := time.Now()
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	poll := func() {
		s := l.Stats()
		now := time.Since(t0)
		if ingest.Elapsed == 0 && n > 0 && s.Ingested >= n {
			ingest = Measure{Records: s.Ingested, Elapsed: now}
		}
		if s.Updates > updates.Records {
			updates = Measure{Records: s.Updates, Elapsed: now}
		}
	}
	for {
		select {
		case err := <-done:
			st = l.Stats()
			if err != nil {
				return Measure{}, Measure{}, st, err
			}
			if ingest.Elapsed == 0 {
				ingest = Measure{Records: st.Ingested, Elapsed: time.Since(t0)}
			}
			if st.Updates > updates.Records {
				updates = Measure{Records: st.Updates, Elapsed: time.Since(t0)}
			}
			return ingest, updates, st, nil
		case <-tick.C:
			poll()
		}
	}
}

// histogramLatency returns the count and the interpolated median and 99th
// percentile of the named histogram in reg (see histogramQuantile).
func histogramLatency(reg prometheus.Gatherer, name string) (Latency, error) {
	mfs, err := reg.Gather()
	if err != nil {
		return Latency{}, fmt.Errorf("gather %s: %w", name, err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name || len(mf.GetMetric()) == 0 {
			continue
		}
		h := mf.GetMetric()[0].GetHistogram()
		if h == nil {
			return Latency{}, fmt.Errorf("%s is not a histogram", name)
		}
		q := func(p float64) time.Duration {
			return time.Duration(histogramQuantile(h, p) * float64(time.Second))
		}
		return Latency{Records: int64(h.GetSampleCount()), P50: q(0.5), P99: q(0.99)}, nil
	}
	return Latency{}, fmt.Errorf("no histogram %s (no experience was used in a batch)", name)
}

// histogramQuantile estimates the q-quantile of a cumulative histogram as
// Prometheus's histogram_quantile does: find the first bucket whose
// cumulative count reaches q·count and interpolate linearly between its
// lower and upper bound (the lower bound of the first bucket is 0). A
// quantile in the +Inf bucket returns the highest finite bound. NaN when
// the histogram is empty.
func histogramQuantile(h *dto.Histogram, q float64) float64 {
	total := float64(h.GetSampleCount())
	if total == 0 {
		return math.NaN()
	}
	rank := q * total
	lower, prev := 0.0, 0.0
	for _, b := range h.GetBucket() {
		upper, cum := b.GetUpperBound(), float64(b.GetCumulativeCount())
		if math.IsInf(upper, 1) {
			break
		}
		if cum >= rank {
			if cum == prev {
				return upper
			}
			return lower + (upper-lower)*(rank-prev)/(cum-prev)
		}
		lower, prev = upper, cum
	}
	return lower
}
