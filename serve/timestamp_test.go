package serve

import (
	"testing"
	"time"
)

// TestDecideTimestamp: a decide request's timestamp is the logged
// decision's event time; without one the server's clock is.
func TestDecideTimestamp(t *testing.T) {
	cfg, srv, _ := serveSnapshot(t, "timestamp", 1, func(c *Config) { c.LogSync = true })
	state := make([]float64, cfg.StateDim)
	at := time.Date(2026, 3, 1, 12, 30, 0, 125e6, time.UTC)
	given := decide(t, srv.base, DecideRequest{UserID: "u-1", State: state, Timestamp: &at})
	before := time.Now().Add(-time.Second)
	own := decide(t, srv.base, DecideRequest{UserID: "u-2", State: state})
	after := time.Now().Add(time.Second)
	if err := srv.wait(t); err != nil {
		t.Fatal(err)
	}
	logged := readDecisions(t, cfg.Kafka, cfg.DecisionsTopic)
	if d := logged[given.DecisionID]; d == nil || !d.Timestamp.Equal(at) {
		t.Errorf("decision with timestamp %s logged as %+v", at, d)
	}
	if d := logged[own.DecisionID]; d == nil || d.Timestamp.Before(before) || d.Timestamp.After(after) {
		t.Errorf("decision without timestamp logged as %+v, want the server's clock in [%s, %s]", d, before, after)
	}
}
