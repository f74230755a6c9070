package sim

import (
	"errors"
	"fmt"
	"math"
)

// MinStateDim is the number of engineered features every observation carries
// (see the feature layout in the package documentation); Config.StateDim may
// add pure-noise distractor features beyond it.
const MinStateDim = 15

// Config describes the simulated population, the ad system's action space and
// the response model. The zero value is not usable; start from DefaultConfig.
type Config struct {
	// CrisisFraction is the share of users who are crisis parents (default 0.10).
	CrisisFraction float64
	// BidLevels is the number of bid levels b = 0 … BidLevels−1, from the
	// lowest bid to the highest (default 4, at least 2).
	BidLevels int
	// Creatives is the number of creatives c = 0 … Creatives−1, ordered from
	// the most urgent ("urgent help") to the least urgent (default 3, at
	// least 2). With the default 3: 0 urgent help, 1 family deals,
	// 2 lifestyle.
	Creatives int
	// StateDim is the width of the observation vector (default 16, at least
	// MinStateDim); features past MinStateDim are N(0,1) distractors.
	StateDim int
	// MaxSteps is the maximum number of ad opportunities in one user's
	// journey (default 8).
	MaxSteps int
	// BudgetUnits is each user's budget in cost units (default 20). A won
	// impression at bid level b costs b+1 units (the last impression is
	// charged whatever remains); the journey ends when the budget reaches 0.
	BudgetUnits int
	// UnitCost is the money value of one cost unit (default 0.10).
	UnitCost float64
	// CrisisValue is the value of a crisis parent's conversion (default 50).
	CrisisValue float64
	// RegularValue is the value of a regular parent's conversion (default 20).
	RegularValue float64
	// CrisisRate is a crisis parent's conversion probability per impression
	// for the most urgent creative at the highest bid (default 0.30).
	CrisisRate float64
	// CrisisConversionShare is the calibration target: the share of all
	// conversions that come from crisis parents under the uniform logging
	// policy (default 0.50). The regular parents' base conversion rate is
	// solved from it exactly when the model is built.
	CrisisConversionShare float64
	// LabelShare is the share of users whose metadata carries the explicit
	// event_type label (default 0.20).
	LabelShare float64
	// CrisisKeywordShare is the share of crisis parents whose
	// profile_keywords include crisis keywords (default 0.55).
	CrisisKeywordShare float64
	// RegularKeywordShare is the false-positive share of regular parents
	// whose profile_keywords include crisis keywords (default 0.03).
	RegularKeywordShare float64
	// CrisisCampaignShare is the share of crisis parents served a
	// crisis-targeted campaign (default 0.60).
	CrisisCampaignShare float64
	// RegularCampaignShare is the share of regular parents served a
	// crisis-targeted campaign (default 0.20).
	RegularCampaignShare float64
	// ObsNoise scales the noise on the segment-revealing observation
	// features 4, 5, 8 and 9 (default 1); larger values hide the segment
	// more.
	ObsNoise float64
	// ValueNoise is σ of the log-normal noise on Transition.Value (default
	// 1.3, which puts the precision of "top 10% by value" near 50%).
	ValueNoise float64
}

// DefaultConfig returns the documented defaults: 10% crisis parents, 4 bid
// levels × 3 creatives, 16 features, journeys of up to 8 steps.
func DefaultConfig() Config {
	return Config{
		CrisisFraction:        0.10,
		BidLevels:             4,
		Creatives:             3,
		StateDim:              16,
		MaxSteps:              8,
		BudgetUnits:           20,
		UnitCost:              0.10,
		CrisisValue:           50,
		RegularValue:          20,
		CrisisRate:            0.30,
		CrisisConversionShare: 0.50,
		LabelShare:            0.20,
		CrisisKeywordShare:    0.55,
		RegularKeywordShare:   0.03,
		CrisisCampaignShare:   0.60,
		RegularCampaignShare:  0.20,
		ObsNoise:              1,
		ValueNoise:            1.3,
	}
}

// NumActions returns BidLevels × Creatives.
func (c Config) NumActions() int { return c.BidLevels * c.Creatives }

// Action returns the action index of bid level b and creative cr:
// a = b·Creatives + cr, so actions are grouped by bid level.
func (c Config) Action(b, cr int) int { return b*c.Creatives + cr }

// Decode splits action a into its bid level a / Creatives and creative
// a mod Creatives.
func (c Config) Decode(a int) (bid, creative int) { return a / c.Creatives, a % c.Creatives }

// ErrInvalidConfig is wrapped by every error Validate returns.
var ErrInvalidConfig = errors.New("invalid simulator config")

// Validate reports the first field that is out of range.
func (c Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...)
	}
	prob := func(x float64) bool { return x >= 0 && x <= 1 }
	finitePos := func(x float64) bool { return x > 0 && !math.IsInf(x, 0) }
	switch {
	case !(c.CrisisFraction > 0 && c.CrisisFraction < 1):
		return bad("crisis fraction %v not in (0,1)", c.CrisisFraction)
	case c.BidLevels < 2:
		return bad("bid levels %d < 2", c.BidLevels)
	case c.Creatives < 2:
		return bad("creatives %d < 2", c.Creatives)
	case c.StateDim < MinStateDim:
		return bad("state dim %d < %d", c.StateDim, MinStateDim)
	case c.MaxSteps < 1:
		return bad("max steps %d < 1", c.MaxSteps)
	case c.BudgetUnits < 1:
		return bad("budget units %d < 1", c.BudgetUnits)
	case !(c.UnitCost >= 0 && !math.IsInf(c.UnitCost, 0)):
		return bad("unit cost %v not finite and >= 0", c.UnitCost)
	case !finitePos(c.CrisisValue):
		return bad("crisis value %v not finite and > 0", c.CrisisValue)
	case !finitePos(c.RegularValue):
		return bad("regular value %v not finite and > 0", c.RegularValue)
	case !(c.CrisisRate > 0 && c.CrisisRate <= 1):
		return bad("crisis rate %v not in (0,1]", c.CrisisRate)
	case !(c.CrisisConversionShare > 0 && c.CrisisConversionShare < 1):
		return bad("crisis conversion share %v not in (0,1)", c.CrisisConversionShare)
	case !prob(c.LabelShare):
		return bad("label share %v not in [0,1]", c.LabelShare)
	case !prob(c.CrisisKeywordShare):
		return bad("crisis keyword share %v not in [0,1]", c.CrisisKeywordShare)
	case !prob(c.RegularKeywordShare):
		return bad("regular keyword share %v not in [0,1]", c.RegularKeywordShare)
	case !prob(c.CrisisCampaignShare):
		return bad("crisis campaign share %v not in [0,1]", c.CrisisCampaignShare)
	case !prob(c.RegularCampaignShare):
		return bad("regular campaign share %v not in [0,1]", c.RegularCampaignShare)
	case !(c.ObsNoise >= 0 && !math.IsInf(c.ObsNoise, 0)):
		return bad("observation noise %v not finite and >= 0", c.ObsNoise)
	case !(c.ValueNoise >= 0 && !math.IsInf(c.ValueNoise, 0)):
		return bad("value noise %v not finite and >= 0", c.ValueNoise)
	}
	return nil
}
