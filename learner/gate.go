package learner

import (
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"time"

	"github.com/aelp/aelp/learner/ope"
	"github.com/aelp/aelp/learner/ppo"
	"github.com/aelp/aelp/schemas"
	"github.com/segmentio/kafka-go"
)

// Promotion modes of OPEConfig.Promote.
const (
	// PromoteAlways publishes every snapshot to the policy topic (the
	// held-out evaluation, when on, is reported only).
	PromoteAlways = "always"
	// PromoteLCB publishes a snapshot only when its value's lower bound
	// beats the serving policy's (see OPEConfig).
	PromoteLCB = "lcb"
)

// Reason codes of the promotion gate, in the aelp.gate.reason header of a
// snapshot and OffPolicyEvaluation.Reason.
const (
	// ReasonAlways: promoted, the gate is off (PromoteAlways).
	ReasonAlways = "always"
	// ReasonBeatsServing: promoted, its lower bounds beat the serving
	// policy's.
	ReasonBeatsServing = "beats-serving"
	// ReasonTooFewJourneys: held back, the evaluation set holds fewer than
	// MinJourneys journeys.
	ReasonTooFewJourneys = "too-few-journeys"
	// ReasonEvaluationFailed: held back, the off-policy evaluation failed
	// (e.g. an importance weight overflow).
	ReasonEvaluationFailed = "evaluation-failed"
	// ReasonLCBNotAbove: held back, its overall lower bound does not beat
	// the serving policy's.
	ReasonLCBNotAbove = "lcb-not-above-serving"
	// ReasonSegmentLCBNotAbove: held back, its lower bound on the
	// protected segment does not beat the serving policy's.
	ReasonSegmentLCBNotAbove = "segment-lcb-not-above-serving"
	// ReasonSegmentMissing: held back, the evaluation set has no journey
	// of the protected segment.
	ReasonSegmentMissing = "segment-missing"
)

// Header keys of the gate's decision on a published snapshot (on the
// policy topic and the candidates topic alike).
const (
	HeaderGateReason  = "aelp.gate.reason"
	HeaderGateDetail  = "aelp.gate.detail"
	HeaderGateServing = "aelp.gate.serving-version"
)

// OPEConfig configures the learner's held-out off-policy evaluation and
// the promotion gate. The zero value holds out no user and promotes every
// snapshot (the learner as it was before the gate).
type OPEConfig struct {
	// Holdout is the share of users, in [0, 1), whose records are never
	// inserted into the replay buffer but kept, as complete journeys, in
	// the evaluation set (by a hash of the user id, FNV-1a, so a user is
	// held out in every run and on every restart). 0 (the default) holds
	// out none and evaluates nothing.
	Holdout float64
	// Journeys bounds the evaluation set: the most recent complete
	// journeys kept (oldest evicted). Default 10,000.
	Journeys int
	// MinJourneys is the number of journeys the evaluation set must hold
	// before a snapshot is evaluated (and, with PromoteLCB, before any is
	// promoted). Default 2,000.
	MinJourneys int
	// Promote is PromoteAlways (default) or PromoteLCB: publish a snapshot
	// only when the lower bound of its value's interval is above the lower
	// bound of the policy serving now (the newest snapshot on the policy
	// topic, or the logging policy's observed value when there is none),
	// overall and on ProtectSegment, both estimated on the same journeys;
	// other snapshots go to the candidates topic with the reason in the
	// aelp.gate.reason header.
	Promote string
	// ProtectSegment, when set, must also pass the gate: "crisis" (the
	// tagged crisis-parent segment, "tag CRISIS_PARENT") or a segment name
	// of the report ("true CRISIS_PARENT", ...).
	ProtectSegment string
	// Estimator is the estimator the gate reads: WPDIS (default), PDIS or
	// DR (with the cross-fitted fitted-Q model).
	Estimator string
	// Eval configures the estimators (ope.Config); Resamples default 500,
	// the model none unless Estimator is DR. Its Seed is the learner's.
	Eval ope.Config
}

// DefaultOPEConfig returns the defaults: no user held out, 10,000
// journeys kept, 2,000 required, every snapshot promoted, no protected
// segment, WPDIS, 500 resamples of 95% intervals.
func DefaultOPEConfig() OPEConfig {
	return OPEConfig{Journeys: 10_000, MinJourneys: 2_000, Promote: PromoteAlways, Estimator: ope.WPDIS,
		Eval: ope.Config{Resamples: 500, Confidence: 0.95}}
}

func (c *OPEConfig) setDefaults() {
	d := DefaultOPEConfig()
	if c.Journeys == 0 {
		c.Journeys = d.Journeys
	}
	if c.MinJourneys == 0 {
		c.MinJourneys = d.MinJourneys
	}
	if c.Promote == "" {
		c.Promote = d.Promote
	}
	if c.Estimator == "" {
		c.Estimator = d.Estimator
	}
	if c.Eval.Resamples == 0 {
		c.Eval.Resamples = d.Eval.Resamples
	}
	if c.Eval.Confidence == 0 {
		c.Eval.Confidence = d.Eval.Confidence
	}
	if c.Eval.Model == "" && c.Estimator != ope.DR {
		c.Eval.Model = ope.ModelNone // the fitted-Q model only serves DR
	}
}

// Validate reports the first invalid field (after defaults).
func (c OPEConfig) Validate() error {
	c.setDefaults()
	switch {
	case !(c.Holdout >= 0 && c.Holdout < 1):
		return fmt.Errorf("ope holdout %v: want a share in [0, 1)", c.Holdout)
	case c.Journeys < 1 || c.MinJourneys < 1:
		return fmt.Errorf("ope journeys %d and min journeys %d: must be at least 1", c.Journeys, c.MinJourneys)
	case c.MinJourneys > c.Journeys:
		return fmt.Errorf("ope min journeys %d exceeds the evaluation set's size %d", c.MinJourneys, c.Journeys)
	case c.Promote != PromoteAlways && c.Promote != PromoteLCB:
		return fmt.Errorf("promote %q: want %s or %s", c.Promote, PromoteAlways, PromoteLCB)
	case c.Promote == PromoteLCB && c.Holdout == 0:
		return errors.New("promote lcb needs held-out users: set their share (--ope-holdout, e.g. 0.1)")
	case c.ProtectSegment != "" && c.Promote != PromoteLCB:
		return fmt.Errorf("protect segment %q needs promote %s", c.ProtectSegment, PromoteLCB)
	case c.Estimator != ope.PDIS && c.Estimator != ope.WPDIS && c.Estimator != ope.DR:
		return fmt.Errorf("ope estimator %q: want %s, %s or %s", c.Estimator, ope.PDIS, ope.WPDIS, ope.DR)
	}
	if err := c.Eval.Validate(); err != nil {
		return err
	}
	return nil
}

// segmentName is the report's name of the protected segment.
func (c OPEConfig) segmentName() string {
	if strings.EqualFold(c.ProtectSegment, "crisis") {
		return ope.KindTag + " " + schemas.EventCrisis.String()
	}
	return c.ProtectSegment
}

// heldOut reports whether user is in the held-out share: FNV-1a 64 of the
// user id through murmur3's 64-bit finaliser (fmix64), its top 53 bits as
// a fraction of 2^53, below share. FNV-1a alone mixes the last bytes of a
// string poorly into its top bits: on the simulator's ids
// ("u-<seed>-<stream>-<n>"), users that differ in their last digits only,
// its top bits held out 24–39% of the users of a stream at a share of
// 0.3; the finaliser spreads every input bit over all 64.
func heldOut(user string, share float64) bool {
	if share <= 0 {
		return false
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte(user))
	return float64(fmix64(h.Sum64())>>11)/(1<<53) < share
}

// fmix64 is murmur3's 64-bit finaliser: a bijection in which every input
// bit affects every output bit.
func fmix64(k uint64) uint64 {
	k ^= k >> 33
	k *= 0xff51afd7ed558ccd
	k ^= k >> 33
	k *= 0xc4ceb9fe1a85ec53
	k ^= k >> 33
	return k
}

// evaluator owns the evaluation set and the policy serving: it is used by
// the training loop only.
type evaluator struct {
	cfg       OPEConfig
	set       *ope.Journeys
	collector *ope.Collector
	// serving is the policy on the policy topic (nil: the logging policy),
	// servingVersion its version (−1).
	serving        *ppo.Policy
	servingVersion int64
}

func newEvaluator(cfg OPEConfig, stateDim, numActions int) *evaluator {
	set := ope.NewJourneys(cfg.Journeys)
	return &evaluator{cfg: cfg, set: set, servingVersion: -1,
		collector: ope.NewCollector(ope.CollectorConfig{NumActions: numActions, StateDim: stateDim}, set)}
}

// add hands one held-out record to the collector.
func (e *evaluator) add(te *schemas.TaggedExperience) {
	r := ope.RecordOf(te)
	e.collector.Add(&r)
}

// decision is the gate's verdict on one snapshot.
type decision struct {
	promote bool
	ev      schemas.OffPolicyEvaluation
}

// judge evaluates the snapshot pol (version v) on the evaluation set and,
// with PromoteLCB, the serving policy on the same journeys, and decides.
func (e *evaluator) judge(pol *ppo.Policy, v int64, seed uint64) decision {
	cfg := e.cfg
	always := cfg.Promote == PromoteAlways
	js := e.set.Snapshot()
	d := decision{promote: always, ev: schemas.OffPolicyEvaluation{PolicyVersion: v, ServingVersion: e.servingVersion,
		Estimator: cfg.Estimator, Confidence: cfg.Eval.Confidence, Journeys: int64(len(js))}}
	verdict := func(reason, detail string) decision {
		if always {
			d.ev.Reason, d.ev.Detail = ReasonAlways, "promote always; "+detail
		} else {
			d.ev.Reason, d.ev.Detail = reason, detail
		}
		d.ev.Promoted = d.promote
		return d
	}
	if len(js) < cfg.MinJourneys {
		return verdict(ReasonTooFewJourneys, fmt.Sprintf("not evaluated: the evaluation set holds %d journeys, fewer than the %d required", len(js), cfg.MinJourneys))
	}
	ecfg := cfg.Eval
	ecfg.Seed = seed
	rep, err := ope.Evaluate(ope.Target{Name: fmt.Sprintf("snapshot v%d", v), Policy: pol}, js, ecfg)
	if err != nil {
		return verdict(ReasonEvaluationFailed, "snapshot: "+err.Error())
	}
	var serving *ope.Report
	if !always && e.serving != nil {
		// The same journeys and bootstrap seed: the two intervals come
		// from the same resamples.
		s, err := ope.Evaluate(ope.Target{Name: fmt.Sprintf("serving v%d", e.servingVersion), Policy: e.serving}, js, ecfg)
		if err != nil {
			return verdict(ReasonEvaluationFailed, fmt.Sprintf("serving policy v%d: %v", e.servingVersion, err))
		}
		serving = &s
	}
	d.ev.Segments = segmentFigures(&rep, serving, cfg.Estimator, !always)
	if always {
		return verdict("", fmt.Sprintf("evaluated on %d journeys", len(js)))
	}
	if r, detail := gateCheck(d.ev.Segments, "all", "overall"); r != "" {
		return verdict(ReasonLCBNotAbove, detail)
	}
	if name := cfg.segmentName(); name != "" {
		r, detail := gateCheck(d.ev.Segments, name, name)
		if r == ReasonSegmentMissing {
			return verdict(r, detail)
		}
		if r != "" {
			return verdict(ReasonSegmentLCBNotAbove, detail)
		}
	}
	d.promote = true
	detail := "lower bound above the serving policy's overall"
	if name := cfg.segmentName(); name != "" {
		detail += " and on " + name
	}
	return verdict(ReasonBeatsServing, detail)
}

// segmentFigures returns the figures of estimator est per segment of rep,
// with the serving policy's lower bounds when compare: serving's, or the
// logging policy's (the logged mean's interval) when serving is nil.
func segmentFigures(rep, serving *ope.Report, est string, compare bool) []schemas.OffPolicySegment {
	out := make([]schemas.OffPolicySegment, 0, len(rep.Segments))
	for _, s := range rep.Segments {
		e, _ := s.Estimate(est)
		f := schemas.OffPolicySegment{Segment: s.Name, Journeys: int64(s.Journeys), Estimate: e.Value, LCB: e.Lo, UCB: e.Hi, ESS: s.ESS}
		switch {
		case !compare:
		case serving == nil:
			lo := s.Logged.Lo
			f.ServingLCB = &lo
		default:
			if ss, ok := serving.Segment(s.Name); ok {
				se, _ := ss.Estimate(est)
				lo := se.Lo
				f.ServingLCB = &lo
			}
		}
		out = append(out, f)
	}
	return out
}

// gateCheck returns "" when segment name's lower bound is above the
// serving policy's, otherwise a reason and the detail naming both.
func gateCheck(segs []schemas.OffPolicySegment, name, what string) (reason, detail string) {
	for _, s := range segs {
		if s.Segment != name {
			continue
		}
		if s.ServingLCB == nil {
			return ReasonSegmentMissing, fmt.Sprintf("%s: no serving figure on the same journeys", what)
		}
		if s.LCB > *s.ServingLCB {
			return "", ""
		}
		return ReasonLCBNotAbove, fmt.Sprintf("%s: lower bound %.4g not above the serving policy's %.4g (estimate %.4g, ESS %.0f of %d journeys)",
			what, s.LCB, *s.ServingLCB, s.Estimate, s.ESS, s.Journeys)
	}
	return ReasonSegmentMissing, fmt.Sprintf("%s: no journey of the segment in the evaluation set", what)
}

// gateHeaders are the headers of a snapshot record carrying decision d.
func gateHeaders(d *decision) []kafka.Header {
	return []kafka.Header{
		{Key: HeaderGateReason, Value: []byte(d.ev.Reason)},
		{Key: HeaderGateDetail, Value: []byte(d.ev.Detail)},
		{Key: HeaderGateServing, Value: []byte(strconv.FormatInt(d.ev.ServingVersion, 10))},
	}
}

// evaluationSeconds returns how long fn took.
func evaluationSeconds(fn func()) float64 {
	t := time.Now()
	fn()
	return time.Since(t).Seconds()
}
