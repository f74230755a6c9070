// Package policytest builds policy-topic records for tests.
package policytest

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/aelp/aelp/learner/ppo"
	"github.com/aelp/aelp/schemas"
	"github.com/segmentio/kafka-go"
)

// SnapshotMessage returns a policy-topic record (keyed by exp) holding the
// snapshot, at version, of a fresh 16×12 agent initialised from
// PCG(seed, seed+1).
func SnapshotMessage(t testing.TB, exp string, version int64, seed uint64) kafka.Message {
	t.Helper()
	agent, err := ppo.New(ppo.DefaultConfig(16, 12), rand.New(rand.NewPCG(seed, seed+1)))
	if err != nil {
		t.Fatal(err)
	}
	arch, params, mean, variance, count, err := agent.MarshalPolicy()
	if err != nil {
		t.Fatal(err)
	}
	s := schemas.PolicySnapshot{ExperimentID: exp, Version: version, CreatedAt: time.Now(), Architecture: arch,
		Params: params, ObsMean: mean, ObsVar: variance, ObsCount: count}
	val, err := schemas.MarshalPolicySnapshot(nil, &s)
	if err != nil {
		t.Fatal(err)
	}
	return kafka.Message{Key: []byte(exp), Value: val}
}
