package classify

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Source says which rule decided; its values are in the order of the
// schemas' tag_source enum symbols (LABEL, METADATA, VALUE, DEFAULT).
type Source int8

// The rules, in precedence order.
const (
	// SourceLabel: an explicit, valid label in the metadata.
	SourceLabel Source = iota
	// SourceMetadata: the metadata score reached the threshold.
	SourceMetadata
	// SourceValue: the value reached the running percentile after warm-up.
	SourceValue
	// SourceDefault: no rule fired; a regular parent.
	SourceDefault
)

// NumSources is the number of Source values.
const NumSources = 4

var sourceNames = [NumSources]string{"LABEL", "METADATA", "VALUE", "DEFAULT"}

// String returns the tag_source enum symbol: LABEL, METADATA, VALUE or
// DEFAULT, and Source(n) for an unknown value.
func (s Source) String() string {
	if s >= 0 && int(s) < NumSources {
		return sourceNames[s]
	}
	return "Source(" + strconv.Itoa(int(s)) + ")"
}

// ParseSource returns the Source whose String is name.
func ParseSource(name string) (Source, error) {
	for i, n := range sourceNames {
		if n == name {
			return Source(i), nil
		}
	}
	return 0, fmt.Errorf("parse source %q: unknown", name)
}

// Decision is the outcome of Classify.
type Decision struct {
	// Crisis is true for a crisis parent, false for a regular parent.
	Crisis bool
	// Source is the rule that decided.
	Source Source
	// Score is the calibrated probability that the record is a crisis
	// parent, whoever decided: for LABEL 1 or 0 (the label is ground
	// truth), otherwise the learned model's P(crisis | signals) before the
	// record (the model trains only on labelled records). It is what the
	// aggregator writes as tag_score.
	Score float64
	// RuleScore is the rules' score: LABEL 1; METADATA and DEFAULT the
	// metadata score (the sum of the fired rules' weights); VALUE the value's
	// estimated percentile rank among the values seen before it, in [0, 1]
	// (see P2Quantile.Rank). When the learned tagger decides it is the
	// metadata score.
	RuleScore float64
}

// scoreSlack absorbs the rounding of sums of decimal weights in the
// METADATA threshold comparison.
const scoreSlack = 1e-9

// Classifier tags experiences as crisis or regular parents; see Classify.
// A Classifier is not safe for concurrent use: use one per consumer
// goroutine. Its value percentile is then a per-instance estimate over the
// values that instance has seen.
type Classifier struct {
	cfg Config
	q   *P2Quantile
	// The learned tagger: its model, the histogram its threshold is chosen
	// from, the threshold in use, the labelled records trained on, and the
	// calibration of its held-out predictions on them.
	model    *Logistic
	th       *thresholder
	thr      float64
	labelled int64
	heldOut  Calibration
}

// initialPrior is the crisis share the model's bias starts at, before any
// labelled record: the design's 10% crisis parents.
const initialPrior = 0.1

// thresholdEvery is how often, in labelled records, the threshold is
// chosen again from the histogram.
const thresholdEvery = 256

// New returns a Classifier for cfg, or an error wrapping ErrInvalidConfig.
// It copies the keyword and campaign lists, trimmed of surrounding spaces.
func New(cfg Config) (*Classifier, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.Keywords = trimAll(cfg.Keywords)
	cfg.CrisisCampaigns = trimAll(cfg.CrisisCampaigns)
	q, err := NewP2Quantile(cfg.ValuePercentile / 100)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	c := &Classifier{cfg: cfg, q: q}
	if len(cfg.State) > 0 {
		if err := c.restore(cfg.State); err != nil {
			return nil, err
		}
	} else {
		c.model, _ = NewLogistic(cfg.LearningRate, cfg.L2, initialPrior) // validated
		c.th = &thresholder{}
		c.thr = c.th.threshold(cfg.Objective)
	}
	c.cfg.State = nil
	return c, nil
}

func trimAll(ss []string) []string {
	out := slices.Clone(ss)
	for i, s := range out {
		out[i] = strings.TrimSpace(s)
	}
	return out
}

// Config returns the configuration in use (keywords and campaigns trimmed).
func (c *Classifier) Config() Config {
	cfg := c.cfg
	cfg.Keywords = slices.Clone(cfg.Keywords)
	cfg.CrisisCampaigns = slices.Clone(cfg.CrisisCampaigns)
	return cfg
}

// Classify decides whether the experience with metadata md (nil is fine) and
// value is a crisis parent. A record with a label trains the learned model
// (after its held-out prediction is recorded) and is decided by its label.
// When Learned() the model decides every other record: crisis when
// P(crisis | signals) ≥ Threshold(), tagged SourceMetadata, else
// SourceDefault. Otherwise the rules, first match wins:
//
//  1. LABEL: md[LabelKey] is LabelCrisis or LabelRegular (case-insensitive,
//     trimmed); anything else falls through.
//  2. METADATA: score = Σ weights of the fired rules (crisis keyword in the
//     profile keywords; engagement ≥ EngagementThreshold; urgent searches ≥
//     UrgentSearchThreshold; crisis-targeted campaign); crisis when score ≥
//     ScoreThreshold − 1e-9. A missing or unparseable number does not fire
//     its rule.
//  3. VALUE: at least WarmUp values were observed before this one, value is
//     finite, value ≥ the estimated ValuePercentile of those values, and
//     value > the smallest of them (so that when more than 1 − percentile of
//     the values tie at the floor, e.g. zero conversion value, the floor
//     itself is not tagged).
//  4. DEFAULT: regular parent.
//
// The value is compared against the estimate from the values seen before it
// and only then observed (every call observes it, whatever rule decides;
// non-finite values are ignored), so a decision never depends on its own
// value. Classify never reads GroundTruthKey and does not allocate.
func (c *Classifier) Classify(md map[string]string, value float64) Decision {
	var x [NumFeatures]float64
	c.Features(md, value, &x)
	d := c.decide(md, value, &x)
	c.q.Observe(value)
	return d
}

func (c *Classifier) decide(md map[string]string, value float64, x *[NumFeatures]float64) Decision {
	if crisis, ok := parseLabel(md[c.cfg.LabelKey]); ok {
		c.learn(x, crisis)
		return Decision{Crisis: crisis, Source: SourceLabel, Score: b2f(crisis), RuleScore: 1}
	}
	p := c.model.Prob(x)
	score := c.MetadataScore(md)
	if c.Learned() {
		if p >= c.thr {
			return Decision{Crisis: true, Source: SourceMetadata, Score: p, RuleScore: score}
		}
		return Decision{Crisis: false, Source: SourceDefault, Score: p, RuleScore: score}
	}
	if score >= c.cfg.ScoreThreshold-scoreSlack {
		return Decision{Crisis: true, Source: SourceMetadata, Score: p, RuleScore: score}
	}
	if c.q.Count() >= c.cfg.WarmUp && value >= c.q.Quantile() && value > c.q.Min() && !math.IsInf(value, 1) {
		return Decision{Crisis: true, Source: SourceValue, Score: p, RuleScore: c.q.Rank(value)}
	}
	return Decision{Crisis: false, Source: SourceDefault, Score: p, RuleScore: score}
}

// MetadataScore returns the sum, in the order keyword, engagement, urgent
// searches, campaign, of the weights of the metadata rules that fire on md.
// It does not allocate and does not change the Classifier.
func (c *Classifier) MetadataScore(md map[string]string) float64 {
	var score float64
	if c.cfg.KeywordWeight != 0 {
		if kw, ok := md[c.cfg.KeywordsKey]; ok && hasKeyword(kw, c.cfg.Keywords) {
			score += c.cfg.KeywordWeight
		}
	}
	if c.cfg.EngagementWeight != 0 {
		if e, ok := parseDecimal(md[c.cfg.EngagementKey]); ok && e >= c.cfg.EngagementThreshold {
			score += c.cfg.EngagementWeight
		}
	}
	if c.cfg.UrgentSearchWeight != 0 {
		if n, ok := parseCount(md[c.cfg.UrgentSearchKey]); ok && n >= c.cfg.UrgentSearchThreshold {
			score += c.cfg.UrgentSearchWeight
		}
	}
	if c.cfg.CampaignWeight != 0 {
		if id, ok := md[c.cfg.CampaignKey]; ok {
			id = strings.TrimSpace(id)
			for _, crisisID := range c.cfg.CrisisCampaigns {
				if id == crisisID {
					score += c.cfg.CampaignWeight
					break
				}
			}
		}
	}
	return score
}

// ValueThreshold returns the current estimate of the ValuePercentile of the
// values observed, and whether the VALUE rule trusts it yet (at least WarmUp
// values observed).
func (c *Classifier) ValueThreshold() (threshold float64, trusted bool) {
	return c.q.Quantile(), c.q.Count() >= c.cfg.WarmUp
}

// Observed returns the number of finite values observed.
func (c *Classifier) Observed() int64 { return c.q.Count() }

// Truth reads the ground truth from md[GroundTruthKey] for accuracy
// measurement: crisis is true for LabelCrisis; ok is false when the key is
// missing or holds neither label. It is the only reader of GroundTruthKey.
func (c *Classifier) Truth(md map[string]string) (crisis, ok bool) {
	return parseLabel(md[c.cfg.GroundTruthKey])
}
