package serve

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"
)

// randomState returns a state of width n, as float32 values.
func randomState(rng *rand.Rand, n int) []float64 {
	s := make([]float64, n)
	for i := range s {
		s[i] = float64(float32(rng.NormFloat64() * 2))
	}
	return s
}

// TestServedProbabilitiesBitForBit: at ε = 0 and no floor the served
// distribution is the Go policy's ActionProbs of the same snapshot, bit
// for bit, after the JSON round trip; and every logged decision (read back
// from the decisions topic) carries the served distribution, the served
// action, behavior_logprob = log(propensity) exactly, the served policy
// version and the state as float32.
func TestServedProbabilitiesBitForBit(t *testing.T) {
	cfg, srv, pols := serveSnapshot(t, "bits", 3, func(c *Config) { c.Epsilon, c.Seed = 0, 7 })
	rng := rand.New(rand.NewPCG(1, 2))
	want := make([]float64, cfg.NumActions())
	served := map[string]DecideResponse{}
	states := map[string][]float64{}
	for i := range 200 {
		state := randomState(rng, cfg.StateDim)
		got := decide(t, srv.base, DecideRequest{UserID: fmt.Sprintf("u%d", i%17), State: state, Step: int32(i % 8)})
		pols[3].ActionProbs(state, want)
		if got.PolicyVersion != 3 {
			t.Fatalf("policy_version %d, want 3", got.PolicyVersion)
		}
		for a := range want {
			if math.Float64bits(got.Probabilities[a]) != math.Float64bits(want[a]) {
				t.Fatalf("request %d action %d: served %v, policy %v (not bit-identical)", i, a, got.Probabilities[a], want[a])
			}
		}
		if got.Propensity != got.Probabilities[got.Action] || got.Bid*cfg.Creatives+got.Creative != got.Action {
			t.Fatalf("answer %+v: propensity or bid/creative do not match the action", got)
		}
		served[got.DecisionID], states[got.DecisionID] = got, state
	}
	if err := srv.wait(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	logged := readDecisions(t, cfg.Kafka, cfg.DecisionsTopic)
	if len(logged) != len(served) {
		t.Errorf("%d decisions logged, %d served", len(logged), len(served))
	}
	for id, r := range served {
		d := logged[id]
		if d == nil {
			t.Errorf("decision %s served, not logged", id)
			continue
		}
		if int(d.Action) != r.Action || !slices.Equal(d.ActionProbs, r.Probabilities) || d.PolicyVersion != 3 ||
			d.BehaviorLogProb != math.Log(r.Propensity) || d.ActionProbs[d.Action] != r.Propensity {
			t.Errorf("decision %s: logged action %d probs %v logp %v version %d; served %+v", id, d.Action, d.ActionProbs,
				d.BehaviorLogProb, d.PolicyVersion, r)
		}
		for i, x := range states[id] {
			if float64(d.State[i]) != x {
				t.Fatalf("decision %s state[%d] logged %v, sent %v", id, i, d.State[i], x)
			}
		}
		if d.ExperimentID != "bits" || d.EpisodeID != d.UserID {
			t.Errorf("decision %s: experiment %q episode %q (want bits, the user id)", id, d.ExperimentID, d.EpisodeID)
		}
	}
}

// TestExplorationLogged: with ε and a floor the served distribution is
// Mix of the policy's, every action keeps at least the floor, and every
// logged propensity is the served probability of the logged action.
func TestExplorationLogged(t *testing.T) {
	cfg, srv, pols := serveSnapshot(t, "explore", 5, func(c *Config) { c.Epsilon, c.MinPropensity, c.LogSync = 0.2, 0.05, true })
	rng := rand.New(rand.NewPCG(3, 4))
	want := make([]float64, cfg.NumActions())
	served := map[string]DecideResponse{}
	counts := make([]int, cfg.NumActions())
	for i := range 300 {
		state := randomState(rng, cfg.StateDim)
		got := decide(t, srv.base, DecideRequest{UserID: fmt.Sprintf("u%d", i), State: state})
		pols[5].ActionProbs(state, want)
		Mix(want, cfg.Epsilon, cfg.MinPropensity)
		sum := 0.0
		for a, q := range got.Probabilities {
			sum += q
			if q != want[a] || q < cfg.MinPropensity*(1-1e-12) {
				t.Fatalf("request %d action %d: served %v, Mix gives %v (floor %v)", i, a, q, want[a], cfg.MinPropensity)
			}
		}
		if math.Abs(sum-1) > 1e-12 {
			t.Fatalf("served probabilities sum to %v", sum)
		}
		counts[got.Action]++
		served[got.DecisionID] = got
	}
	for a, n := range counts {
		if n == 0 {
			t.Errorf("action %d never drawn in 300 decisions with a floor of %v", a, cfg.MinPropensity)
		}
	}
	// --log-sync: every answer was acknowledged before it was sent, so the
	// decisions are on the topic while the server still runs.
	logged := readDecisions(t, cfg.Kafka, cfg.DecisionsTopic)
	for id, r := range served {
		d := logged[id]
		if d == nil || int(d.Action) != r.Action || !slices.Equal(d.ActionProbs, r.Probabilities) ||
			d.BehaviorLogProb != math.Log(r.Propensity) {
			t.Fatalf("decision %s: logged %+v, served %+v", id, d, r)
		}
	}
	if err := srv.wait(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
}

// TestHotSwap: requests run concurrently while a new snapshot arrives;
// none fails, each names version 1 or 2 with the distribution of that
// version, and version 2 is served after the swap.
func TestHotSwap(t *testing.T) {
	cfg, srv, pols := serveSnapshot(t, "swap", 1, func(c *Config) { c.Epsilon = 0 })
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		seen    = map[int64]int{}
		swapped = make(chan struct{})
		stop    = make(chan struct{})
	)
	var polsMu sync.Mutex
	state := randomState(rand.New(rand.NewPCG(5, 6)), cfg.StateDim)
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			want := make([]float64, cfg.NumActions())
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				code, body := post(t, srv.base+"/v1/decide", DecideRequest{UserID: fmt.Sprintf("g%d-%d", g, i), State: state})
				if code != http.StatusOK {
					t.Errorf("decide during the swap: %d %s", code, body)
					return
				}
				var r DecideResponse
				if err := json.Unmarshal(body, &r); err != nil {
					t.Error(err)
					return
				}
				polsMu.Lock()
				p := pols[r.PolicyVersion]
				polsMu.Unlock()
				if p == nil {
					t.Errorf("answer names version %d, want 1 or 2", r.PolicyVersion)
					return
				}
				p.ActionProbs(state, want)
				if !slices.Equal(want, r.Probabilities) {
					t.Errorf("version %d answered with another version's distribution", r.PolicyVersion)
				}
				mu.Lock()
				seen[r.PolicyVersion]++
				if r.PolicyVersion == 2 && seen[2] == 20 {
					close(swapped)
				}
				mu.Unlock()
			}
		}()
	}
	// Let requests run on version 1, then publish version 2.
	for {
		mu.Lock()
		n := seen[1]
		mu.Unlock()
		if n >= 50 || t.Failed() {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	msgs, p2 := snapshots(t, "swap", 2)
	polsMu.Lock()
	pols[2] = p2[2]
	polsMu.Unlock()
	publish(t, cfg.Kafka, cfg.PolicyTopic, msgs...)
	select {
	case <-swapped:
	case <-testCtx(t).Done():
		t.Error("version 2 never served")
	}
	close(stop)
	wg.Wait()
	t.Logf("answers by version: %v", seen)
	if err := srv.wait(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
}
