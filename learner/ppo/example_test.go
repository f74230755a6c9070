package ppo_test

import (
	"fmt"
	"math/rand/v2"

	"github.com/aelp/aelp/learner/ppo"
)

// Example shows the learner's cycle: observe, act with a snapshot, train on
// importance-weighted replayed samples, publish a snapshot.
func Example() {
	cfg := ppo.DefaultConfig(2, 3)
	cfg.Hidden = []int{16, 16}
	agent, err := ppo.New(cfg, rand.New(rand.NewPCG(1, 2)))
	if err != nil {
		panic(err)
	}
	policy := agent.Snapshot() // what a simulator acts with
	rng := rand.New(rand.NewPCG(3, 4))
	var batch ppo.Batch
	for range 64 {
		obs := []float64{rng.NormFloat64(), rng.NormFloat64()}
		agent.ObserveObs(obs) // the learner does this on ingest
		action, logProb := policy.Sample(obs, rng)
		reward := 0.0
		if action == 1 {
			reward = 1
		}
		batch.Append(obs, obs, action, logProb, reward, 1.0 /* IS weight */, true, agent.Version())
	}
	st := agent.Update(&batch)
	fmt.Println("samples:", st.Samples, "steps:", st.Steps, "version:", agent.Version())

	arch, params, mean, variance, count, _ := agent.MarshalPolicy()
	published, err := ppo.LoadPolicy(arch, params, mean, variance, count)
	fmt.Println(arch, len(params), err, published.NumActions())
	// Output:
	// samples: 64 steps: 16 version: 1
	// ppo-categorical-mlp/v1 obs=2 hidden=16,16 act=tanh actions=3 norm=running 2968 <nil> 3
}
