//go:build opetuning

package experiment

import (
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/aelp/aelp/internal/stats"
	"github.com/aelp/aelp/learner/ope"
	"github.com/aelp/aelp/producers/sim"
)

// envSeeds is OPE_SEEDS's comma-separated seeds, or def when it is unset.
func envSeeds(t *testing.T, def ...uint64) []uint64 {
	s := os.Getenv("OPE_SEEDS")
	if s == "" {
		return def
	}
	var seeds []uint64
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		seeds = append(seeds, v)
	}
	return seeds
}

func envInt(t *testing.T, key string, def int) int {
	s := os.Getenv(key)
	if s == "" {
		return def
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < 1 {
		t.Fatalf("%s %q", key, s)
	}
	return v
}

// TestOPECorrection measures DR's model correction
// C = Σ_t γ^t (w_{t−1} V̂(h_t) − w_t Q̂(h_t, a_t)) of the far snapshot on
// many journeys: on each seed of OPE_SEEDS (default 11), the experiment's
// training and μ, OPE_FIT (10,000) journeys to fit Q̂ on (the `fqe` model,
// then fixed; or a fixed random function of the history) and OPE_EVAL
// (200,000) further journeys, independent of the fit, OPE_CHUNKS (1) times
// over (fresh journeys each time, the same Q̂), on which the correction is
// measured per step and per journey, and in blocks of OPE_BLOCK (20,000,
// the experiment's sample size). Run it with
//
//	OPE_SEEDS=11 OPE_CHUNKS=5 go test -tags opetuning -run TestOPECorrection -v -timeout 0 ./app/experiment/
func TestOPECorrection(t *testing.T) {
	cfg := DefaultOPEConfig()
	seeds := envSeeds(t, 11)
	nFit, nEval, block, chunks := envInt(t, "OPE_FIT", 10_000), envInt(t, "OPE_EVAL", 200_000), envInt(t, "OPE_BLOCK", 20_000), envInt(t, "OPE_CHUNKS", 1)
	for _, seed := range seeds {
		snaps, mu := seedSnapshots(t, cfg, seed)
		log := journeyLogger(t, cfg, mu, seed)
		fit := log(nFit)
		s := snaps[len(snaps)-1]
		target := ope.Target{Name: "far", Policy: s.pol}
		type key struct {
			random bool
			seg    string
		}
		pooled := map[key][]float64{}
		blocks := map[key][]float64{}
		for ch := range chunks {
			eval := log(nEval)
			for _, random := range []bool{false, true} {
				for _, seg := range []string{sim.SegmentRegular, ""} {
					oc := cfg.OPE
					oc.Seed = seed
					dg, err := ope.DiagnoseCorrection(target, fit, eval, oc, random, seg)
					if err != nil {
						t.Fatal(err)
					}
					name := seg
					if name == "" {
						name = "all"
					}
					k := key{random, seg}
					pooled[k] = append(pooled[k], dg.C...)
					t.Logf("seed %d snapshot %d chunk %d, Q̂ %s (R² on eval %.3f), segment %s: %d journeys; calibration z per action %s",
						seed, s.updates, ch, dg.Model, dg.R2, name, len(dg.C), stats.FormatAll(dg.CalibZ, "%.2f"))
					sumD := 0.0
					for _, st := range dg.Steps {
						sumD += st.D
						t.Logf("  t=%d n=%6d  mean A=γ^t w_{t-1}V̂ %+8.4f  B=γ^t w_t Q̂ %+8.4f  D=A−B %+8.4f ± %.4f (%+.1f se)  U=V̂−ρQ̂ %+.4f ± %.4f (%+.1f se)  ρ−1 %+.4f ± %.4f  mean w_{t-1} %.3f max %.0f  Q̂ spread %.2f |Q̂| %.2f  min(w_{t-1},100)·U %+.4f ± %.4f (%+.1f se)",
							st.T, st.N, st.A, st.B, st.D, st.DSE, st.D/st.DSE, st.U, st.USE, st.U/st.USE, st.Rho, st.RhoSE, st.WPrev, st.WPrevMax, st.QSpread, st.QAbsMean,
							st.WU, st.WUSE, st.WU/st.WUSE)
					}
					m, se := stats.MeanSE(dg.C)
					pm, pse := stats.MeanSE(dg.P)
					t.Logf("  per journey: C mean %+.4f ± %.4f (Σ_t D %+.4f), median %+.4f, C > 0 in %.1f%%; PDIS mean %+.4f ± %.4f; %s",
						m, se, sumD, median(dg.C), 100*share(dg.C, func(x float64) bool { return x > 0 }), pm, pse, tail(dg.C))
					// blocks of the segment's share of `block` journeys
					size := max(1, int(float64(block)*float64(len(dg.C))/float64(nEval)))
					var bm []float64
					for lo := 0; lo+size <= len(dg.C); lo += size {
						b, _ := stats.MeanSE(dg.C[lo : lo+size])
						bm = append(bm, b)
					}
					blocks[k] = append(blocks[k], bm...)
					t.Logf("  blocks of %d journeys (the segment's share of %d): block mean of C > 0 in %d of %d, median block mean %+.4f; block means %s",
						size, block, count(bm, func(x float64) bool { return x > 0 }), len(bm), median(bm), stats.FormatAll(bm, "%.2f"))
				}
			}
		}
		for k, c := range pooled {
			name := k.seg
			if name == "" {
				name = "all"
			}
			model := "fqe"
			if k.random {
				model = "random"
			}
			m, se := stats.MeanSE(c)
			bm := blocks[k]
			t.Logf("seed %d POOLED Q̂ %s segment %s: %d journeys, C mean %+.4f ± %.4f, median %+.4f, C > 0 in %.1f%%; blocks: C > 0 in %d of %d, median block mean %+.4f; %s",
				seed, model, name, len(c), m, se, median(c), 100*share(c, func(x float64) bool { return x > 0 }),
				count(bm, func(x float64) bool { return x > 0 }), len(bm), median(bm), tail(c))
		}
		for _, sn := range snaps {
			sn.agent.Close()
		}
	}
}

// journeyLogger returns a function that logs the next n journeys of mu
// on stream 1 of seed as LogJourneys does, the stream going on from one
// call to the next (the first call's journeys are LogJourneys's).
// seedSnapshots trains the experiment's snapshots on seed and returns them
// with the experiment's logging policy μ, the first snapshot mixed with
// cfg.Epsilon uniform; the caller closes the snapshots' agents.
func seedSnapshots(t *testing.T, cfg OPEConfig, seed uint64) ([]snapshot, EpsilonMix) {
	t.Helper()
	snaps, err := trainSnapshots(t.Context(), cfg, seed)
	if err != nil {
		t.Fatal(err)
	}
	return snaps, EpsilonMix{Base: snaps[0].pol, Epsilon: cfg.Epsilon, N: cfg.Sim.NumActions()}
}

func journeyLogger(t *testing.T, cfg OPEConfig, mu sim.Policy, seed uint64) func(n int) []ope.Journey {
	l, err := NewJourneyLogger(cfg.Sim, cfg.Classifier, mu, seed)
	if err != nil {
		t.Fatal(err)
	}
	return func(n int) []ope.Journey {
		js, _ := l.Next(n)
		if len(js) != n {
			t.Fatalf("logged %d complete journeys of %d", len(js), n)
		}
		return js
	}
}

func count(xs []float64, f func(float64) bool) int {
	k := 0
	for _, x := range xs {
		if f(x) {
			k++
		}
	}
	return k
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	ys := slices.Clone(xs)
	slices.Sort(ys)
	return ys[len(ys)/2]
}

func share(xs []float64, f func(float64) bool) float64 {
	if len(xs) == 0 {
		return 0
	}
	k := 0
	for _, x := range xs {
		if f(x) {
			k++
		}
	}
	return float64(k) / float64(len(xs))
}

// tail says how much of Σ C the most negative 0.1% and 1% of the
// journeys carry.
func tail(c []float64) string {
	ys := slices.Clone(c)
	slices.Sort(ys)
	n := float64(len(ys))
	total := 0.0
	for _, y := range ys {
		total += y
	}
	part := func(f float64) float64 {
		k := max(1, int(f*n))
		s := 0.0
		for _, y := range ys[:k] {
			s += y
		}
		return s / n
	}
	return "the most negative 0.1% of C contribute " + strconv.FormatFloat(part(0.001), 'f', 4, 64) +
		" to the mean, 1% " + strconv.FormatFloat(part(0.01), 'f', 4, 64) + ", the rest " +
		strconv.FormatFloat(total/n-part(0.01), 'f', 4, 64) + "; min C " + strconv.FormatFloat(ys[0], 'f', 1, 64)
}
