package policy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"text/tabwriter"

	"github.com/aelp/aelp/learner/ppo"
	"github.com/aelp/aelp/producers/sim"
	"github.com/aelp/aelp/schemas"
)

// CurvePoint is one policy snapshot's evaluation on held-out journeys.
type CurvePoint struct {
	Version int64
	Eval    sim.EvalReport
}

// EvaluateSnapshots evaluates every snapshot of src's experiment, read up
// to the end offsets seen at the call, on episodes held-out journeys of
// seed each (the same users for every snapshot): the learning curve, in
// version order. A snapshot whose network does not load is an error; none
// is an empty curve.
func EvaluateSnapshots(ctx context.Context, src Source, scfg sim.Config, episodes int, seed uint64) ([]CurvePoint, error) {
	pols, err := LoadSnapshots(ctx, src)
	if err != nil {
		return nil, err
	}
	pts := make([]CurvePoint, 0, len(pols))
	for _, v := range slices.Sorted(maps.Keys(pols)) {
		rep, err := sim.Evaluate(scfg, pols[v], episodes, seed)
		if err != nil {
			return nil, fmt.Errorf("snapshot v%d: %w", v, err)
		}
		pts = append(pts, CurvePoint{Version: v, Eval: rep})
	}
	return pts, nil
}

// LoadSnapshots loads the network of every snapshot of src's experiment,
// read up to the end offsets seen at the call, by version. A snapshot whose
// network does not load is an error.
func LoadSnapshots(ctx context.Context, src Source) (map[int64]*ppo.Policy, error) {
	pols := map[int64]*ppo.Policy{}
	var loadErr error
	err := src.ReadAll(ctx, func(s *schemas.PolicySnapshot) {
		p, err := ppo.LoadPolicy(s.Architecture, s.Params, s.ObsMean, s.ObsVar, s.ObsCount)
		if err != nil {
			loadErr = errors.Join(loadErr, fmt.Errorf("snapshot v%d: %w", s.Version, err))
			return
		}
		pols[s.Version] = p
	})
	if err = errors.Join(err, loadErr); err != nil {
		return nil, err
	}
	return pols, nil
}

// WriteCurve writes a learning curve as a table: per snapshot, the crisis
// and regular segments' mean return and the value per user, each with its
// 95% CI half-width.
func WriteCurve(w io.Writer, pts []CurvePoint) error {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "snapshot\tcrisis return\tregular return\tvalue per user\n")
	for _, p := range pts {
		r := p.Eval
		fmt.Fprintf(tw, "v%d\t%.3f ± %.3f\t%.3f ± %.3f\t%.3f ± %.3f\n", p.Version,
			r.Crisis.MeanReturn, r.Crisis.ReturnCI, r.Regular.MeanReturn, r.Regular.ReturnCI, r.ValuePerUser, r.ValuePerUserCI)
	}
	return tw.Flush()
}
