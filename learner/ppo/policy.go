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
	mean, variance []float64 // nil when normalisation is off
	count          float64
	pool           sync.Pool // *policyWork
}

type policyWork struct {
	x    []float64
	net  *mlpWork
	logp []float64
}

func newPolicy(net mlp, params, mean, variance []float64, count float64) *Policy {
	p := &Policy{net: net, params: params, mean: mean, variance: variance, count: count}
	p.pool.New = func() any {
		return &policyWork{
			x:    make([]float64, net.in()),
			net:  net.newWork(),
			logp: make([]float64, net.out()),
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

// policyLogProbs normalises the raw observation, runs the policy network and
// writes log π(·|obs) into w.logp; it returns the entropy. It is the single
// forward path shared by Policy and Agent.
func policyLogProbs(net *mlp, params, mean, variance, obs []float64, x []float64, nw *mlpWork, logp []float64) float64 {
	normalizeObs(x, obs, mean, variance)
	return logSoftmax(logp, nw.probs, net.forward(params, x, nw))
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
	policyLogProbs(&p.net, p.params, p.mean, p.variance, obs, w.x, w.net, dst)
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
	policyLogProbs(&p.net, p.params, p.mean, p.variance, obs, w.x, w.net, w.logp)
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
