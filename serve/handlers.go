package serve

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/aelp/aelp/internal/obs"
	"github.com/aelp/aelp/schemas"
	"github.com/segmentio/kafka-go"
)

// route is one API endpoint: its method, path and handler.
type route struct {
	method, path, name string
	h                  func(*Server) handlerFunc
}

// apiRoutes are the API's endpoints (each in openapi.json, as
// TestOpenAPI checks), besides /metrics and /healthz.
var apiRoutes = []route{
	{"POST", "/v1/decide", "decide", func(s *Server) handlerFunc { return s.decide }},
	{"POST", "/v1/activate", "activate", func(s *Server) handlerFunc { return s.activate }},
	{"POST", "/v1/outcome", "outcome", func(s *Server) handlerFunc { return s.outcome }},
	{"GET", "/v1/policy", "policy", func(s *Server) handlerFunc { return s.getPolicy }},
	{"GET", "/v1/openapi.json", "openapi", func(*Server) handlerFunc { return serveOpenAPI }},
}

// routes returns the server's mux.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	for _, r := range apiRoutes {
		mux.HandleFunc(r.method+" "+r.path, s.instrument(r.name, r.h(s)))
	}
	o := obs.Handler(s.reg, s.health)
	mux.Handle("GET /metrics", o)
	mux.Handle("GET /healthz", o)
	return mux
}

func serveOpenAPI(w http.ResponseWriter, _ *http.Request) *RequestError {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(OpenAPI)
	return nil
}

// handlerFunc is an API handler: it writes a success itself, or returns
// the error to answer.
type handlerFunc func(http.ResponseWriter, *http.Request) *RequestError

// statusWriter records the status written.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// instrument wraps h: the error answer (JSON, Retry-After on a 503), the
// request count by status and the latency. Bad requests are logged at
// debug level only.
func (s *Server) instrument(endpoint string, h handlerFunc) http.HandlerFunc {
	latency := s.metrics.latency.WithLabelValues(endpoint)
	ok := s.metrics.requests.WithLabelValues(endpoint, "200") // the common case, looked up once
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		if err := h(sw, r); err != nil {
			if err.Status == http.StatusServiceUnavailable {
				sw.Header().Set("Retry-After", s.retryAfter())
				s.stats.rejected.Add(1)
			}
			if err.Status < 500 {
				s.log.Debug().Str("endpoint", endpoint).Str("field", err.Field).Str("error", err.Msg).Msg("bad request")
			}
			writeJSON(sw, err.Status, ErrorResponse{Error: err.Msg, Field: err.Field})
		}
		latency.Observe(time.Since(start).Seconds())
		if sw.status == http.StatusOK {
			ok.Inc()
		} else {
			s.metrics.requests.WithLabelValues(endpoint, statusText(sw.status)).Inc()
		}
	}
}

func statusText(code int) string {
	switch code {
	case 200:
		return "200"
	case 400:
		return "400"
	case 404:
		return "404"
	case 500:
		return "500"
	case 503:
		return "503"
	}
	return fmt.Sprint(code)
}

// unavailable is a 503 answer, counted by reason.
func (s *Server) unavailable(reason, format string, a ...any) *RequestError {
	s.metrics.rejected.WithLabelValues(reason).Inc()
	return &RequestError{Status: http.StatusServiceUnavailable, Msg: fmt.Sprintf(format, a...)}
}

// servingPolicy returns the policy to answer with, or the 503.
func (s *Server) servingPolicy() (*servedPolicy, *RequestError) {
	p := s.policy.Load()
	if p == nil {
		return nil, s.unavailable("no_policy", "no policy loaded yet for experiment %s", s.cfg.ExperimentID)
	}
	return p, nil
}

func (s *Server) decide(w http.ResponseWriter, r *http.Request) *RequestError {
	req, rerr := decodeDecide(http.MaxBytesReader(w, r.Body, s.cfg.MaxBody), s.limits)
	if rerr != nil {
		return rerr
	}
	pol, rerr := s.servingPolicy()
	if rerr != nil {
		return rerr
	}
	now := time.Now()
	d := s.act(pol, &req, now)
	if err := d.Validate(s.decisionLimits()); err != nil {
		// The served distribution and state are checked by construction:
		// this is a bug, not a bad request.
		s.log.Error().Err(err).Msg("served decision fails validation")
		return &RequestError{Status: http.StatusInternalServerError, Msg: "internal error: " + err.Error()}
	}
	if req.Defer {
		if !s.deferred.add(d, now) {
			return s.unavailable("deferred_full", "%d deferred decisions await activation: activate or let them expire", s.cfg.MaxDeferred)
		}
		s.metrics.deferred.Set(float64(s.deferred.len()))
	} else if rerr := s.logDecision(r.Context(), d, now); rerr != nil {
		return rerr
	}
	s.metrics.decisions.Inc()
	s.stats.decisions.Add(1)
	bid, creative := s.actions.Decode(int(d.Action))
	writeDecide(w, &DecideResponse{DecisionID: d.DecisionID, Action: int(d.Action), Bid: bid, Creative: creative,
		Probabilities: d.ActionProbs, Propensity: d.ActionProbs[d.Action], PolicyVersion: pol.version, Deferred: req.Defer})
	return nil
}

// obsPool holds the policy's input vectors (the state as float32 values).
var obsPool = sync.Pool{New: func() any { return new([]float64) }}

// act draws the action for req from pol and returns the decision to log:
// the state rounded to float32 (as logged, and as the policy sees it),
// the served distribution (policy ⊕ exploration, Mix) and the log of its
// probability of the action.
func (s *Server) act(pol *servedPolicy, req *DecideRequest, now time.Time) *schemas.Decision {
	state32 := make([]float32, len(req.State))
	op := obsPool.Get().(*[]float64)
	obs := append((*op)[:0], req.State...)
	for i, x := range req.State {
		state32[i] = float32(x)
		obs[i] = float64(state32[i])
	}
	q := make([]float64, s.cfg.NumActions())
	pol.policy.ActionProbs(obs, q) // its workspace is pooled too (ppo.Policy)
	*op = obs
	obsPool.Put(op)
	Mix(q, s.cfg.Epsilon, s.cfg.MinPropensity)
	rng := s.rngs.Get().(*rand.Rand)
	a := sample(q, rng)
	s.rngs.Put(rng)
	if req.Timestamp != nil {
		now = *req.Timestamp
	}
	return &schemas.Decision{
		DecisionID: s.newID("d"), ExperimentID: s.cfg.ExperimentID, UserID: req.UserID,
		EpisodeID: cmp.Or(req.EpisodeID, req.UserID), Step: req.Step, Timestamp: now.UTC(),
		State: state32, Action: int32(a), BehaviorLogProb: math.Log(q[a]), ActionProbs: q,
		PolicyVersion: pol.version, Value: req.Value, Metadata: req.Metadata,
	}
}

// logDecision encodes d and hands it to the log.
func (s *Server) logDecision(ctx context.Context, d *schemas.Decision, now time.Time) *RequestError {
	val, err := schemas.MarshalDecision(make([]byte, 0, decisionSize(d)), d)
	if err != nil {
		return &RequestError{Status: http.StatusInternalServerError, Msg: "encode decision: " + err.Error()}
	}
	return s.logRecord(ctx, topicDecisions, d.UserID, val, now)
}

// decisionSize is a little more than d's encoding takes (Avro: the
// header, each string and its length, 4 bytes a state element, 8 a
// probability, varints of at most 10): one allocation for the record.
func decisionSize(d *schemas.Decision) int {
	n := 64 + len(d.DecisionID) + len(d.ExperimentID) + len(d.UserID) + len(d.EpisodeID) + 4*len(d.State) + 8*len(d.ActionProbs) + 80
	for k, v := range d.Metadata {
		n += len(k) + len(v) + 20
	}
	return n
}

// logRecord queues one record; with LogSync it waits for the broker's
// acknowledgement (or the client's departure).
func (s *Server) logRecord(ctx context.Context, topic int, key string, val []byte, now time.Time) *RequestError {
	buf := s.buf.Load()
	if buf == nil {
		return s.unavailable("stopping", "the server is not running")
	}
	rec := logRecord{topic: topic, msg: kafka.Message{Key: []byte(key), Value: val, Time: now}}
	if s.cfg.LogSync {
		rec.done = make(chan error, 1)
	}
	if err := buf.offer(rec); err != nil {
		return &RequestError{Status: http.StatusServiceUnavailable, Msg: fmt.Sprintf("log buffer full (%d records): retry later", s.cfg.LogBuffer)}
	}
	if rec.done == nil {
		return nil
	}
	select {
	case err := <-rec.done:
		if err != nil {
			return &RequestError{Status: http.StatusInternalServerError, Msg: "not logged: " + err.Error()}
		}
		return nil
	case <-ctx.Done():
		return &RequestError{Status: http.StatusServiceUnavailable, Msg: "request ended before the broker acknowledged"}
	}
}

func (s *Server) activate(w http.ResponseWriter, r *http.Request) *RequestError {
	req, rerr := decodeActivate(http.MaxBytesReader(w, r.Body, s.cfg.MaxBody))
	if rerr != nil {
		return rerr
	}
	now := time.Now()
	d, ok := s.deferred.take(req.DecisionID, now)
	if !ok {
		return &RequestError{Status: http.StatusNotFound, Field: "decision_id",
			Msg: "no deferred decision " + req.DecisionID + " awaits activation (unknown, expired or already activated)"}
	}
	d.Timestamp = now.UTC() // the impression's time: outcomes follow it
	if rerr := s.logDecision(r.Context(), d, now); rerr != nil {
		if rerr.Status == http.StatusServiceUnavailable && s.deferred.putBack(d, now) {
			rerr.Msg += "; the decision still awaits activation"
		}
		return rerr
	}
	s.metrics.activations.Inc()
	s.metrics.deferred.Set(float64(s.deferred.len()))
	writeJSON(w, http.StatusOK, ActivateResponse{DecisionID: d.DecisionID, Logged: true})
	return nil
}

func (s *Server) outcome(w http.ResponseWriter, r *http.Request) *RequestError {
	req, rerr := decodeOutcome(http.MaxBytesReader(w, r.Body, s.cfg.MaxBody), s.limits)
	if rerr != nil {
		return rerr
	}
	now := time.Now()
	o := schemas.Outcome{OutcomeID: req.OutcomeID, DecisionID: req.DecisionID, UserID: req.UserID, Timestamp: now.UTC(),
		Kind: req.Kind, Value: req.Value, Cost: req.Cost, Metadata: req.Metadata}
	if o.OutcomeID == "" {
		o.OutcomeID = s.newID("o")
	}
	if req.Timestamp != nil {
		o.Timestamp = req.Timestamp.UTC()
	}
	if err := o.Validate(); err != nil {
		var ve *schemas.ValidationError
		if errors.As(err, &ve) {
			return badField(ve.Field, "%s", ve.Reason)
		}
		return badField("body", "%v", err)
	}
	val, err := schemas.MarshalOutcome(nil, &o)
	if err != nil {
		return &RequestError{Status: http.StatusInternalServerError, Msg: "encode outcome: " + err.Error()}
	}
	if rerr := s.logRecord(r.Context(), topicOutcomes, o.UserID, val, now); rerr != nil {
		return rerr
	}
	writeJSON(w, http.StatusOK, OutcomeResponse{OutcomeID: o.OutcomeID})
	return nil
}

func (s *Server) getPolicy(w http.ResponseWriter, _ *http.Request) *RequestError {
	p, rerr := s.servingPolicy()
	if rerr != nil {
		return rerr
	}
	writeJSON(w, http.StatusOK, PolicyResponse{Version: p.version, Architecture: p.architecture, LoadedAt: p.loadedAt.UTC(),
		Epsilon: s.cfg.Epsilon, MinPropensity: s.cfg.MinPropensity, StateDim: s.cfg.StateDim, NumActions: s.cfg.NumActions()})
	return nil
}
