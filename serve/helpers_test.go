package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aelp/aelp/internal/kafkatest"
	"github.com/aelp/aelp/internal/kafkax"
	"github.com/aelp/aelp/learner/policy/policytest"
	"github.com/aelp/aelp/learner/ppo"
	"github.com/aelp/aelp/schemas"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
)

// testCtx bounds a test that hangs; it is never the thing under test.
func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

var topicSeq atomic.Int64

// testTopics gives cfg topics of its own (one cluster may serve several
// tests).
func testTopics(cfg *Config) {
	n := fmt.Sprintf("%d.%d", time.Now().UnixNano(), topicSeq.Add(1))
	cfg.PolicyTopic, cfg.DecisionsTopic, cfg.OutcomesTopic = "policy."+n, "decisions."+n, "outcomes."+n
}

// running is a server running in a goroutine.
type running struct {
	s    *Server
	base string
	stop context.CancelFunc
	done chan error
}

// startServer starts a server on cfg (127.0.0.1:0) and waits until it
// answers /healthz with 200.
func startServer(t *testing.T, cfg Config) *running {
	t.Helper()
	cfg.Addr = "127.0.0.1:0"
	cfg.Log = zerolog.Nop()
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(testCtx(t))
	r := &running{s: s, stop: stop, done: make(chan error, 1)}
	go func() { r.done <- s.Run(ctx) }()
	t.Cleanup(func() {
		stop()
		select {
		case <-r.done:
		case <-time.After(2 * time.Minute):
			t.Error("server did not stop")
		}
	})
	for {
		if a := s.Addr(); a != "" {
			r.base = "http://" + a
			if resp, err := http.Get(r.base + "/healthz"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return r
				}
			}
		}
		select {
		case err := <-r.done:
			t.Fatalf("server stopped before ready: %v", err)
		case <-ctx.Done():
			t.Fatal("server not ready")
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// serveSnapshot starts a broker, publishes the snapshot of exp at
// version, and starts a server of exp on topics of its own, with set
// applied to its configuration; it returns the configuration, the server
// and the snapshot's policy by version.
func serveSnapshot(t *testing.T, exp string, version int64, set func(*Config)) (Config, *running, map[int64]*ppo.Policy) {
	t.Helper()
	c := kafkatest.Start(t, kafkatest.Options{})
	cfg := DefaultConfig()
	cfg.Kafka, cfg.ExperimentID = c.Config(), exp
	testTopics(&cfg)
	if set != nil {
		set(&cfg)
	}
	pols := writeSnapshots(t, cfg.Kafka, cfg.PolicyTopic, exp, version)
	return cfg, startServer(t, cfg), pols
}

// wait stops the server and returns Run's error.
func (r *running) wait(t *testing.T) error {
	t.Helper()
	r.stop()
	select {
	case err := <-r.done:
		r.done <- err // for the cleanup
		return err
	case <-time.After(2 * time.Minute):
		t.Fatal("server did not stop within 2 minutes")
		return nil
	}
}

// post sends v as JSON and returns the status and body.
func post(t testing.TB, url string, v any) (int, []byte) {
	t.Helper()
	var body []byte
	switch b := v.(type) {
	case string:
		body = []byte(b)
	default:
		var err error
		if body, err = json.Marshal(v); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := http.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, out
}

// decide posts a decision request and decodes the 200 answer.
func decide(t testing.TB, base string, req DecideRequest) DecideResponse {
	t.Helper()
	code, body := post(t, base+"/v1/decide", req)
	if code != http.StatusOK {
		t.Fatalf("decide: %d %s", code, body)
	}
	var out DecideResponse
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// snapshots returns policy-topic records of exp at versions (seeds =
// versions) and their policies by version.
func snapshots(t *testing.T, exp string, versions ...int64) ([]kafka.Message, map[int64]*ppo.Policy) {
	t.Helper()
	pols := map[int64]*ppo.Policy{}
	var msgs []kafka.Message
	for _, v := range versions {
		m := policytest.SnapshotMessage(t, exp, v, uint64(v))
		var snap schemas.PolicySnapshot
		if err := schemas.UnmarshalPolicySnapshot(m.Value, &snap); err != nil {
			t.Fatal(err)
		}
		p, err := ppo.LoadPolicy(snap.Architecture, snap.Params, snap.ObsMean, snap.ObsVar, snap.ObsCount)
		if err != nil {
			t.Fatal(err)
		}
		pols[v] = p
		msgs = append(msgs, m)
	}
	return msgs, pols
}

// publish writes msgs to topic (created when missing, compacted).
func publish(t *testing.T, k kafkax.Config, topic string, msgs ...kafka.Message) {
	t.Helper()
	ctx := testCtx(t)
	if err := kafkax.EnsureTopics(ctx, k, kafkax.TopicSpec{Name: topic, Partitions: 1, Compact: true}); err != nil {
		t.Fatal(err)
	}
	w, err := kafkax.NewWriter(k, topic, kafkax.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := kafkax.WriteAll(ctx, k, w, zerolog.Nop(), msgs); err != nil {
		t.Fatal(err)
	}
}

// writeSnapshots publishes snapshots of exp at versions on topic and
// returns their policies by version.
func writeSnapshots(t *testing.T, k kafkax.Config, topic, exp string, versions ...int64) map[int64]*ppo.Policy {
	t.Helper()
	msgs, pols := snapshots(t, exp, versions...)
	publish(t, k, topic, msgs...)
	return pols
}

// readDecisions returns the decisions on topic by decision id.
func readDecisions(t *testing.T, k kafkax.Config, topic string) map[string]*schemas.Decision {
	t.Helper()
	out := map[string]*schemas.Decision{}
	for _, m := range kafkatest.ReadAll(t, k, topic) {
		d := new(schemas.Decision)
		if err := schemas.UnmarshalDecision(m.Value, d); err != nil {
			t.Fatalf("decision at offset %d: %v", m.Offset, err)
		}
		if string(m.Key) != d.UserID {
			t.Errorf("decision %s keyed %q, want its user %q", d.DecisionID, m.Key, d.UserID)
		}
		if _, dup := out[d.DecisionID]; dup {
			t.Errorf("decision %s logged twice", d.DecisionID)
		}
		out[d.DecisionID] = d
	}
	return out
}

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }

func readAll(resp *http.Response) ([]byte, error) { return io.ReadAll(resp.Body) }
