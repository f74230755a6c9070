package producers

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/aelp/aelp/internal/lifecycle"
	"github.com/aelp/aelp/producers/sim"
	"github.com/aelp/aelp/schemas"
	"github.com/aelp/aelp/serve"
	"github.com/aelp/aelp/serve/client"
)

// Defaults of the live mode through a decision server.
const (
	DefaultDecideWorkers = 32
	DefaultOutcomePosts  = 16
)

// servedDefaults checks DecideURL and sets the defaults of the fields it
// uses.
func (c *LiveSimulateConfig) servedDefaults() error {
	if c.DecideURL == "" {
		return nil
	}
	if err := CheckDecideURL(c.DecideURL); err != nil {
		return err
	}
	if c.DecideWorkers < 0 || c.OutcomePosts < 0 {
		return fmt.Errorf("decide workers %d, outcome posts %d: must be positive", c.DecideWorkers, c.OutcomePosts)
	}
	c.DecideWorkers = cmp.Or(c.DecideWorkers, DefaultDecideWorkers)
	c.OutcomePosts = cmp.Or(c.OutcomePosts, DefaultOutcomePosts)
	if c.HTTPClient == nil {
		n := c.DecideWorkers + c.OutcomePosts
		c.HTTPClient = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        n,
			MaxIdleConnsPerHost: n,
			IdleConnTimeout:     90 * time.Second,
		}}
	}
	return nil
}

// CheckDecideURL reports whether u is a decision server's base URL
// (http or https, with a host).
func CheckDecideURL(u string) error {
	p, err := url.Parse(u)
	if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
		return fmt.Errorf("decide url %q: want the server's base URL, http://host:port", u)
	}
	return nil
}

// servedJob is one journey handed to a worker.
type servedJob struct {
	arrival int64
	j       sim.ServedJourney // the worker's copy
	err     error
	done    chan struct{}
}

// runServed is the live mode acting through a decision server: DecideWorkers
// goroutines, each with a Sim of its own (stream i of Seed), simulate
// journeys at once and ask POST /v1/decide for every decision (the server
// draws the action and logs the Decision, with the request's simulated
// event time); the journeys are taken back in arrival order, their outcomes
// queued in the event-time model, and those due before the oldest journey
// still in flight are posted to POST /v1/outcome in delivery order,
// OutcomePosts at a time (so reordered by fewer than OutcomePosts records).
// Decisions and outcomes are keyed by user id by the server's one
// partitioner: co-partitioned for the join.
//
// A 503 is retried after its Retry-After, a transport error after a
// backoff (10 ms doubling to 2 s), both for as long as the role runs; a
// 400 is a bug (the simulator sent what the server refuses) and stops the
// run with the server's message, as does any other error answer. When ctx
// ends, the journeys in flight stop at their next decision (the decisions
// already served keep the outcomes already posted) and the outcomes
// released but not yet posted are posted within the drain.
func (s *LiveSimulator) runServed(ctx context.Context, sc *lifecycle.Scope) error {
	cfg := s.cfg
	start := cmp.Or(cfg.Start, time.Now())
	live, err := sim.NewLive(nil, cfg.Live, cfg.ExperimentID, start, cfg.Seed)
	if err != nil {
		return err
	}
	c := client.New(cfg.DecideURL, cfg.HTTPClient)
	s.log.Info().Str("experiment", cfg.ExperimentID).Str("decide_url", cfg.DecideURL).Int("workers", cfg.DecideWorkers).
		Int64("users", cfg.Users).Uint64("seed", cfg.Seed).Time("event_start", start).Msg("simulate (live, through the decision server) started")
	sc.Every(cfg.ProgressEvery, s.progressLogger())

	runCtx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	postCtx, stopPosts := context.WithCancelCause(sc.DrainContext())
	defer stopPosts(nil)
	fatal := func(err error) { stop(err); stopPosts(err) }

	jobs := make(chan *servedJob, cfg.DecideWorkers)
	var workers sync.WaitGroup
	for i := range cfg.DecideWorkers {
		model, err := sim.New(cfg.Sim, cfg.Seed, uint64(i))
		if err != nil {
			return err
		}
		w, err := sim.NewLiveWorker(model, cfg.Live, cfg.ExperimentID, cfg.Seed+uint64(i)<<32, s.decider(runCtx, c))
		if err != nil {
			return err
		}
		workers.Add(1)
		go func() {
			defer workers.Done()
			for j := range jobs {
				if runCtx.Err() == nil {
					jr, err := w.Journey(j.arrival)
					j.j, j.err = sim.ServedJourney{Result: jr.Result, Outcomes: slices.Clone(jr.Outcomes),
						Steps: slices.Clone(jr.Steps), Decisions: jr.Decisions}, err
				}
				close(j.done)
			}
		}()
	}
	posts := make(chan *postJob, cfg.OutcomePosts)
	var posters sync.WaitGroup
	for range cfg.OutcomePosts {
		posters.Add(1)
		go func() {
			defer posters.Done()
			for pj := range posts {
				if err := s.postOutcome(postCtx, c, pj.o); err != nil && postCtx.Err() == nil {
					fatal(err)
				}
				close(pj.done)
			}
		}()
	}
	cerr := s.coordinate(runCtx, live, jobs, posts)
	if cerr != nil {
		fatal(cerr)
	}
	close(jobs)
	workers.Wait()
	close(posts)
	posters.Wait()
	if cause := context.Cause(runCtx); cause != nil && ctx.Err() == nil {
		return cause
	}
	return nil
}

// postJob is one outcome to post; done is closed once it is answered.
type postJob struct {
	o    *schemas.Outcome
	done chan struct{}
}

// coordinate hands journeys to the workers, at most DecideWorkers at
// once, takes them back in arrival order and sends their outcomes to
// posts in delivery order, the i-th only once the (i − OutcomePosts)-th
// is answered (a sliding window: no outcome overtakes one more than
// OutcomePosts earlier); it returns when the bound is reached and every
// outcome is sent, or when ctx ends.
func (s *LiveSimulator) coordinate(ctx context.Context, live *sim.Live, jobs chan<- *servedJob, posts chan<- *postJob) error {
	cfg := s.cfg
	var fifo []*servedJob
	var events []sim.Event
	window := make([]*postJob, cfg.OutcomePosts)
	sent := 0
	started := time.Now()
	n := int64(0)
	more := func() bool { return ctx.Err() == nil && (cfg.Users == 0 || n < cfg.Users) }
	refill := func() error {
		for len(fifo) < cfg.DecideWorkers && more() {
			if cfg.Pace != nil {
				if err := cfg.Pace(ctx); err != nil {
					return err
				}
			}
			throttle(ctx, started, s.decisions.Load(), cfg.Rate)
			j := &servedJob{arrival: live.NextArrival(), done: make(chan struct{})}
			jobs <- j // never blocks: at most DecideWorkers jobs are out
			fifo = append(fifo, j)
			n++
		}
		return nil
	}
	for {
		if err := refill(); err != nil && ctx.Err() == nil {
			return err
		}
		if len(fifo) == 0 || ctx.Err() != nil {
			return nil
		}
		j := fifo[0]
		<-j.done
		fifo = fifo[1:]
		if j.err != nil && ctx.Err() == nil {
			return fmt.Errorf("simulate: %w", j.err)
		}
		s.account(j)
		live.Add(j.j.Outcomes)
		if err := refill(); err != nil && ctx.Err() == nil {
			return err
		}
		bound := int64(math.MaxInt64) // no journey left: every outcome is due
		if len(fifo) > 0 {
			bound = fifo[0].arrival // no journey in flight has an outcome before it
		} else if ctx.Err() != nil {
			return nil
		}
		events = live.ReadyBefore(events[:0], bound)
		for i := range events {
			if prev := window[sent%len(window)]; prev != nil {
				select {
				case <-prev.done:
				case <-ctx.Done():
					return nil
				}
			}
			pj := &postJob{o: events[i].Outcome, done: make(chan struct{})}
			window[sent%len(window)] = pj
			sent++
			posts <- pj // never blocks: at most OutcomePosts are out
		}
	}
}

// account counts a journey taken back and hands its true transitions to
// Truth.
func (s *LiveSimulator) account(j *servedJob) {
	nd := int64(j.j.Decisions)
	s.decisions.Add(nd)
	s.records.Add(nd)
	s.metrics.records.Add(float64(nd))
	if t := s.cfg.Truth; t != nil {
		for i := range j.j.Steps {
			t(&j.j.Steps[i])
		}
	}
	if n := len(j.j.Steps); n > 0 {
		s.actedWith.Store(j.j.Steps[n-1].Experience.PolicyVersion)
	}
	if j.err != nil || j.j.Decisions == 0 {
		return // abandoned at shutdown: not a user's whole journey
	}
	res := j.j.Result
	seg := 0
	if res.Crisis {
		seg = 1
	}
	s.metrics.observeEpisode(res.Crisis, res.Return, res.Converted)
	s.users.Add(1)
	s.mu.Lock()
	s.segments[seg].Episodes++
	s.segments[seg].ReturnSum += res.Return
	if res.Converted {
		s.segments[seg].Conversions++
	}
	s.mu.Unlock()
}

// decider asks the server for each decision, with the step's simulated
// event time.
func (s *LiveSimulator) decider(ctx context.Context, c *client.Client) sim.Decider {
	return func(r *sim.DecisionRequest) (sim.ServedDecision, error) {
		t := r.Time
		req := serve.DecideRequest{UserID: r.UserID, EpisodeID: r.EpisodeID, Step: int32(r.Step), State: r.State,
			Metadata: r.Metadata, Value: r.Value, Timestamp: &t}
		var resp serve.DecideResponse
		err := s.retry(ctx, "decide", func() (err error) {
			resp, err = c.Decide(ctx, req)
			return err
		})
		if err != nil {
			return sim.ServedDecision{}, err
		}
		return sim.ServedDecision{DecisionID: resp.DecisionID, Action: resp.Action, Probs: resp.Probabilities,
			PolicyVersion: resp.PolicyVersion}, nil
	}
}

// postOutcome posts one outcome with its own id (a retried post is then
// one outcome for the join) and event time.
func (s *LiveSimulator) postOutcome(ctx context.Context, c *client.Client, o *schemas.Outcome) error {
	t := o.Timestamp
	req := serve.OutcomeRequest{OutcomeID: o.OutcomeID, DecisionID: o.DecisionID, UserID: o.UserID, Kind: o.Kind,
		Value: o.Value, Cost: o.Cost, Timestamp: &t, Metadata: o.Metadata}
	if err := s.retry(ctx, "outcome", func() error { _, err := c.Outcome(ctx, req); return err }); err != nil {
		return err
	}
	s.outcomes.Add(1)
	return nil
}

// retry calls f until it succeeds: after a 503's Retry-After, or after a
// backoff (10 ms doubling to 2 s) for a transport error; an error answer
// other than 503 is returned at once (a 400 as the bug it is), and so is
// ctx's error once it ends.
func (s *LiveSimulator) retry(ctx context.Context, what string, f func() error) error {
	backoff := 10 * time.Millisecond
	var warned time.Time
	for attempt := 1; ; attempt++ {
		err := f()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		wait := backoff
		var ae *client.APIError
		if errors.As(err, &ae) {
			switch {
			case ae.Status == http.StatusBadRequest:
				return fmt.Errorf("%s refused as a bad request (a bug: the simulator sent what the server does not accept): %w", what, err)
			case !ae.Temporary():
				return fmt.Errorf("%s: %w", what, err)
			}
			wait = cmp.Or(ae.RetryAfter, backoff)
		}
		s.retries.Add(1)
		if time.Since(warned) > 10*time.Second {
			warned = time.Now()
			s.log.Warn().Err(err).Str("request", what).Int("attempt", attempt).Dur("retry_in", wait).Msg("decision server unavailable, retrying")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// SetDecideURL points a simulator configured with a DecideURL at base
// instead: for a server whose address is known only once it listens (aelp
// run --live --serve on port 0). Call it before Run.
func (s *LiveSimulator) SetDecideURL(base string) error {
	if s.cfg.DecideURL == "" {
		return errors.New("simulate: not configured to act through a decision server")
	}
	if err := CheckDecideURL(base); err != nil {
		return fmt.Errorf("simulate: %w", err)
	}
	s.cfg.DecideURL = base
	return nil
}
