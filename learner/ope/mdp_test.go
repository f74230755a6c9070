package ope

import (
	"math"
	"math/rand/v2"
	"strconv"
)

// toyMDP is a small episodic MDP whose values are known exactly (by
// dynamic programming in trueValue): two segments ("A" 30%, "B" 70%),
// three hidden states, nA actions, at most H steps. The observation is the
// one-hot of (segment, step, state), so a linear Q model of it is tabular
// and fitted-Q evaluation can be exact.
type toyMDP struct {
	nS, nA, H int
	segP      []float64     // P(segment)
	p0        []float64     // P(s_0)
	R         [][][]float64 // mean reward [seg][s][a]
	P         [][][]float64 // P(s′|s, a) [s][a][s′]
	term      [][]float64   // P(done | s, a) before the last step
	noise     float64       // σ of the Gaussian reward noise
	segNames  []string
}

func newToyMDP(seed uint64, nA, H int) *toyMDP {
	rng := rand.New(rand.NewPCG(seed, 7))
	m := &toyMDP{nS: 3, nA: nA, H: H, segP: []float64{0.3, 0.7}, p0: []float64{0.5, 0.3, 0.2},
		noise: 1, segNames: []string{"A", "B"}}
	m.R = make([][][]float64, 2)
	for g := range 2 {
		m.R[g] = make([][]float64, m.nS)
		for s := range m.nS {
			m.R[g][s] = make([]float64, nA)
			for a := range nA {
				m.R[g][s][a] = 2*rng.Float64() - 0.5 + float64(g)*0.5*float64(a%3)
			}
		}
	}
	m.P = make([][][]float64, m.nS)
	m.term = make([][]float64, m.nS)
	for s := range m.nS {
		m.P[s] = make([][]float64, nA)
		m.term[s] = make([]float64, nA)
		for a := range nA {
			m.P[s][a] = randomDist(rng, m.nS, 0.05)
			m.term[s][a] = 0.3 * rng.Float64()
		}
	}
	return m
}

// randomDist returns a random distribution over n outcomes, each at least
// floor.
func randomDist(rng *rand.Rand, n int, floor float64) []float64 {
	p := make([]float64, n)
	sum := 0.0
	for i := range p {
		p[i] = rng.Float64() + 0.1
		sum += p[i]
	}
	for i := range p {
		p[i] = floor + (1-floor*float64(n))*p[i]/sum
	}
	return p
}

func (m *toyMDP) dim() int { return 2 * m.H * m.nS }

func (m *toyMDP) obs(g, t, s int, dst []float32) {
	clear(dst)
	dst[(g*m.H+t)*m.nS+s] = 1
}

// decode returns the (segment, step, state) of a one-hot observation.
func (m *toyMDP) decode(obs []float64) (g, t, s int) {
	for k, v := range obs {
		if v == 1 {
			return k / (m.H * m.nS), (k / m.nS) % m.H, k % m.nS
		}
	}
	panic("toy: observation is not one-hot")
}

// tablePolicy is a policy of the toy MDP: probs[g][t][s] is π(·|g, t, s).
type tablePolicy struct {
	m     *toyMDP
	probs [][][][]float64
}

func (p *tablePolicy) NumActions() int { return p.m.nA }

func (p *tablePolicy) LogProbs(obs, dst []float64) {
	g, t, s := p.m.decode(obs)
	for a, q := range p.probs[g][t][s] {
		dst[a] = math.Log(q)
	}
}

func (p *tablePolicy) dist(g, t, s int) []float64 { return p.probs[g][t][s] }

// newTablePolicy returns a policy filled by fn(g, t, s).
func (m *toyMDP) newTablePolicy(fn func(g, t, s int) []float64) *tablePolicy {
	p := &tablePolicy{m: m, probs: make([][][][]float64, 2)}
	for g := range 2 {
		p.probs[g] = make([][][]float64, m.H)
		for t := range m.H {
			p.probs[g][t] = make([][]float64, m.nS)
			for s := range m.nS {
				p.probs[g][t][s] = fn(g, t, s)
			}
		}
	}
	return p
}

// randomPolicy returns a random stochastic policy with every probability
// at least floor.
func (m *toyMDP) randomPolicy(seed uint64, floor float64) *tablePolicy {
	rng := rand.New(rand.NewPCG(seed, 11))
	return m.newTablePolicy(func(int, int, int) []float64 { return randomDist(rng, m.nA, floor) })
}

// mix returns (1−λ)·p + λ·q, per state.
func (m *toyMDP) mix(p, q *tablePolicy, lambda float64) *tablePolicy {
	return m.newTablePolicy(func(g, t, s int) []float64 {
		out := make([]float64, m.nA)
		for a := range out {
			out[a] = (1-lambda)*p.dist(g, t, s)[a] + lambda*q.dist(g, t, s)[a]
		}
		return out
	})
}

// trueValue returns the exact value of π per segment and overall:
//
//	V_t(g, s) = Σ_a π(a|g,t,s) [R(g,s,a) + 1[t < H−1]·(1 − term(s,a))·Σ_s′ P(s′|s,a) V_{t+1}(g, s′)]
//	V(g) = Σ_s p0(s) V_0(g, s),   V = Σ_g P(g) V(g)
func (m *toyMDP) trueValue(p *tablePolicy) (perSeg []float64, all float64) {
	perSeg = make([]float64, 2)
	for g := range 2 {
		next := make([]float64, m.nS)
		for t := m.H - 1; t >= 0; t-- {
			cur := make([]float64, m.nS)
			for s := range m.nS {
				for a, pa := range p.dist(g, t, s) {
					q := m.R[g][s][a]
					if t < m.H-1 {
						cont := 0.0
						for s2, ps := range m.P[s][a] {
							cont += ps * next[s2]
						}
						q += (1 - m.term[s][a]) * cont
					}
					cur[s] += pa * q
				}
			}
			next = cur
		}
		for s, ps := range m.p0 {
			perSeg[g] += ps * next[s]
		}
		all += m.segP[g] * perSeg[g]
	}
	return perSeg, all
}

func draw(rng *rand.Rand, p []float64) int {
	u := rng.Float64()
	for i, q := range p {
		u -= q
		if u < 0 {
			return i
		}
	}
	return len(p) - 1
}

// journeys draws n journeys of behaviour mu, logged as Evaluate reads them:
// tagged and true segment both the segment's name.
func (m *toyMDP) journeys(mu *tablePolicy, n int, seed uint64) []Journey {
	rng := rand.New(rand.NewPCG(seed, 13))
	out := make([]Journey, n)
	for i := range out {
		g := draw(rng, m.segP)
		s := draw(rng, m.p0)
		j := Journey{ID: "j" + strconv.FormatUint(seed, 10) + "-" + strconv.Itoa(i), Tag: m.segNames[g], Truth: m.segNames[g]}
		for t := range m.H {
			st := Step{T: t, State: make([]float32, m.dim())}
			m.obs(g, t, s, st.State)
			dist := mu.dist(g, t, s)
			st.Action = draw(rng, dist)
			st.LogProb = math.Log(dist[st.Action])
			st.Reward = m.R[g][s][st.Action] + m.noise*rng.NormFloat64()
			st.Done = t == m.H-1 || rng.Float64() < m.term[s][st.Action]
			j.Steps = append(j.Steps, st)
			if st.Done {
				break
			}
			s = draw(rng, m.P[s][st.Action])
		}
		out[i] = j
	}
	return out
}
