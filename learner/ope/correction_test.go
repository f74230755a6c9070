package ope

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/aelp/aelp/internal/stats"
)

// correctionData returns the toy MDP's journeys logged under mu as
// Evaluate flattens them, with the target's probabilities and weights.
func correctionData(t *testing.T, m *toyMDP, target *tablePolicy, js []Journey) *data {
	t.Helper()
	d, sk := flatten(js, 0, m.nA, 1)
	if sk.Total() > 0 {
		t.Fatal(sk)
	}
	if err := d.targetProbs(target, 1); err != nil {
		t.Fatal(err)
	}
	if err := d.weights(0); err != nil {
		t.Fatal(err)
	}
	return d
}

// corrections returns DR's model correction per journey,
// C_i = DR_i − PDIS_i = Σ_t γ^t (w_{t−1} V̂_t − w_t Q̂_t) as Evaluate
// computes DR (estimates), and per step t the mean over the journeys
// that reach it of γ^t (w_{t−1} V̂_t − w_t Q̂_t) from WDR's terms
// (weightedTerms), with its standard error.
func corrections(d *data, qa, v []float64) (c []float64, step [][2]float64) {
	_, pdis, dr := d.estimates(qa, v)
	c = make([]float64, d.n)
	for i := range c {
		c[i] = dr[i] - pdis[i]
	}
	wq, wv := d.weightedTerms(qa, v)
	var perStep [][]float64
	for i := range d.n {
		for r := d.off[i]; r < d.off[i+1]; r++ {
			t := r - d.off[i]
			if t == len(perStep) {
				perStep = append(perStep, nil)
			}
			// γ^t w_t Q̂_t = γ^t w_t r_t − γ^t w_t (r_t − Q̂_t)
			perStep[t] = append(perStep[t], wv[r]-(d.wr[r]-wq[r]))
		}
	}
	for _, xs := range perStep {
		m, se := stats.MeanSE(xs)
		step = append(step, [2]float64{m, se})
	}
	return c, step
}

// TestDRCorrectionZeroMean: DR's model correction
// C = Σ_t γ^t (w_{t−1} V̂(h_t) − w_t Q̂(h_t, a_t)) has expectation 0 for any
// Q̂ fixed before the journey (a_t ~ μ given the history, V̂ = Σ_a π Q̂
// with the π of the weights), the identity behind DR's unbiasedness. On
// 20,000 toy journeys of a target far from μ (weights up to 52),
// with Q̂ the cross-fitted fitted-Q of Evaluate (both feature sets, as
// fitModel fits and predicts it) and with a fixed random table Q̂, the
// mean correction, and each step's, are within 4 standard errors of 0;
// and so with the fitted models gated at weight 5 (Config.ModelMaxWeight).
// It fails for the mistakes that would break the identity: V̂ taken with
// μ's probabilities instead of π's, or logged propensities that are not
// the ones the actions were drawn from (both checked to be more than 4
// standard errors off).
func TestDRCorrectionZeroMean(t *testing.T) {
	m := newToyMDP(5, 3, 4)
	mu := m.randomPolicy(6, 0.1)
	// The target puts 0.7 on one action per state (μ gives it 0.1–0.6).
	rng0 := rand.New(rand.NewPCG(7, 7))
	target := m.newTablePolicy(func(int, int, int) []float64 {
		p := []float64{0.15, 0.15, 0.15}
		p[rng0.IntN(3)] = 0.7
		return p
	})
	js := m.journeys(mu, 20_000, 99)
	d := correctionData(t, m, target, js)
	maxW := 0.0
	for _, w := range d.w {
		maxW = max(maxW, w)
	}
	t.Logf("%d journeys, %d steps, largest weight %.0f", d.n, d.rows, maxW)
	zeroMean := func(name string, qa, v []float64) {
		t.Helper()
		c, step := corrections(d, qa, v)
		mean, se := stats.MeanSE(c)
		t.Logf("%s: mean correction %+.4f ± %.4f (%+.1f se)", name, mean, se, mean/se)
		if math.Abs(mean) > 4*se {
			t.Errorf("%s: mean correction %+.4f is %.1f standard errors (%.4f) from 0", name, mean, mean/se, se)
		}
		for k, s := range step {
			if s[1] > 0 && math.Abs(s[0]) > 4*s[1] {
				t.Errorf("%s: step %d mean correction %+.4f is %.1f standard errors from 0", name, k, s[0], s[0]/s[1])
			}
		}
	}
	for _, model := range []string{ModelFQE, ModelLinear} {
		cfg := Config{Model: model}
		cfg.setDefaults()
		fit, qa, v, err := d.fitModel(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: out-of-fold R² %.3f", model, fit.R2)
		zeroMean(model+" cross-fitted", qa, v)
		// Gated at weight 5 (Config.ModelMaxWeight): the gate is a
		// function of the history, so the correction stays zero-mean.
		gq, gv := append([]float64(nil), qa...), append([]float64(nil), v...)
		share := d.gateModel(gq, gv, 5)
		if share < 0.01 {
			t.Fatalf("gate at 5 set %.4f of the steps: the check would not test it", share)
		}
		zeroMean(fmt.Sprintf("%s gated at 5 (%.1f%% of steps)", model, 100*share), gq, gv)
	}
	// A fixed random table Q̂(g, t, s, a) in [0, 10].
	rng := rand.New(rand.NewPCG(8, 9))
	table := make([]float64, m.dim()*m.nA)
	for k := range table {
		table[k] = 10 * rng.Float64()
	}
	fixedQ := func(table []float64, probs func(r int, g, t, s int) []float64) (qa, v []float64) {
		qa, v = make([]float64, d.rows), make([]float64, d.rows)
		obs := make([]float64, d.dim)
		for r := range d.rows {
			for j, x := range d.obs[r*d.dim : (r+1)*d.dim] {
				obs[j] = float64(x)
			}
			g, tt, s := m.decode(obs)
			k := (g*m.H+tt)*m.nS + s
			qa[r] = table[k*m.nA+d.act[r]]
			for a, p := range probs(r, g, tt, s) {
				v[r] += p * table[k*m.nA+a]
			}
		}
		return qa, v
	}
	fixed := func(probs func(r int, g, t, s int) []float64) (qa, v []float64) { return fixedQ(table, probs) }
	piOf := func(r, _, _, _ int) []float64 { return d.pi[r*d.nA : (r+1)*d.nA] }
	qa, v := fixed(piOf)
	zeroMean("fixed random Q̂", qa, v)
	// Q̂ ≡ 10: the correction is 10·Σ_t (w_{t−1} − w_t), zero-mean when
	// E[ρ_t | h_t] = 1, i.e. when the logged propensities are the ones
	// sampled.
	ten := make([]float64, len(table))
	for k := range ten {
		ten[k] = 10
	}
	qa, v = fixedQ(ten, piOf)
	zeroMean("Q̂ ≡ 10", qa, v)

	// The test's power: the same check on two broken versions must fail.
	offBy := func(name string, d *data, qa, v []float64) {
		t.Helper()
		c, _ := corrections(d, qa, v)
		mean, se := stats.MeanSE(c)
		t.Logf("%s: mean correction %+.4f ± %.4f (%+.1f se)", name, mean, se, mean/se)
		if math.Abs(mean) <= 4*se {
			t.Errorf("%s: mean correction %+.4f within 4 standard errors (%.4f) of 0: the check would not see it", name, mean, se)
		}
	}
	qa, v = fixed(func(_, g, tt, s int) []float64 { return mu.dist(g, tt, s) })
	offBy("broken: V̂ with μ's probabilities", d, qa, v)
	// Journeys drawn from μ but logged with the propensities of another
	// policy, 0.8·μ + 0.2·π.
	mis := m.mix(mu, target, 0.2)
	bad := make([]Journey, len(js))
	for i, j := range js {
		bad[i] = Journey{ID: j.ID, Tag: j.Tag, Truth: j.Truth, Steps: append([]Step(nil), j.Steps...)}
		for k := range bad[i].Steps {
			st := &bad[i].Steps[k]
			obs := make([]float64, len(st.State))
			for q, x := range st.State {
				obs[q] = float64(x)
			}
			g, tt, s := m.decode(obs)
			st.LogProb = math.Log(mis.dist(g, tt, s)[st.Action])
		}
	}
	db := correctionData(t, m, target, bad)
	save := d
	d = db
	qa, v = fixedQ(ten, piOf)
	d = save
	offBy("broken: logged propensities not the sampled ones, Q̂ ≡ 10", db, qa, v)
}
