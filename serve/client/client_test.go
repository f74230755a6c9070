package client_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aelp/aelp/internal/kafkatest"
	"github.com/aelp/aelp/internal/kafkax"
	"github.com/aelp/aelp/learner/policy/policytest"
	"github.com/aelp/aelp/serve"
	"github.com/aelp/aelp/serve/client"
	"github.com/rs/zerolog"
)

func state() []float64 {
	s := make([]float64, 16)
	for i := range s {
		s[i] = float64(i) / 16
	}
	return s
}

// TestErrors: a 400 is an *APIError naming the field; a 503 carries the
// Retry-After; a 404 is neither.
func TestErrors(t *testing.T) {
	cfg := serve.DefaultConfig()
	cfg.ExperimentID, cfg.RetryAfter, cfg.Log = "client", 3*time.Second, zerolog.Nop()
	s, err := serve.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s.Handler())
	defer hs.Close()
	c := client.New(hs.URL, nil)
	ctx := context.Background()

	_, err = c.Decide(ctx, serve.DecideRequest{UserID: "u", State: []float64{1, 2}})
	if field, ok := client.IsBadRequest(err); !ok || field != "state" {
		t.Errorf("short state: %v; want a 400 naming state", err)
	}
	_, err = c.Outcome(ctx, serve.OutcomeRequest{DecisionID: "d", UserID: "u", Kind: "BUY"})
	if field, ok := client.IsBadRequest(err); !ok || field != "kind" {
		t.Errorf("unknown kind: %v; want a 400 naming kind", err)
	}
	_, err = c.Decide(ctx, serve.DecideRequest{UserID: "u", State: state()})
	var ae *client.APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusServiceUnavailable || !ae.Temporary() || ae.RetryAfter != 3*time.Second {
		t.Errorf("no policy: %v; want a 503 with Retry-After 3s", err)
	}
	if _, err := c.Policy(ctx); !errors.As(err, &ae) || ae.Status != http.StatusServiceUnavailable {
		t.Errorf("policy without one: %v", err)
	}
	_, err = c.Activate(ctx, "nope")
	if !errors.As(err, &ae) || ae.Status != http.StatusNotFound || ae.Field != "decision_id" || ae.Temporary() {
		t.Errorf("activate unknown: %v; want a 404 naming decision_id", err)
	}
	if _, err := client.New("http://127.0.0.1:1", nil).Policy(ctx); err == nil || errors.As(err, &ae) {
		t.Errorf("unreachable server: %v; want a transport error, not an APIError", err)
	}
}

// TestRoundTrip: Decide, Activate, Outcome and Policy against a running
// server.
func TestRoundTrip(t *testing.T) {
	kc := kafkatest.Start(t, kafkatest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cfg := serve.DefaultConfig()
	n := time.Now().UnixNano()
	cfg.Kafka, cfg.ExperimentID, cfg.Addr, cfg.Log = kc.Config(), "rt", "127.0.0.1:0", zerolog.Nop()
	cfg.PolicyTopic, cfg.DecisionsTopic, cfg.OutcomesTopic = fmt.Sprint("p", n), fmt.Sprint("d", n), fmt.Sprint("o", n)
	if err := kafkax.EnsureTopics(ctx, cfg.Kafka, kafkax.TopicSpec{Name: cfg.PolicyTopic, Partitions: 1, Compact: true}); err != nil {
		t.Fatal(err)
	}
	w, err := kafkax.NewWriter(cfg.Kafka, cfg.PolicyTopic, kafkax.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteMessages(ctx, policytest.SnapshotMessage(t, "rt", 4, 4)); err != nil {
		t.Fatal(err)
	}
	w.Close()
	s, err := serve.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Run(sctx) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	var c *client.Client
	for {
		if a := s.Addr(); a != "" {
			c = client.New("http://"+a, nil)
			if p, err := c.Policy(ctx); err == nil {
				if p.Version != 4 || p.NumActions != 12 || p.StateDim != 16 || p.Epsilon != 0.05 {
					t.Errorf("policy %+v", p)
				}
				break
			}
		}
		select {
		case err := <-done:
			t.Fatalf("Run: %v", err)
		case <-ctx.Done():
			t.Fatal("never ready")
		case <-time.After(20 * time.Millisecond):
		}
	}
	d, err := c.Decide(ctx, serve.DecideRequest{UserID: "u", State: state(), Defer: true})
	if err != nil || !d.Deferred || d.PolicyVersion != 4 || len(d.Probabilities) != 12 {
		t.Fatalf("decide: %+v, %v", d, err)
	}
	if a, err := c.Activate(ctx, d.DecisionID); err != nil || !a.Logged || a.DecisionID != d.DecisionID {
		t.Errorf("activate: %+v, %v", a, err)
	}
	if o, err := c.Outcome(ctx, serve.OutcomeRequest{DecisionID: d.DecisionID, UserID: "u", Kind: "CLICK"}); err != nil || o.OutcomeID == "" {
		t.Errorf("outcome: %+v, %v", o, err)
	}
}
