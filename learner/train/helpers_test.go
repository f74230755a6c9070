package train

import (
	"testing"
	"time"

	"github.com/aelp/aelp/producers/sim"
	"github.com/aelp/aelp/schemas"
)

// testConfig is a small trainer: buffer 2,000, min buffer 200, batch 64,
// serial PPO.
func testConfig(seed uint64) Config {
	c := DefaultConfig()
	c.Replay.Capacity = 2000
	c.MinBuffer = 200
	c.BatchSize = 64
	c.PPO.Workers = 1
	c.Seed = seed
	return c
}

// journeys returns the experiences of users journeys of the uniform
// logging policy on seed, as the aggregator publishes them: tagged with the
// ground truth (so tag accuracy is perfect unless mislabel says otherwise),
// timestamped at base + i ms.
func journeys(t testing.TB, users int, seed uint64, base time.Time) []schemas.TaggedExperience {
	t.Helper()
	s, err := sim.New(sim.DefaultConfig(), seed, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []schemas.TaggedExperience
	for range users {
		s.RunEpisode(sim.Uniform{N: 12}, func(tr *sim.Transition) {
			te := schemas.TaggedExperience{Experience: schemas.Experience{
				EpisodeID: tr.EpisodeID, UserID: tr.UserID, Step: int32(tr.Step),
				Action: int32(tr.Action), BehaviorLogProb: tr.BehaviorLogProb, PolicyVersion: -1,
				Reward: tr.Reward, Done: tr.Done, Value: tr.Value, Metadata: tr.Metadata,
			}}
			if !base.IsZero() {
				te.Timestamp = base.Add(time.Duration(len(out)) * time.Millisecond)
			}
			for i := range tr.State {
				te.State = append(te.State, float32(tr.State[i]))
				te.NextState = append(te.NextState, float32(tr.NextState[i]))
			}
			if tr.Crisis {
				te.EventType = schemas.EventCrisis
			}
			out = append(out, te)
		})
	}
	return out
}

// mustNew returns New(cfg) or fails the test.
func mustNew(t testing.TB, cfg Config) *Trainer {
	t.Helper()
	tr, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}
