package classify

import (
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/aelp/aelp/schemas"
)

// Metadata keys written by the simulator (and expected from a live stream).
const (
	// KeyEventType holds an explicit label, LabelCrisis or LabelRegular.
	KeyEventType = "event_type"
	// KeyProfileKeywords holds comma-separated profile keywords.
	KeyProfileKeywords = "profile_keywords"
	// KeyCrisisEngagement holds the crisis-content engagement, a decimal in [0, 1].
	KeyCrisisEngagement = "crisis_content_engagement"
	// KeyUrgentSearchCount holds the number of urgent searches, an integer.
	KeyUrgentSearchCount = "urgent_search_count"
	// KeyCampaignID holds the id of the campaign that served the ad.
	KeyCampaignID = "campaign_id"
	// KeyTrueSegment holds the simulator's ground truth; it is reserved for
	// accuracy measurement and never read to classify. It is
	// schemas.KeyTrueSegment.
	KeyTrueSegment = schemas.KeyTrueSegment
)

// Label values, the symbols of the schemas' event_type enum.
const (
	// LabelCrisis marks a crisis parent.
	LabelCrisis = "CRISIS_PARENT"
	// LabelRegular marks a regular parent.
	LabelRegular = "REGULAR_PARENT"
)

// Config configures a Classifier. Build one with DefaultConfig and change
// fields; New validates it. A metadata rule is switched off by giving it
// weight 0; the VALUE rule is switched off by a WarmUp larger than any stream.
type Config struct {
	// LabelKey is the metadata key of an explicit label (LabelCrisis or
	// LabelRegular, case-insensitive, surrounding spaces ignored). Any other
	// value is not a label and falls through to the metadata rules.
	// Default KeyEventType.
	LabelKey string
	// GroundTruthKey is the metadata key of the true segment. It is read only
	// by Classifier.Truth, for accuracy, never by Classify; no other key may
	// equal it. Default KeyTrueSegment.
	GroundTruthKey string

	// KeywordsKey is the metadata key of the comma-separated profile
	// keywords. Default KeyProfileKeywords.
	KeywordsKey string
	// Keywords are the crisis indicator keywords, matched case-insensitively
	// against each comma-separated profile keyword with surrounding spaces
	// trimmed. None may be empty or contain a comma. Default crisis, urgent,
	// emergency, high_priority.
	Keywords []string
	// KeywordWeight is added to the metadata score when any profile keyword
	// is a crisis keyword (once, however many match). Default 1.
	KeywordWeight float64

	// EngagementKey is the metadata key of the crisis-content engagement, a
	// decimal. Default KeyCrisisEngagement.
	EngagementKey string
	// EngagementThreshold: the engagement rule fires when the engagement is
	// ≥ EngagementThreshold. Default 0.7.
	EngagementThreshold float64
	// EngagementWeight is added to the metadata score when the engagement
	// rule fires. Default 0.6.
	EngagementWeight float64

	// UrgentSearchKey is the metadata key of the urgent search count, an
	// integer. Default KeyUrgentSearchCount.
	UrgentSearchKey string
	// UrgentSearchThreshold: the urgent-search rule fires when the count is
	// ≥ UrgentSearchThreshold. Default 3.
	UrgentSearchThreshold int64
	// UrgentSearchWeight is added to the metadata score when the
	// urgent-search rule fires. Default 0.6.
	UrgentSearchWeight float64

	// CampaignKey is the metadata key of the campaign id. Default KeyCampaignID.
	CampaignKey string
	// CrisisCampaigns are the crisis-targeted campaign ids, matched exactly
	// after trimming surrounding spaces. Default crisis_support,
	// emergency_help, urgent_care.
	CrisisCampaigns []string
	// CampaignWeight is added to the metadata score when the campaign is
	// crisis-targeted. Default 0.4: a crisis-targeted campaign alone is weak
	// evidence, since it also reaches regular parents, but it corroborates
	// one behaviour signal.
	CampaignWeight float64

	// ScoreThreshold: the METADATA rule tags a crisis parent when the sum of
	// the fired rules' weights is ≥ ScoreThreshold − 1e-9 (the slack absorbs
	// the rounding of decimal weights such as 0.1 + 0.2); it must be > 0.
	// Default 1: a crisis keyword alone, or any two of high engagement,
	// urgent searches and a crisis-targeted campaign.
	ScoreThreshold float64

	// ValuePercentile is the percentile (0 < ValuePercentile < 100) of the
	// values seen at or above which the VALUE rule tags a crisis parent.
	// Default 90.
	ValuePercentile float64
	// WarmUp is the number of values (≥ 5) that must have been observed
	// before the VALUE rule is trusted. Default 1000.
	WarmUp int64

	// Tagger chooses who decides the records without a label: TaggerRules
	// (METADATA, VALUE, DEFAULT above) or TaggerLearned (the calibrated
	// model, once TaggerWarmUp labelled records were seen; the rules before
	// that). Default TaggerLearned (see docs/tagging.md for the measurements
	// behind it).
	Tagger Tagger
	// Objective is what the learned tagger's threshold on P(crisis) is
	// chosen for. Default DefaultObjective (f1).
	Objective Objective
	// TaggerWarmUp is the number of labelled records (≥ 0) the model must
	// have trained on before the learned tagger decides; until then the
	// rules decide. Default 2000 (about 360 labelled users of the
	// simulator's 5.5-step journeys, 3% of aelp run's stream).
	TaggerWarmUp int64
	// LearningRate is the model's AdaGrad step size η (> 0). Default 0.5.
	LearningRate float64
	// L2 is the model's L2 strength λ per example (≥ 0). Default 1e-5.
	L2 float64
	// State, when not empty, is a state written by Classifier.AppendState
	// that New resumes from (the model, its threshold histogram and its
	// labelled count), so that a restarted aggregator keeps what it learned.
	State []byte
}

// Tagger names who tags the records that carry no label.
type Tagger string

// The taggers.
const (
	// TaggerRules: the hand-set METADATA and VALUE rules.
	TaggerRules Tagger = "rules"
	// TaggerLearned: the calibrated logistic model of P(crisis | signals).
	TaggerLearned Tagger = "learned"
)

// String returns the tagger's name.
func (t Tagger) String() string { return string(t) }

// Set parses "rules" or "learned" into t (flag.Value).
func (t *Tagger) Set(s string) error {
	switch v := Tagger(strings.TrimSpace(s)); v {
	case TaggerRules, TaggerLearned:
		*t = v
		return nil
	}
	return fmt.Errorf("%w: tagger %q: want rules or learned", ErrInvalidConfig, s)
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{
		LabelKey:              KeyEventType,
		GroundTruthKey:        KeyTrueSegment,
		KeywordsKey:           KeyProfileKeywords,
		Keywords:              []string{"crisis", "urgent", "emergency", "high_priority"},
		KeywordWeight:         1,
		EngagementKey:         KeyCrisisEngagement,
		EngagementThreshold:   0.7,
		EngagementWeight:      0.6,
		UrgentSearchKey:       KeyUrgentSearchCount,
		UrgentSearchThreshold: 3,
		UrgentSearchWeight:    0.6,
		CampaignKey:           KeyCampaignID,
		CrisisCampaigns:       []string{"crisis_support", "emergency_help", "urgent_care"},
		CampaignWeight:        0.4,
		ScoreThreshold:        1,
		ValuePercentile:       90,
		WarmUp:                1000,
		Tagger:                TaggerLearned,
		Objective:             DefaultObjective,
		TaggerWarmUp:          2000,
		LearningRate:          0.5,
		L2:                    1e-5,
	}
}

// ErrInvalidConfig is wrapped by every error Validate returns.
var ErrInvalidConfig = errors.New("invalid classifier config")

// Validate reports the first problem with c, wrapping ErrInvalidConfig.
func (c Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, args...))
	}
	if c.GroundTruthKey == "" {
		return bad("empty GroundTruthKey")
	}
	keys := []struct{ name, key string }{
		{"LabelKey", c.LabelKey},
		{"KeywordsKey", c.KeywordsKey},
		{"EngagementKey", c.EngagementKey},
		{"UrgentSearchKey", c.UrgentSearchKey},
		{"CampaignKey", c.CampaignKey},
	}
	for _, k := range keys {
		if k.key == "" {
			return bad("empty %s", k.name)
		}
		if k.key == c.GroundTruthKey {
			return bad("%s %q is the ground-truth key, which must not be used to classify", k.name, k.key)
		}
	}
	for _, kw := range c.Keywords {
		if strings.TrimSpace(kw) == "" || strings.ContainsRune(kw, ',') {
			return bad("keyword %q is empty or contains a comma", kw)
		}
	}
	for _, id := range c.CrisisCampaigns {
		if strings.TrimSpace(id) == "" {
			return bad("empty crisis campaign id")
		}
	}
	weights := []struct {
		name string
		w    float64
	}{
		{"KeywordWeight", c.KeywordWeight},
		{"EngagementWeight", c.EngagementWeight},
		{"UrgentSearchWeight", c.UrgentSearchWeight},
		{"CampaignWeight", c.CampaignWeight},
	}
	for _, w := range weights {
		if !(w.w >= 0) || math.IsInf(w.w, 0) {
			return bad("%s %v is not a finite number ≥ 0", w.name, w.w)
		}
	}
	if math.IsNaN(c.EngagementThreshold) || math.IsInf(c.EngagementThreshold, 0) {
		return bad("EngagementThreshold %v is not finite", c.EngagementThreshold)
	}
	if c.UrgentSearchThreshold < 0 {
		return bad("UrgentSearchThreshold %d < 0", c.UrgentSearchThreshold)
	}
	if !(c.ScoreThreshold > 0) || math.IsInf(c.ScoreThreshold, 0) {
		return bad("ScoreThreshold %v is not a finite number > 0", c.ScoreThreshold)
	}
	if !(c.ValuePercentile > 0 && c.ValuePercentile < 100) {
		return bad("ValuePercentile %v not in (0, 100)", c.ValuePercentile)
	}
	if c.WarmUp < 5 {
		return bad("WarmUp %d < 5", c.WarmUp)
	}
	return c.validateTagger()
}

func (c Config) validateTagger() error {
	if c.Tagger != TaggerRules && c.Tagger != TaggerLearned {
		return fmt.Errorf("%w: tagger %q: want rules or learned", ErrInvalidConfig, c.Tagger)
	}
	if err := c.Objective.Validate(); err != nil {
		return err
	}
	if c.TaggerWarmUp < 0 {
		return fmt.Errorf("%w: TaggerWarmUp %d < 0", ErrInvalidConfig, c.TaggerWarmUp)
	}
	if _, err := NewLogistic(c.LearningRate, c.L2, initialPrior); err != nil {
		return err
	}
	return nil
}
