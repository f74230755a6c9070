package schemas

import (
	"fmt"
	"time"
)

// TrainingMetrics is one learner report (aelp.TrainingMetrics, current
// version 3); the field meanings are DESIGN.md's "Metrics". The pointer
// fields are optional (Avro ["null",…], default null): nil when the figure
// is unknown, e.g. tag precision without ground truth. Version 1 records
// (without ope) read with OPE nil, version 1 and 2 records (without
// tagging) with Tagging nil.
type TrainingMetrics struct {
	ExperimentID string
	LearnerID    string
	// Update is the update step this report follows.
	Update                   int64
	Timestamp                time.Time
	EnableImportanceSampling bool

	CrisisParentWeight       float64
	RegularParentWeight      float64
	CrisisParentRatioInBatch float64
	ExpectedCrisisRatio      float64
	CrisisFractionInBuffer   float64
	ImportanceWeightsMean    float64
	ImportanceWeightsStd     float64
	ImportanceWeightsMin     float64
	ImportanceWeightsMax     float64
	Beta                     float64
	PolicyLoss               float64
	ValueLoss                float64
	Entropy                  float64
	ApproxKL                 float64
	ClipFrac                 float64
	ExplainedVariance        float64
	GradNorm                 float64
	LearningRate             float64
	IngestPerSec             float64
	SamplesPerSec            float64

	BufferSize          int64
	Updates             int64
	ExperiencesIngested int64
	ConsumerLag         int64
	EpochsRun           int64

	TagPrecision          *float64
	TagRecall             *float64
	MeanReturnCrisis      *float64
	MeanReturnRegular     *float64
	ConversionRateCrisis  *float64
	ConversionRateRegular *float64

	// OPE is the off-policy evaluation of the snapshot published (or held
	// back) with this record, and the promotion gate's decision; nil when
	// the record follows none (version 2).
	OPE *OffPolicyEvaluation

	// Tagging is the crisis tags' accuracy and calibration per tag source
	// over the ingested records with ground truth, every record so far;
	// nil when none carried it (version 3).
	Tagging []TagSourceAccuracy
}

// TagSourceAccuracy is one tag source's crisis tags against ground truth
// (aelp.TagSourceAccuracy). A figure is nil while undefined: Precision
// without a crisis tag, Recall without a true crisis parent, F1 with
// neither, Brier and ECE without a record.
type TagSourceAccuracy struct {
	// Source is the tag_source symbol (LABEL, METADATA, VALUE, DEFAULT).
	Source string
	// Records is the number of records of Source with ground truth.
	Records int64
	// Precision, Recall and F1 are those of Source's crisis tags; Brier
	// and ECE the Brier score and the expected calibration error (10
	// equal-width bins) of its tag_score, the calibrated P(crisis).
	Precision, Recall, F1, Brier, ECE *float64
}

func taggingNative(ts []TagSourceAccuracy) any {
	if ts == nil {
		return nil
	}
	items := make([]any, len(ts))
	for i, a := range ts {
		items[i] = map[string]any{"source": a.Source, "records": a.Records, "precision": optionalNative(a.Precision),
			"recall": optionalNative(a.Recall), "f1": optionalNative(a.F1), "brier": optionalNative(a.Brier),
			"ece": optionalNative(a.ECE)}
	}
	return map[string]any{"array": items}
}

// taggingFromNative reads the optional tagging field (absent in versions 1
// and 2 once resolved: null).
func taggingFromNative(v any) ([]TagSourceAccuracy, error) {
	if v == nil {
		return nil, nil
	}
	u, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("field \"tagging\": native %T", v)
	}
	items, ok := u["array"].([]any)
	if !ok {
		return nil, fmt.Errorf("field \"tagging\": union branch %v", u)
	}
	out := make([]TagSourceAccuracy, 0, len(items))
	for i, it := range items {
		m, ok := it.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("field \"tagging\" entry %d: native %T", i, it)
		}
		r := nativeReader{m: m}
		out = append(out, TagSourceAccuracy{Source: r.str("source"), Records: r.i64("records"),
			Precision: r.optF64("precision"), Recall: r.optF64("recall"), F1: r.optF64("f1"),
			Brier: r.optF64("brier"), ECE: r.optF64("ece")})
		if r.err != nil {
			return nil, fmt.Errorf("field \"tagging\" entry %d: %w", i, r.err)
		}
	}
	return out, nil
}

// OffPolicyEvaluation is a policy snapshot evaluated off-policy on the
// learner's held-out journeys (aelp.OffPolicyEvaluation) and what the
// promotion gate did with it.
type OffPolicyEvaluation struct {
	// PolicyVersion is the snapshot evaluated; ServingVersion the policy
	// serving then (−1: the logging policy, none published).
	PolicyVersion, ServingVersion int64
	// Estimator is the estimator of the figures (PDIS, WPDIS, DR) and
	// Confidence the level of their intervals.
	Estimator  string
	Confidence float64
	// Journeys is the size of the evaluation set.
	Journeys int64
	// Promoted says whether the snapshot went to the policy topic (false:
	// the candidates topic); Reason is the gate's reason code and Detail
	// says it in words.
	Promoted       bool
	Reason, Detail string
	// Segments are the figures per segment, "all" first.
	Segments []OffPolicySegment
}

// OffPolicySegment is one segment's estimate of a snapshot's value.
type OffPolicySegment struct {
	// Segment is "all", "tag <event type>" or "true <segment>".
	Segment string
	// Journeys is the number of journeys of the segment.
	Journeys int64
	// Estimate, LCB and UCB are the estimate and its interval's bounds;
	// ESS the effective sample size of the final weights.
	Estimate, LCB, UCB, ESS float64
	// ServingLCB is the serving policy's lower bound on the same journeys
	// (nil: not evaluated).
	ServingLCB *float64
}

func (e *OffPolicyEvaluation) native() any {
	if e == nil {
		return nil
	}
	segs := make([]any, len(e.Segments))
	for i, s := range e.Segments {
		segs[i] = map[string]any{"segment": s.Segment, "journeys": s.Journeys, "estimate": s.Estimate,
			"lcb": s.LCB, "ucb": s.UCB, "ess": s.ESS, "serving_lcb": optionalNative(s.ServingLCB)}
	}
	return map[string]any{"aelp.OffPolicyEvaluation": map[string]any{
		"policy_version": e.PolicyVersion, "serving_version": e.ServingVersion, "estimator": e.Estimator,
		"confidence": e.Confidence, "journeys": e.Journeys, "promoted": e.Promoted, "reason": e.Reason,
		"detail": e.Detail, "segments": segs,
	}}
}

// opeFromNative reads the optional ope field (absent in version 1 once
// resolved: null).
func opeFromNative(v any) (*OffPolicyEvaluation, error) {
	if v == nil {
		return nil, nil
	}
	u, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("field \"ope\": native %T", v)
	}
	m, ok := u["aelp.OffPolicyEvaluation"].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("field \"ope\": union branch %v", u)
	}
	r := nativeReader{m: m}
	e := &OffPolicyEvaluation{PolicyVersion: r.i64("policy_version"), ServingVersion: r.i64("serving_version"),
		Estimator: r.str("estimator"), Confidence: r.f64("confidence"), Journeys: r.i64("journeys"),
		Promoted: r.boolean("promoted"), Reason: r.str("reason"), Detail: r.str("detail")}
	items, _ := get[[]any](&r, "segments")
	for i, it := range items {
		sm, ok := it.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("field \"ope\" segment %d: native %T", i, it)
		}
		sr := nativeReader{m: sm}
		e.Segments = append(e.Segments, OffPolicySegment{Segment: sr.str("segment"), Journeys: sr.i64("journeys"),
			Estimate: sr.f64("estimate"), LCB: sr.f64("lcb"), UCB: sr.f64("ucb"), ESS: sr.f64("ess"),
			ServingLCB: sr.optF64("serving_lcb")})
		if sr.err != nil {
			return nil, fmt.Errorf("field \"ope\" segment %d: %w", i, sr.err)
		}
	}
	if r.err != nil {
		return nil, fmt.Errorf("field \"ope\": %w", r.err)
	}
	return e, nil
}

type namedF64 struct {
	name string
	p    *float64
}

type namedI64 struct {
	name string
	p    *int64
}

type namedOpt struct {
	name string
	p    **float64
}

// fields lists the numeric fields with their Avro names, so Native and
// FromNative cannot disagree.
func (m *TrainingMetrics) fields() ([]namedF64, []namedI64, []namedOpt) {
	return []namedF64{
			{"crisis_parent_weight", &m.CrisisParentWeight},
			{"regular_parent_weight", &m.RegularParentWeight},
			{"crisis_parent_ratio_in_batch", &m.CrisisParentRatioInBatch},
			{"expected_crisis_ratio", &m.ExpectedCrisisRatio},
			{"crisis_fraction_in_buffer", &m.CrisisFractionInBuffer},
			{"importance_weights_mean", &m.ImportanceWeightsMean},
			{"importance_weights_std", &m.ImportanceWeightsStd},
			{"importance_weights_min", &m.ImportanceWeightsMin},
			{"importance_weights_max", &m.ImportanceWeightsMax},
			{"beta", &m.Beta},
			{"policy_loss", &m.PolicyLoss},
			{"value_loss", &m.ValueLoss},
			{"entropy", &m.Entropy},
			{"approx_kl", &m.ApproxKL},
			{"clip_frac", &m.ClipFrac},
			{"explained_variance", &m.ExplainedVariance},
			{"grad_norm", &m.GradNorm},
			{"learning_rate", &m.LearningRate},
			{"ingest_per_sec", &m.IngestPerSec},
			{"samples_per_sec", &m.SamplesPerSec},
		}, []namedI64{
			{"update", &m.Update},
			{"buffer_size", &m.BufferSize},
			{"updates", &m.Updates},
			{"experiences_ingested", &m.ExperiencesIngested},
			{"consumer_lag", &m.ConsumerLag},
			{"epochs_run", &m.EpochsRun},
		}, []namedOpt{
			{"tag_precision", &m.TagPrecision},
			{"tag_recall", &m.TagRecall},
			{"mean_return_crisis", &m.MeanReturnCrisis},
			{"mean_return_regular", &m.MeanReturnRegular},
			{"conversion_rate_crisis", &m.ConversionRateCrisis},
			{"conversion_rate_regular", &m.ConversionRateRegular},
		}
}

// Native returns m in goavro's native form of the current TrainingMetrics
// schema.
func (m *TrainingMetrics) Native() map[string]any {
	f64s, i64s, opts := m.fields()
	out := make(map[string]any, 8+len(f64s)+len(i64s)+len(opts))
	out["experiment_id"] = m.ExperimentID
	out["learner_id"] = m.LearnerID
	out["timestamp"] = m.Timestamp
	out["enable_importance_sampling"] = m.EnableImportanceSampling
	for _, f := range f64s {
		out[f.name] = *f.p
	}
	for _, f := range i64s {
		out[f.name] = *f.p
	}
	for _, f := range opts {
		out[f.name] = optionalNative(*f.p)
	}
	out["ope"] = m.OPE.native()
	out["tagging"] = taggingNative(m.Tagging)
	return out
}

// FromNative sets m from goavro's native form of the current
// TrainingMetrics schema.
func (m *TrainingMetrics) FromNative(native map[string]any) error {
	var out TrainingMetrics
	r := nativeReader{m: native}
	out.ExperimentID = r.str("experiment_id")
	out.LearnerID = r.str("learner_id")
	out.Timestamp = r.time("timestamp")
	out.EnableImportanceSampling = r.boolean("enable_importance_sampling")
	f64s, i64s, opts := out.fields()
	for _, f := range f64s {
		*f.p = r.f64(f.name)
	}
	for _, f := range i64s {
		*f.p = r.i64(f.name)
	}
	for _, f := range opts {
		*f.p = r.optF64(f.name)
	}
	if r.err != nil {
		return fmt.Errorf("training metrics from native: %w", r.err)
	}
	var err error
	if out.OPE, err = opeFromNative(native["ope"]); err != nil {
		return fmt.Errorf("training metrics from native: %w", err)
	}
	if out.Tagging, err = taggingFromNative(native["tagging"]); err != nil {
		return fmt.Errorf("training metrics from native: %w", err)
	}
	*m = out
	return nil
}

// MarshalTrainingMetrics appends the single-object encoding of m (current
// schema version) to dst.
func MarshalTrainingMetrics(dst []byte, m *TrainingMetrics) ([]byte, error) {
	out, err := encodeNative(dst, NameTrainingMetrics, m.Native())
	if err != nil {
		return out, fmt.Errorf("encode training metrics: %w", err)
	}
	return out, nil
}

// UnmarshalTrainingMetrics decodes a single-object encoded TrainingMetrics
// of any shipped version into m. Errors are *DecodeError; on error m is
// unchanged.
func UnmarshalTrainingMetrics(b []byte, m *TrainingMetrics) error {
	const op = "decode training metrics"
	s, body, err := readHeaderFor(op, NameTrainingMetrics, b)
	if err != nil {
		return err
	}
	native, err := decodeBody(op, s, body)
	if err == nil {
		err = m.FromNative(native)
	}
	if err != nil {
		return asDecodeError(op, s, err)
	}
	return nil
}

// PolicySnapshot is a published policy (aelp.PolicySnapshot, current
// version 1), keyed by ExperimentID on a compacted topic.
type PolicySnapshot struct {
	ExperimentID string
	Version      int64
	CreatedAt    time.Time
	// Architecture is a JSON description of the networks.
	Architecture string
	// Params are the serialised parameters in the architecture's layout.
	Params []byte
	// ObsMean, ObsVar and ObsCount are the observation normaliser's
	// running statistics.
	ObsMean, ObsVar []float64
	ObsCount        float64
}

// Native returns p in goavro's native form of the current PolicySnapshot
// schema. Params is shared, not copied.
func (p *PolicySnapshot) Native() map[string]any {
	params := p.Params
	if params == nil {
		params = []byte{}
	}
	return map[string]any{
		"experiment_id": p.ExperimentID,
		"version":       p.Version,
		"created_at":    p.CreatedAt,
		"architecture":  p.Architecture,
		"params":        params,
		"obs_mean":      floats64Native(p.ObsMean),
		"obs_var":       floats64Native(p.ObsVar),
		"obs_count":     p.ObsCount,
	}
}

// FromNative sets p from goavro's native form of the current PolicySnapshot
// schema. Params is copied; empty slices become nil.
func (p *PolicySnapshot) FromNative(native map[string]any) error {
	r := nativeReader{m: native}
	out := PolicySnapshot{
		ExperimentID: r.str("experiment_id"),
		Version:      r.i64("version"),
		CreatedAt:    r.time("created_at"),
		Architecture: r.str("architecture"),
		Params:       r.bytes("params"),
		ObsMean:      r.floats64("obs_mean"),
		ObsVar:       r.floats64("obs_var"),
		ObsCount:     r.f64("obs_count"),
	}
	if r.err != nil {
		return fmt.Errorf("policy snapshot from native: %w", r.err)
	}
	*p = out
	return nil
}

// MarshalPolicySnapshot appends the single-object encoding of p (current
// schema version) to dst.
func MarshalPolicySnapshot(dst []byte, p *PolicySnapshot) ([]byte, error) {
	out, err := encodeNative(dst, NamePolicySnapshot, p.Native())
	if err != nil {
		return out, fmt.Errorf("encode policy snapshot: %w", err)
	}
	return out, nil
}

// UnmarshalPolicySnapshot decodes a single-object encoded PolicySnapshot of
// any shipped version into p. Errors are *DecodeError; on error p is
// unchanged.
func UnmarshalPolicySnapshot(b []byte, p *PolicySnapshot) error {
	const op = "decode policy snapshot"
	s, body, err := readHeaderFor(op, NamePolicySnapshot, b)
	if err != nil {
		return err
	}
	native, err := decodeBody(op, s, body)
	if err == nil {
		err = p.FromNative(native)
	}
	if err != nil {
		return asDecodeError(op, s, err)
	}
	return nil
}
