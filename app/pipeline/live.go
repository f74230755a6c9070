package pipeline

import (
	"context"
	"fmt"
	"io"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/aelp/aelp/consumers"
	"github.com/aelp/aelp/internal/kafkax"
	"github.com/aelp/aelp/producers"
	"github.com/aelp/aelp/schemas"
	"github.com/aelp/aelp/serve"
	"golang.org/x/sync/errgroup"
)

// newLiveRoles configures the live simulator (Decision and Outcome
// records in simulated event time) and the join that turns them into the
// experiences the aggregator reads. The simulator waits while more than
// MaxAhead joined experiences are not yet ingested by the learner; it does
// not wait for decisions whose windows are open (they close only as the
// simulator's event time moves on).
func (r *roles) newLiveRoles(cfg Config, kcfg kafkax.Config) error {
	jc := cfg.Join
	jc.Limits = schemas.Limits{StateDim: cfg.Sim.StateDim, NumActions: cfg.Sim.NumActions()}
	jc.MaxSteps = cfg.Sim.MaxSteps
	var err error
	if r.jn, err = consumers.NewJoiner(consumers.JoinConfig{
		Kafka: kcfg, Group: "aelp-join-" + cfg.ExperimentID, Isolation: cfg.Isolation, Join: jc,
		ShutdownTimeout: cfg.ShutdownTimeout,
		Log:             cfg.Log.With().Str("role", "join").Logger(), Registry: cfg.Registry,
	}); err != nil {
		return err
	}
	pace := func(ctx context.Context) error {
		defer r.heldBack(time.Now())
		for r.jn.Stats().Written-r.lrn.Stats().Consumed() > cfg.MaxAhead {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(5 * time.Millisecond):
			}
		}
		return nil
	}
	lc := producers.LiveSimulateConfig{SimulateConfig: producers.SimulateConfig{
		Kafka: kcfg, ExperimentID: cfg.ExperimentID, Users: cfg.Episodes, Seed: cfg.Seed, Sim: cfg.Sim,
		FollowPolicy: true, Pace: pace, ShutdownTimeout: cfg.ShutdownTimeout,
		Log: cfg.Log.With().Str("role", "simulate").Logger(), Registry: cfg.Registry,
	}}
	if cfg.Serve {
		if r.srv, err = newServer(cfg, kcfg); err != nil {
			return err
		}
		// The address is known once the server listens: streamLive sets it.
		lc.DecideURL, lc.DecideWorkers = "http://"+cfg.ServeAddr, cfg.DecideWorkers
	}
	if r.live, err = producers.NewLiveSimulator(lc); err != nil {
		return err
	}
	r.sim = r.live.Simulator
	return nil
}

// newServer configures the decision server of a live run with Serve:
// aelp serve on ServeAddr for the run's experiment and the simulator's
// state and action layout, ε = ServeEpsilon, serving the uniform logging
// policy (version −1) until the learner's first snapshot, as the
// in-process live mode acts; its /metrics registry is its own.
func newServer(cfg Config, kcfg kafkax.Config) (*serve.Server, error) {
	sc := serve.DefaultConfig()
	sc.Kafka, sc.Addr, sc.ExperimentID = kcfg, cfg.ServeAddr, cfg.ExperimentID
	sc.StateDim, sc.BidLevels, sc.Creatives = cfg.Sim.StateDim, cfg.Sim.BidLevels, cfg.Sim.Creatives
	sc.Epsilon, sc.AllowLoggingPolicy, sc.Seed = cfg.ServeEpsilon, true, cfg.Seed
	sc.ShutdownTimeout, sc.Log = cfg.ShutdownTimeout, cfg.Log.With().Str("role", "serve").Logger()
	return serve.New(sc)
}

// startServer runs the decision server until stop, and points the
// simulator at it once it listens; wait returns its Run's error.
func (r *roles) startServer(ctx context.Context) (stop func(), wait func() error, err error) {
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.srv.Run(sctx) }()
	wait = func() error { err := <-done; done <- err; return err }
	for r.srv.Addr() == "" {
		select {
		case err := <-done:
			cancel()
			return nil, nil, fmt.Errorf("serve stopped before listening: %w", err)
		case <-ctx.Done():
			cancel()
			_ = wait()
			return nil, nil, ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	if err := r.live.SetDecideURL("http://" + r.srv.Addr()); err != nil {
		cancel()
		_ = wait()
		return nil, nil, err
	}
	return cancel, wait, nil
}

// streamLive runs the live simulator, the join, the aggregator and the
// learner: once the simulator has published every journey and the join
// has read every record, the join closes the windows still open (the
// input has ended), then the learner finishes once the aggregator has
// caught up.
//
// With Serve the decision server runs from before the simulator starts
// until it has published every journey; its drain (every answered
// decision and accepted outcome acknowledged) comes before the wait for
// the join.
func (r *roles) streamLive(ctx context.Context, cfg Config, kcfg kafkax.Config, start time.Time) error {
	stopServer, waitServer := func() {}, func() error { return nil }
	if r.srv != nil {
		var err error
		if stopServer, waitServer, err = r.startServer(ctx); err != nil {
			return err
		}
		defer func() { stopServer(); _ = waitServer() }()
	}
	g, gctx := errgroup.WithContext(ctx)
	aggCtx, stopAgg := context.WithCancel(gctx)
	defer stopAgg()
	joinCtx, stopJoin := context.WithCancel(gctx)
	defer stopJoin()
	progCtx, stopProg := context.WithCancel(context.Background())
	defer stopProg()
	var roles sync.WaitGroup
	roles.Add(4)
	g.Go(func() error { defer roles.Done(); return r.agg.Run(aggCtx) })
	g.Go(func() error { defer roles.Done(); return r.jn.Run(joinCtx) })
	g.Go(func() error {
		defer roles.Done()
		defer stopAgg()
		defer stopJoin()
		return r.lrn.Run(gctx)
	})
	g.Go(func() error {
		defer roles.Done()
		rep, err := r.live.Run(gctx)
		if err != nil {
			return err
		}
		stopServer()
		if err := waitServer(); err != nil {
			return err
		}
		if err := awaitJoined(gctx, r.jn, rep); err != nil {
			return nil // ctx ended
		}
		if err := awaitGroupCaughtUp(gctx, kcfg, r.agg, cfg.Log); err != nil {
			if gctx.Err() != nil {
				return nil
			}
			return err
		}
		r.lrn.Finish()
		return nil
	})
	g.Go(func() error { progress(progCtx, cfg, r.sim, r.agg, r.lrn, start); return nil })
	go func() { roles.Wait(); stopProg() }()
	return g.Wait()
}

// awaitJoined waits until the join has read every record the simulator
// published, flushes it (every open window closes) and waits until every
// decision's experience is written.
func awaitJoined(ctx context.Context, j *consumers.Joiner, rep producers.LiveReport) error {
	wait := func(cond func(consumers.JoinStats) bool) error {
		for !cond(j.Stats()) {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(20 * time.Millisecond):
			}
		}
		return nil
	}
	if err := wait(func(s consumers.JoinStats) bool { return s.Read[0] >= rep.Decisions && s.Read[1] >= rep.Outcomes }); err != nil {
		return err
	}
	j.Flush()
	return wait(func(s consumers.JoinStats) bool {
		return s.Written+s.Core.InvalidDecisions+s.Core.DuplicateDecisions >= rep.Decisions && s.Core.Pending == 0
	})
}

// printJoin writes the join section of the summary.
func (s Summary) printJoin(w io.Writer) {
	j := s.Join
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	c := j.Core
	fmt.Fprintf(tw, "join (live: decisions and delayed outcomes)\t\n")
	fmt.Fprintf(tw, "  decisions / outcomes read\t%d / %d\n", j.Read[0], j.Read[1])
	fmt.Fprintf(tw, "  experiences written (default reward)\t%d (%d)\n", j.Written, c.DefaultReward)
	fmt.Fprintf(tw, "  outcomes late / outside window / unmatched\t%d / %d / %d\n", c.Late, c.OutsideWindow, c.Unmatched)
	fmt.Fprintf(tw, "  duplicate outcomes dropped\t%d\n", c.DuplicateOutcomes)
	fmt.Fprintf(tw, "  pending at the end\t%d\n", c.Pending)
	if j.EventLatencyN > 0 {
		fmt.Fprintf(tw, "  event latency mean (decision to window close)\t%s\n", (j.EventLatency / time.Duration(j.EventLatencyN)).Round(time.Millisecond))
	}
	if j.Written > 0 {
		fmt.Fprintf(tw, "  wall latency mean (read to written)\t%s\n", (j.WallLatency / time.Duration(j.Written)).Round(time.Millisecond))
	}
	fmt.Fprintf(tw, "  dead-lettered\t%d\n", j.DeadLettered)
	fmt.Fprintf(tw, "  windows\t%s\n", s.JoinWindows)
	tw.Flush()
}

// printServe writes the decision server's section of the summary (a run
// with Serve).
func (s Summary) printServe(w io.Writer) {
	v := s.Serve
	if v == nil {
		return
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "serve (decisions over HTTP)\t\n")
	fmt.Fprintf(tw, "  decisions answered / logged\t%d / %d\n", v.Decisions, v.LoggedDecisions)
	fmt.Fprintf(tw, "  outcomes logged\t%d\n", v.LoggedOutcomes)
	fmt.Fprintf(tw, "  503 answers / requests retried by the simulator\t%d / %d\n", v.Rejected, s.ServeRetries)
	fmt.Fprintf(tw, "  log failures\t%d\n", v.LogFailures)
	fmt.Fprintf(tw, "  policy version serving at the end\t%d\n", v.PolicyVersion)
	tw.Flush()
}
