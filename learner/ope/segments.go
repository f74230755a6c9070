package ope

import (
	"fmt"
	"math"
	"math/bits"
	"math/rand/v2"
	"slices"
)

// Estimator columns of a segment's figures: the logged mean return, then
// the estimators.
const (
	colLogged = iota
	colPDIS
	colWPDIS
	colDR
	colDRV
	colWDR
	colDRCV
	numCols
)

var colNames = [numCols]string{colPDIS: PDIS, colWPDIS: WPDIS, colDR: DR, colDRV: DRValue, colWDR: WDR, colDRCV: DRCV}

// segDef is one reported segment: the leaves (distinct (tag, truth) pairs)
// whose journeys it holds.
type segDef struct {
	name, kind, label string
	leaves            []int
}

// leafSums are the sums one bootstrap resample (or the sample itself)
// accumulates over the journeys of one leaf: per journey (count, logged
// return, PDIS, DR, DR-V values) and per step t the WPDIS numerator
// Σ γ^t w_t r_t, the weights Σ w_t of the journeys still running and, at
// t = H, the final weights of the journeys of H steps (which keep them at
// every later step); and WDR's numerators Σ γ^t w_t (r_t − Q̂_t) and
// Σ γ^t w_{t−1} V̂_t.
type leafSums struct {
	cnt float64
	col [numCols]float64
	// DR-CV's sums over the journeys of PDIS_i·C_i, C_i² and C_i, with
	// C_i = DR_i − PDIS_i DR's model correction.
	pc, cc, c              float64
	num, den, ends, nq, nv []float64
}

func newLeafSums(T int) leafSums {
	return leafSums{num: make([]float64, T), den: make([]float64, T), ends: make([]float64, T+1),
		nq: make([]float64, T), nv: make([]float64, T)}
}

func (s *leafSums) reset() {
	s.cnt = 0
	s.col = [numCols]float64{}
	s.pc, s.cc, s.c = 0, 0, 0
	clear(s.num)
	clear(s.den)
	clear(s.ends)
	clear(s.nq)
	clear(s.nv)
}

// add adds journey i, c times.
func (s *leafSums) add(b *bootData, i int, c float64) {
	j := &b.js[i]
	s.cnt += c
	for k := range numCols {
		s.col[k] += c * j.col[k]
	}
	p, cv := j.col[colPDIS], j.col[colDR]-j.col[colPDIS]
	s.pc += c * p * cv
	s.cc += c * cv * cv
	s.c += c * cv
	steps := b.steps[stepVals*j.off : stepVals*j.end]
	H := len(steps) / stepVals
	num, den, nq, nv := s.num[:H], s.den[:H], s.nq[:H], s.nv[:H]
	for t := range num {
		x := steps[stepVals*t : stepVals*(t+1)]
		num[t] += c * x[0]
		den[t] += c * x[1]
		nq[t] += c * x[2]
		nv[t] += c * x[3]
	}
	s.ends[H] += c * j.final
}

// stepVals is the number of figures bootData keeps per step.
const stepVals = 4

// bootJourney is what the bootstrap reads of one journey, together.
type bootJourney struct {
	col      [numCols]float64 // logged return, PDIS, (unused), DR, DR-V
	final    float64
	off, end int
	leaf     int
}

// bootData packs the journeys' figures for sequential reads: per journey
// its scalars, per step (γ^t w_t r_t, w_t, γ^t w_t (r_t − Q̂_t),
// γ^t w_{t−1} V̂_t) interleaved.
type bootData struct {
	js    []bootJourney
	steps []float64
}

func (d *data) bootData(leaf []int) *bootData {
	b := &bootData{js: make([]bootJourney, d.n), steps: make([]float64, stepVals*d.rows)}
	for i := range d.n {
		j := &b.js[i]
		j.col[colLogged], j.col[colPDIS], j.col[colDR] = d.ret[i], d.pdis[i], d.dr[i]
		if d.drv != nil {
			j.col[colDRV] = d.drv[i]
		}
		j.final, j.off, j.end, j.leaf = d.final[i], d.off[i], d.off[i+1], leaf[i]
	}
	for r := range d.rows {
		x := b.steps[stepVals*r : stepVals*(r+1)]
		x[0], x[1] = d.wr[r], d.w[r]
		if d.wq != nil {
			x[2], x[3] = d.wq[r], d.wv[r]
		} else { // Q̂ = 0: WDR is WPDIS
			x[2] = d.wr[r]
		}
	}
	return b
}

// values turns the sums of a segment's leaves into its figures, in
// column order (NaN: no journey). WPDIS is
//
//	Σ_t Σ_i γ^t w_{i,t} r_{i,t} / Σ_i w_{i,t}
//
// with w_{i,t} = w_{i,H_i−1} for t ≥ H_i (a finished journey keeps its
// final weight in the normaliser), a step whose weights are all 0 adding
// nothing. WDR normalises DR's two terms of each step the same way:
//
//	Σ_t [ Σ_i γ^t w_{i,t} (r_{i,t} − Q̂_{i,t}) / Σ_i w_{i,t} + Σ_i γ^t w_{i,t−1} V̂_{i,t} / Σ_i w_{i,t−1} ]
//
// with Σ_i w_{i,−1} = n.
//
// DR-CV is PDIS + β̂·(DR − PDIS) with the control-variate coefficient
// β̂ = clamp(−cov(PDIS_i, C_i)/var(C_i), 0, 1) of the segment's
// journeys, C_i = DR_i − PDIS_i (β̂ = 0 when var(C_i) = 0).
func values(sums []leafSums, leaves []int, out *[numCols]float64) {
	cnt := 0.0
	var col [numCols]float64
	var pc, cc, cv float64
	for _, l := range leaves {
		cnt += sums[l].cnt
		for c := range numCols {
			col[c] += sums[l].col[c]
		}
		pc, cc, cv = pc+sums[l].pc, cc+sums[l].cc, cv+sums[l].c
	}
	if cnt == 0 {
		for c := range out {
			out[c] = math.NaN()
		}
		return
	}
	for c := range numCols {
		out[c] = col[c] / cnt
	}
	out[colDRCV] = out[colPDIS] + cvBeta(cnt, out[colPDIS], pc, cc, cv)*(out[colDR]-out[colPDIS])
	T := len(sums[0].num)
	wp, wdr, ended, prev := 0.0, 0.0, 0.0, cnt
	for t := range T {
		num, den, nq, nv := 0.0, 0.0, 0.0, 0.0
		for _, l := range leaves {
			ended += sums[l].ends[t]
			num += sums[l].num[t]
			den += sums[l].den[t]
			nq += sums[l].nq[t]
			nv += sums[l].nv[t]
		}
		if den += ended; den > 0 {
			wp += num / den
			wdr += nq / den
		}
		if prev > 0 {
			wdr += nv / prev
		}
		prev = den
	}
	out[colWPDIS], out[colWDR] = wp, wdr
}

// cvBeta returns DR-CV's coefficient clamp(−cov(P, C)/var(C), 0, 1)
// from n journeys' mean PDIS mp and sums Σ P·C, Σ C², Σ C (0 when C does
// not vary, and when the sums overflow: DR-CV is then PDIS).
func cvBeta(n, mp, pc, cc, c float64) float64 {
	mc := c / n
	v := cc/n - mc*mc
	if !(v > 1e-12*(cc/n)) || v <= 0 {
		return 0
	}
	b := -(pc/n - mp*mc) / v
	if math.IsNaN(b) {
		return 0
	}
	return min(max(b, 0), 1)
}

// labels returns the sorted distinct non-empty values of xs.
func labels(xs []string) []string {
	var out []string
	for _, x := range xs {
		if x != "" && !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	slices.Sort(out)
	return out
}

// leaves assigns every journey the leaf of its (tag, truth) pair and
// returns the reported segments over them.
func (d *data) leaves() ([]int, int, []segDef) {
	type pair struct{ tag, truth string }
	index := map[pair]int{}
	leaf := make([]int, d.n)
	var pairs []pair
	for i := range d.n {
		p := pair{d.tag[i], d.truth[i]}
		l, ok := index[p]
		if !ok {
			l = len(pairs)
			index[p] = l
			pairs = append(pairs, p)
		}
		leaf[i] = l
	}
	all := segDef{name: KindAll, kind: KindAll}
	for l := range pairs {
		all.leaves = append(all.leaves, l)
	}
	defs := []segDef{all}
	for _, kind := range []string{KindTag, KindTrue} {
		key := func(p pair) string { return p.tag }
		src := d.tag
		if kind == KindTrue {
			key, src = func(p pair) string { return p.truth }, d.truth
		}
		for _, lab := range labels(src) {
			s := segDef{name: kind + " " + lab, kind: kind, label: lab}
			for l, p := range pairs {
				if key(p) == lab {
					s.leaves = append(s.leaves, l)
				}
			}
			defs = append(defs, s)
		}
	}
	return leaf, len(pairs), defs
}

// maxLen returns the longest journey's length.
func (d *data) maxLen() int {
	T := 0
	for i := range d.n {
		T = max(T, d.off[i+1]-d.off[i])
	}
	return T
}

// bootstrap returns, per segment and column, the figure of each of the B
// resamples (NaN where the resample holds none of the segment's
// journeys). Resample b draws n journey indices uniformly with
// replacement from PCG(seed, b), by Lemire's multiply-shift (bias below
// n/2⁶⁴), counts the draws of each journey and adds each drawn journey
// times its count, in journey order.
func (d *data) bootstrap(b *bootData, nLeaves int, defs []segDef, cfg Config) [][numCols][]float64 {
	B := cfg.Resamples
	out := make([][numCols][]float64, len(defs))
	for s := range out {
		for c := range numCols {
			out[s][c] = make([]float64, B)
		}
	}
	T := d.maxLen()
	parallel(B, cfg.Workers, func(lo, hi int) {
		sums := make([]leafSums, nLeaves)
		for l := range sums {
			sums[l] = newLeafSums(T)
		}
		counts := make([]int32, d.n)
		var pcg rand.PCG
		var vals [numCols]float64
		for rs := lo; rs < hi; rs++ {
			for l := range sums {
				sums[l].reset()
			}
			clear(counts)
			pcg.Seed(cfg.Seed, uint64(rs))
			for range d.n {
				i, _ := bits.Mul64(pcg.Uint64(), uint64(d.n))
				counts[i]++
			}
			for i, c := range counts {
				if c != 0 {
					sums[b.js[i].leaf].add(b, i, float64(c))
				}
			}
			for s, def := range defs {
				values(sums, def.leaves, &vals)
				for c := range numCols {
					out[s][c][rs] = vals[c]
				}
			}
		}
	})
	return out
}

// interval returns the point estimate with the percentile interval of
// the resampled figures at level conf (the point itself when no resample
// holds the segment).
func interval(point float64, resampled []float64, conf float64) Interval {
	xs := make([]float64, 0, len(resampled))
	for _, x := range resampled {
		if !math.IsNaN(x) {
			xs = append(xs, x)
		}
	}
	if len(xs) == 0 {
		return Interval{Value: point, Lo: point, Hi: point}
	}
	slices.Sort(xs)
	a := (1 - conf) / 2
	return Interval{Value: point, Lo: quantile(xs, a), Hi: quantile(xs, 1-a)}
}

// ess returns (Σw)²/Σw² (0 when every weight is 0).
func ess(s1, s2 float64) float64 {
	if s2 == 0 {
		return 0
	}
	return s1 * s1 / s2
}

// segments computes every reported segment's figures.
func (d *data) segments(cfg Config) []Segment {
	leaf, nLeaves, defs := d.leaves()
	T := d.maxLen()
	sums := make([]leafSums, nLeaves)
	for l := range sums {
		sums[l] = newLeafSums(T)
	}
	bd := d.bootData(leaf)
	for i := range d.n {
		sums[leaf[i]].add(bd, i, 1)
	}
	boot := d.bootstrap(bd, nLeaves, defs, cfg)
	out := make([]Segment, len(defs))
	for s, def := range defs {
		var point [numCols]float64
		values(sums, def.leaves, &point)
		seg := Segment{Name: def.name, Kind: def.kind, Label: def.label}
		seg.Logged = interval(point[colLogged], boot[s][colLogged], cfg.Confidence)
		for c := colPDIS; c < numCols; c++ {
			if c == colDRV && d.drv == nil {
				continue
			}
			if (c == colWDR || c == colDRCV) && d.wq == nil {
				continue // Q̂ = 0: WDR is WPDIS
			}
			e := Estimate{Estimator: colNames[c], Interval: interval(point[c], boot[s][c], cfg.Confidence)}
			if m := seg.Logged; m.Lo > 0 {
				e.Normalized = &Interval{Value: e.Value / m.Value, Lo: e.Lo / m.Value, Hi: e.Hi / m.Value}
			}
			seg.Estimates = append(seg.Estimates, e)
		}
		d.weightFigures(&seg, leaf, def.leaves, T)
		out[s] = seg
	}
	return out
}

// weightFigures fills the segment's counts, ESS (final and per step,
// a finished journey keeping its final weight) and clipped share.
func (d *data) weightFigures(seg *Segment, leaf, leaves []int, T int) {
	member := make([]bool, len(leaf))
	for _, l := range leaves {
		member[l] = true
	}
	s1, s2 := make([]float64, T), make([]float64, T)
	e1, e2 := make([]float64, T+1), make([]float64, T+1)
	clipped := 0
	for i := range d.n {
		if !member[leaf[i]] {
			continue
		}
		seg.Journeys++
		lo, hi := d.off[i], d.off[i+1]
		seg.Steps += hi - lo
		for r := lo; r < hi; r++ {
			s1[r-lo] += d.w[r]
			s2[r-lo] += d.w[r] * d.w[r]
			if d.clipped[r] {
				clipped++
			}
		}
		e1[hi-lo] += d.final[i]
		e2[hi-lo] += d.final[i] * d.final[i]
	}
	seg.StepESS = make([]float64, T)
	var c1, c2 float64
	for t := range T {
		c1, c2 = c1+e1[t], c2+e2[t]
		seg.StepESS[t] = ess(s1[t]+c1, s2[t]+c2)
	}
	seg.ESS = ess(c1+e1[T], c2+e2[T])
	if seg.Steps > 0 {
		seg.ClippedShare = float64(clipped) / float64(seg.Steps)
	}
}

// notes returns the report's warnings.
func notes(r *Report) []string {
	var out []string
	if s := r.Skipped.String(); s != "" {
		out = append(out, s)
	}
	if r.Clip > 0 {
		if all, ok := r.Segment(KindAll); ok {
			out = append(out, fmt.Sprintf("weights clipped at %g: %.2f%% of step weights capped (the estimates are biased towards the logged actions)",
				r.Clip, 100*all.ClippedShare))
		}
	}
	if r.UnsupportedMass > 1e-12 {
		out = append(out, fmt.Sprintf("the target puts %.2f%% of its mass on actions the behaviour never takes: no estimator sees them",
			100*r.UnsupportedMass))
	}
	for _, s := range r.Segments {
		switch {
		case s.Journeys < 30:
			out = append(out, fmt.Sprintf("%s: only %d journeys: the intervals are unreliable", s.Name, s.Journeys))
		case s.ESS < 30:
			out = append(out, fmt.Sprintf("%s: effective sample size %.1f of %d journeys: the importance-sampling intervals are unreliable", s.Name, s.ESS, s.Journeys))
		}
		if s.Logged.Lo <= 0 {
			out = append(out, fmt.Sprintf("%s: the logged mean return's interval [%.4g, %.4g] reaches 0 or below: not normalised", s.Name, s.Logged.Lo, s.Logged.Hi))
		}
	}
	return out
}
