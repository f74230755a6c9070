package experiment

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/aelp/aelp/learner/ope"
)

// opeEstimators are the estimators of the OPE tables, in column order.
var opeEstimators = []string{ope.PDIS, ope.WPDIS, ope.DR, ope.DRValue, ope.WDR, ope.DRCV}

// OPESummary is one estimator's accuracy over a group of cells.
type OPESummary struct {
	// Estimator names the estimator; Group the segment or target.
	Estimator, Group string
	// Cells is the number of cells with this estimator; Covered those
	// whose interval holds the truth.
	Cells, Covered int
	// Bias is the mean of estimate − truth, RMSE the root mean square.
	Bias, RMSE float64
	// MeanESS is the cells' mean effective sample size and MeanWidth the
	// mean width of their intervals.
	MeanESS, MeanWidth float64
}

// Coverage is Covered/Cells.
func (s OPESummary) Coverage() float64 { return float64(s.Covered) / float64(max(s.Cells, 1)) }

// Summaries returns each estimator's accuracy per group of cells, the
// group of a cell given by key (its segment, its target, …), groups in
// order of first appearance.
func (r *OPEResult) Summaries(key func(*OPECell) string) []OPESummary {
	var groups []string
	for i := range r.Cells {
		if g := key(&r.Cells[i]); !slices.Contains(groups, g) {
			groups = append(groups, g)
		}
	}
	var out []OPESummary
	for _, est := range opeEstimators {
		for _, g := range groups {
			s := OPESummary{Estimator: est, Group: g}
			var sq float64
			for i := range r.Cells {
				c := &r.Cells[i]
				e, ok := estimateOf(c, est)
				if !ok || key(c) != g {
					continue
				}
				s.Cells++
				if c.Covered(e) {
					s.Covered++
				}
				d := e.Value - c.Truth
				s.Bias += d
				sq += d * d
				s.MeanESS += c.ESS
				s.MeanWidth += e.Hi - e.Lo
			}
			if s.Cells == 0 {
				continue
			}
			n := float64(s.Cells)
			s.Bias, s.RMSE, s.MeanESS, s.MeanWidth = s.Bias/n, math.Sqrt(sq/n), s.MeanESS/n, s.MeanWidth/n
			out = append(out, s)
		}
	}
	return out
}

func estimateOf(c *OPECell, name string) (ope.Estimate, bool) {
	for _, e := range c.Estimates {
		if e.Estimator == name {
			return e, true
		}
	}
	return ope.Estimate{}, false
}

// Print writes the experiment's tables: the settings, every cell (each
// estimator's estimate and interval, whether it covers the truth, the ESS
// and DR normalised to the logged return), then each estimator's bias,
// RMSE, coverage and mean ESS per segment and per target.
func (r *OPEResult) Print(w io.Writer) error {
	c := r.Config
	fmt.Fprintf(w, "aelp experiment ope: %d seeds in %.0fs; logging policy μ = %.2f·(snapshot %d) + %.2f·uniform; %d journeys logged under μ per seed;\n",
		c.Seeds, r.Elapsed.Seconds(), 1-c.Epsilon, c.Snapshots[0], c.Epsilon, c.Journeys)
	fmt.Fprintf(w, "truth: each target's mean return on %d held-out journeys (sim.HeldOutSeed(seed)); ✓ = the estimator's interval holds it\n", c.TruthEpisodes)
	if len(r.Seeds) > 0 && len(r.Seeds[0].Reports) > 0 {
		fmt.Fprintf(w, "estimators (seed %d): %s\n", r.Seeds[0].Seed, r.Seeds[0].Reports[0].Describe())
		fmt.Fprintf(w, "logged (seed %d): %s\n", r.Seeds[0].Seed, r.Seeds[0].Counts)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "seed\ttarget\tsegment\tjourneys\tESS\tlogged\ttruth ± 95%%\t%s\tDR/logged\n", strings.Join(opeEstimators, "\t"))
	for i := range r.Cells {
		cell := &r.Cells[i]
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%.0f\t%.3f\t%.3f ± %.3f", cell.Seed, cell.Target, cell.Segment, cell.Journeys, cell.ESS,
			cell.Logged, cell.Truth, cell.TruthCI)
		for _, est := range opeEstimators {
			e, ok := estimateOf(cell, est)
			if !ok {
				fmt.Fprint(tw, "\t—")
				continue
			}
			mark := "✗"
			if cell.Covered(e) {
				mark = "✓"
			}
			fmt.Fprintf(tw, "\t%.3f [%.3f, %.3f] %s", e.Value, e.Lo, e.Hi, mark)
		}
		norm := "—"
		if e, ok := estimateOf(cell, ope.DR); ok && e.Normalized != nil {
			norm = fmt.Sprintf("%.3f", e.Normalized.Value)
		}
		fmt.Fprintf(tw, "\t%s\n", norm)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	if err := writeSummaries(w, "segment", r.Summaries(func(c *OPECell) string { return c.Segment })); err != nil {
		return err
	}
	fmt.Fprintln(w)
	return writeSummaries(w, "target", r.Summaries(func(c *OPECell) string { return c.Target }))
}

func writeSummaries(w io.Writer, group string, ss []OPESummary) error {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "estimator\t%s\tcells\tbias\tRMSE\t95%% CI coverage\tmean CI width\tmean ESS\n", group)
	for _, s := range ss {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%+.3f\t%.3f\t%d/%d = %.0f%%\t%.3f\t%.0f\n", s.Estimator, s.Group, s.Cells, s.Bias, s.RMSE,
			s.Covered, s.Cells, 100*s.Coverage(), s.MeanWidth, s.MeanESS)
	}
	return tw.Flush()
}
