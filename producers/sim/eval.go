package sim

import (
	"fmt"

	"github.com/aelp/aelp/internal/stats"
)

// MaxTrainingSeed is the largest training seed whose held-out seed
// (HeldOutSeed) is kept apart from every training seed: 2⁴⁰ − 1.
const MaxTrainingSeed = 1<<40 - 1

// HeldOutSeed returns the seed of the held-out evaluation journeys of a
// policy trained on seed: 2⁴⁰ + seed. It is the one rule of aelp run, aelp
// experiment ab and aelp evaluate (whose --seed default is HeldOutSeed(1),
// the held-out journeys of training seed 1).
//
// Why this rule: training seeds are small numbers (1 by default, counting
// up from there over an experiment's seeds), so every training seed up to
// MaxTrainingSeed maps to a held-out seed of at least 2⁴⁰, which is never
// a training seed: the held-out users of one run are never the training
// users of another, whichever seeds a series of runs uses. An offset rule
// such as seed + 1,000,003 does not have that property (training seed
// 1,000,004 would train on the held-out users of seed 1). Each training
// seed keeps a population of its own, and the same one in every command.
// Above MaxTrainingSeed the sum wraps modulo 2⁶⁴ and the two sets may meet.
func HeldOutSeed(seed uint64) uint64 { return MaxTrainingSeed + 1 + seed }

// SegmentEval holds sampled figures for one segment.
type SegmentEval struct {
	// Episodes is the number of journeys of this segment.
	Episodes int
	// MeanReturn is the mean journey return; ReturnCI is the half-width of
	// its Student's t 95% confidence interval.
	MeanReturn, ReturnCI float64
	// Conversions is the number of journeys that converted.
	Conversions int
	// ConversionRate is Conversions/Episodes; ConversionLo and ConversionHi
	// bound its Wilson 95% interval.
	ConversionRate, ConversionLo, ConversionHi float64
	// MeanSteps is the mean journey length.
	MeanSteps float64
	// Return is the streaming accumulator of journey returns, for merging
	// evaluations run on several workers.
	Return stats.Running
}

// EvalReport is the result of Evaluate.
type EvalReport struct {
	// Episodes is the number of journeys (users) simulated and Steps the
	// number of steps.
	Episodes, Steps int
	// Crisis and Regular are the per-segment figures.
	Crisis, Regular SegmentEval
	// ValuePerUser is the mean return over all users; ValuePerUserCI the
	// half-width of its 95% interval.
	ValuePerUser, ValuePerUserCI float64
	// CrisisUserShare is the share of users who are crisis parents, with its
	// Wilson 95% interval.
	CrisisUserShare, CrisisUserShareLo, CrisisUserShareHi float64
	// CrisisConversionShare is the share of conversions made by crisis
	// parents, with its Wilson 95% interval (NaN without conversions).
	CrisisConversionShare, CrisisConversionShareLo, CrisisConversionShareHi float64
}

// Evaluate runs episodes journeys of policy p on a simulator seeded with
// (seed, stream 0) and reports per-segment returns and conversion rates
// with 95% confidence intervals.
func Evaluate(cfg Config, p Policy, episodes int, seed uint64) (EvalReport, error) {
	if episodes < 1 {
		return EvalReport{}, fmt.Errorf("evaluate: episodes %d < 1", episodes)
	}
	s, err := New(cfg, seed, 0)
	if err != nil {
		return EvalReport{}, fmt.Errorf("evaluate: %w", err)
	}
	var rep EvalReport
	var all stats.Running
	var steps [2]int
	for range episodes {
		r := s.RunEpisode(p, nil)
		seg := &rep.Regular
		i := segRegular
		if r.Crisis {
			seg, i = &rep.Crisis, segCrisis
		}
		seg.Episodes++
		seg.Return.Add(r.Return)
		all.Add(r.Return)
		if r.Converted {
			seg.Conversions++
		}
		steps[i] += r.Steps
	}
	rep.Episodes = episodes
	rep.Steps = steps[0] + steps[1]
	fill := func(seg *SegmentEval, steps int) {
		seg.MeanReturn, seg.ReturnCI = seg.Return.CI95()
		seg.ConversionRate, seg.ConversionLo, seg.ConversionHi = stats.ProportionCI95(seg.Conversions, seg.Episodes)
		seg.MeanSteps = float64(steps) / float64(seg.Episodes)
	}
	fill(&rep.Crisis, steps[segCrisis])
	fill(&rep.Regular, steps[segRegular])
	rep.ValuePerUser, rep.ValuePerUserCI = all.CI95()
	rep.CrisisUserShare, rep.CrisisUserShareLo, rep.CrisisUserShareHi = stats.ProportionCI95(rep.Crisis.Episodes, episodes)
	rep.CrisisConversionShare, rep.CrisisConversionShareLo, rep.CrisisConversionShareHi =
		stats.ProportionCI95(rep.Crisis.Conversions, rep.Crisis.Conversions+rep.Regular.Conversions)
	return rep, nil
}
