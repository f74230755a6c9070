package sim

// SegmentOracle is the exact, model-derived reference for one segment,
// computed by backward recursion over the model's parameters (no sampling).
type SegmentOracle struct {
	// BestAction is the constant action with the highest expected journey
	// return for this segment; BestBid and BestCreative are its parts.
	BestAction, BestBid, BestCreative int
	// BestReturn is the expected journey return when every step plays
	// BestAction.
	BestReturn float64
	// BestConversion is the conversion probability per journey under
	// BestAction.
	BestConversion float64
	// AdaptiveReturn is the expected return of the Bellman-optimal policy
	// that knows the segment and may also use the step and the remaining
	// budget (both observable); it is at least BestReturn.
	AdaptiveReturn float64
	// AdaptiveConversion is the conversion probability under that policy.
	AdaptiveConversion float64
	// UniformReturn is the expected journey return under the uniform
	// logging policy.
	UniformReturn float64
	// UniformConversion is the conversion probability per journey under the
	// uniform logging policy.
	UniformConversion float64
	// ActionReturns[a] is the expected journey return of playing action a at
	// every step.
	ActionReturns []float64
}

// OracleReport is the exact reference learners are judged against.
type OracleReport struct {
	// Crisis and Regular are the per-segment figures.
	Crisis, Regular SegmentOracle
	// BestValuePerUser is the expected return per user, over the population
	// mix, when each user gets their segment's BestAction.
	BestValuePerUser float64
	// AdaptiveValuePerUser is the same for the adaptive segment-aware optimum.
	AdaptiveValuePerUser float64
	// UniformValuePerUser is the expected return per user under uniform
	// logging.
	UniformValuePerUser float64
	// UniformCrisisConversionShare is the share of conversions from crisis
	// parents under uniform logging (equal to Config.CrisisConversionShare
	// by construction).
	UniformCrisisConversionShare float64
	// RegularRate is the solved base conversion rate R_reg of regular parents.
	RegularRate float64
}

// Oracle computes the per-segment optimum and the uniform baseline exactly
// from the model's parameters.
func Oracle(cfg Config) (OracleReport, error) {
	m, err := newModel(cfg)
	if err != nil {
		return OracleReport{}, err
	}
	return m.oracle(), nil
}

func (m *model) oracle() OracleReport {
	seg := func(s int) SegmentOracle {
		var o SegmentOracle
		o.ActionReturns = make([]float64, m.nA)
		one := make([]float64, m.nA)
		var best outcome
		for a := range m.nA {
			clear(one)
			one[a] = 1
			r := m.evaluate(s, one)
			o.ActionReturns[a] = r.Return
			if a == 0 || r.Return > best.Return {
				best, o.BestAction = r, a
			}
		}
		o.BestBid, o.BestCreative = m.cfg.Decode(o.BestAction)
		o.BestReturn, o.BestConversion = best.Return, best.Conversion
		ad := m.optimal(s)
		o.AdaptiveReturn, o.AdaptiveConversion = ad.Return, ad.Conversion
		un := m.evaluate(s, uniformProbs(m.nA))
		o.UniformReturn, o.UniformConversion = un.Return, un.Conversion
		return o
	}
	f := m.cfg.CrisisFraction
	rep := OracleReport{Crisis: seg(segCrisis), Regular: seg(segRegular), RegularRate: m.regRate}
	mix := func(c, r float64) float64 { return f*c + (1-f)*r }
	rep.BestValuePerUser = mix(rep.Crisis.BestReturn, rep.Regular.BestReturn)
	rep.AdaptiveValuePerUser = mix(rep.Crisis.AdaptiveReturn, rep.Regular.AdaptiveReturn)
	rep.UniformValuePerUser = mix(rep.Crisis.UniformReturn, rep.Regular.UniformReturn)
	cc, rc := f*rep.Crisis.UniformConversion, (1-f)*rep.Regular.UniformConversion
	rep.UniformCrisisConversionShare = cc / (cc + rc)
	return rep
}
