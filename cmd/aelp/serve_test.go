//go:build unix

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aelp/aelp/internal/kafkatest"
	"github.com/aelp/aelp/internal/kafkax"
	"github.com/aelp/aelp/schemas"
	"github.com/aelp/aelp/serve"
)

// TestServeSIGTERMDrains runs `aelp serve` (logging policy, asynchronous
// log) against an `aelp broker` process, posts decisions from several
// clients and sends SIGTERM in the middle of the load: the process exits
// 0, and every decision it answered 200 is on aelp.decisions.
func TestServeSIGTERMDrains(t *testing.T) {
	if testing.Short() {
		t.Skip("runs aelp processes")
	}
	_, addr := startBroker(t)
	srv := startChild(t, "serve", "--brokers", addr, "--experiment", "sigterm", "--allow-logging-policy",
		"--http", "127.0.0.1:0", "--partitions", "3")
	base := "http://" + srv.waitLog(t, "serve started")["addr"].(string)
	var (
		mu       sync.Mutex
		answered []serve.DecideResponse
		n        atomic.Int64
		wg       sync.WaitGroup
	)
	state := make([]float64, 16)
	hc := &http.Client{Timeout: time.Minute}
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				body, _ := json.Marshal(serve.DecideRequest{UserID: fmt.Sprintf("u%d-%d", g, i%20), State: state})
				resp, err := hc.Post(base+"/v1/decide", "application/json", bytes.NewReader(body))
				if err != nil {
					return // the listener closed: the server is stopping
				}
				var r serve.DecideResponse
				derr := json.NewDecoder(resp.Body).Decode(&r)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || derr != nil {
					return
				}
				mu.Lock()
				answered = append(answered, r)
				mu.Unlock()
				n.Add(1)
			}
		}()
	}
	srv.waitFor(t, "300 answered decisions", func() bool { return n.Load() >= 300 })
	if code := srv.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("aelp serve stopped by SIGTERM: exit status %d, want 0\n%s", code, tail(srv.stderr.String(), 2000))
	}
	wg.Wait()
	if logLine(srv.stderr.String(), "serve finished") == nil {
		t.Error("no 'serve finished' summary")
	}
	logged := map[string]schemas.Decision{}
	for _, m := range kafkatest.ReadAll(t, kafkax.Config{Brokers: []string{addr}}, kafkax.TopicDecisions) {
		var d schemas.Decision
		if err := schemas.UnmarshalDecision(m.Value, &d); err != nil {
			t.Fatal(err)
		}
		logged[d.DecisionID] = d
	}
	lost := 0
	for _, r := range answered {
		d, ok := logged[r.DecisionID]
		if !ok {
			lost++
			continue
		}
		if d.PolicyVersion != -1 || int(d.Action) != r.Action || d.ActionProbs[d.Action] != r.Propensity {
			t.Errorf("decision %s logged %+v, answered %+v", r.DecisionID, d, r)
		}
	}
	t.Logf("%d answered, %d logged", len(answered), len(logged))
	if lost > 0 {
		t.Errorf("%d of %d answered decisions not on %s", lost, len(answered), kafkax.TopicDecisions)
	}
}
