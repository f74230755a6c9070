package schemas

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// benchExperience is an Experience like the simulator's: 32-float states and
// a small metadata map.
func benchExperience() Experience {
	rng := rand.New(rand.NewPCG(41, 42))
	return Experience{
		ID: "sim-0-000000123456", ExperimentID: "baseline", EpisodeID: "ep-000042", UserID: "user-000777",
		Step: 17, Timestamp: time.UnixMilli(1_700_000_000_123).UTC(),
		State: randFloats(rng, 32), Action: 3, BehaviorLogProb: -1.2, PolicyVersion: 12,
		Reward: 0.5, NextState: randFloats(rng, 32), Value: 3.25,
		Metadata: map[string]string{"campaign": "spring", "segment_truth": "REGULAR_PARENT", "keywords": "family,deals"},
	}
}

func reportRate(b *testing.B) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkExperience compares the hand-written codec with goavro (its
// baseline: BinaryFromNative / NativeFromBinary + FromNative, framed).
func BenchmarkExperience(b *testing.B) {
	e := benchExperience()
	enc, _ := MarshalExperience(nil, &e)
	codec := Current(NameExperience).Codec()
	b.Run("encode/hand", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 1024)
		for b.Loop() {
			buf, _ = MarshalExperience(buf[:0], &e)
		}
		reportRate(b)
	})
	b.Run("encode/goavro", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 1024)
		for b.Loop() {
			buf, _ = codec.BinaryFromNative(AppendHeader(buf[:0], Current(NameExperience).Fingerprint), e.Native())
		}
		reportRate(b)
	})
	b.Run("decode/hand", func(b *testing.B) {
		b.ReportAllocs()
		var out Experience
		for b.Loop() {
			if err := UnmarshalExperience(enc, &out); err != nil {
				b.Fatal(err)
			}
		}
		reportRate(b)
	})
	b.Run("decode/goavro", func(b *testing.B) {
		b.ReportAllocs()
		var out Experience
		for b.Loop() {
			native, _, err := codec.NativeFromBinary(enc[HeaderLen:])
			if err != nil {
				b.Fatal(err)
			}
			if err := out.FromNative(native.(map[string]any)); err != nil {
				b.Fatal(err)
			}
		}
		reportRate(b)
	})
	v1 := schemaVersion(b, NameExperience, 1)
	native := e.Native()
	delete(native, "policy_version")
	old := encodeAs(b, v1, native)
	b.Run("decode/v1-resolved", func(b *testing.B) {
		b.ReportAllocs()
		var out Experience
		for b.Loop() {
			if err := UnmarshalExperience(old, &out); err != nil {
				b.Fatal(err)
			}
		}
		reportRate(b)
	})
}

// BenchmarkTaggedExperience measures the aggregator's output and the
// learner's input record, and the learner's decode with validation.
func BenchmarkTaggedExperience(b *testing.B) {
	t := TaggedExperience{Experience: benchExperience(), EventType: EventCrisis, TagSource: TagMetadata, TagScore: 0.8,
		TaggedAt: time.UnixMilli(1_700_000_000_456).UTC()}
	enc, _ := MarshalTaggedExperience(nil, &t)
	b.Run("encode", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 1024)
		for b.Loop() {
			buf, _ = MarshalTaggedExperience(buf[:0], &t)
		}
		reportRate(b)
	})
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		var out TaggedExperience
		for b.Loop() {
			if err := UnmarshalTaggedExperience(enc, &out); err != nil {
				b.Fatal(err)
			}
		}
		reportRate(b)
	})
	// What the learner does with every record it reads.
	lim := Limits{StateDim: len(t.State), NumActions: 12}
	b.Run("decode+validate", func(b *testing.B) {
		b.ReportAllocs()
		var out TaggedExperience
		for b.Loop() {
			if err := UnmarshalTaggedExperience(enc, &out); err != nil {
				b.Fatal(err)
			}
			if err := out.Validate(lim); err != nil {
				b.Fatal(err)
			}
		}
		reportRate(b)
	})
}

// BenchmarkTrainingMetrics measures the goavro-backed metrics codec.
func BenchmarkTrainingMetrics(b *testing.B) {
	m := randMetrics(rand.New(rand.NewPCG(43, 44)))
	enc, _ := MarshalTrainingMetrics(nil, &m)
	b.Run("encode", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 1024)
		for b.Loop() {
			buf, _ = MarshalTrainingMetrics(buf[:0], &m)
		}
	})
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		var out TrainingMetrics
		for b.Loop() {
			if err := UnmarshalTrainingMetrics(enc, &out); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkPolicySnapshot measures the goavro-backed snapshot codec per
// parameter-blob size (a 2×64 MLP pair on 32 inputs is ≈ 13k float64s).
func BenchmarkPolicySnapshot(b *testing.B) {
	for _, size := range []int{1 << 10, 100 << 10} {
		p := PolicySnapshot{ExperimentID: "baseline", Version: 7, Architecture: `{"hidden":[64,64]}`,
			Params: make([]byte, size), ObsMean: make([]float64, 32), ObsVar: make([]float64, 32), ObsCount: 1e6}
		enc, _ := MarshalPolicySnapshot(nil, &p)
		b.Run(fmt.Sprintf("encode/params=%dB", size), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(enc)))
			buf := make([]byte, 0, len(enc))
			for b.Loop() {
				buf, _ = MarshalPolicySnapshot(buf[:0], &p)
			}
		})
		b.Run(fmt.Sprintf("decode/params=%dB", size), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(enc)))
			var out PolicySnapshot
			for b.Loop() {
				if err := UnmarshalPolicySnapshot(enc, &out); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
