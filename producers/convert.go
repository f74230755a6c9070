package producers

import (
	"time"

	"github.com/aelp/aelp/producers/sim"
	"github.com/aelp/aelp/schemas"
)

// FillExperience writes the simulator's transition tr into e as the record
// published for it: id, the acting policy's version (−1 for the logging
// policy) and the time it was produced. e's ExperimentID is left as is, and
// its State and NextState slices are reused (tr's are copied, converted to
// float32, which is exact: the simulator's features are float32-exact).
func FillExperience(e *schemas.Experience, tr *sim.Transition, id string, policyVersion int64, at time.Time) {
	e.ID = id
	e.EpisodeID = tr.EpisodeID
	e.UserID = tr.UserID
	e.Step = int32(tr.Step)
	e.Timestamp = at
	e.State = toFloat32(e.State[:0], tr.State)
	e.NextState = toFloat32(e.NextState[:0], tr.NextState)
	e.Action = int32(tr.Action)
	e.BehaviorLogProb = tr.BehaviorLogProb
	e.PolicyVersion = policyVersion
	e.Reward = tr.Reward
	e.Done = tr.Done
	e.Value = tr.Value
	e.Metadata = tr.Metadata
}

func toFloat32(dst []float32, src []float64) []float32 {
	for _, v := range src {
		dst = append(dst, float32(v))
	}
	return dst
}
