package classify

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"
)

func mustNew(t testing.TB, cfg Config) *Classifier {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

// warmed returns a classifier with WarmUp 1000 that has observed the values
// 1, 2, …, 1000 (its P90 estimate is then ≈ 900).
func warmed(t testing.TB, cfg Config) *Classifier {
	t.Helper()
	cfg.WarmUp = 1000
	c := mustNew(t, cfg)
	for i := 1; i <= 1000; i++ {
		if d := c.Classify(nil, float64(i)); d.Source == SourceValue {
			t.Fatalf("value %d fired before warm-up completed", i)
		}
	}
	return c
}

func TestSourceString(t *testing.T) {
	tests := []struct {
		s    Source
		want string
	}{
		{SourceLabel, "LABEL"}, {SourceMetadata, "METADATA"}, {SourceValue, "VALUE"},
		{SourceDefault, "DEFAULT"}, {Source(7), "Source(7)"}, {Source(-1), "Source(-1)"},
	}
	for _, tt := range tests {
		if got := tt.s.String(); got != tt.want {
			t.Errorf("Source(%d).String() = %q, want %q", tt.s, got, tt.want)
		}
		if tt.s >= 0 && int(tt.s) < NumSources {
			if got, err := ParseSource(tt.want); err != nil || got != tt.s {
				t.Errorf("ParseSource(%q) = %v, %v, want %v", tt.want, got, err, tt.s)
			}
		}
	}
	if _, err := ParseSource("label"); err == nil {
		t.Error("ParseSource(\"label\") succeeded, want error")
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("DefaultConfig().Validate() = %v", err)
	}
	tests := []struct {
		name string
		mod  func(*Config)
	}{
		{"label key is ground truth", func(c *Config) { c.LabelKey = KeyTrueSegment }},
		{"keywords key is ground truth", func(c *Config) { c.KeywordsKey = c.GroundTruthKey }},
		{"campaign key is ground truth", func(c *Config) { c.GroundTruthKey = KeyCampaignID }},
		{"empty ground truth key", func(c *Config) { c.GroundTruthKey = "" }},
		{"empty engagement key", func(c *Config) { c.EngagementKey = "" }},
		{"empty keyword", func(c *Config) { c.Keywords = []string{"crisis", "  "} }},
		{"keyword with comma", func(c *Config) { c.Keywords = []string{"a,b"} }},
		{"empty campaign", func(c *Config) { c.CrisisCampaigns = []string{""} }},
		{"negative weight", func(c *Config) { c.KeywordWeight = -1 }},
		{"NaN weight", func(c *Config) { c.CampaignWeight = math.NaN() }},
		{"Inf weight", func(c *Config) { c.UrgentSearchWeight = math.Inf(1) }},
		{"NaN engagement threshold", func(c *Config) { c.EngagementThreshold = math.NaN() }},
		{"negative urgent threshold", func(c *Config) { c.UrgentSearchThreshold = -1 }},
		{"zero score threshold", func(c *Config) { c.ScoreThreshold = 0 }},
		{"percentile 0", func(c *Config) { c.ValuePercentile = 0 }},
		{"percentile 100", func(c *Config) { c.ValuePercentile = 100 }},
		{"warm-up 4", func(c *Config) { c.WarmUp = 4 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tt.mod(&cfg)
			err := cfg.Validate()
			if !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("Validate() = %v, want ErrInvalidConfig", err)
			}
			if _, nerr := New(cfg); !errors.Is(nerr, ErrInvalidConfig) {
				t.Errorf("New() error = %v, want ErrInvalidConfig", nerr)
			}
		})
	}
}

// binaryConfig is DefaultConfig with weights whose sums are exact in binary
// (keyword 1, engagement 0.5, urgent 0.5, campaign 0.25, threshold 1).
func binaryConfig() Config {
	cfg := DefaultConfig()
	cfg.EngagementWeight, cfg.UrgentSearchWeight, cfg.CampaignWeight = 0.5, 0.5, 0.25
	return cfg
}

// TestMetadataRules checks each rule alone and their sums under
// binaryConfig, on a cold classifier so that VALUE cannot fire.
func TestMetadataRules(t *testing.T) {
	tests := []struct {
		name      string
		md        map[string]string
		wantScore float64
	}{
		{"nil metadata", nil, 0},
		{"keyword exact", map[string]string{KeyProfileKeywords: "crisis"}, 1},
		{"keyword case and spaces", map[string]string{KeyProfileKeywords: "toddler,  URGENT , deals"}, 1},
		{"keyword high_priority last", map[string]string{KeyProfileKeywords: "school,High_Priority"}, 1},
		{"two keywords count once", map[string]string{KeyProfileKeywords: "crisis,emergency"}, 1},
		{"keyword substring no", map[string]string{KeyProfileKeywords: "crisisx,non-urgent"}, 0},
		{"keyword with inner space no", map[string]string{KeyProfileKeywords: "high priority"}, 0},
		{"keyword separators only", map[string]string{KeyProfileKeywords: " , ,,"}, 0},
		{"keyword under other key no", map[string]string{"keywords": "crisis"}, 0},
		{"engagement at threshold", map[string]string{KeyCrisisEngagement: "0.700"}, 0.5},
		{"engagement just below", map[string]string{KeyCrisisEngagement: "0.699"}, 0},
		{"engagement above, spaces", map[string]string{KeyCrisisEngagement: " 0.95 "}, 0.5},
		{"engagement exponent", map[string]string{KeyCrisisEngagement: "7e-1"}, 0.5},
		{"engagement unparseable", map[string]string{KeyCrisisEngagement: "high"}, 0},
		{"engagement NaN", map[string]string{KeyCrisisEngagement: "NaN"}, 0},
		{"engagement Inf", map[string]string{KeyCrisisEngagement: "+Inf"}, 0},
		{"engagement overflow", map[string]string{KeyCrisisEngagement: "1e999"}, 0},
		{"engagement empty", map[string]string{KeyCrisisEngagement: ""}, 0},
		{"urgent at threshold", map[string]string{KeyUrgentSearchCount: "3"}, 0.5},
		{"urgent below", map[string]string{KeyUrgentSearchCount: "2"}, 0},
		{"urgent plus sign and spaces", map[string]string{KeyUrgentSearchCount: " +12 "}, 0.5},
		{"urgent negative", map[string]string{KeyUrgentSearchCount: "-5"}, 0},
		{"urgent not integer", map[string]string{KeyUrgentSearchCount: "3.0"}, 0},
		{"urgent too long", map[string]string{KeyUrgentSearchCount: "9999999999999999999"}, 0},
		{"campaign crisis", map[string]string{KeyCampaignID: "crisis_support"}, 0.25},
		{"campaign trimmed", map[string]string{KeyCampaignID: " urgent_care "}, 0.25},
		{"campaign case-sensitive", map[string]string{KeyCampaignID: "Emergency_Help"}, 0},
		{"campaign regular", map[string]string{KeyCampaignID: "back_to_school"}, 0},
		{"engagement + urgent reach threshold", map[string]string{
			KeyCrisisEngagement: "0.8", KeyUrgentSearchCount: "4"}, 1},
		{"engagement + campaign below threshold", map[string]string{
			KeyCrisisEngagement: "0.8", KeyCampaignID: "crisis_support"}, 0.75},
		{"all four", map[string]string{KeyProfileKeywords: "emergency", KeyCrisisEngagement: "1",
			KeyUrgentSearchCount: "9", KeyCampaignID: "emergency_help"}, 2.25},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustNew(t, binaryConfig())
			if got := c.MetadataScore(tt.md); got != tt.wantScore {
				t.Errorf("MetadataScore = %v, want %v", got, tt.wantScore)
			}
			wantP := c.Prob(tt.md, 5)
			got := c.Classify(tt.md, 5)
			want := Decision{Crisis: false, Source: SourceDefault, Score: wantP, RuleScore: tt.wantScore}
			if tt.wantScore >= 1 {
				want = Decision{Crisis: true, Source: SourceMetadata, Score: wantP, RuleScore: tt.wantScore}
			}
			if got != want {
				t.Errorf("Classify = %+v, want %+v", got, want)
			}
		})
	}
}

func TestScoreThresholdEdges(t *testing.T) {
	md := map[string]string{KeyCrisisEngagement: "0.9", KeyCampaignID: "crisis_support"} // 0.5 + 0.25
	tests := []struct {
		threshold float64
		want      Source
	}{
		{0.5, SourceMetadata},
		{0.75, SourceMetadata},
		{0.75 + 0.5e-9, SourceMetadata}, // within the 1e-9 slack
		{0.75 + 1e-6, SourceDefault},
		{1, SourceDefault},
	}
	for _, tt := range tests {
		cfg := binaryConfig()
		cfg.ScoreThreshold = tt.threshold
		got := mustNew(t, cfg).Classify(md, 0)
		if got.Source != tt.want || got.Crisis != (tt.want == SourceMetadata) || got.RuleScore != 0.75 {
			t.Errorf("threshold %v: got %+v, want source %v with score 0.75", tt.threshold, got, tt.want)
		}
	}
	// Decimal weights that do not sum exactly in binary still reach their
	// threshold: 0.1 + 0.2 = 0.30000000000000004 ≥ 0.3 and 0.7 + 0.1 + 0.2
	// = 0.9999999999999999 ≥ 1 − 1e-9.
	cfg := DefaultConfig()
	cfg.KeywordWeight, cfg.EngagementWeight, cfg.UrgentSearchWeight = 0.7, 0.1, 0.2
	cfg.ScoreThreshold = 1
	c := mustNew(t, cfg)
	md3 := map[string]string{KeyProfileKeywords: "urgent", KeyCrisisEngagement: "0.9", KeyUrgentSearchCount: "5"}
	if got := c.Classify(md3, 0); got.Source != SourceMetadata {
		t.Errorf("weights 0.7+0.1+0.2, threshold 1: %+v, want METADATA", got)
	}
	// A rule with weight 0 is off.
	cfg = DefaultConfig()
	cfg.KeywordWeight = 0
	if got := mustNew(t, cfg).Classify(map[string]string{KeyProfileKeywords: "crisis"}, 0); got.Source != SourceDefault || got.RuleScore != 0 {
		t.Errorf("keyword weight 0: got %+v, want DEFAULT with score 0", got)
	}
	// Custom keywords and campaigns are used, trimmed.
	cfg = DefaultConfig()
	cfg.Keywords = []string{" Hardship "}
	cfg.CrisisCampaigns = []string{" relief "}
	c = mustNew(t, cfg)
	if got := c.MetadataScore(map[string]string{KeyProfileKeywords: "hardship", KeyCampaignID: "relief"}); got != 1.4 {
		t.Errorf("custom keywords and campaigns: score %v, want 1.4", got)
	}
	if got := c.MetadataScore(map[string]string{KeyProfileKeywords: "crisis"}); got != 0 {
		t.Errorf("default keyword with custom list: score %v, want 0", got)
	}
}

// TestDefaultRuleCombinations pins the documented defaults: a crisis keyword
// alone, or any two of high engagement, urgent searches and a crisis-targeted
// campaign, tag a crisis parent; one behaviour signal or the campaign alone
// does not.
func TestDefaultRuleCombinations(t *testing.T) {
	const (
		kw   = 1 << iota // crisis keyword
		eng              // engagement ≥ 0.7
		srch             // urgent searches ≥ 3
		camp             // crisis-targeted campaign
	)
	for mask := range 16 {
		md := map[string]string{KeyProfileKeywords: "school", KeyCrisisEngagement: "0.699",
			KeyUrgentSearchCount: "2", KeyCampaignID: "baby_gear"}
		n := 0
		if mask&kw != 0 {
			md[KeyProfileKeywords] = "school,emergency"
		}
		if mask&eng != 0 {
			md[KeyCrisisEngagement], n = "0.700", n+1
		}
		if mask&srch != 0 {
			md[KeyUrgentSearchCount], n = "3", n+1
		}
		if mask&camp != 0 {
			md[KeyCampaignID], n = "emergency_help", n+1
		}
		want := mask&kw != 0 || n >= 2
		got := mustNew(t, DefaultConfig()).Classify(md, 1)
		if got.Crisis != want || (want && got.Source != SourceMetadata) {
			t.Errorf("rules %04b: %+v, want crisis %v", mask, got, want)
		}
	}
}

func TestPrecedence(t *testing.T) {
	crisisMD := map[string]string{KeyProfileKeywords: "crisis"}
	tests := []struct {
		name  string
		md    map[string]string
		value float64
		want  Decision
	}{
		{"label crisis wins over nothing", map[string]string{KeyEventType: LabelCrisis}, 1, Decision{Crisis: true, Source: SourceLabel, RuleScore: 1}},
		{"label regular wins over metadata and value", map[string]string{
			KeyEventType: LabelRegular, KeyProfileKeywords: "crisis", KeyUrgentSearchCount: "10"}, 999, Decision{Crisis: false, Source: SourceLabel, RuleScore: 1}},
		{"label case-insensitive, trimmed", map[string]string{KeyEventType: " crisis_parent "}, 1, Decision{Crisis: true, Source: SourceLabel, RuleScore: 1}},
		{"invalid label falls through to metadata", map[string]string{KeyEventType: "CRISIS", KeyProfileKeywords: "crisis"}, 1, Decision{Crisis: true, Source: SourceMetadata, RuleScore: 1}},
		{"empty label falls through to default", map[string]string{KeyEventType: ""}, 1, Decision{Crisis: false, Source: SourceDefault, RuleScore: 0}},
		{"metadata wins over value", crisisMD, 999, Decision{Crisis: true, Source: SourceMetadata, RuleScore: 1}},
		{"invalid label, value high", map[string]string{KeyEventType: "parent"}, 999, Decision{Crisis: true, Source: SourceValue, RuleScore: -1}},
		{"value below P90 is default with metadata score", map[string]string{KeyCampaignID: "urgent_care"}, 500, Decision{Crisis: false, Source: SourceDefault, RuleScore: 0.4}},
		{"ground truth alone is ignored", map[string]string{KeyTrueSegment: LabelCrisis}, 1, Decision{Crisis: false, Source: SourceDefault, RuleScore: 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := warmed(t, DefaultConfig())
			wantRank := c.q.Rank(tt.value)
			want := tt.want
			want.Score = c.Prob(tt.md, tt.value)
			if want.Source == SourceLabel {
				want.Score = b2f(want.Crisis)
			}
			got := c.Classify(tt.md, tt.value)
			if want.Source == SourceValue {
				want.RuleScore = wantRank
				if !(wantRank >= 0.9 && wantRank <= 1) {
					t.Errorf("VALUE score %v, want a rank in [0.9, 1]", wantRank)
				}
			}
			if got != want {
				t.Errorf("Classify = %+v, want %+v", got, want)
			}
		})
	}
}

func TestValueRuleWarmUp(t *testing.T) {
	cfg := DefaultConfig()
	cfg.WarmUp = 10
	c := mustNew(t, cfg)
	for i := 1; i <= 9; i++ {
		if got := c.Classify(nil, float64(i)); got.Source != SourceDefault {
			t.Fatalf("value %d during warm-up: %+v, want DEFAULT", i, got)
		}
	}
	// Nine values seen: still not trusted, even for a huge value.
	if got := c.Classify(nil, 100); got.Source != SourceDefault {
		t.Fatalf("10th value: %+v, want DEFAULT (9 observed < WarmUp 10)", got)
	}
	if thr, trusted := c.ValueThreshold(); !trusted || c.Observed() != 10 {
		t.Fatalf("ValueThreshold() = %v, %v with %d observed, want trusted after 10", thr, trusted, c.Observed())
	}
	// Ten seen: trusted.
	if got := c.Classify(nil, 1000); !got.Crisis || got.Source != SourceValue || got.RuleScore != 1 {
		t.Fatalf("11th value above the maximum: %+v, want VALUE crisis with rank 1", got)
	}
}

func TestValueRuleEdges(t *testing.T) {
	thr, trusted := warmed(t, DefaultConfig()).ValueThreshold()
	if !trusted || math.Abs(thr-900) > 10 {
		t.Fatalf("P90 of 1..1000 = %v (trusted %v), want 900 ± 10", thr, trusted)
	}
	tests := []struct {
		value float64
		want  Source
	}{
		{thr, SourceValue},
		{math.Nextafter(thr, 0), SourceDefault},
		{math.NaN(), SourceDefault},
		{math.Inf(1), SourceDefault},
		{math.Inf(-1), SourceDefault},
	}
	for _, tt := range tests {
		c := warmed(t, DefaultConfig()) // identical, deterministic state
		got := c.Classify(nil, tt.value)
		if got.Source != tt.want || got.Crisis != (tt.want == SourceValue) {
			t.Errorf("value %v (threshold %v): %+v, want %v", tt.value, thr, got, tt.want)
		}
		wantObserved := int64(1001)
		if math.IsNaN(tt.value) || math.IsInf(tt.value, 0) {
			wantObserved = 1000
		}
		if c.Observed() != wantObserved {
			t.Errorf("value %v: Observed() = %d, want %d", tt.value, c.Observed(), wantObserved)
		}
	}
}

// TestValueRuleFloor: when more than 10% of values tie at the minimum (zero
// conversion value), the P90 estimate sits on the floor; the floor itself must
// not be tagged, values above it are.
func TestValueRuleFloor(t *testing.T) {
	cfg := DefaultConfig()
	cfg.WarmUp = 5
	c := mustNew(t, cfg)
	for range 50 {
		c.Classify(nil, 0)
	}
	if thr, _ := c.ValueThreshold(); thr != 0 {
		t.Fatalf("threshold %v, want 0", thr)
	}
	if got := c.Classify(nil, 0); got.Source != SourceDefault {
		t.Errorf("zero value: %+v, want DEFAULT", got)
	}
	if got := c.Classify(nil, 0.01); got.Source != SourceValue {
		t.Errorf("value above the floor: %+v, want VALUE", got)
	}
}

// TestCompareBeforeObserve: the value is judged against the values seen
// before it: the first value above all others is VALUE with rank 1.
func TestCompareBeforeObserve(t *testing.T) {
	c := warmed(t, DefaultConfig())
	if got := c.Classify(nil, 1e6); !got.Crisis || got.Source != SourceValue || got.RuleScore != 1 {
		t.Errorf("new maximum: %+v, want VALUE with score 1", got)
	}
	if c.q.Max() != 1e6 {
		t.Errorf("max after Classify = %v, want 1e6 (observed after deciding)", c.q.Max())
	}
}

// TestGroundTruthNeverClassifies proves that neither the ground-truth key
// nor its content changes any decision on a realistic stream.
func TestGroundTruthNeverClassifies(t *testing.T) {
	recs := genRecords(rand.New(rand.NewPCG(11, 12)), 5000)
	base := mustNew(t, DefaultConfig())
	cfg := DefaultConfig()
	cfg.GroundTruthKey = "some.other.key"
	otherKey := mustNew(t, cfg)
	flipped := mustNew(t, DefaultConfig())
	deleted := mustNew(t, DefaultConfig())
	crisisSeen := 0
	for i, r := range recs {
		want := base.Classify(r.md, r.value)
		if want.Crisis {
			crisisSeen++
		}
		if got := otherKey.Classify(r.md, r.value); got != want {
			t.Fatalf("record %d: GroundTruthKey changed decision %+v to %+v", i, want, got)
		}
		md := make(map[string]string, len(r.md))
		for k, v := range r.md {
			md[k] = v
		}
		if r.crisis {
			md[KeyTrueSegment] = LabelRegular
		} else {
			md[KeyTrueSegment] = LabelCrisis
		}
		if got := flipped.Classify(md, r.value); got != want {
			t.Fatalf("record %d: flipping the ground truth changed decision %+v to %+v", i, want, got)
		}
		delete(md, KeyTrueSegment)
		if got := deleted.Classify(md, r.value); got != want {
			t.Fatalf("record %d: deleting the ground truth changed decision %+v to %+v", i, want, got)
		}
	}
	if crisisSeen == 0 || crisisSeen == len(recs) {
		t.Fatalf("%d of %d crisis decisions: the stream does not exercise both classes", crisisSeen, len(recs))
	}
}

func TestTruth(t *testing.T) {
	c := mustNew(t, DefaultConfig())
	tests := []struct {
		md         map[string]string
		wantCrisis bool
		wantOK     bool
	}{
		{map[string]string{KeyTrueSegment: LabelCrisis}, true, true},
		{map[string]string{KeyTrueSegment: LabelRegular}, false, true},
		{map[string]string{KeyTrueSegment: "unknown"}, false, false},
		{map[string]string{KeyEventType: LabelCrisis}, false, false},
		{nil, false, false},
	}
	for _, tt := range tests {
		if crisis, ok := c.Truth(tt.md); crisis != tt.wantCrisis || ok != tt.wantOK {
			t.Errorf("Truth(%v) = %v, %v, want %v, %v", tt.md, crisis, ok, tt.wantCrisis, tt.wantOK)
		}
	}
}

// TestClassifyOnSimulatedStream checks that every source is exercised on a
// realistic stream and the rules beat the 10% base rate: the precision of
// each rule that tags crisis parents, and the overall recall, are measured
// against the ground truth.
func TestClassifyOnSimulatedStream(t *testing.T) {
	recs := genRecords(rand.New(rand.NewPCG(5, 6)), 20000)
	c := mustNew(t, DefaultConfig())
	var acc Accuracy
	for _, r := range recs {
		d := c.Classify(r.md, r.value)
		truth, ok := c.Truth(r.md)
		if !ok || truth != r.crisis {
			t.Fatalf("Truth = %v, %v, want %v, true", truth, ok, r.crisis)
		}
		acc.Observe(d, truth)
	}
	rep := acc.Report()
	for s := range Source(NumSources) {
		if rep.BySource[s].Total() == 0 {
			t.Errorf("source %v never decided", s)
		}
	}
	if got := rep.BySource[SourceLabel]; got.Precision != 1 || got.Recall != 1 {
		t.Errorf("LABEL precision, recall = %v, %v, want 1, 1", got.Precision, got.Recall)
	}
	if got := rep.BySource[SourceMetadata].Precision; got < 0.5 {
		t.Errorf("METADATA precision %.3f, want ≥ 0.5 (five times the base rate)", got)
	}
	// VALUE sees what LABEL and METADATA left: it must at least double the
	// crisis share of that residue.
	v, d := rep.BySource[SourceValue], rep.BySource[SourceDefault]
	residue := float64(v.TP+d.FN) / float64(v.Total()+d.Total())
	if v.Precision < 2*residue {
		t.Errorf("VALUE precision %.3f, want ≥ 2 × %.3f (crisis share left to VALUE)", v.Precision, residue)
	}
	if rep.Overall.Recall < 0.5 || rep.Overall.F1 < 0.4 {
		t.Errorf("overall recall %.3f F1 %.3f, want ≥ 0.5 and ≥ 0.4", rep.Overall.Recall, rep.Overall.F1)
	}
}

func TestClassifyAllocatesNothing(t *testing.T) {
	recs := genRecords(rand.New(rand.NewPCG(1, 2)), 256)
	odd := []map[string]string{
		nil,
		{KeyCrisisEngagement: "not a number", KeyUrgentSearchCount: "many", KeyEventType: "bogus"},
		{KeyCrisisEngagement: "1e999", KeyUrgentSearchCount: "99999999999999999999999"},
		{KeyProfileKeywords: " , URGENT ,", KeyCampaignID: " crisis_support "},
	}
	for _, warm := range []bool{false, true} {
		c := mustNew(t, DefaultConfig())
		if warm {
			for _, r := range recs {
				for range 5 {
					c.Classify(r.md, r.value)
				}
			}
		}
		i := 0
		allocs := testing.AllocsPerRun(1000, func() {
			r := recs[i%len(recs)]
			c.Classify(r.md, r.value)
			c.Classify(odd[i%len(odd)], r.value)
			i++
		})
		if allocs != 0 {
			t.Errorf("warm=%v: Classify allocates %v times per run, want 0", warm, allocs)
		}
	}
}
