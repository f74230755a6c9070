package sim

import (
	"errors"
	"math"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// softmaxPolicy is a deterministic, observation-dependent test policy:
// π(a|s) ∝ exp(Σᵢ W[a][i]·sᵢ) with fixed weights W[a][i] = sin(a·dim + i + 1).
type softmaxPolicy struct {
	n, dim int
	w      []float64
}

func newSoftmax(n, dim int) softmaxPolicy {
	w := make([]float64, n*dim)
	for i := range w {
		w[i] = math.Sin(float64(i + 1))
	}
	return softmaxPolicy{n: n, dim: dim, w: w}
}

func (p softmaxPolicy) ActionProbs(obs, dst []float64) {
	max := math.Inf(-1)
	for a := range dst {
		z := 0.0
		for i, x := range obs {
			z += p.w[a*p.dim+i] * x
		}
		dst[a] = z
		max = math.Max(max, z)
	}
	sum := 0.0
	for a := range dst {
		dst[a] = math.Exp(dst[a] - max)
		sum += dst[a]
	}
	for a := range dst {
		dst[a] /= sum
	}
}

// constPolicy always plays action A.
type constPolicy struct{ A int }

func (p constPolicy) ActionProbs(_, dst []float64) {
	clear(dst)
	dst[p.A] = 1
}

func mustNew(t testing.TB, cfg Config, seed, stream uint64) *Sim {
	t.Helper()
	s, err := New(cfg, seed, stream)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("DefaultConfig().Validate() = %v; want nil", err)
	}
	tests := []struct {
		name string
		mod  func(*Config)
	}{
		{"crisis fraction 0", func(c *Config) { c.CrisisFraction = 0 }},
		{"crisis fraction NaN", func(c *Config) { c.CrisisFraction = math.NaN() }},
		{"one bid level", func(c *Config) { c.BidLevels = 1 }},
		{"one creative", func(c *Config) { c.Creatives = 1 }},
		{"state dim too small", func(c *Config) { c.StateDim = MinStateDim - 1 }},
		{"no steps", func(c *Config) { c.MaxSteps = 0 }},
		{"no budget", func(c *Config) { c.BudgetUnits = 0 }},
		{"negative unit cost", func(c *Config) { c.UnitCost = -1 }},
		{"zero crisis value", func(c *Config) { c.CrisisValue = 0 }},
		{"inf regular value", func(c *Config) { c.RegularValue = math.Inf(1) }},
		{"crisis rate above 1", func(c *Config) { c.CrisisRate = 1.5 }},
		{"share 1", func(c *Config) { c.CrisisConversionShare = 1 }},
		{"label share 2", func(c *Config) { c.LabelShare = 2 }},
		{"keyword share -0.1", func(c *Config) { c.CrisisKeywordShare = -0.1 }},
		{"regular keyword NaN", func(c *Config) { c.RegularKeywordShare = math.NaN() }},
		{"campaign share 1.1", func(c *Config) { c.CrisisCampaignShare = 1.1 }},
		{"regular campaign share -1", func(c *Config) { c.RegularCampaignShare = -1 }},
		{"negative obs noise", func(c *Config) { c.ObsNoise = -1 }},
		{"negative value noise", func(c *Config) { c.ValueNoise = -0.5 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tt.mod(&cfg)
			if err := cfg.Validate(); !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("Validate() = %v; want ErrInvalidConfig", err)
			}
			if _, err := New(cfg, 1, 0); !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("New() error = %v; want ErrInvalidConfig", err)
			}
		})
	}
}

func TestCalibrationUnreachable(t *testing.T) {
	cfg := DefaultConfig()
	cfg.CrisisFraction = 0.01
	cfg.CrisisConversionShare = 0.99 // would need regular rates far below crisis ones: reachable
	if _, err := New(cfg, 1, 0); err != nil {
		t.Errorf("share 0.99 at f=0.01: New() = %v; want nil", err)
	}
	cfg = DefaultConfig()
	cfg.CrisisFraction = 0.5
	cfg.CrisisConversionShare = 0.01 // regular parents would need ~99× crisis conversions
	if _, err := New(cfg, 1, 0); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("share 0.01 at f=0.5: New() = %v; want ErrInvalidConfig", err)
	}
}

func TestActionLayout(t *testing.T) {
	cfg := DefaultConfig()
	if got, want := cfg.NumActions(), 12; got != want {
		t.Fatalf("NumActions() = %d; want %d", got, want)
	}
	seen := map[int]bool{}
	for b := range cfg.BidLevels {
		for c := range cfg.Creatives {
			a := cfg.Action(b, c)
			if gb, gc := cfg.Decode(a); gb != b || gc != c {
				t.Errorf("Decode(Action(%d,%d)=%d) = %d,%d", b, c, a, gb, gc)
			}
			if a < 0 || a >= cfg.NumActions() || seen[a] {
				t.Errorf("Action(%d,%d) = %d: out of range or repeated", b, c, a)
			}
			seen[a] = true
		}
	}
}

// record is a deep copy of a Transition.
type record struct {
	Transition
	State, NextState []float64
}

func collect(s *Sim, p Policy, users int) []record {
	var out []record
	for range users {
		s.RunEpisode(p, func(tr *Transition) {
			out = append(out, record{Transition: *tr, State: slices.Clone(tr.State), NextState: slices.Clone(tr.NextState)})
		})
	}
	return out
}

func TestDeterministic(t *testing.T) {
	cfg := DefaultConfig()
	p := newSoftmax(cfg.NumActions(), cfg.StateDim)
	a := collect(mustNew(t, cfg, 42, 3), p, 300)
	b := collect(mustNew(t, cfg, 42, 3), p, 300)
	if len(a) != len(b) {
		t.Fatalf("same seed: %d vs %d transitions", len(a), len(b))
	}
	for i := range a {
		ra, rb := a[i], b[i]
		ra.Transition.State, ra.Transition.NextState = nil, nil
		rb.Transition.State, rb.Transition.NextState = nil, nil
		if !reflect.DeepEqual(ra, rb) {
			t.Fatalf("same seed: transition %d differs:\n%+v\n%+v", i, ra, rb)
		}
	}
	for _, other := range []struct{ seed, stream uint64 }{{42, 4}, {43, 3}} {
		c := collect(mustNew(t, cfg, other.seed, other.stream), p, 300)
		same := 0
		for i := range min(len(a), len(c)) {
			if slices.Equal(a[i].State, c[i].State) {
				same++
			}
		}
		if same > 0 {
			t.Errorf("seed %d stream %d: %d states identical to seed 42 stream 3; want independent streams",
				other.seed, other.stream, same)
		}
	}
}

func TestTransitionInvariants(t *testing.T) {
	cfg := DefaultConfig()
	s := mustNew(t, cfg, 7, 0)
	probs := make([]float64, cfg.NumActions())
	for _, p := range []Policy{Uniform{cfg.NumActions()}, newSoftmax(cfg.NumActions(), cfg.StateDim)} {
		var prevNext []float64
		step, users := 0, 0
		for range 2000 {
			res := s.RunEpisode(p, func(tr *Transition) {
				if tr.Step != step {
					t.Fatalf("step = %d; want %d", tr.Step, step)
				}
				if len(tr.State) != cfg.StateDim || len(tr.NextState) != cfg.StateDim {
					t.Fatalf("state widths %d, %d; want %d", len(tr.State), len(tr.NextState), cfg.StateDim)
				}
				if step > 0 && !slices.Equal(tr.State, prevNext) {
					t.Fatalf("step %d: State differs from previous NextState", step)
				}
				for i, x := range append(slices.Clone(tr.State), tr.NextState...) {
					if x != float64(float32(x)) || math.IsNaN(x) || math.IsInf(x, 0) {
						t.Fatalf("feature %d = %v not a finite float32 value", i, x)
					}
				}
				p.ActionProbs(tr.State, probs)
				sum := 0.0
				for _, q := range probs {
					sum += q
				}
				if math.Abs(sum-1) > 1e-12 {
					t.Fatalf("%T: probabilities sum to %v; want 1", p, sum)
				}
				if got, want := tr.BehaviorLogProb, math.Log(probs[tr.Action]); got != want {
					t.Fatalf("%T: BehaviorLogProb = %v; want log(prob[%d]) = %v", p, got, tr.Action, want)
				}
				if tr.Converted && !tr.Won {
					t.Fatal("converted without an impression")
				}
				if tr.Converted && !tr.Done {
					t.Fatal("converted but not done")
				}
				if !tr.Won && tr.Spend != 0 {
					t.Fatalf("lost auction spent %v", tr.Spend)
				}
				if !(tr.Value > 0) || math.IsInf(tr.Value, 0) {
					t.Fatalf("value %v; want finite > 0", tr.Value)
				}
				prevNext = slices.Clone(tr.NextState)
				step++
			})
			if res.Steps != step || res.Steps < 1 || res.Steps > cfg.MaxSteps {
				t.Fatalf("result steps %d, emitted %d, max %d", res.Steps, step, cfg.MaxSteps)
			}
			step = 0
			users++
		}
	}
}

func TestIDsUniqueAcrossStreams(t *testing.T) {
	cfg := DefaultConfig()
	users := map[string]bool{}
	episodes := map[string]bool{}
	for stream := range uint64(4) {
		s := mustNew(t, cfg, 99, stream)
		for range 2000 {
			var uid, eid string
			s.RunEpisode(Uniform{cfg.NumActions()}, func(tr *Transition) {
				if tr.Step == 0 {
					uid, eid = tr.UserID, tr.EpisodeID
					return
				}
				if tr.UserID != uid || tr.EpisodeID != eid {
					t.Fatalf("ids changed within a journey: %q/%q then %q/%q", uid, eid, tr.UserID, tr.EpisodeID)
				}
			})
			if uid == "" || eid == "" || users[uid] || episodes[eid] {
				t.Fatalf("stream %d: empty or repeated id %q / %q", stream, uid, eid)
			}
			users[uid], episodes[eid] = true, true
		}
	}
	if got, want := len(users), 8000; got != want {
		t.Errorf("distinct user ids = %d; want %d", got, want)
	}
	s := mustNew(t, cfg, 0xab, 0x1f)
	var uid, eid string
	s.RunEpisode(Uniform{cfg.NumActions()}, func(tr *Transition) { uid, eid = tr.UserID, tr.EpisodeID })
	if uid != "u-ab-1f-0" || eid != "e-ab-1f-0" {
		t.Errorf("first ids = %q, %q; want u-ab-1f-0, e-ab-1f-0", uid, eid)
	}
}

func TestMetadata(t *testing.T) {
	cfg := DefaultConfig()
	s := mustNew(t, cfg, 5, 0)
	crisisCamp := map[string]bool{}
	for _, c := range CrisisCampaigns() {
		crisisCamp[c] = true
	}
	regularCamp := map[string]bool{}
	for _, c := range RegularCampaigns() {
		regularCamp[c] = true
	}
	vocab := map[string]bool{}
	for _, k := range append(CrisisKeywords(), NeutralKeywords()...) {
		vocab[k] = true
	}
	isCrisisKW := map[string]bool{}
	for _, k := range CrisisKeywords() {
		isCrisisKW[k] = true
	}
	type agg struct {
		n, labels, kw, camp, search int
		eng                         float64
	}
	var seg [2]agg
	const users = 20000
	for range users {
		var md map[string]string
		var crisis bool
		s.RunEpisode(Uniform{cfg.NumActions()}, func(tr *Transition) {
			if tr.Step == 0 {
				md, crisis = tr.Metadata, tr.Crisis
			} else if reflect.ValueOf(tr.Metadata).Pointer() != reflect.ValueOf(md).Pointer() {
				t.Fatal("metadata map not shared across the user's steps")
			}
		})
		want := SegmentRegular
		a := &seg[0]
		if crisis {
			want, a = SegmentCrisis, &seg[1]
		}
		a.n++
		if md[KeyTrueSegment] != want {
			t.Fatalf("%s = %q; want %q", KeyTrueSegment, md[KeyTrueSegment], want)
		}
		if l, ok := md[KeyEventType]; ok {
			if l != want {
				t.Fatalf("%s = %q; want %q", KeyEventType, l, want)
			}
			a.labels++
		}
		words := strings.Split(md[KeyProfileKeywords], ",")
		hasCrisis := false
		for i, w := range words {
			if !vocab[w] || slices.Contains(words[:i], w) {
				t.Fatalf("keyword %q unknown or repeated in %q", w, md[KeyProfileKeywords])
			}
			hasCrisis = hasCrisis || isCrisisKW[w]
		}
		if hasCrisis {
			a.kw++
		}
		e := md[KeyCrisisContentEngagement]
		x, err := strconv.ParseFloat(e, 64)
		if err != nil || x < 0 || x > 1 || e != strconv.FormatFloat(x, 'f', 3, 64) {
			t.Fatalf("%s = %q; want a 3-decimal value in [0,1]", KeyCrisisContentEngagement, e)
		}
		a.eng += x
		n, err := strconv.Atoi(md[KeyUrgentSearchCount])
		if err != nil || n < 0 {
			t.Fatalf("%s = %q; want an integer >= 0", KeyUrgentSearchCount, md[KeyUrgentSearchCount])
		}
		a.search += n
		switch c := md[KeyCampaignID]; {
		case crisisCamp[c]:
			a.camp++
		case regularCamp[c]:
		default:
			t.Fatalf("%s = %q; unknown campaign", KeyCampaignID, c)
		}
		if len(md) < 5 || len(md) > 6 {
			t.Fatalf("metadata has %d keys: %v", len(md), md)
		}
	}
	// Shares within ±3 pp for regular users (n≈18000, SE ≤ 0.4 pp) and
	// ±6 pp for crisis users (n≈2000, SE ≤ 1.1 pp).
	shares := []struct {
		name      string
		got, want float64
		tol       float64
	}{
		{"crisis user share", float64(seg[1].n) / users, cfg.CrisisFraction, 0.01},
		{"label share regular", float64(seg[0].labels) / float64(seg[0].n), cfg.LabelShare, 0.03},
		{"label share crisis", float64(seg[1].labels) / float64(seg[1].n), cfg.LabelShare, 0.06},
		{"keyword share regular", float64(seg[0].kw) / float64(seg[0].n), cfg.RegularKeywordShare, 0.03},
		{"keyword share crisis", float64(seg[1].kw) / float64(seg[1].n), cfg.CrisisKeywordShare, 0.06},
		{"crisis campaign share regular", float64(seg[0].camp) / float64(seg[0].n), cfg.RegularCampaignShare, 0.03},
		{"crisis campaign share crisis", float64(seg[1].camp) / float64(seg[1].n), cfg.CrisisCampaignShare, 0.06},
	}
	for _, sh := range shares {
		if math.Abs(sh.got-sh.want) > sh.tol {
			t.Errorf("%s = %.4f; want %.4f ± %.2f", sh.name, sh.got, sh.want, sh.tol)
		}
	}
	engR, engC := seg[0].eng/float64(seg[0].n), seg[1].eng/float64(seg[1].n)
	srR, srC := float64(seg[0].search)/float64(seg[0].n), float64(seg[1].search)/float64(seg[1].n)
	if engC < engR+0.2 {
		t.Errorf("mean engagement crisis %.3f, regular %.3f; want crisis ≥ regular + 0.2", engC, engR)
	}
	if srC < 3*srR {
		t.Errorf("mean urgent searches crisis %.2f, regular %.2f; want crisis ≥ 3× regular", srC, srR)
	}
}

// calibrationUsers is the number of users of the calibration test (about
// 0.8 s, or 3.5 s under the race detector).
const calibrationUsers = 100_000

// TestCalibration checks the population calibration under uniform logging
// (crisis parents 10% ± 1 pp of users, 50% ± 3 pp of conversions) and that
// the sampled per-segment returns and conversion rates agree with the exact
// recursion used by the oracle.
func TestCalibration(t *testing.T) {
	cfg := DefaultConfig()
	rep, err := Evaluate(cfg, Uniform{cfg.NumActions()}, calibrationUsers, 2024)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("users %d steps %d: crisis share of users %.4f [%.4f, %.4f], of conversions %.4f [%.4f, %.4f]",
		rep.Episodes, rep.Steps, rep.CrisisUserShare, rep.CrisisUserShareLo, rep.CrisisUserShareHi,
		rep.CrisisConversionShare, rep.CrisisConversionShareLo, rep.CrisisConversionShareHi)
	t.Logf("value per user %.3f ± %.3f; mean steps crisis %.2f regular %.2f",
		rep.ValuePerUser, rep.ValuePerUserCI, rep.Crisis.MeanSteps, rep.Regular.MeanSteps)
	if math.Abs(rep.CrisisUserShare-0.10) > 0.01 {
		t.Errorf("crisis share of users = %.4f; want 0.10 ± 0.01", rep.CrisisUserShare)
	}
	if math.Abs(rep.CrisisConversionShare-0.50) > 0.03 {
		t.Errorf("crisis share of conversions = %.4f; want 0.50 ± 0.03", rep.CrisisConversionShare)
	}
	or, err := Oracle(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(or.UniformCrisisConversionShare-cfg.CrisisConversionShare) > 1e-9 {
		t.Errorf("exact crisis conversion share = %v; want %v", or.UniformCrisisConversionShare, cfg.CrisisConversionShare)
	}
	// Sampled vs exact: within 1.5 × the 95% half-width (about 3 standard
	// errors); the widths come from the same run.
	for _, c := range []struct {
		name string
		ev   SegmentEval
		ex   SegmentOracle
	}{{"crisis", rep.Crisis, or.Crisis}, {"regular", rep.Regular, or.Regular}} {
		t.Logf("%s: return %.3f ± %.3f (exact %.3f), conversion %.4f [%.4f, %.4f] (exact %.4f)",
			c.name, c.ev.MeanReturn, c.ev.ReturnCI, c.ex.UniformReturn,
			c.ev.ConversionRate, c.ev.ConversionLo, c.ev.ConversionHi, c.ex.UniformConversion)
		if math.Abs(c.ev.MeanReturn-c.ex.UniformReturn) > 1.5*c.ev.ReturnCI {
			t.Errorf("%s: sampled return %.3f ± %.3f; exact %.3f", c.name, c.ev.MeanReturn, c.ev.ReturnCI, c.ex.UniformReturn)
		}
		half := (c.ev.ConversionHi - c.ev.ConversionLo) / 2
		if math.Abs(c.ev.ConversionRate-c.ex.UniformConversion) > 1.5*half {
			t.Errorf("%s: sampled conversion %.4f ± %.4f; exact %.4f", c.name, c.ev.ConversionRate, half, c.ex.UniformConversion)
		}
	}
}

// TestOracle checks the oracle's structure (crisis parents want the urgent
// creative at the top bid, regular parents another creative) and that it
// beats uniform logging in both segments, exactly and against a sampled
// evaluation.
func TestOracle(t *testing.T) {
	cfg := DefaultConfig()
	or, err := Oracle(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if or.Crisis.BestCreative != 0 || or.Crisis.BestBid != cfg.BidLevels-1 {
		t.Errorf("crisis best (bid, creative) = (%d, %d); want (%d, 0)", or.Crisis.BestBid, or.Crisis.BestCreative, cfg.BidLevels-1)
	}
	if or.Regular.BestCreative == 0 {
		t.Errorf("regular best creative = 0 (urgent help); want another")
	}
	for _, c := range []struct {
		name string
		o    SegmentOracle
	}{{"crisis", or.Crisis}, {"regular", or.Regular}} {
		t.Logf("%s: best a=%d (bid %d, creative %d) return %.3f conv %.4f; adaptive %.3f; uniform %.3f conv %.4f",
			c.name, c.o.BestAction, c.o.BestBid, c.o.BestCreative, c.o.BestReturn, c.o.BestConversion,
			c.o.AdaptiveReturn, c.o.UniformReturn, c.o.UniformConversion)
		t.Logf("%s: expected return per constant action %.2f", c.name, c.o.ActionReturns)
		if c.o.AdaptiveReturn < c.o.BestReturn-1e-12 {
			t.Errorf("%s: adaptive %.4f < best constant %.4f", c.name, c.o.AdaptiveReturn, c.o.BestReturn)
		}
		if got := slices.Max(c.o.ActionReturns); got != c.o.BestReturn {
			t.Errorf("%s: max action return %v != best %v", c.name, got, c.o.BestReturn)
		}
		if mean := c.o.UniformReturn; c.o.BestReturn < mean+0.5 {
			t.Errorf("%s: oracle %.3f does not beat uniform %.3f by 0.5", c.name, c.o.BestReturn, mean)
		}
	}
	// The oracle's constant actions, simulated on everyone, reproduce the
	// exact per-segment returns, and beat the sampled uniform upper bound.
	uni, err := Evaluate(cfg, Uniform{cfg.NumActions()}, 40_000, 11)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		a      int
		crisis bool
		exact  float64
		uniHi  float64
	}{
		{"crisis", or.Crisis.BestAction, true, or.Crisis.BestReturn, uni.Crisis.MeanReturn + uni.Crisis.ReturnCI},
		{"regular", or.Regular.BestAction, false, or.Regular.BestReturn, uni.Regular.MeanReturn + uni.Regular.ReturnCI},
	} {
		ev, err := Evaluate(cfg, constPolicy{c.a}, 40_000, 12)
		if err != nil {
			t.Fatal(err)
		}
		seg := ev.Regular
		if c.crisis {
			seg = ev.Crisis
		}
		if math.Abs(seg.MeanReturn-c.exact) > 1.5*seg.ReturnCI {
			t.Errorf("%s: sampled return of action %d = %.3f ± %.3f; exact %.3f", c.name, c.a, seg.MeanReturn, seg.ReturnCI, c.exact)
		}
		if lo := seg.MeanReturn - seg.ReturnCI; lo <= c.uniHi {
			t.Errorf("%s: oracle action lower bound %.3f ≤ uniform upper bound %.3f", c.name, lo, c.uniHi)
		}
	}
}

// TestValueInformative checks that "top 10% by value" picks crisis
// experiences with 40–60% precision under uniform logging.
func TestValueInformative(t *testing.T) {
	cfg := DefaultConfig()
	s := mustNew(t, cfg, 8, 0)
	type vc struct {
		v      float64
		crisis bool
	}
	var xs []vc
	for range 20_000 {
		s.RunEpisode(Uniform{cfg.NumActions()}, func(tr *Transition) { xs = append(xs, vc{tr.Value, tr.Crisis}) })
	}
	sort.Slice(xs, func(i, j int) bool { return xs[i].v > xs[j].v })
	top := len(xs) / 10
	hits, crisis := 0, 0
	for i, x := range xs {
		if x.crisis {
			crisis++
			if i < top {
				hits++
			}
		}
	}
	precision := float64(hits) / float64(top)
	base := float64(crisis) / float64(len(xs))
	t.Logf("top 10%% by value: precision %.3f (base rate %.3f), recall %.3f", precision, base, float64(hits)/float64(crisis))
	if precision < 0.40 || precision > 0.60 {
		t.Errorf("precision = %.3f; want 0.40–0.60", precision)
	}
}

type badPolicy struct{ probs []float64 }

func (p badPolicy) ActionProbs(_, dst []float64) { copy(dst, p.probs) }

func TestBadPolicyPanics(t *testing.T) {
	cfg := DefaultConfig()
	n := cfg.NumActions()
	half := make([]float64, n)
	half[0] = 0.5
	neg := make([]float64, n)
	neg[0], neg[1] = 1.5, -0.5
	nan := make([]float64, n)
	nan[0] = math.NaN()
	for name, probs := range map[string][]float64{"sum 0.5": half, "negative": neg, "NaN": nan} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("RunEpisode did not panic")
				}
			}()
			mustNew(t, cfg, 1, 0).RunEpisode(badPolicy{probs}, nil)
		})
	}
}

func TestRunEpisodeAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under the race detector")
	}
	cfg := DefaultConfig()
	s := mustNew(t, cfg, 1, 0)
	p := Uniform{cfg.NumActions()}
	steps := 0
	emit := func(*Transition) { steps++ }
	allocs := testing.AllocsPerRun(2000, func() { s.RunEpisode(p, emit) })
	// Per user: the metadata map and its buckets, the keyword, engagement and
	// count strings, and the one id string; nothing per step.
	if allocs > 8 {
		t.Errorf("allocations per journey = %.1f (%.1f steps); want ≤ 8", allocs, float64(steps)/2001)
	}
}

func TestHeldOutSeed(t *testing.T) {
	tests := []struct {
		seed, want uint64
	}{
		{0, 1 << 40},
		{1, 1<<40 + 1},
		{1_000_004, 1<<40 + 1_000_004},
		{MaxTrainingSeed, 1<<41 - 1},
	}
	for _, tt := range tests {
		got := HeldOutSeed(tt.seed)
		if got != tt.want {
			t.Errorf("HeldOutSeed(%d) = %d, want %d", tt.seed, got, tt.want)
		}
		// Disjoint: no training seed up to MaxTrainingSeed is a held-out seed.
		if got <= MaxTrainingSeed {
			t.Errorf("HeldOutSeed(%d) = %d is a training seed (≤ %d)", tt.seed, got, uint64(MaxTrainingSeed))
		}
	}
}
