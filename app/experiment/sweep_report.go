package experiment

import (
	"fmt"
	"io"
	"math"
	"runtime"
	"strings"

	"gonum.org/v1/gonum/stat/distuv"
)

// CellSummary is one cell's figures over seeds: its own means and 95%
// intervals, and the paired differences from the uniform baseline.
type CellSummary struct {
	// Cell is the cell summarised.
	Cell *SweepCell
	// Figures are the cell's held-out figures, mean ± 95% CI over seeds.
	Figures [NumCols]Summary
	// Diff are the paired differences cell − uniform, per column.
	Diff [NumCols]Summary
	// BatchCrisisShare is the mean tagged crisis share of its batches.
	BatchCrisisShare float64
}

// Summaries returns every cell's summary, in table order.
func (r SweepResult) Summaries() []CellSummary {
	out := make([]CellSummary, len(r.Cells))
	for k := range r.Cells {
		c := &r.Cells[k]
		out[k] = CellSummary{Cell: c, Figures: summarizeEvals(evalsOf(c.Runs)),
			Diff:             pairedRow("", c.Runs, r.Baseline).Cells,
			BatchCrisisShare: meanOf(c.Runs, func(x Run) float64 { return x.BatchCrisisShare })}
	}
	return out
}

// betaName names a β schedule by its β0.
func betaName(beta0 float64, anneal int64) string {
	if beta0 >= 1 {
		return "fixed 1"
	}
	return fmt.Sprintf("%g → 1 over %d", beta0, anneal)
}

// Best is the cell with the largest mean paired difference from uniform
// in one column, and how sure the sweep is of it.
type Best struct {
	// Column is the figure compared (ColValuePerUser, ColCrisisReturn).
	Column int
	// Cell is the best cell's summary.
	Cell CellSummary
	// Wins is the number of seeds on which the cell beats uniform.
	Wins int
	// Corrected is the paired difference from uniform with a
	// Bonferroni-corrected interval over the K cells compared
	// (t quantile 1 − 0.025/K): picking the largest of K noisy means
	// favours a lucky cell, and this interval allows for it.
	Corrected Summary
	// K is the number of cells compared.
	K int
	// RunnerUp is the second-best cell, and OverRunnerUp the paired
	// difference best − runner-up over seeds (uncorrected).
	RunnerUp     CellSummary
	OverRunnerUp Summary
}

// Best returns the cell (not uniform) with the largest mean paired
// difference from uniform in column col. It panics if the sweep has no
// such cell (Validate rules that out).
func (r SweepResult) Best(col int) Best {
	var cand []CellSummary
	for _, s := range r.Summaries() {
		if !s.Cell.Uniform {
			cand = append(cand, s)
		}
	}
	if len(cand) == 0 {
		panic("experiment: sweep without a non-uniform cell")
	}
	first, second := -1, -1
	for k, s := range cand {
		switch {
		case first < 0 || s.Diff[col].Mean > cand[first].Diff[col].Mean:
			first, second = k, first
		case second < 0 || s.Diff[col].Mean > cand[second].Diff[col].Mean:
			second = k
		}
	}
	fig := func(x Run) float64 { return evalFigures(x.Eval)[col] }
	best := cand[first]
	d := diffs(column(best.Cell.Runs, fig), column(r.Baseline, fig))
	out := Best{Column: col, Cell: best, K: len(cand), Corrected: corrected(d, len(cand))}
	for _, x := range d {
		if x > 0 {
			out.Wins++
		}
	}
	if second >= 0 {
		out.RunnerUp = cand[second]
		out.OverRunnerUp = PairedDiff(column(best.Cell.Runs, fig), column(cand[second].Cell.Runs, fig))
	}
	return out
}

func diffs(a, b []float64) []float64 {
	d := make([]float64, len(a))
	for i := range a {
		d[i] = a[i] - b[i]
	}
	return d
}

// corrected returns the mean of d with the half-width of its
// Bonferroni-corrected 95% interval over k comparisons:
// t_{1−0.025/k}(n − 1)·s/√n.
func corrected(d []float64, k int) Summary {
	n := len(d)
	s := Summary{Mean: math.NaN(), HalfWidth: math.NaN(), N: n}
	if n < 2 {
		return s
	}
	var m, ss float64
	for _, x := range d {
		m += x
	}
	m /= float64(n)
	for _, x := range d {
		ss += (x - m) * (x - m)
	}
	sd := math.Sqrt(ss / float64(n-1))
	t := distuv.StudentsT{Mu: 0, Sigma: 1, Nu: float64(n - 1)}.Quantile(1 - 0.025/float64(k))
	s.Mean, s.HalfWidth = m, t*sd/math.Sqrt(float64(n))
	return s
}

// Print writes the settings, the grid's table (markdown), the best cells
// and how sure the sweep is of them, and the run time.
func (r SweepResult) Print(w io.Writer) {
	c := r.Config
	b := c.Base
	rc := b.Replay
	tag := "the aggregator's classifier (consumers/classify defaults)"
	if b.TagWithTruth {
		tag = "the simulator's ground truth"
	}
	fmt.Fprintf(w, "\naelp experiment sweep: %d cells (crisis weight %v × α %v × β0 %v), %d seeds, %d runs of %d updates in %.0fs (%d in parallel, GOMAXPROCS %d)\n\n",
		len(r.Cells), c.Weights, c.Alphas, c.Betas, b.Seeds, r.Runs, b.Updates, r.Elapsed.Seconds(), b.Workers, runtime.GOMAXPROCS(0))
	fmt.Fprintf(w, "Each run is an `aelp experiment ab` run (the learn role's training core, in-process): journeys of the uniform\n")
	fmt.Fprintf(w, "logging policy, tagged by %s, the same stream and held-out users per seed in every cell;\n", tag)
	fmt.Fprintf(w, "buffer %d, min buffer %d, batch %d, %.3g sample(s) per insert, PPO %d epochs × %d minibatches, min crisis ratio %g;\n",
		rc.Capacity, b.MinBuffer, b.BatchSize, b.SamplesPerInsert, b.PPO.Epochs, b.PPO.Minibatches, rc.MinCrisisRatio)
	fmt.Fprintf(w, "held-out evaluation on %d journeys per run (seeds 2^40 + seed). Weight %g is uniform sampling (every priority equal:\n", b.EvalEpisodes, rc.RegularWeight)
	fmt.Fprintf(w, "P(i) = 1/N, IS weights 1, whatever α and β), so its cells are the uniform baseline's runs, made once per seed.\n")
	if r.FloorBinds() {
		fmt.Fprintf(w, "Warning: the baseline's crisis share %.3f is below the floor %g: at weight 1 the floor binds, so weight 1 is not exactly uniform.\n",
			meanOf(r.Baseline, func(x Run) float64 { return x.BatchCrisisShare }), rc.MinCrisisRatio)
	}
	fmt.Fprintf(w, "\nheld-out figures, mean ± 95%% CI over %d seeds; Δ = cell − uniform, paired over seeds (* : the CI excludes 0)\n\n", b.Seeds)
	r.WriteTable(w)
	for _, col := range []int{ColValuePerUser, ColCrisisReturn} {
		fmt.Fprintf(w, "\n%s\n", r.Best(col).Describe(rc.AnnealSteps))
	}
}

// WriteTable writes the grid as a markdown table, one row per cell.
func (r SweepResult) WriteTable(w io.Writer) {
	anneal := r.Config.Base.Replay.AnnealSteps
	fmt.Fprintf(w, "| α | β schedule | crisis weight | P(crisis)/P(regular) = w^α | batch crisis share | crisis return | Δ crisis return | Δ regular return | Δ value per user |\n")
	fmt.Fprintf(w, "|---:|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, s := range r.Summaries() {
		c := s.Cell
		ratio := math.Pow(c.Weight/r.Config.Base.Replay.RegularWeight, c.Alpha/r.Config.Base.Replay.Temperature)
		name := fmt.Sprintf("%g", c.Weight)
		if c.Uniform {
			name += " (uniform)"
		}
		f := s.Figures[ColCrisisReturn]
		delta := func(col int) string {
			if c.Uniform {
				return "0 (baseline)"
			}
			d := s.Diff[col]
			star := ""
			if d.Excludes(0) {
				star = " *"
			}
			return fmt.Sprintf("%+.3f ± %.3f%s", d.Mean, d.HalfWidth, star)
		}
		fmt.Fprintf(w, "| %g | %s | %s | %.3f | %.3f | %.3f ± %.3f | %s | %s | %s |\n", c.Alpha, betaName(c.Beta0, anneal), name, ratio,
			s.BatchCrisisShare, f.Mean, f.HalfWidth, delta(ColCrisisReturn), delta(ColRegularReturn), delta(ColValuePerUser))
	}
}

// Describe says which cell is best and how sure the sweep is of it.
func (b Best) Describe(anneal int64) string {
	var s strings.Builder
	c := b.Cell.Cell
	d := b.Cell.Diff[b.Column]
	name := ColumnNames[b.Column]
	fmt.Fprintf(&s, "Best cell by Δ %s: crisis weight %g, α %g, β %s: %+.3f ± %.3f over uniform (paired, %d seeds; better on %d of %d).\n",
		name, c.Weight, c.Alpha, betaName(c.Beta0, anneal), d.Mean, d.HalfWidth, d.N, b.Wins, d.N)
	fmt.Fprintf(&s, "  Allowing for the choice among %d cells (Bonferroni, t at 1 − 0.025/%d): %+.3f ± %.3f", b.K, b.K, b.Corrected.Mean, b.Corrected.HalfWidth)
	if b.Corrected.Excludes(0) {
		fmt.Fprintf(&s, ": better than uniform even so.\n")
	} else {
		fmt.Fprintf(&s, ": not distinguishable from uniform once the choice is allowed for.\n")
	}
	if rc := b.RunnerUp.Cell; rc != nil {
		o := b.OverRunnerUp
		verdict := "the two are not distinguishable (the CI contains 0)"
		if o.Excludes(0) {
			verdict = "the best is ahead (the CI excludes 0)"
		}
		fmt.Fprintf(&s, "  Runner-up: crisis weight %g, α %g, β %s (%+.3f); best − runner-up %+.3f ± %.3f: %s.",
			rc.Weight, rc.Alpha, betaName(rc.Beta0, anneal), b.RunnerUp.Diff[b.Column].Mean, o.Mean, o.HalfWidth, verdict)
	}
	return s.String()
}
