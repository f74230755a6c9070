package producers

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/aelp/aelp/internal/kafkax"
	"github.com/aelp/aelp/internal/lifecycle"
	"github.com/aelp/aelp/producers/sim"
	"github.com/aelp/aelp/schemas"
	"github.com/segmentio/kafka-go"
)

// Values of LiveSimulateConfig's emit choice (`aelp simulate --emit`).
const (
	// EmitExperiences publishes joined Experience records (the default).
	EmitExperiences = "experiences"
	// EmitDecisions publishes Decision and Outcome records (live mode).
	EmitDecisions = "decisions"
)

// LiveSimulateConfig configures the simulator's live mode: Decision records
// at decision time on DecisionsTopic and Outcome records later, in
// simulated event time, on OutcomesTopic (both keyed by user id with the
// same partitioner, so co-partitioned), from the delay model of
// sim.LiveConfig. Event time is simulated: a day of delays runs as fast as
// the machine allows. One simulator stream produces the records (Workers
// is not used): the stream is in event-time order.
type LiveSimulateConfig struct {
	// SimulateConfig gives the connection, experiment, users (or rate),
	// seed, model, policy following, partitions, batching, pacing, logs
	// and metrics; Topic is not used.
	SimulateConfig
	// DecisionsTopic and OutcomesTopic receive the records. Default
	// aelp.decisions and aelp.outcomes.
	DecisionsTopic, OutcomesTopic string
	// Live is the event-time model. Default sim.DefaultLiveConfig().
	Live sim.LiveConfig
	// Start is the event time of the first user's arrival. Default the
	// wall time Run starts.
	Start time.Time
	// Truth, when set, is called with every decision's true joined
	// transition (what a join with a window longer than every delay must
	// produce), in order, from Run's goroutine; the value is reused after
	// it returns.
	Truth func(*sim.TrueTransition)
	// DecideURL, when set, makes the decisions through a decision server
	// (`aelp serve` at this base URL, "http://127.0.0.1:8080"): each comes
	// from POST /v1/decide, which logs the Decision, and the outcomes are
	// posted to POST /v1/outcome (see runServed). The simulator then
	// writes nothing to Kafka itself; PolicyTopic and FollowPolicy are not
	// used (the server follows the policy).
	DecideURL string
	// DecideWorkers is how many journeys are simulated at once with
	// DecideURL, each waiting on its own decide request. Default 32.
	DecideWorkers int
	// OutcomePosts is how many outcome posts are in flight at once with
	// DecideURL (started in delivery order). Default 16.
	OutcomePosts int
	// HTTPClient makes the requests with DecideURL. Default a client
	// keeping DecideWorkers + OutcomePosts connections alive, 30 s per
	// request.
	HTTPClient *http.Client
}

// LiveSimulator is the simulate role in live mode.
type LiveSimulator struct {
	*Simulator
	cfg                 LiveSimulateConfig
	decisions, outcomes atomic.Int64
	retries             atomic.Int64
}

// LiveReport is what a live simulate run published.
type LiveReport struct {
	// SimulateReport counts users and, as Experiences, the decisions.
	SimulateReport
	// Decisions and Outcomes are the records acknowledged (with
	// DecideURL: the decisions served and the outcomes the server
	// accepted).
	Decisions, Outcomes int64
	// Retries are the requests retried with DecideURL (503 or transport
	// errors).
	Retries int64
}

// NewLiveSimulator validates cfg and returns the role.
func NewLiveSimulator(cfg LiveSimulateConfig) (*LiveSimulator, error) {
	cfg.DecisionsTopic = cmp.Or(cfg.DecisionsTopic, kafkax.TopicDecisions)
	cfg.OutcomesTopic = cmp.Or(cfg.OutcomesTopic, kafkax.TopicOutcomes)
	if cfg.Live == (sim.LiveConfig{}) {
		cfg.Live = sim.DefaultLiveConfig()
	}
	if err := cfg.Live.Validate(); err != nil {
		return nil, fmt.Errorf("simulate: %w", err)
	}
	if err := cfg.servedDefaults(); err != nil {
		return nil, fmt.Errorf("simulate: %w", err)
	}
	s, err := NewSimulator(cfg.SimulateConfig)
	if err != nil {
		return nil, err
	}
	cfg.SimulateConfig = s.cfg
	return &LiveSimulator{Simulator: s, cfg: cfg}, nil
}

// Stats returns the report so far (safe to call while Run runs).
func (s *LiveSimulator) Stats() LiveReport {
	return LiveReport{SimulateReport: s.Simulator.Stats(), Decisions: s.decisions.Load(), Outcomes: s.outcomes.Load(), Retries: s.retries.Load()}
}

// Run publishes until the bound is reached or ctx ends, then flushes what
// it simulated (every queued outcome too, when the bound was reached) and
// returns the report.
func (s *LiveSimulator) Run(ctx context.Context) (LiveReport, error) {
	cfg := s.cfg
	s.mu.Lock()
	s.start = time.Now()
	s.mu.Unlock()
	if cfg.DecideURL != "" {
		err := lifecycle.Run(ctx, lifecycle.Role{
			Name: "simulate", Kafka: cfg.Kafka,
			Run:             s.runServed,
			Drain:           func(context.Context) error { return s.drain(nil) },
			ShutdownTimeout: cfg.ShutdownTimeout, Health: cfg.Health, Log: s.log,
		})
		return s.Stats(), err
	}
	var ws [2]*kafkax.Writer
	err := lifecycle.Run(ctx, lifecycle.Role{
		Name: "simulate", Kafka: cfg.Kafka,
		Topics: []kafkax.TopicSpec{
			{Name: cfg.DecisionsTopic, Partitions: cfg.Partitions},
			{Name: cfg.OutcomesTopic, Partitions: cfg.Partitions},
			{Name: cfg.PolicyTopic, Partitions: 1, Compact: true},
		},
		Run: func(ctx context.Context, sc *lifecycle.Scope) error { return s.runLive(ctx, sc, &ws) },
		Drain: func(context.Context) error {
			return errors.Join(s.drain(ws[0]), closeWriter(cfg.Kafka, ws[1]))
		},
		ShutdownTimeout: cfg.ShutdownTimeout, Health: cfg.Health, Log: s.log,
	})
	return s.Stats(), err
}

func closeWriter(k kafkax.Config, w *kafkax.Writer) error {
	if w == nil {
		return nil
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("simulate: close writer: %w", k.Explain(err))
	}
	return nil
}

func (s *LiveSimulator) runLive(ctx context.Context, sc *lifecycle.Scope, ws *[2]*kafkax.Writer) error {
	cfg := s.cfg
	for i, topic := range []string{cfg.DecisionsTopic, cfg.OutcomesTopic} {
		w, err := sc.Kafka().NewWriter(ctx, topic, kafkax.WriterOptions{Logger: s.log})
		if err != nil {
			return fmt.Errorf("simulate: %w", err)
		}
		ws[i] = w
	}
	start := cfg.Start
	if start.IsZero() {
		start = time.Now()
	}
	model, err := sim.New(cfg.Sim, cfg.Seed, 0)
	if err != nil {
		return err
	}
	live, err := sim.NewLive(model, cfg.Live, cfg.ExperimentID, start, cfg.Seed)
	if err != nil {
		return err
	}
	s.log.Info().Str("experiment", cfg.ExperimentID).Str("decisions", cfg.DecisionsTopic).Str("outcomes", cfg.OutcomesTopic).
		Int64("users", cfg.Users).Uint64("seed", cfg.Seed).Time("event_start", start).Msg("simulate (live) started")
	if cfg.FollowPolicy {
		sc.Go(func(ctx context.Context) error { s.watchPolicy(ctx); return nil })
	}
	sc.Every(cfg.ProgressEvery, s.progressLogger())
	lw := &liveWriter{s: s, ws: *ws}
	werr := s.produce(ctx, sc.DrainContext(), live, lw)
	if werr != nil && ctx.Err() != nil && errors.Is(werr, context.Canceled) {
		werr = nil
	}
	return werr
}

// produce runs journeys until the bound or ctx ends and writes their
// records in delivery order; reaching the bound it writes every queued
// record.
func (s *LiveSimulator) produce(ctx, flushCtx context.Context, live *sim.Live, lw *liveWriter) error {
	cfg := s.cfg
	logging := sim.Uniform{N: cfg.Sim.NumActions()}
	var events []sim.Event
	started := time.Now()
	for n := int64(0); ctx.Err() == nil && (cfg.Users == 0 || n < cfg.Users); n++ {
		if cfg.Pace != nil && len(events) == 0 {
			if err := cfg.Pace(ctx); err != nil {
				if ctx.Err() != nil {
					break
				}
				return err
			}
		}
		var acting sim.Policy = logging
		version := int64(-1)
		if ap := s.policy.Load(); ap != nil {
			acting, version = ap.policy, ap.version
			s.actedWith.Store(version)
		}
		res := live.Journey(acting, version, cfg.Truth)
		lw.episode(res)
		events = live.Ready(events, false)
		if len(events) >= cfg.BatchRecords {
			if err := lw.write(flushCtx, events); err != nil {
				return err
			}
			events = events[:0]
			throttle(ctx, started, lw.sent, cfg.Rate)
		}
	}
	if ctx.Err() == nil {
		events = live.Ready(events, true)
	}
	return lw.write(flushCtx, events)
}

// throttle sleeps until sent/rate seconds have passed since started.
func throttle(ctx context.Context, started time.Time, sent int64, rate float64) {
	if rate <= 0 {
		return
	}
	if d := time.Until(started.Add(time.Duration(float64(sent) / rate * float64(time.Second)))); d > 0 {
		select {
		case <-ctx.Done():
		case <-time.After(d):
		}
	}
}

// liveWriter encodes and writes the live records and counts them.
type liveWriter struct {
	s       *LiveSimulator
	ws      [2]*kafkax.Writer
	msgs    [2][]kafka.Message
	users   int64
	pending [2]SegmentStats
	sent    int64
}

func (lw *liveWriter) episode(res sim.EpisodeResult) {
	seg := 0
	if res.Crisis {
		seg = 1
	}
	lw.pending[seg].Episodes++
	lw.pending[seg].ReturnSum += res.Return
	if res.Converted {
		lw.pending[seg].Conversions++
	}
	lw.s.metrics.observeEpisode(res.Crisis, res.Return, res.Converted)
	lw.users++
}

// write writes events (decisions, then outcomes, each topic in delivery
// order), retrying until acknowledged; then it counts them and the users
// whose journeys were simulated before.
func (lw *liveWriter) write(ctx context.Context, events []sim.Event) error {
	s := lw.s
	lw.msgs[0], lw.msgs[1] = lw.msgs[0][:0], lw.msgs[1][:0]
	for i := range events {
		e := &events[i]
		var val []byte
		var err error
		k := 0
		if e.Decision != nil {
			val, err = schemas.MarshalDecision(nil, e.Decision)
		} else {
			k = 1
			val, err = schemas.MarshalOutcome(nil, e.Outcome)
		}
		if err != nil {
			s.metrics.encodeErrors.Inc()
			s.log.Error().Err(err).Msg("encode live record")
			continue
		}
		lw.msgs[k] = append(lw.msgs[k], kafka.Message{Key: []byte(e.Key()), Value: val, Time: time.UnixMilli(e.Deliver)})
	}
	for k, w := range lw.ws {
		if len(lw.msgs[k]) == 0 {
			continue
		}
		if err := kafkax.WriteAll(ctx, s.cfg.Kafka, w, s.log, lw.msgs[k]); err != nil {
			return err
		}
	}
	nd, no := int64(len(lw.msgs[0])), int64(len(lw.msgs[1]))
	s.decisions.Add(nd)
	s.outcomes.Add(no)
	s.records.Add(nd)
	s.metrics.records.Add(float64(nd))
	s.users.Add(lw.users)
	s.mu.Lock()
	for i := range lw.pending {
		s.segments[i].Episodes += lw.pending[i].Episodes
		s.segments[i].Conversions += lw.pending[i].Conversions
		s.segments[i].ReturnSum += lw.pending[i].ReturnSum
	}
	s.mu.Unlock()
	lw.sent += nd + no
	lw.users, lw.pending = 0, [2]SegmentStats{}
	return nil
}
