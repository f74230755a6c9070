package schemas

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
)

// roundTrip marshals want after prefix (Marshal must append to it),
// unmarshals what it wrote and fails unless that is want again; record i
// names it in messages. It returns the bytes written (prefix left out)
// and the record read from them.
func roundTrip[T any](t *testing.T, i int, prefix []byte, want T,
	marshal func([]byte, *T) ([]byte, error), unmarshal func([]byte, *T) error) (b []byte, got T) {
	t.Helper()
	b, err := marshal(bytes.Clone(prefix), &want)
	if err != nil {
		t.Fatalf("record %d: Marshal %T: %v", i, want, err)
	}
	if !bytes.HasPrefix(b, prefix) {
		t.Fatalf("record %d: Marshal %T did not append to dst", i, want)
	}
	b = b[len(prefix):]
	if err := unmarshal(b, &got); err != nil {
		t.Fatalf("record %d: Unmarshal %T: %v", i, want, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("record %d: %T round trip\n got %+v\nwant %+v", i, want, got, want)
	}
	return b, got
}

// randString returns a string of up to max bytes, sometimes multi-byte
// UTF-8 and sometimes empty.
func randString(rng *rand.Rand, max int) string {
	n := rng.IntN(max + 1)
	runes := []rune("abcXYZ019_-é漢🙂")
	b := make([]rune, 0, n)
	for range n {
		b = append(b, runes[rng.IntN(len(runes))])
	}
	return string(b)
}

func randFloats(rng *rand.Rand, n int) []float32 {
	if n == 0 {
		return nil
	}
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(rng.NormFloat64() * 10)
	}
	return v
}

// randMillis returns a UTC time with millisecond precision within ±300
// years of 1970.
func randMillis(rng *rand.Rand) time.Time {
	const span = 300 * 365 * 24 * 3600 * 1000
	return time.UnixMilli(rng.Int64N(2*span) - span).UTC()
}

// randExperience returns a random valid-shaped experience: empty arrays and
// maps are nil, as the decoder returns them.
func randExperience(rng *rand.Rand) Experience {
	dim := []int{0, 1, 4, 32}[rng.IntN(4)]
	e := Experience{
		ID:              fmt.Sprintf("id-%d", rng.Uint64()),
		ExperimentID:    randString(rng, 12),
		EpisodeID:       randString(rng, 12),
		UserID:          randString(rng, 12),
		Step:            int32(rng.Uint32()),
		Timestamp:       randMillis(rng),
		State:           randFloats(rng, dim),
		Action:          int32(rng.Uint32()),
		BehaviorLogProb: -rng.ExpFloat64(),
		PolicyVersion:   int64(rng.Uint64()),
		Reward:          rng.NormFloat64() * math.Pow(10, float64(rng.IntN(20)-10)),
		NextState:       randFloats(rng, dim),
		Done:            rng.IntN(2) == 1,
		Value:           rng.NormFloat64(),
	}
	e.Metadata = randMap(rng, []int{0, 1, 1, 3, 20}[rng.IntN(5)])
	return e
}

func randTagged(rng *rand.Rand) TaggedExperience {
	return TaggedExperience{
		Experience: randExperience(rng),
		EventType:  EventType(rng.IntN(2)),
		TagSource:  TagSource(rng.IntN(4)),
		TagScore:   rng.Float64(),
		TaggedAt:   randMillis(rng),
	}
}

func ptr(f float64) *float64 { return &f }

func randMetrics(rng *rand.Rand) TrainingMetrics {
	m := TrainingMetrics{
		ExperimentID:             randString(rng, 10),
		LearnerID:                randString(rng, 10),
		Timestamp:                randMillis(rng),
		EnableImportanceSampling: rng.IntN(2) == 1,
	}
	f64s, i64s, opts := m.fields()
	for _, f := range f64s {
		*f.p = rng.NormFloat64()
	}
	for _, f := range i64s {
		*f.p = rng.Int64()
	}
	for _, f := range opts {
		if rng.IntN(2) == 1 {
			*f.p = ptr(rng.Float64())
		}
	}
	if rng.IntN(2) == 1 {
		m.OPE = randOPE(rng)
	}
	if rng.IntN(2) == 1 {
		m.Tagging = randTagging(rng)
	}
	return m
}

// randTagging returns 0–4 per-source tag accuracies, each figure null or
// set at random.
func randTagging(rng *rand.Rand) []TagSourceAccuracy {
	out := []TagSourceAccuracy{}
	for range rng.IntN(5) {
		a := TagSourceAccuracy{Source: randString(rng, 8), Records: rng.Int64N(1e9)}
		for _, p := range []**float64{&a.Precision, &a.Recall, &a.F1, &a.Brier, &a.ECE} {
			if rng.IntN(3) > 0 {
				*p = ptr(rng.Float64())
			}
		}
		out = append(out, a)
	}
	return out
}

// randOPE returns an off-policy evaluation of 0–3 segments.
func randOPE(rng *rand.Rand) *OffPolicyEvaluation {
	e := &OffPolicyEvaluation{PolicyVersion: rng.Int64(), ServingVersion: rng.Int64N(100) - 1, Estimator: "WPDIS",
		Confidence: 0.95, Journeys: rng.Int64N(1e6), Promoted: rng.IntN(2) == 1, Reason: randString(rng, 8), Detail: randString(rng, 30)}
	for range rng.IntN(4) {
		s := OffPolicySegment{Segment: randString(rng, 6), Journeys: rng.Int64N(1e5), Estimate: rng.NormFloat64(),
			LCB: rng.NormFloat64(), UCB: rng.NormFloat64(), ESS: rng.Float64() * 1e4}
		if rng.IntN(2) == 1 {
			s.ServingLCB = ptr(rng.NormFloat64())
		}
		e.Segments = append(e.Segments, s)
	}
	return e
}

func randSnapshot(rng *rand.Rand) PolicySnapshot {
	p := PolicySnapshot{
		ExperimentID: randString(rng, 10),
		Version:      rng.Int64(),
		CreatedAt:    randMillis(rng),
		Architecture: `{"policy":[8,64,64,4],"value":[8,64,64,1],"activation":"tanh"}`,
		ObsCount:     rng.Float64() * 1e6,
	}
	if n := rng.IntN(2000); n > 0 {
		p.Params = make([]byte, n)
		for i := range p.Params {
			p.Params[i] = byte(rng.Uint32())
		}
	}
	if dim := rng.IntN(10); dim > 0 {
		p.ObsMean, p.ObsVar = make([]float64, dim), make([]float64, dim)
		for i := range dim {
			p.ObsMean[i], p.ObsVar[i] = rng.NormFloat64(), rng.ExpFloat64()
		}
	}
	return p
}

// randMap returns a map of n random entries (nil for none).
func randMap(rng *rand.Rand, n int) map[string]string {
	if n == 0 {
		return nil
	}
	m := make(map[string]string, n)
	for i := range n {
		m[fmt.Sprintf("k%d%s", i, randString(rng, 5))] = randString(rng, 20)
	}
	return m
}
