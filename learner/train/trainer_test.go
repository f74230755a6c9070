package train

import (
	"bytes"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/aelp/aelp/internal/stats"
	"github.com/aelp/aelp/schemas"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
		want   string // "" for valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"explicit tolerance", func(c *Config) { c.RateTolerance = 10 }, ""},
		{"min buffer above capacity", func(c *Config) { c.MinBuffer = c.Replay.Capacity + 1 }, "min buffer"},
		{"negative min buffer", func(c *Config) { c.MinBuffer = -1 }, "min buffer"},
		{"negative batch", func(c *Config) { c.BatchSize = -1 }, "batch size"},
		{"negative samples per insert", func(c *Config) { c.SamplesPerInsert = -1 }, "samples per insert"},
		{"infinite samples per insert", func(c *Config) { c.SamplesPerInsert = math.Inf(1) }, "samples per insert"},
		{"NaN samples per insert", func(c *Config) { c.SamplesPerInsert = math.NaN() }, "samples per insert"},
		{"negative tolerance", func(c *Config) { c.RateTolerance = -1 }, "rate tolerance"},
		{"infinite tolerance", func(c *Config) { c.RateTolerance = math.Inf(1) }, "rate tolerance"},
		{"negative min updates", func(c *Config) { c.MinUpdates = -1 }, "min updates"},
		{"bad replay", func(c *Config) { c.Replay.Alpha = -1 }, "alpha"},
		{"bad ppo", func(c *Config) { c.PPO.Epochs = -1 }, "epochs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.mutate(&c)
			err := c.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Validate() = %v, want nil", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("Validate() = %v, want an error containing %q", err, tt.want)
			}
			if _, err := New(c); (err == nil) != (tt.want == "") {
				t.Errorf("New() error %v, want error %v", err, tt.want != "")
			}
		})
	}
}

func TestDefaultConfig(t *testing.T) {
	c := DefaultConfig()
	if c.MinBuffer != 1000 || c.BatchSize != 256 || c.SamplesPerInsert != 1 || c.RateTolerance != 0 ||
		c.GroundTruthKey != schemas.KeyTrueSegment || c.Replay != DefaultReplay() || c.PPO.ObsDim != 16 || c.PPO.NumActions != 12 {
		t.Errorf("DefaultConfig() = %+v", c)
	}
	if got := (Config{}).WithDefaults(); got.MinBuffer != c.MinBuffer || got.Replay != c.Replay {
		t.Errorf("Config{}.WithDefaults() = %+v, want DefaultConfig()", got)
	}
	if r := DefaultReplay(); r.AnnealSteps != 2000 || r.Uniform {
		t.Errorf("DefaultReplay() = %+v, want β annealed over 2000 updates, prioritised", r)
	}
	if p := DefaultPPO(16, 12); p.Epochs != 2 || p.Minibatches != 4 || p.Workers != 1 {
		t.Errorf("DefaultPPO = %d epochs × %d minibatches on %d workers, want 2 × 4 on 1", p.Epochs, p.Minibatches, p.Workers)
	}
}

func TestTolerance(t *testing.T) {
	tests := []struct {
		minBuffer, batch int
		spi, tol, want   float64
	}{
		{1000, 256, 1, 0, 2560},   // ten batches
		{5000, 256, 1, 0, 5000},   // the warm-up buffer when larger
		{1000, 256, 0.5, 0, 1280}, // in samples
		{1000, 256, 1, 7, 7},      // explicit
	}
	for _, tt := range tests {
		c := Config{MinBuffer: tt.minBuffer, BatchSize: tt.batch, SamplesPerInsert: tt.spi, RateTolerance: tt.tol}
		if got := c.Tolerance(); got != tt.want {
			t.Errorf("Tolerance(min buffer %d, batch %d, spi %g, tolerance %g) = %g, want %g",
				tt.minBuffer, tt.batch, tt.spi, tt.tol, got, tt.want)
		}
	}
}

// TestRateLimiter checks both sides of the limiter, Due and WantsMore
// against their formulas at given counters.
func TestRateLimiter(t *testing.T) {
	exps := journeys(t, 120, 1, time.Time{})
	tests := []struct {
		name                  string
		minBuffer, batch, buf int
		spi, tol              float64
		minUpdates, updates   int64
		inserted, sampled     int64
		canSample, canInsert  bool
		wantsMore             bool
	}{
		{"warming up", 100, 32, 50, 1, 320, 0, 0, 50, 0, false, true, true},
		{"warming up past the ratio", 100, 32, 50, 1, 10, 0, 0, 50, 0, false, true, true},
		{"warm, within tolerance", 100, 32, 100, 1, 320, 0, 0, 100, 0, true, true, true},
		{"insert side at its bound", 100, 32, 100, 1, 320, 0, 0, 320, 0, true, false, true},
		{"insert side just inside", 100, 32, 100, 1, 320, 0, 0, 319, 0, true, true, true},
		{"sample side at its bound", 100, 32, 100, 1, 320, 0, 0, 100, 388, true, true, false},
		{"sample side past its bound", 100, 32, 100, 1, 320, 0, 0, 100, 389, false, true, false},
		{"half a sample per insert", 100, 32, 100, 0.5, 160, 0, 0, 400, 40, true, false, true},
		{"budget spent, min updates left", 100, 32, 100, 1, 320, 5, 3, 96, 96, true, true, true},
		{"budget spent, min updates done", 100, 32, 100, 1, 320, 5, 5, 96, 96, true, true, false},
		{"empty buffer wants nothing", 100, 32, 0, 1, 320, 5, 0, 96, 0, false, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := testConfig(1)
			c.MinBuffer, c.BatchSize, c.SamplesPerInsert, c.RateTolerance, c.MinUpdates = tt.minBuffer, tt.batch, tt.spi, tt.tol, tt.minUpdates
			tr := mustNew(t, c)
			for i := range tt.buf {
				tr.Refill(&exps[i])
			}
			tr.inserted, tr.sampled, tr.updates = tt.inserted, tt.sampled, tt.updates
			if got := tr.CanSample(); got != tt.canSample {
				t.Errorf("CanSample() = %v, want %v", got, tt.canSample)
			}
			if got := tr.CanInsert(); got != tt.canInsert {
				t.Errorf("CanInsert() = %v, want %v", got, tt.canInsert)
			}
			if got, want := tr.Due(), tt.canSample && !tt.canInsert; got != want {
				t.Errorf("Due() = %v, want %v", got, want)
			}
			if got := tr.WantsMore(); got != tt.wantsMore {
				t.Errorf("WantsMore() = %v, want %v", got, tt.wantsMore)
			}
		})
	}
}

// TestDueSchedule: inserting one experience at a time and updating while
// Due keeps the limiter's invariant, starts training once the insert side
// is at its bound, and then alternates 1/SamplesPerInsert·BatchSize
// inserts with one update.
func TestDueSchedule(t *testing.T) {
	exps := journeys(t, 700, 2, time.Time{})
	c := testConfig(2)
	tr := mustNew(t, c)
	tol := c.WithDefaults().Tolerance() // max(200, 640) = 640
	var insertsAtUpdate []int64
	for i := range exps {
		tr.Insert(&exps[i])
		for tr.Due() {
			if _, err := tr.Update(); err != nil {
				t.Fatal(err)
			}
			s := tr.Stats()
			insertsAtUpdate = append(insertsAtUpdate, s.Inserted)
			if d := float64(s.Inserted) - float64(s.Sampled); d > tol || d < -tol {
				t.Fatalf("after update %d: inserted − sampled = %v, outside ±%v", s.Updates, d, tol)
			}
		}
	}
	if len(insertsAtUpdate) < 20 {
		t.Fatalf("only %d updates on %d experiences", len(insertsAtUpdate), len(exps))
	}
	// CanInsert turns false at SamplesPerInsert·(inserted+1) − 0 > 640.
	if got := insertsAtUpdate[0]; got != 640 {
		t.Errorf("first update after %d inserts, want 640 (the tolerance)", got)
	}
	for k := 1; k < len(insertsAtUpdate); k++ {
		if d := insertsAtUpdate[k] - insertsAtUpdate[k-1]; d != int64(c.BatchSize) {
			t.Fatalf("updates %d and %d are %d inserts apart, want %d", k, k+1, d, c.BatchSize)
		}
	}
}

// TestInsertAndRefill: Insert stores every field in the slot, feeds the
// normaliser and the counters; Refill stores only.
func TestInsertAndRefill(t *testing.T) {
	base := time.Unix(1_700_000_000, 0)
	exps := journeys(t, 20, 3, base)
	tr := mustNew(t, testConfig(3))
	tr.Insert(&exps[0])
	tr.Refill(&exps[1])
	for slot, te := range exps[:2] {
		for i := range te.State {
			if got, want := tr.slots.obsOf(slot)[i], float64(te.State[i]); got != want {
				t.Fatalf("slot %d obs[%d] = %v, want %v", slot, i, got, want)
			}
			if got, want := tr.slots.nextOf(slot)[i], float64(te.NextState[i]); got != want {
				t.Fatalf("slot %d next[%d] = %v, want %v", slot, i, got, want)
			}
		}
		s := &tr.slots
		if s.action[slot] != te.Action || s.logp[slot] != te.BehaviorLogProb || s.reward[slot] != te.Reward ||
			s.done[slot] != te.Done || s.version[slot] != te.PolicyVersion || s.produced[slot] != te.Timestamp.UnixNano() {
			t.Errorf("slot %d = action %d logp %v reward %v done %v version %d produced %d, want %+v",
				slot, s.action[slot], s.logp[slot], s.reward[slot], s.done[slot], s.version[slot], s.produced[slot], te.Experience)
		}
		wantTruth := truthRegular
		if te.Metadata[schemas.KeyTrueSegment] == schemas.EventCrisis.String() {
			wantTruth = truthCrisis
		}
		if s.truth[slot] != wantTruth {
			t.Errorf("slot %d truth %d, want %d", slot, s.truth[slot], wantTruth)
		}
	}
	st := tr.Stats()
	if st.Inserted != 1 || st.Buffer.Size != 2 || st.Tags.Total() != 1 {
		t.Errorf("inserted %d, buffer %d, tags %d: want 1, 2, 1 (Refill counts for the buffer only)", st.Inserted, st.Buffer.Size, st.Tags.Total())
	}
	if _, _, _, _, count, _ := tr.Agent().MarshalPolicy(); count != 1 {
		t.Errorf("normaliser saw %v observations, want 1 (Refill does not feed it)", count)
	}
	defer func() {
		if recover() == nil {
			t.Error("inserting a state of the wrong width did not panic")
		}
	}()
	bad := exps[2]
	bad.State = bad.State[:3]
	tr.Insert(&bad)
}

// TestUpdate: an update draws BatchSize samples, reports each item's first
// use once (when it has a timestamp), and adds one value to every batch
// statistic.
func TestUpdate(t *testing.T) {
	c := testConfig(4)
	tr := mustNew(t, c)
	if _, err := tr.Update(); err == nil {
		t.Fatal("Update on an empty buffer returned no error")
	}
	base := time.Unix(1_700_000_000, 0)
	exps := journeys(t, 60, 4, base)
	untimed := journeys(t, 60, 5, time.Time{})
	for i := range exps {
		tr.Insert(&exps[i])
		tr.Insert(&untimed[i%len(untimed)])
	}
	seen := map[int64]bool{}
	const updates = 30
	for u := range updates {
		res, err := tr.Update()
		if err != nil {
			t.Fatal(err)
		}
		if res.Buffer.LastBatchSize != c.BatchSize {
			t.Fatalf("batch of %d, want %d", res.Buffer.LastBatchSize, c.BatchSize)
		}
		for _, p := range res.FirstUse {
			if p < base.UnixNano() || seen[p] {
				t.Fatalf("update %d: first use of %d reported again or without a timestamp", u, p)
			}
			seen[p] = true
		}
	}
	s := tr.Stats()
	if s.Updates != updates || s.Sampled != updates*int64(c.BatchSize) {
		t.Errorf("%d updates, %d sampled; want %d, %d", s.Updates, s.Sampled, updates, updates*c.BatchSize)
	}
	b := s.Batches
	for name, r := range map[string]stats.Running{"crisis share": b.CrisisShare, "expected": b.ExpectedCrisisShare,
		"true crisis share": b.TrueCrisisShare, "weight mean": b.WeightMean, "weight min": b.WeightMin, "weight max": b.WeightMax} {
		if r.N() != updates {
			t.Errorf("%s: %d values, want %d", name, r.N(), updates)
		}
	}
	// Tagged with the truth: the tagged and the true crisis shares agree.
	if b.CrisisShare.Mean() != b.TrueCrisisShare.Mean() {
		t.Errorf("crisis share %v, true crisis share %v: want equal when tags are the truth", b.CrisisShare.Mean(), b.TrueCrisisShare.Mean())
	}
	if !(b.WeightMin.Min() > 0 && b.WeightMin.Min() < 1 && b.WeightMax.Max() == 1) {
		t.Errorf("IS weights in [%v, %v], want in (0, 1] with max 1 (prioritised)", b.WeightMin.Min(), b.WeightMax.Max())
	}
	if len(seen) == 0 {
		t.Error("no first use reported")
	}
}

// TestTagsAndReturns: the tags are counted against the configured
// ground-truth key, experiences without it are not counted, and returns
// are summed per episode and segment, windowed by TakeReturns.
func TestTagsAndReturns(t *testing.T) {
	mk := func(ep string, reward float64, done, tagCrisis bool, md map[string]string) schemas.TaggedExperience {
		te := schemas.TaggedExperience{Experience: schemas.Experience{EpisodeID: ep, Reward: reward, Done: done,
			State: make([]float32, 16), NextState: make([]float32, 16), Metadata: md}}
		if tagCrisis {
			te.EventType = schemas.EventCrisis
		}
		return te
	}
	const key = "truth.here"
	crisis := map[string]string{key: "CRISIS_PARENT"}
	regular := map[string]string{key: "REGULAR_PARENT"}
	other := map[string]string{schemas.KeyTrueSegment: "CRISIS_PARENT"} // the default key, not configured
	c := testConfig(6)
	c.GroundTruthKey = key
	tr := mustNew(t, c)
	for _, te := range []schemas.TaggedExperience{
		mk("a", 1, false, true, crisis), mk("a", 2, true, true, crisis), // TP ×2, crisis return 3
		mk("b", 5, true, false, crisis),                                       // FN, crisis return 5
		mk("c", -1, false, true, regular), mk("c", 0.5, true, false, regular), // FP, TN, regular return −0.5
		mk("d", 9, true, true, other), // no ground truth under key: not counted
	} {
		tr.Insert(&te)
	}
	if got, want := tr.Stats().Tags, (stats.Confusion{TP: 2, FP: 1, FN: 1, TN: 1}); got != want {
		t.Errorf("tags %+v, want %+v", got, want)
	}
	r := tr.TakeReturns()
	if r.Crisis.N() != 2 || r.Crisis.Mean() != 4 || r.Regular.N() != 1 || r.Regular.Mean() != -0.5 {
		t.Errorf("returns crisis %d × %v, regular %d × %v; want 2 × 4, 1 × −0.5", r.Crisis.N(), r.Crisis.Mean(), r.Regular.N(), r.Regular.Mean())
	}
	if r := tr.TakeReturns(); r.Crisis.N() != 0 || r.Regular.N() != 0 {
		t.Errorf("second window %+v, want empty", r)
	}
	if tr.Stats().Inserted != 6 {
		t.Errorf("inserted %d, want 6", tr.Stats().Inserted)
	}
}

// TestDeterministic: the same seed and stream give bit-identical agents;
// another seed does not.
func TestDeterministic(t *testing.T) {
	exps := journeys(t, 300, 7, time.Time{})
	run := func(seed uint64) []byte {
		tr := mustNew(t, testConfig(seed))
		for i := range exps {
			tr.Insert(&exps[i])
			for tr.Due() {
				if _, err := tr.Update(); err != nil {
					t.Fatal(err)
				}
			}
		}
		if tr.Stats().Updates == 0 {
			t.Fatal("no update")
		}
		b, err := tr.Agent().MarshalCheckpoint()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	a, b, other := run(1), run(1), run(2)
	if !bytes.Equal(a, b) {
		t.Error("two trainers of seed 1 on the same stream differ")
	}
	if bytes.Equal(a, other) {
		t.Error("seeds 1 and 2 gave the same agent")
	}
}

// TestResume: a resumed trainer has the checkpoint's agent, counters and β
// step; a network of other dimensions, negative counters or a truncated
// state are errors.
func TestResume(t *testing.T) {
	exps := journeys(t, 300, 8, time.Time{})
	c := testConfig(9)
	orig := mustNew(t, c)
	for i := range exps {
		orig.Insert(&exps[i])
		for orig.Due() {
			if _, err := orig.Update(); err != nil {
				t.Fatal(err)
			}
		}
	}
	state, err := orig.Agent().MarshalCheckpoint()
	if err != nil {
		t.Fatal(err)
	}
	cnt := orig.Counters()
	if cnt.Inserted != int64(len(exps)) || cnt.Sampled != orig.Stats().Sampled || cnt.BetaStep != orig.Stats().Updates-1 {
		t.Fatalf("counters %+v after %d inserts and %d updates", cnt, len(exps), orig.Stats().Updates)
	}
	res, err := Resume(c, state, cnt)
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Stats(); got.Updates != orig.Stats().Updates || got.Inserted != cnt.Inserted || got.Sampled != cnt.Sampled ||
		res.Counters() != cnt || got.Buffer.Beta != orig.Stats().Buffer.Beta {
		t.Fatalf("resumed %+v, counters %+v; want updates %d, counters %+v, β %v", got, res.Counters(), orig.Stats().Updates, cnt, orig.Stats().Buffer.Beta)
	}
	if again, _ := res.Agent().MarshalCheckpoint(); !bytes.Equal(again, state) {
		t.Fatal("the resumed agent differs from its checkpoint")
	}
	wrong := c
	wrong.PPO = DefaultPPO(8, 12)
	if _, err := Resume(wrong, state, cnt); err == nil || !strings.Contains(err.Error(), "16×12") {
		t.Errorf("resume into an 8×12 config: %v, want a network mismatch error", err)
	}
	if _, err := Resume(c, state, Counters{Sampled: -1}); err == nil {
		t.Error("negative counters accepted")
	}
	if _, err := Resume(c, state[:len(state)/2], cnt); err == nil {
		t.Error("a truncated agent state accepted")
	}
}
