package classify

import (
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
)

// record is one synthetic experience in the shape the simulator writes.
type record struct {
	md     map[string]string
	value  float64
	crisis bool
}

// genRecords draws n records resembling the simulator's: 10% crisis parents,
// a label on 20% of them, crisis keywords on 55% of crisis and 3% of regular
// profiles, engagement N(0.6, 0.18) vs N(0.25, 0.15) clamped to [0, 1],
// urgent searches Poisson(3) vs Poisson(0.6), crisis-targeted campaigns for
// 60% vs 20%, log-normal
// values higher for crisis parents, and the ground truth under KeyTrueSegment.
func genRecords(rng *rand.Rand, n int) []record {
	neutral := []string{"parenting", "toddler", "deals", "school", "sleep", "recipes"}
	crisisKW := []string{"crisis", "urgent", "emergency", "high_priority"}
	crisisCamp := []string{"crisis_support", "emergency_help", "urgent_care"}
	regularCamp := []string{"back_to_school", "family_deals", "weekend_fun", "baby_gear"}
	recs := make([]record, n)
	for i := range recs {
		crisis := rng.Float64() < 0.1
		md := make(map[string]string, 7)
		truth := LabelRegular
		if crisis {
			truth = LabelCrisis
		}
		md[KeyTrueSegment] = truth
		if rng.Float64() < 0.2 {
			md[KeyEventType] = truth
		}
		var kws []string
		for range 1 + rng.IntN(3) {
			kws = append(kws, neutral[rng.IntN(len(neutral))])
		}
		if (crisis && rng.Float64() < 0.55) || (!crisis && rng.Float64() < 0.03) {
			kws = append(kws, crisisKW[rng.IntN(len(crisisKW))])
		}
		rng.Shuffle(len(kws), func(a, b int) { kws[a], kws[b] = kws[b], kws[a] })
		md[KeyProfileKeywords] = strings.Join(kws, ",")
		eng, lambda, camp := 0.25+0.15*rng.NormFloat64(), 0.6, regularCamp[rng.IntN(len(regularCamp))]
		if crisis {
			eng = 0.6 + 0.18*rng.NormFloat64()
			lambda = 3
		}
		eng = math.Min(1, math.Max(0, eng))
		if (crisis && rng.Float64() < 0.6) || (!crisis && rng.Float64() < 0.2) {
			camp = crisisCamp[rng.IntN(len(crisisCamp))]
		}
		md[KeyCrisisEngagement] = strconv.FormatFloat(eng, 'f', 3, 64)
		md[KeyUrgentSearchCount] = strconv.Itoa(poisson(rng, lambda))
		md[KeyCampaignID] = camp
		v := math.Exp(rng.NormFloat64())
		if crisis {
			v *= 4
		}
		recs[i] = record{md: md, value: v, crisis: crisis}
	}
	return recs
}

// poisson draws a Poisson(lambda) count by Knuth's product method.
func poisson(rng *rand.Rand, lambda float64) int {
	l, k, p := math.Exp(-lambda), 0, 1.0
	for {
		p *= rng.Float64()
		if p <= l {
			return k
		}
		k++
	}
}
