package classify

import (
	"math"
	"strings"
)

// NumFeatures is the width of the learned tagger's feature vector.
const NumFeatures = 18 + numValueKnots

// numValueKnots is the number of hinges of the log value's spline
// (features 18…), at z = −0.5, −0.25, …, 2: the range where the
// simulator's values lie (ln v from −6 to 4).
const numValueKnots = 11

// The learned tagger's features, in order. Every feature is finite and
// bounded whatever the metadata and the value hold: a signal that is missing
// or does not parse sets its "missing" indicator and leaves its other
// features 0, so the model learns what absence means instead of reading
// garbage. The scalings keep every feature within a few units of 0, which
// suits one learning rate.
//
//	0  bias                                        1
//	1  crisis keyword in the profile keywords      0/1
//	2  crisis-targeted campaign                    0/1
//	3  campaign missing                            0/1
//	4  engagement e, clamped to [0, 1]             e
//	5  engagement squared                          e²
//	6  engagement at the floor (e < 0.0005)        0/1
//	7  engagement at the ceiling (e > 0.9995)      0/1
//	8  engagement missing or unparseable           0/1
//	9  urgent searches n, clamped to [0, 30]       n/10
//	10 urgent searches missing or unparseable      0/1
//	11 log value, z = (clamp(ln v, −16, 8) + 4)/4  z (0 when missing)
//	12 its square                                  z²
//	13 value missing (not finite and > 0)          0/1
//	14 z × engagement                              z·e
//	15 z × urgent searches                         z·n/10
//	16 z × crisis keyword                          z·feature 1
//	17 z × crisis campaign                         z·feature 2
//	18… hinges of z at knots k = −0.5 + 0.25·i     max(0, z − k), i = 0…10
//
// Why these: in a stream like the simulator's under the uniform policy the
// signals are independent given the segment, so the log-odds is a sum of
// one term per signal. A flag's term is a constant (features 1–3); a
// Poisson count's is linear in the count (9); a normal engagement with a
// different mean and spread per segment has a quadratic term, plus point
// masses where it was clamped (4–8); the log of a log-normal value mixture
// is a smooth function of ln v, which the quadratic and the spline's
// hinges fit (11–12, 18…). When the acting policy reads the observation
// (a learned policy), the action, and so the value, depends on the
// segment through the same signals, and the value's term changes with
// them: the products 14–17 let it. Logistic regression on them can
// therefore represent the Bayes-optimal posterior closely; see
// docs/tagging.md for how close.
const (
	featBias = iota
	featKeyword
	featCampaign
	featCampaignMissing
	featEngagement
	featEngagementSq
	featEngagementFloor
	featEngagementCeil
	featEngagementMissing
	featSearches
	featSearchesMissing
	featValue
	featValueSq
	featValueMissing
	featValueEngagement
	featValueSearches
	featValueKeyword
	featValueCampaign
	featValueHinge
)

// featureNames names the features in order, for docs and state dumps.
var featureNames = [NumFeatures]string{
	"bias", "keyword", "campaign", "campaign_missing",
	"engagement", "engagement_sq", "engagement_floor", "engagement_ceil", "engagement_missing",
	"searches", "searches_missing", "log_value", "log_value_sq", "value_missing",
	"log_value_x_engagement", "log_value_x_searches", "log_value_x_keyword", "log_value_x_campaign",
	"log_value_hinge_-0.50", "log_value_hinge_-0.25", "log_value_hinge_0.00", "log_value_hinge_0.25",
	"log_value_hinge_0.50", "log_value_hinge_0.75", "log_value_hinge_1.00", "log_value_hinge_1.25",
	"log_value_hinge_1.50", "log_value_hinge_1.75", "log_value_hinge_2.00",
}

// FeatureNames returns the names of the learned tagger's features in order.
func FeatureNames() []string { return append([]string(nil), featureNames[:]...) }

// Features writes the learned tagger's features of metadata md (nil is
// fine) and value into dst, with the keys and the keyword and campaign
// lists of c's configuration. It never allocates and never writes a
// non-finite number.
func (c *Classifier) Features(md map[string]string, value float64, dst *[NumFeatures]float64) {
	cfg := &c.cfg
	*dst = [NumFeatures]float64{featBias: 1}
	if kw, ok := md[cfg.KeywordsKey]; ok && hasKeyword(kw, cfg.Keywords) {
		dst[featKeyword] = 1
	}
	if id, ok := md[cfg.CampaignKey]; ok {
		id = strings.TrimSpace(id)
		for _, crisisID := range cfg.CrisisCampaigns {
			if id == crisisID {
				dst[featCampaign] = 1
				break
			}
		}
	} else {
		dst[featCampaignMissing] = 1
	}
	if e, ok := parseDecimal(md[cfg.EngagementKey]); ok && !math.IsNaN(e) {
		e = math.Max(0, math.Min(1, e))
		dst[featEngagement], dst[featEngagementSq] = e, e*e
		dst[featEngagementFloor] = b2f(e < 0.0005)
		dst[featEngagementCeil] = b2f(e > 0.9995)
	} else {
		dst[featEngagementMissing] = 1
	}
	if n, ok := parseCount(md[cfg.UrgentSearchKey]); ok {
		dst[featSearches] = float64(max(0, min(30, n))) / 10
	} else {
		dst[featSearchesMissing] = 1
	}
	if value > 0 && !math.IsInf(value, 1) {
		z := (math.Max(-16, math.Min(8, math.Log(value))) + 4) / 4
		dst[featValue], dst[featValueSq] = z, z*z
		dst[featValueEngagement], dst[featValueSearches] = z*dst[featEngagement], z*dst[featSearches]
		dst[featValueKeyword], dst[featValueCampaign] = z*dst[featKeyword], z*dst[featCampaign]
		for k := range numValueKnots {
			dst[featValueHinge+k] = math.Max(0, z-(-0.5+0.25*float64(k)))
		}
	} else {
		dst[featValueMissing] = 1
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
