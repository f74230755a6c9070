package sim

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Posterior is the exact posterior log-odds that a record of the simulator's
// stream comes from a crisis parent, given only what a tagger reads: the
// record's metadata signals and its value, when every action is drawn by
// the uniform logging policy. It is the Bayes-optimal score for those
// signals, from which the best achievable F1 (the Bayes limit) follows.
//
// Under the uniform policy the signals are independent given the segment s:
// the keyword flag, the campaign flag, the engagement, the urgent-search
// count (all drawn once per user) and the step's value (the step's action is
// uniform and independent of the user), so
//
//	log-odds = log π/(1−π) + Σ_signals log P(signal | crisis)/P(signal | regular)
//
// with, per signal (k = keyword, c = campaign, e = engagement, n = searches):
//
//	P(k | s)      = KeywordShare_s or 1 − KeywordShare_s
//	P(c | s)      = CampaignShare_s or 1 − CampaignShare_s
//	P(e | s)      = Φ((e + ½·10⁻³ − μ_s)/σ_s) − Φ((e − ½·10⁻³ − μ_s)/σ_s)
//	                (e is written with three decimals after clamping
//	                N(μ_s, σ_s²) to [0, 1]; at 0 and 1 the clamped tail mass
//	                is included: μ = 0.60/0.25, σ = 0.18/0.15)
//	P(n | s)      = Poisson(n; λ_s), λ = 3.0/0.6
//	p(v | s)      = (1/A) Σ_a LogNormal(v; ln(V_s·win(b_a)·p_s(a)) − σ_v²/2, σ_v)
//
// and π the share of records (not users) that are crisis parents:
// π = f·E[steps | crisis] / (f·E[steps | crisis] + (1 − f)·E[steps | regular]),
// the expected journey lengths exact from the model under the uniform
// policy. Under a learned policy the action depends on the user's
// observation and so on the segment: the value is then no longer
// independent of the metadata given the segment, and Posterior is the
// exact posterior only of the uniform-policy stream. The metadata terms
// alone (MetadataLogOdds) hold for any policy, with that policy's π.
type Posterior struct {
	m            *model
	logPrior     float64
	priorCrisis  float64
	valueMu      [2][]float64
	sigma        float64
	kw, camp     [2]float64 // P(flag | seg)
	engMu, engSD [2]float64
	lambda       [2]float64
	crisisKW     map[string]bool
	crisisCamp   map[string]bool
}

// NewPosterior returns the posterior of cfg's uniform-policy stream. It
// fails when cfg is invalid or ValueNoise is 0 (the value density is then
// degenerate).
func NewPosterior(cfg Config) (*Posterior, error) {
	m, err := newModel(cfg)
	if err != nil {
		return nil, err
	}
	if !(cfg.ValueNoise > 0) {
		return nil, fmt.Errorf("%w: posterior needs value noise > 0", ErrInvalidConfig)
	}
	uni := uniformProbs(m.nA)
	sc, sr := m.evaluate(segCrisis, uni).Steps, m.evaluate(segRegular, uni).Steps
	f := cfg.CrisisFraction
	pi := f * sc / (f*sc + (1-f)*sr)
	p := &Posterior{
		m: m, priorCrisis: pi, logPrior: math.Log(pi / (1 - pi)), sigma: cfg.ValueNoise,
		kw:   [2]float64{segRegular: cfg.RegularKeywordShare, segCrisis: cfg.CrisisKeywordShare},
		camp: [2]float64{segRegular: cfg.RegularCampaignShare, segCrisis: cfg.CrisisCampaignShare},
		// These are drawUser's constants.
		engMu:      [2]float64{segRegular: 0.25, segCrisis: 0.60},
		engSD:      [2]float64{segRegular: 0.15, segCrisis: 0.18},
		lambda:     [2]float64{segRegular: 0.6, segCrisis: 3.0},
		crisisKW:   map[string]bool{},
		crisisCamp: map[string]bool{},
	}
	for _, k := range crisisKeywords {
		p.crisisKW[k] = true
	}
	for _, c := range crisisCampaigns {
		p.crisisCamp[c] = true
	}
	for seg := range 2 {
		p.valueMu[seg] = make([]float64, m.nA)
		for a := range m.nA {
			b, _ := cfg.Decode(a)
			p.valueMu[seg][a] = math.Log(m.value[seg]*m.win[b]*m.conv[seg][a]) - p.sigma*p.sigma/2
		}
	}
	return p, nil
}

// RecordCrisisShare returns π, the share of the uniform-policy stream's
// records that come from crisis parents.
func (p *Posterior) RecordCrisisShare() float64 { return p.priorCrisis }

// LogOdds returns log P(crisis | md, value)/P(regular | md, value) for a
// record of the uniform-policy stream with metadata md (as the simulator
// writes it) and value. A signal that is missing or does not parse
// contributes nothing (it is treated as unobserved).
func (p *Posterior) LogOdds(md map[string]string, value float64) float64 {
	return p.logPrior + p.MetadataLogLR(md) + p.ValueLogLR(value)
}

// MetadataLogLR returns the log-likelihood ratio, crisis against regular, of
// md's keyword, campaign, engagement and urgent-search signals.
func (p *Posterior) MetadataLogLR(md map[string]string) float64 {
	var l float64
	if kws, ok := md[KeyProfileKeywords]; ok {
		l += flagLR(p.kw, p.hasCrisisKeyword(kws))
	}
	if id, ok := md[KeyCampaignID]; ok {
		l += flagLR(p.camp, p.crisisCamp[id])
	}
	if e, err := strconv.ParseFloat(md[KeyCrisisContentEngagement], 64); err == nil && e >= 0 && e <= 1 {
		l += p.engLogP(segCrisis, e) - p.engLogP(segRegular, e)
	}
	if n, err := strconv.Atoi(md[KeyUrgentSearchCount]); err == nil && n >= 0 {
		// log Poisson(n; λc)/Poisson(n; λr) = n·log(λc/λr) − (λc − λr).
		l += float64(n)*math.Log(p.lambda[segCrisis]/p.lambda[segRegular]) - (p.lambda[segCrisis] - p.lambda[segRegular])
	}
	return l
}

func flagLR(share [2]float64, set bool) float64 {
	if set {
		return math.Log(share[segCrisis] / share[segRegular])
	}
	return math.Log((1 - share[segCrisis]) / (1 - share[segRegular]))
}

func (p *Posterior) hasCrisisKeyword(list string) bool {
	for _, k := range strings.Split(list, ",") {
		if p.crisisKW[k] {
			return true
		}
	}
	return false
}

// engLogP is log P(engagement written as e | seg): the mass of the clamped
// normal that rounds to e at three decimals.
func (p *Posterior) engLogP(seg int, e float64) float64 {
	mu, sd := p.engMu[seg], p.engSD[seg]
	const h = 0.0005
	lo, hi := (e-h-mu)/sd, (e+h-mu)/sd
	var mass float64
	switch {
	case e < h: // "0.000": everything clamped to 0 or rounding to it
		mass = normCDF(hi)
	case e > 1-h: // "1.000"
		mass = normSF(lo)
	case lo > 0: // upper tail: difference of survival functions is exact
		mass = normSF(lo) - normSF(hi)
	default:
		mass = normCDF(hi) - normCDF(lo)
	}
	return math.Log(mass)
}

func normCDF(z float64) float64 { return 0.5 * math.Erfc(-z/math.Sqrt2) }
func normSF(z float64) float64  { return 0.5 * math.Erfc(z/math.Sqrt2) }

// ValueLogLR returns the log-likelihood ratio, crisis against regular, of a
// step's value under the uniform policy; 0 for a value that is not finite
// and positive (unobserved).
func (p *Posterior) ValueLogLR(value float64) float64 {
	if !(value > 0) || math.IsInf(value, 1) {
		return 0
	}
	x := math.Log(value)
	return p.logValueDensity(segCrisis, x) - p.logValueDensity(segRegular, x)
}

// logValueDensity is log Σ_a φ((x − μ_a)/σ), up to terms common to both
// segments (1/A, 1/σ and the 1/v of the log-normal).
func (p *Posterior) logValueDensity(seg int, x float64) float64 {
	mx := math.Inf(-1)
	for _, mu := range p.valueMu[seg] {
		z := (x - mu) / p.sigma
		mx = math.Max(mx, -z*z/2)
	}
	var s float64
	for _, mu := range p.valueMu[seg] {
		z := (x - mu) / p.sigma
		s += math.Exp(-z*z/2 - mx)
	}
	return mx + math.Log(s)
}
