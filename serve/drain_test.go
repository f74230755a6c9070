package serve

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aelp/aelp/internal/kafkatest"
	"github.com/aelp/aelp/schemas"
)

// TestStopDrains: clients post decisions concurrently (asynchronous
// logging: answers are sent before the broker's ack) and the server is
// stopped in the middle of the load, as by SIGTERM. Run returns nil, and
// every decision answered 200 — before or during the stop — is on the
// decisions topic: 0 lost.
func TestStopDrains(t *testing.T) {
	cfg, srv, _ := serveSnapshot(t, "drain", 1, nil)
	var (
		mu       sync.Mutex
		answered []string
		n        atomic.Int64
		wg       sync.WaitGroup
	)
	state := randomState(rand.New(rand.NewPCG(7, 7)), cfg.StateDim)
	hc := &http.Client{Timeout: time.Minute}
	for g := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				body, _ := json.Marshal(DecideRequest{UserID: fmt.Sprintf("g%d-%d", g, i%50), State: state})
				resp, err := hc.Post(srv.base+"/v1/decide", "application/json", bytesReader(body))
				if err != nil {
					return // the listener is closed: the server is stopping
				}
				var r DecideResponse
				err = json.NewDecoder(resp.Body).Decode(&r)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					if resp.StatusCode != http.StatusServiceUnavailable {
						t.Errorf("decide: status %d", resp.StatusCode)
					}
					return
				}
				if err != nil {
					t.Errorf("decode answer: %v", err)
					return
				}
				mu.Lock()
				answered = append(answered, r.DecisionID)
				mu.Unlock()
				n.Add(1)
			}
		}()
	}
	for n.Load() < 500 && !t.Failed() {
		time.Sleep(5 * time.Millisecond)
	}
	if err := srv.wait(t); err != nil {
		t.Fatalf("Run after the stop: %v", err)
	}
	wg.Wait()
	logged := readDecisions(t, cfg.Kafka, cfg.DecisionsTopic)
	lost := 0
	for _, id := range answered {
		if logged[id] == nil {
			lost++
		}
	}
	st := srv.s.Stats()
	t.Logf("%d answered, %d logged, %d lost; stats %+v", len(answered), len(logged), lost, st)
	if lost > 0 || len(answered) < 500 {
		t.Errorf("%d of %d answered decisions not on the topic", lost, len(answered))
	}
	if st.LogFailures != 0 || st.LoggedDecisions != int64(len(logged)) {
		t.Errorf("stats %+v: want no failures and %d logged", st, len(logged))
	}
}

// TestDeferredAndOutcomes: a deferred decision is logged only when
// activated, with the activation's time; a second activation and an
// unknown id are 404 naming decision_id; one never activated is dropped at
// shutdown, counted, never logged. Outcomes land on the outcomes topic as
// posted (the server's id when none is given).
func TestDeferredAndOutcomes(t *testing.T) {
	cfg, srv, _ := serveSnapshot(t, "defer", 1, func(c *Config) { c.LogSync = true })
	state := randomState(rand.New(rand.NewPCG(8, 8)), cfg.StateDim)
	shown := decide(t, srv.base, DecideRequest{UserID: "u1", State: state, Defer: true})
	hidden := decide(t, srv.base, DecideRequest{UserID: "u2", State: state, Defer: true})
	plain := decide(t, srv.base, DecideRequest{UserID: "u3", State: state})
	if !shown.Deferred || !hidden.Deferred || plain.Deferred {
		t.Fatalf("deferred flags %v %v %v", shown.Deferred, hidden.Deferred, plain.Deferred)
	}
	decided := time.Now()
	if code, body := post(t, srv.base+"/v1/activate", ActivateRequest{DecisionID: shown.DecisionID}); code != http.StatusOK {
		t.Fatalf("activate: %d %s", code, body)
	}
	for _, id := range []string{shown.DecisionID, "no-such-decision"} {
		code, body := post(t, srv.base+"/v1/activate", ActivateRequest{DecisionID: id})
		var er ErrorResponse
		_ = json.Unmarshal(body, &er)
		if code != http.StatusNotFound || er.Field != "decision_id" {
			t.Errorf("activate %s: %d %s; want 404 naming decision_id", id, code, body)
		}
	}
	ts := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	outs := []OutcomeRequest{
		{OutcomeID: "o1", DecisionID: shown.DecisionID, UserID: "u1", Kind: schemas.KindImpression, Cost: 0.3},
		{DecisionID: shown.DecisionID, UserID: "u1", Kind: schemas.KindConversion, Value: 50, Timestamp: &ts},
	}
	ids := map[string]OutcomeRequest{}
	for _, o := range outs {
		code, body := post(t, srv.base+"/v1/outcome", o)
		var r OutcomeResponse
		if err := json.Unmarshal(body, &r); code != http.StatusOK || err != nil || r.OutcomeID == "" {
			t.Fatalf("outcome: %d %s", code, body)
		}
		ids[r.OutcomeID] = o
	}
	if err := srv.wait(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	logged := readDecisions(t, cfg.Kafka, cfg.DecisionsTopic)
	if d := logged[shown.DecisionID]; d == nil || d.Timestamp.Before(decided.Truncate(time.Millisecond)) {
		t.Errorf("activated decision logged as %+v; want it, timestamped at its activation (after %v)", d, decided)
	}
	if logged[hidden.DecisionID] != nil {
		t.Error("a deferred decision never activated was logged")
	}
	if logged[plain.DecisionID] == nil || len(logged) != 2 {
		t.Errorf("%d decisions logged, want the activated and the plain one", len(logged))
	}
	if st := srv.s.Stats(); st.DeferredDropped != 1 || st.LoggedOutcomes != 2 {
		t.Errorf("stats %+v: want 1 deferred decision dropped, 2 outcomes logged", st)
	}
	msgs := kafkatest.ReadAll(t, cfg.Kafka, cfg.OutcomesTopic)
	if len(msgs) != 2 {
		t.Fatalf("%d outcomes logged, want 2", len(msgs))
	}
	for _, m := range msgs {
		var o schemas.Outcome
		if err := schemas.UnmarshalOutcome(m.Value, &o); err != nil {
			t.Fatal(err)
		}
		want, ok := ids[o.OutcomeID]
		if !ok || string(m.Key) != "u1" || o.DecisionID != want.DecisionID || o.Kind != want.Kind || o.Value != want.Value || o.Cost != want.Cost {
			t.Errorf("outcome %+v (key %s); posted %+v", o, m.Key, want)
		}
		if want.Timestamp != nil && !o.Timestamp.Equal(ts) {
			t.Errorf("outcome timestamp %v, posted %v", o.Timestamp, ts)
		}
	}
}
