package schemas

import (
	"fmt"
	"time"
)

// TrainingMetrics is one learner report (aelp.TrainingMetrics, current
// version 1); the field meanings are DESIGN.md's "Metrics". The pointer
// fields are optional (Avro ["null","double"], default null): nil when the
// figure is unknown, e.g. tag precision without ground truth.
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
	out := make(map[string]any, 5+len(f64s)+len(i64s)+len(opts))
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
