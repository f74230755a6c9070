//go:build opetuning

package experiment

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/aelp/aelp/internal/stats"
	"github.com/aelp/aelp/producers/sim"
	"gonum.org/v1/gonum/stat/distuv"
)

// calibBins are the upper edges of the μ(a|s_t) bins of
// stats.Calibration.BinZ.
var calibBins = []float64{0.03, 0.06, 0.12, 0.25, 1.01}

// ratioSums estimate R = E[Σ x²] / E[Σ v] for terms x of variance v:
// Σ x², Σ v and, for R's standard error, Σ x⁴, Σ x²v, Σ v².
type ratioSums struct{ x2, v, x4, x2v, vv float64 }

func (r *ratioSums) add(x, v float64) {
	r.x2 += x * x
	r.v += v
	r.x4 += x * x * x * x
	r.x2v += x * x * v
	r.vv += v * v
}

// ratio is R = Σ x² / Σ v and its standard error.
func (r *ratioSums) ratio() (float64, float64) {
	R := r.x2 / r.v
	return R, math.Sqrt(max(r.x4-2*R*r.x2v+R*R*r.vv, 0)) / r.v
}

// dispersion compares, per action, the squared deviations with their
// variance under calibration, per row (x = 1{a_t = a} − μ, v = μ(1 − μ):
// R = 1 exactly for every row) and per journey (x = Σ_t of the row's x,
// v = Σ_t of its v: R = 1 for a martingale), over journeys assumed
// independent.
type dispersion struct {
	nA        int
	row, jour []ratioSums
	jx, jv    []float64
}

func newDispersion(nA int) *dispersion {
	return &dispersion{nA: nA, row: make([]ratioSums, nA), jour: make([]ratioSums, nA), jx: make([]float64, nA), jv: make([]float64, nA)}
}

func (d *dispersion) add(probs []float64, act int) {
	for a, q := range probs {
		x := -q
		if a == act {
			x++
		}
		d.row[a].add(x, q*(1-q))
		d.jx[a] += x
		d.jv[a] += q * (1 - q)
	}
}

func (d *dispersion) endJourney() {
	for a := range d.nA {
		d.jour[a].add(d.jx[a], d.jv[a])
		d.jx[a], d.jv[a] = 0, 0
	}
}

func fmtRatios(rs []ratioSums) string {
	var b strings.Builder
	for i := range rs {
		R, se := rs[i].ratio()
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%.3f±%.3f", R, se)
	}
	return b.String()
}

// chi2 is c's X² = dᵀΣ⁻¹d (χ²(nA − 1) when μ is the sampled
// distribution, every action given probability), NaN when the covariance
// is not positive definite, with its degrees of freedom and p-value.
func chi2(c *stats.Calibration) (x2 float64, df int, p float64) {
	x2, df, p, err := c.Chi2()
	if err != nil {
		return math.NaN(), df, math.NaN()
	}
	return x2, df, p
}

// TestOPECalibration is the calibration row of TestOPECorrection without
// the Q̂ fit: on each seed of OPE_SEEDS (default 11), the experiment's μ,
// OPE_FIT (10,000) journeys skipped (TestOPECorrection's fit journeys),
// then OPE_CHUNKS (5) chunks of OPE_EVAL (200,000) journeys; per chunk and
// per action the z of Σ_rows (1{a_t = a} − μ(a|s_t)) over the regular
// users' steps, computed here from the journeys (not by
// ope.DiagnoseCorrection), with μ from the logged Probs and recomputed
// from the logged float32 state; the chunk's X² = dᵀΣ⁻¹d with the
// covariance Σ_rows (diag(μ) − μμᵀ) (χ²(nA − 1) when calibrated), and the
// z in bins of μ(a|s_t); pooled over the chunks, the z and X², and the
// dispersion Σ x² / Σ v per row and per journey (see dispersion). It
// measures and asserts nothing (docs/off-policy-evaluation.md,
// "Propensity calibration").
//
//	OPE_SEEDS=11 OPE_CHUNKS=5 go test -tags opetuning -run TestOPECalibration -v -timeout 0 ./app/experiment/
func TestOPECalibration(t *testing.T) {
	cfg := DefaultOPEConfig()
	nFit, nEval, chunks := envInt(t, "OPE_FIT", 10_000), envInt(t, "OPE_EVAL", 200_000), envInt(t, "OPE_CHUNKS", 5)
	for _, seed := range envSeeds(t, 11) {
		snaps, mu := seedSnapshots(t, cfg, seed)
		nA := cfg.Sim.NumActions()
		log := journeyLogger(t, cfg, mu, seed)
		log(nFit)
		var all, allBin []float64
		sumX2 := 0.0
		disp := newDispersion(nA)
		pooled := stats.NewCalibration(nA, calibBins)
		recomputed := make([]float64, nA)
		state := make([]float64, cfg.Sim.StateDim)
		for ch := range chunks {
			acc := stats.NewCalibration(nA, calibBins)
			shift := 0.0
			for _, j := range log(nEval) {
				if j.Truth != sim.SegmentRegular {
					continue
				}
				for _, s := range j.Steps {
					acc.Add(s.Probs, s.Action)
					pooled.Add(s.Probs, s.Action)
					disp.add(s.Probs, s.Action)
					for i, x := range s.State {
						state[i] = float64(x)
					}
					mu.ActionProbs(state, recomputed)
					for a := range nA {
						shift = max(shift, math.Abs(recomputed[a]-s.Probs[a]))
					}
				}
				disp.endJourney()
			}
			z, bz := acc.Z(), acc.BinZ(100)
			x2, k, p := chi2(acc)
			all, allBin, sumX2 = append(all, z...), append(allBin, bz...), sumX2+x2
			t.Logf("seed %d chunk %d: %d regular rows, max |logged μ − μ(float32 state)| %.2g; z per action %s; X² %.1f (df %d, p %.3f); binned z largest %+.2f",
				seed, ch, acc.Rows(), shift, stats.FormatZ(z), x2, k, p, stats.MaxAbs(bz))
			if ch == 0 {
				t.Logf("  draws expected per action (Σ μ) %s", stats.FormatAll(acc.Expected(), "%.0f"))
			}
		}
		t.Logf("seed %d pooled over %d chunks (%d rows): z per action %s", seed, chunks, pooled.Rows(), stats.FormatZ(pooled.Z()))
		x2, k, p := chi2(pooled)
		df := float64(chunks * k)
		t.Logf("seed %d pooled: X² %.1f (df %d, p %.3f); Σ of the chunks' X² %.1f (df %.0f, mean %.3f per df, p %.3f)", seed,
			x2, k, p, sumX2, df, sumX2/df, distuv.ChiSquared{K: df}.Survival(sumX2))
		t.Logf("seed %d per chunk and action: %s", seed, tails(all))
		t.Logf("seed %d dispersion Σx²/Σv per action, rows (1 exactly when calibrated): %s", seed, fmtRatios(disp.row))
		t.Logf("seed %d dispersion per action, journeys (1 for independent journeys): %s", seed, fmtRatios(disp.jour))
		t.Logf("seed %d per chunk, action and bin of μ: %s", seed, tails(allBin))
		for _, sn := range snaps {
			sn.agent.Close()
		}
	}
}

// tails compares the z's with N(0, 1): Σz², and the counts beyond ±2,
// ±3 and ±3.5 with their expectations.
func tails(zs []float64) string {
	var b strings.Builder
	n := float64(len(zs))
	x2 := 0.0
	for _, z := range zs {
		x2 += z * z
	}
	fmt.Fprintf(&b, "%d z, mean z² %.3f (± %.3f), largest %+.2f", len(zs), x2/n, math.Sqrt(2/n), stats.MaxAbs(zs))
	for _, c := range []float64{2, 3, 3.5} {
		k := 0
		for _, z := range zs {
			if math.Abs(z) > c {
				k++
			}
		}
		fmt.Fprintf(&b, "; beyond ±%g: %d (expected %.2f)", c, k, n*math.Erfc(c/math.Sqrt2))
	}
	return b.String()
}
