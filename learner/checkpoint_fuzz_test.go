package learner

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/aelp/aelp/learner/ppo"
	"github.com/aelp/aelp/learner/train"
)

// checkpointSeeds returns encodings of learner checkpoints: one holding the
// state of a real PPO agent (ppo.Agent.MarshalCheckpoint after an update,
// with a 4-unit hidden layer so that the seed stays small) and the
// learner's offsets, counters and adaptive crisis weight state, an empty
// one, damaged copies, and one with a valid checksum whose header names
// partition 1 three ways ("1", "01", "+1"): it once decoded to any of the
// three offsets, at random.
func checkpointSeeds(tb testing.TB) [][]byte {
	cfg := ppo.DefaultConfig(4, 3)
	cfg.Hidden = []int{4}
	rng := rand.New(rand.NewPCG(51, 52))
	agent, err := ppo.New(cfg, rng)
	if err != nil {
		tb.Fatal(err)
	}
	const n = 16
	batch := ppo.Batch{Obs: make([]float64, n*4), NextObs: make([]float64, n*4), Actions: make([]int, n),
		BehaviorLogProb: make([]float64, n), Rewards: make([]float64, n), Dones: make([]bool, n), Weights: make([]float64, n),
		PolicyVersion: make([]int64, n)}
	for i := range n {
		for j := range 4 {
			batch.Obs[i*4+j], batch.NextObs[i*4+j] = rng.NormFloat64(), rng.NormFloat64()
		}
		batch.Actions[i], batch.BehaviorLogProb[i], batch.PolicyVersion[i] = rng.IntN(3), -1.0986, -1
		batch.Rewards[i], batch.Dones[i], batch.Weights[i] = rng.NormFloat64(), i%5 == 4, 1
	}
	agent.ObserveObs(batch.Obs)
	if st := agent.Update(&batch); st.EpochsRun == 0 {
		tb.Fatalf("the seed agent made no update: %+v", st)
	}
	state, err := agent.MarshalCheckpoint()
	if err != nil {
		tb.Fatal(err)
	}
	full := Checkpoint{ExperimentID: "run-1764582000", LearnerID: "learner-1", TaggedTopic: "aelp.experiences.tagged",
		Offsets: map[int]int64{0: 3712, 1: 3690, 2: 0, 5: 41}, BetaStep: 1, Sampled: 256, Inserted: 3328,
		PolicyVersion: 1, CreatedAt: time.Date(2026, 12, 1, 10, 23, 17, 547_000_000, time.UTC), Agent: state,
		Adaptive: &train.AdaptiveState{Weight: 10.873779613872063, RegularMSE: 0.5880133672634283, CrisisMSE: 10.304901168034359,
			RegularStarted: true, CrisisStarted: true}}
	var seeds [][]byte
	for _, c := range []Checkpoint{full, {}} {
		b, err := c.Marshal()
		if err != nil {
			tb.Fatal(err)
		}
		seeds = append(seeds, b, b[:len(b)/2], append(bytes.Clone(b), 0))
		flipped := bytes.Clone(b)
		flipped[20] ^= 1
		seeds = append(seeds, flipped)
	}
	ambiguous := []byte(ckptMagic)
	header := []byte(`{"experiment_id":"e","offsets":{"1":5,"01":7,"+1":9}}`)
	ambiguous = binary.LittleEndian.AppendUint32(ambiguous, 1)
	ambiguous = binary.LittleEndian.AppendUint32(ambiguous, uint32(len(header)))
	ambiguous = append(ambiguous, header...)
	ambiguous = binary.LittleEndian.AppendUint64(ambiguous, 0)
	ambiguous = binary.LittleEndian.AppendUint32(ambiguous, 0) // the checksum, made right below
	return append(seeds, withChecksum(ambiguous), nil, []byte(ckptMagic))
}

// withChecksum returns b with its last 4 bytes replaced by the CRC-32C of
// the rest (b itself when it is shorter than that), so that mutations of
// the fuzzer reach the parser behind the checksum.
func withChecksum(b []byte) []byte {
	if len(b) < 4 {
		return b
	}
	out := bytes.Clone(b)
	binary.LittleEndian.PutUint32(out[len(out)-4:], crc32.Checksum(out[:len(out)-4], crcTable))
	return out
}

// FuzzUnmarshalCheckpoint: invariant — UnmarshalCheckpoint never panics,
// on the input as given and with its checksum made right; every error
// wraps ErrCheckpoint; decoding is deterministic (the same input gives the
// same checkpoint); an accepted checkpoint owns its agent state (changing
// the input afterwards does not change it) and re-marshals to bytes that
// decode to a checkpoint marshalling to the same bytes again.
func FuzzUnmarshalCheckpoint(f *testing.F) {
	for _, s := range checkpointSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		for _, b := range [][]byte{in, withChecksum(in)} {
			buf := bytes.Clone(b)
			c, err := UnmarshalCheckpoint(buf)
			if err != nil {
				if !errors.Is(err, ErrCheckpoint) {
					t.Fatalf("error %v does not wrap ErrCheckpoint", err)
				}
				if c != nil {
					t.Fatalf("error %v with a checkpoint", err)
				}
				continue
			}
			again, err := UnmarshalCheckpoint(b)
			if err != nil || !reflect.DeepEqual(c, again) {
				t.Fatalf("decoding the same bytes twice differs:\n%+v\n%+v (%v)", c, again, err)
			}
			agent := bytes.Clone(c.Agent)
			for i := range buf {
				buf[i] ^= 0xFF
			}
			if !bytes.Equal(c.Agent, agent) {
				t.Fatal("decoded agent state aliases the input")
			}
			b1, err := c.Marshal()
			if err != nil {
				t.Fatalf("decoded checkpoint does not marshal: %v", err)
			}
			c2, err := UnmarshalCheckpoint(b1)
			if err != nil {
				t.Fatalf("re-marshalled checkpoint does not decode: %v", err)
			}
			if b2, err := c2.Marshal(); err != nil || !bytes.Equal(b1, b2) {
				t.Fatalf("unmarshal∘marshal is not a fixpoint (%v):\n%q\n%q", err, b1, b2)
			}
		}
	})
}
