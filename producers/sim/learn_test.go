package sim

import (
	"math"
	"testing"
)

// logistic is a logistic-regression estimate of P(crisis | observation),
// fitted by full-batch gradient descent on standardised features.
type logistic struct {
	mu, sd []float64
	w      []float64 // weights, w[len-1] is the bias
}

func (l *logistic) prob(obs []float64) float64 {
	z := l.w[len(l.w)-1]
	for i, x := range obs {
		z += l.w[i] * (x - l.mu[i]) / l.sd[i]
	}
	return 1 / (1 + math.Exp(-z))
}

func fitLogistic(xs [][]float64, ys []bool, iters int, lr float64) *logistic {
	d := len(xs[0])
	l := &logistic{mu: make([]float64, d), sd: make([]float64, d), w: make([]float64, d+1)}
	n := float64(len(xs))
	for _, x := range xs {
		for i, v := range x {
			l.mu[i] += v / n
		}
	}
	for _, x := range xs {
		for i, v := range x {
			l.sd[i] += (v - l.mu[i]) * (v - l.mu[i]) / n
		}
	}
	for i := range l.sd {
		l.sd[i] = math.Sqrt(l.sd[i]) + 1e-9
	}
	// Standardise once: z[k][i] = (x − μᵢ)/σᵢ.
	z := make([]float64, len(xs)*d)
	for k, x := range xs {
		for i, v := range x {
			z[k*d+i] = (v - l.mu[i]) / l.sd[i]
		}
	}
	grad := make([]float64, d+1)
	for range iters {
		clear(grad)
		for k := range xs {
			zk := z[k*d : (k+1)*d]
			a := l.w[d]
			for i, v := range zk {
				a += l.w[i] * v
			}
			e := 1 / (1 + math.Exp(-a))
			if ys[k] {
				e--
			}
			for i, v := range zk {
				grad[i] += e * v
			}
			grad[d] += e
		}
		for i := range l.w {
			l.w[i] -= lr * grad[i] / n
		}
	}
	return l
}

// thresholdPolicy plays the crisis oracle action when the classifier's
// P(crisis | obs) exceeds tau and the regular oracle action otherwise.
type thresholdPolicy struct {
	clf             *logistic
	tau             float64
	crisis, regular int
}

func (p thresholdPolicy) ActionProbs(obs, dst []float64) {
	clear(dst)
	if p.clf.prob(obs) > p.tau {
		dst[p.crisis] = 1
	} else {
		dst[p.regular] = 1
	}
}

// TestLearnableFromState shows that the observation carries enough about the
// segment for a policy that sees only the state: a logistic classifier
// fitted on uniform-logging data, used to pick between the two segments'
// oracle actions, beats the logging policy in both segments (lower 95%
// bound above the exact uniform return).
func TestLearnableFromState(t *testing.T) {
	cfg := DefaultConfig()
	s := mustNew(t, cfg, 31, 0)
	var xs [][]float64
	var ys []bool
	for range 1500 {
		s.RunEpisode(Uniform{cfg.NumActions()}, func(tr *Transition) {
			xs = append(xs, append([]float64(nil), tr.State...))
			ys = append(ys, tr.Crisis)
		})
	}
	clf := fitLogistic(xs, ys, 100, 1.0)
	or, err := Oracle(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var tp, fp, pos, neg int
	ls := mustNew(t, cfg, 33, 0)
	for range 2000 {
		ls.RunEpisode(Uniform{cfg.NumActions()}, func(tr *Transition) {
			hit := clf.prob(tr.State) > 0.5
			if tr.Crisis {
				pos++
				if hit {
					tp++
				}
			} else {
				neg++
				if hit {
					fp++
				}
			}
		})
	}
	t.Logf("per-step at 0.5: TPR %.3f FPR %.4f; weights %.2f", float64(tp)/float64(pos), float64(fp)/float64(neg), clf.w)
	// τ = 0.2: crisis parents are worth far more, so the classifier leans
	// towards the crisis action.
	p := thresholdPolicy{clf: clf, tau: 0.2, crisis: or.Crisis.BestAction, regular: or.Regular.BestAction}
	ev, err := Evaluate(cfg, p, 10_000, 32)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name          string
		ev            SegmentEval
		uniform, best float64
	}{
		{"crisis", ev.Crisis, or.Crisis.UniformReturn, or.Crisis.BestReturn},
		{"regular", ev.Regular, or.Regular.UniformReturn, or.Regular.BestReturn},
	} {
		t.Logf("%s: state-only policy %.3f ± %.3f, uniform %.3f, oracle %.3f", c.name, c.ev.MeanReturn, c.ev.ReturnCI, c.uniform, c.best)
		// "Clearly": at least a third of the way from uniform to the oracle.
		if lo := c.ev.MeanReturn - c.ev.ReturnCI; lo < c.uniform+(c.best-c.uniform)/3 {
			t.Errorf("%s: state-only policy lower bound %.3f; want ≥ uniform %.3f + (oracle − uniform)/3", c.name, lo, c.uniform)
		}
	}
}
