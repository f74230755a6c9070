package ope

import "github.com/aelp/aelp/schemas"

// RecordOfExperience returns the Record of an (untagged) experience: its
// episode, step, state, action, behaviour log-prob, reward and done, and
// its true segment from the metadata key schemas.KeyTrueSegment. The state
// is shared, not copied (Collector.Add copies it).
func RecordOfExperience(e *schemas.Experience) Record {
	return Record{Episode: e.EpisodeID, Step: int(e.Step), State: e.State, Action: int(e.Action),
		LogProb: e.BehaviorLogProb, Reward: e.Reward, Done: e.Done, Truth: e.Metadata[schemas.KeyTrueSegment]}
}

// RecordOf returns the Record of a tagged experience: RecordOfExperience's
// fields and the tag, its event type's symbol (CRISIS_PARENT,
// REGULAR_PARENT).
func RecordOf(te *schemas.TaggedExperience) Record {
	r := RecordOfExperience(&te.Experience)
	r.Tag = te.EventType.String()
	return r
}
