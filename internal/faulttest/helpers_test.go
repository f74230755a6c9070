package faulttest

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aelp/aelp/internal/kafkatest"
	"github.com/aelp/aelp/internal/kafkax"
	"github.com/aelp/aelp/internal/proctest"
	"github.com/aelp/aelp/schemas"
)

// envAnyBroker, set to 1, runs the fault tests against the embedded broker
// too. It is for debugging the tests themselves: the embedded broker's Kill
// is a Close, not a SIGKILL.
const envAnyBroker = "AELP_FAULTTEST_ANY_BROKER"

// requireReal skips the test unless real Apache Kafka is selected (see
// kafkatest.RequireReal), or envAnyBroker is set.
func requireReal(t *testing.T) {
	t.Helper()
	if os.Getenv(envAnyBroker) == "1" {
		return
	}
	kafkatest.RequireReal(t)
}

func TestMain(m *testing.M) {
	code := m.Run()
	proctest.RemoveBuilt()
	os.Exit(code)
}

// aelpBinary builds ./cmd/aelp once per test binary and returns its path.
func aelpBinary(t *testing.T) string {
	t.Helper()
	return proctest.Aelp(t, "aelp-faulttest-")
}

// syncBuffer is a buffer safe for concurrent writers and readers: a
// zerolog logger's or a child process's output.
type syncBuffer = proctest.Buffer

// proc is a running aelp subprocess.
type proc = proctest.Proc

var (
	lastLines = proctest.LastLines
	cpuTime   = proctest.CPUTime
)

// startAelp runs the aelp binary with args. The child sees the test's
// environment without any AELP_* variable (they would set flags), plus env.
// A child still running when the test ends is killed.
func startAelp(t *testing.T, name string, env []string, args ...string) *proc {
	t.Helper()
	return proctest.Start(t, name, aelpBinary(t), proctest.Options{Env: env}, args...)
}

// kafkaArgs are the aelp connection flags of cfg, without the password
// (pass it as AELP_SASL_PASSWORD, see kafkaEnv).
func kafkaArgs(cfg kafkax.Config) []string {
	args := []string{"--brokers", strings.Join(cfg.Brokers, ",")}
	if cfg.TLS.Enable {
		args = append(args, "--tls")
	}
	if cfg.TLS.CAFile != "" {
		args = append(args, "--tls-ca", cfg.TLS.CAFile)
	}
	if cfg.SASL.Mechanism != "" {
		args = append(args, "--sasl-mechanism", cfg.SASL.Mechanism, "--sasl-username", cfg.SASL.Username)
	}
	return args
}

// kafkaEnv is the environment carrying cfg's password, the way the README
// recommends passing it.
func kafkaEnv(cfg kafkax.Config) []string {
	if cfg.SASL.Password == "" {
		return nil
	}
	return []string{"AELP_SASL_PASSWORD=" + cfg.SASL.Password}
}

// waitFor polls cond every 50 ms until it holds, failing the test with
// what() after timeout. The timeout only bounds a hung test; nothing is
// asserted about how long the wait took.
func waitFor(t *testing.T, timeout time.Duration, what func() string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s: %s", timeout, what())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// endTotal returns the number of records in topic (0 when it cannot be
// listed yet).
func endTotal(cfg kafkax.Config, topic string) int64 {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	offs, err := kafkax.ListOffsets(ctx, cfg, topic)
	if err != nil {
		return 0
	}
	return offs.Total()
}

// experienceIDs decodes the ids of topic's records: Experience records, or
// TaggedExperience records when tagged. Records that do not decode fail
// the test (the fault tests write no bad records).
func experienceIDs(t *testing.T, cfg kafkax.Config, topic string, tagged bool) []string {
	t.Helper()
	msgs := kafkatest.ReadAll(t, cfg, topic)
	ids := make([]string, 0, len(msgs))
	var te schemas.TaggedExperience
	for _, m := range msgs {
		var err error
		if tagged {
			err = schemas.UnmarshalTaggedExperience(m.Value, &te)
		} else {
			err = schemas.UnmarshalExperience(m.Value, &te.Experience)
		}
		if err != nil {
			t.Fatalf("%s/%d@%d: %v", topic, m.Partition, m.Offset, err)
		}
		ids = append(ids, te.ID)
	}
	return ids
}

// tally is a fault test's delivery account.
type tally struct {
	// Produced is the number of records the producer had acknowledged.
	Produced int64
	// Delivered is the number of distinct ids that arrived.
	Delivered int64
	// Lost is the number of acknowledged ids that did not arrive.
	Lost int64
	// Duplicated is the number of records that arrived beyond the first
	// copy of their id.
	Duplicated int64
	// Missing lists up to 10 lost ids (for the failure message).
	Missing []string
}

func (a tally) String() string {
	return fmt.Sprintf("produced=%d delivered=%d lost=%d duplicated=%d", a.Produced, a.Delivered, a.Lost, a.Duplicated)
}

// account compares what a simulator run acknowledged (produced, its
// report's Experiences) with the ids that arrived.
//
// The simulator does not list the ids it had acknowledged, but they follow
// from its id scheme: worker w of a run writes "<experiment>-<run>-<w>-<seq>"
// with seq = 1, 2, … in order, and a run that returned without error had
// every simulated record acknowledged (WriteAll retries until it is). So the
// acknowledged ids of worker w are seq 1..n_w with Σ n_w = produced. seen
// holds every id found anywhere (raw and tagged topics); its highest seq per
// worker, m_w, is at most n_w, so the acknowledged set is exactly
// ∪_w {1..m_w} when Σ m_w = produced, and otherwise at least
// produced − Σ m_w acknowledged ids (a lost tail) are nowhere.
//
//	lost = |∪_w {1..m_w} \ arrived| + (produced − Σ_w m_w)
func account(t *testing.T, produced int64, seen, arrived []string) tally {
	t.Helper()
	maxSeq := map[string]int64{} // "<experiment>-<run>-<w>" → m_w
	for _, id := range seen {
		i := strings.LastIndexByte(id, '-')
		if i < 0 {
			t.Fatalf("id %q is not of the simulator's form <experiment>-<run>-<worker>-<seq>", id)
		}
		seq, err := strconv.ParseInt(id[i+1:], 10, 64)
		if err != nil || seq < 1 {
			t.Fatalf("id %q: bad sequence number", id)
		}
		maxSeq[id[:i]] = max(maxSeq[id[:i]], seq)
	}
	got := make(map[string]int, len(arrived))
	for _, id := range arrived {
		got[id]++
	}
	a := tally{Produced: produced, Delivered: int64(len(got))}
	for _, n := range got {
		a.Duplicated += int64(n - 1)
	}
	workers := make([]string, 0, len(maxSeq))
	var sum int64
	for w, m := range maxSeq {
		workers = append(workers, w)
		sum += m
	}
	sort.Strings(workers)
	if sum > produced {
		t.Errorf("ids up to seq %d over all workers, but the simulator acknowledged only %d records", sum, produced)
	}
	a.Lost = max(0, produced-sum)
	for _, w := range workers {
		for s := int64(1); s <= maxSeq[w]; s++ {
			id := w + "-" + strconv.FormatInt(s, 10)
			if got[id] == 0 {
				a.Lost++
				if len(a.Missing) < 10 {
					a.Missing = append(a.Missing, id)
				}
			}
		}
	}
	return a
}

// countLevel returns how many zerolog JSON lines of out have the level.
func countLevel(out, level string) int {
	return strings.Count(out, `"level":"`+level+`"`)
}
