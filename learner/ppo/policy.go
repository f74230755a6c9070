package ppo

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
)

// archPrefix names the snapshot format: a categorical policy MLP with tanh
// hidden layers, float64 little-endian parameters laid out layer by layer
// (W row-major out×in, then b), and observations normalised as
// clip((x − mean)/√(var + 1e-8), ±10) when normalisation is on.
const archPrefix = "ppo-categorical-mlp/v1"

// ErrBadSnapshot is wrapped by every error [LoadPolicy] returns.
var ErrBadSnapshot = errors.New("bad policy snapshot")

// Policy is a read-only categorical policy: the policy network and the
// observation normalisation of an [Agent] at one version. It is safe for
// concurrent use by many goroutines (each call borrows a workspace from a
// sync.Pool), and its methods do not allocate in steady state.
type Policy struct {
	net            mlp
	params         []float64
	wt             []float64 // transposed weights (see transposeWeights)
	mean, variance []float64 // nil when normalisation is off
	den            []float64 // √(variance + 1e-8)
	count          float64
	pool           sync.Pool // *policyWork
}

type policyWork struct {
	x, probs, logp []float64
	act            [][]float64
}

func newPolicy(net mlp, params, mean, variance []float64, count float64) *Policy {
	p := &Policy{net: net, params: params, mean: mean, variance: variance, count: count}
	p.wt = make([]float64, len(params))
	net.transposeWeights(params, p.wt)
	if mean != nil {
		p.den = make([]float64, len(variance))
		normDen(p.den, variance)
	}
	p.pool.New = func() any {
		return &policyWork{
			x:     make([]float64, net.in()),
			probs: make([]float64, net.out()),
			logp:  make([]float64, net.out()),
			act:   newNetRows(&p.net, 1, false).act,
		}
	}
	return p
}

// ObsDim returns the observation width the policy expects.
func (p *Policy) ObsDim() int { return p.net.in() }

// NumActions returns the number of actions.
func (p *Policy) NumActions() int { return p.net.out() }

// ObsCount returns the number of observations behind the normalisation
// statistics (0 when normalisation is off).
func (p *Policy) ObsCount() float64 { return p.count }

// policyLogProbs normalises the raw observation (den from normDen), runs
// the policy network over it as a batch of one row and writes
// log π(·|obs) into logp; it returns the entropy. It is the single
// forward path shared by Policy and Agent, and a row of the agent's
// batched passes computes the same bits.
func policyLogProbs(net *mlp, params, wt, mean, den, obs []float64, x []float64, act [][]float64, probs, logp []float64) float64 {
	normalizeDen(x, obs, mean, den)
	net.forwardRows(params, wt, x, act, 0, 1)
	return logSoftmax(logp, probs, act[len(act)-1])
}

func (p *Policy) check(obs, dst []float64) {
	if len(obs) != p.net.in() {
		panic(fmt.Sprintf("ppo: observation of width %d, want %d", len(obs), p.net.in()))
	}
	if dst != nil && len(dst) != p.net.out() {
		panic(fmt.Sprintf("ppo: dst of length %d, want %d actions", len(dst), p.net.out()))
	}
}

// LogProbs writes log π(a|obs) for every action a into dst, from a raw
// (unnormalised) observation. It panics when len(obs) != ObsDim() or
// len(dst) != NumActions().
func (p *Policy) LogProbs(obs, dst []float64) {
	p.check(obs, dst)
	w := p.pool.Get().(*policyWork)
	policyLogProbs(&p.net, p.params, p.wt, p.mean, p.den, obs, w.x, w.act, w.probs, dst)
	p.pool.Put(w)
}

// ActionProbs writes π(a|obs) = exp(log π(a|obs)) for every action into dst,
// from a raw observation. It panics on the shape errors LogProbs panics on.
func (p *Policy) ActionProbs(obs, dst []float64) {
	p.LogProbs(obs, dst)
	for j, v := range dst {
		dst[j] = math.Exp(v)
	}
}

// Sample draws an action from π(·|obs) by inversion with one uniform draw of
// rng and returns it with its log-probability, the behavior_logprob to
// publish with the experience: it is bit-identical to what the agent
// computes for the same parameters and observation.
func (p *Policy) Sample(obs []float64, rng *rand.Rand) (action int, logProb float64) {
	p.check(obs, nil)
	w := p.pool.Get().(*policyWork)
	defer p.pool.Put(w)
	policyLogProbs(&p.net, p.params, p.wt, p.mean, p.den, obs, w.x, w.act, w.probs, w.logp)
	u := rng.Float64()
	action = len(w.logp) - 1
	c := 0.0
	for j, lp := range w.logp {
		c += math.Exp(lp)
		if u < c {
			action = j
			break
		}
	}
	return action, w.logp[action]
}

// archString describes the policy network of cfg for a snapshot.
func archString(cfg *Config) string {
	hs := make([]string, len(cfg.Hidden))
	for i, h := range cfg.Hidden {
		hs[i] = strconv.Itoa(h)
	}
	norm := "none"
	if cfg.NormalizeObs {
		norm = "running"
	}
	return fmt.Sprintf("%s obs=%d hidden=%s act=tanh actions=%d norm=%s",
		archPrefix, cfg.ObsDim, strings.Join(hs, ","), cfg.NumActions, norm)
}

// parseArch parses an archString back into a config holding ObsDim, Hidden,
// NumActions and NormalizeObs.
func parseArch(arch string) (Config, error) {
	f := strings.Fields(arch)
	if len(f) != 6 || f[0] != archPrefix {
		return Config{}, fmt.Errorf("%w: architecture %q not %s", ErrBadSnapshot, arch, archPrefix)
	}
	kv := map[string]string{}
	for _, s := range f[1:] {
		k, v, ok := strings.Cut(s, "=")
		if !ok {
			return Config{}, fmt.Errorf("%w: architecture field %q", ErrBadSnapshot, s)
		}
		kv[k] = v
	}
	cfg := DefaultConfig(0, 0)
	var err error
	if cfg.ObsDim, err = strconv.Atoi(kv["obs"]); err != nil {
		return Config{}, fmt.Errorf("%w: obs: %v", ErrBadSnapshot, err)
	}
	if cfg.NumActions, err = strconv.Atoi(kv["actions"]); err != nil {
		return Config{}, fmt.Errorf("%w: actions: %v", ErrBadSnapshot, err)
	}
	cfg.Hidden = nil
	for _, s := range strings.Split(kv["hidden"], ",") {
		h, err := strconv.Atoi(s)
		if err != nil {
			return Config{}, fmt.Errorf("%w: hidden: %v", ErrBadSnapshot, err)
		}
		cfg.Hidden = append(cfg.Hidden, h)
	}
	if kv["act"] != "tanh" {
		return Config{}, fmt.Errorf("%w: activation %q", ErrBadSnapshot, kv["act"])
	}
	switch kv["norm"] {
	case "running":
		cfg.NormalizeObs = true
	case "none":
		cfg.NormalizeObs = false
	default:
		return Config{}, fmt.Errorf("%w: normalisation %q", ErrBadSnapshot, kv["norm"])
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, fmt.Errorf("%w: %v", ErrBadSnapshot, err)
	}
	return cfg, nil
}

func encodeFloats(dst []byte, xs []float64) []byte {
	for _, v := range xs {
		dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(v))
	}
	return dst
}

func decodeFloats(dst []float64, b []byte) {
	for i := range dst {
		dst[i] = math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:]))
	}
}

func allFinite(xs []float64) bool {
	for _, v := range xs {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return false
		}
	}
	return true
}

// LoadPolicy rebuilds a Policy from the fields of a PolicySnapshot written
// by [Agent.MarshalPolicy]. obsMean and obsVar must have ObsDim entries when
// the architecture says norm=running and be empty otherwise. Any mismatch or
// non-finite value returns an error wrapping ErrBadSnapshot.
func LoadPolicy(arch string, params []byte, obsMean, obsVar []float64, obsCount float64) (*Policy, error) {
	cfg, err := parseArch(arch)
	if err != nil {
		return nil, err
	}
	net := newMLP(layerSizes(cfg.ObsDim, cfg.Hidden, cfg.NumActions))
	if len(params) != 8*net.n {
		return nil, fmt.Errorf("%w: %d parameter bytes, want %d", ErrBadSnapshot, len(params), 8*net.n)
	}
	p := make([]float64, net.n)
	decodeFloats(p, params)
	if !allFinite(p) {
		return nil, fmt.Errorf("%w: non-finite parameter", ErrBadSnapshot)
	}
	var mean, variance []float64
	if cfg.NormalizeObs {
		if len(obsMean) != cfg.ObsDim || len(obsVar) != cfg.ObsDim {
			return nil, fmt.Errorf("%w: normalisation of widths %d/%d, want %d", ErrBadSnapshot, len(obsMean), len(obsVar), cfg.ObsDim)
		}
		if !allFinite(obsMean) || !allFinite(obsVar) || !(obsCount >= 0) || math.IsInf(obsCount, 1) {
			return nil, fmt.Errorf("%w: non-finite normalisation statistics", ErrBadSnapshot)
		}
		for _, v := range obsVar {
			if v < 0 {
				return nil, fmt.Errorf("%w: negative observation variance %v", ErrBadSnapshot, v)
			}
		}
		mean = append([]float64(nil), obsMean...)
		variance = append([]float64(nil), obsVar...)
	} else {
		if len(obsMean) != 0 || len(obsVar) != 0 {
			return nil, fmt.Errorf("%w: normalisation statistics for a policy without normalisation", ErrBadSnapshot)
		}
		obsCount = 0
	}
	return newPolicy(net, p, mean, variance, obsCount), nil
}
