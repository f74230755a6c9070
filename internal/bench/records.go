package bench

import (
	"fmt"
	"strconv"
	"time"

	"github.com/aelp/aelp/consumers/classify"
	"github.com/aelp/aelp/producers/sim"
	"github.com/aelp/aelp/schemas"
	"github.com/segmentio/kafka-go"
)

// SimRecords returns the Experience records of users simulated journeys,
// as the simulate role builds them: the uniform logging policy, keyed by
// user id, single-object Avro values, Time set to now. With tagged, the
// records are TaggedExperience values classified by the aggregator's
// default classifier instead. The same (cfg, users, seed) always gives
// records of the same sizes, keys and contents (timestamps aside).
func SimRecords(cfg sim.Config, experimentID string, users int, seed uint64, tagged bool) ([]kafka.Message, error) {
	s, err := sim.New(cfg, seed, 0)
	if err != nil {
		return nil, fmt.Errorf("sim records: %w", err)
	}
	cls, err := classify.New(classify.DefaultConfig())
	if err != nil {
		return nil, fmt.Errorf("sim records: %w", err)
	}
	var (
		out    []kafka.Message
		te     schemas.TaggedExperience
		seq    uint64
		encErr error
	)
	e := &te.Experience
	e.ExperimentID = experimentID
	prefix := experimentID + "-bench-0-"
	logging := sim.Uniform{N: cfg.NumActions()}
	for range users {
		s.RunEpisode(logging, func(tr *sim.Transition) {
			if encErr != nil {
				return
			}
			seq++
			e.ID = prefix + strconv.FormatUint(seq, 10)
			e.EpisodeID, e.UserID = tr.EpisodeID, tr.UserID
			e.Step = int32(tr.Step)
			e.Timestamp = time.Now()
			e.State = toFloat32(e.State[:0], tr.State)
			e.NextState = toFloat32(e.NextState[:0], tr.NextState)
			e.Action = int32(tr.Action)
			e.BehaviorLogProb = tr.BehaviorLogProb
			e.PolicyVersion = -1
			e.Reward, e.Done, e.Value, e.Metadata = tr.Reward, tr.Done, tr.Value, tr.Metadata
			var val []byte
			if tagged {
				d := cls.Classify(tr.Metadata, tr.Value)
				te.EventType, te.TagSource, te.TagScore, te.TaggedAt = schemas.EventRegular, schemas.TagDefault, d.Score, e.Timestamp
				if d.Crisis {
					te.EventType = schemas.EventCrisis
				}
				te.TagSource = tagSource(d.Source)
				val, encErr = schemas.MarshalTaggedExperience(nil, &te)
			} else {
				val, encErr = schemas.MarshalExperience(nil, e)
			}
			out = append(out, kafka.Message{Key: []byte(tr.UserID), Value: val, Time: e.Timestamp})
		})
	}
	if encErr != nil {
		return nil, fmt.Errorf("sim records: %w", encErr)
	}
	return out, nil
}

func toFloat32(dst []float32, src []float64) []float32 {
	for _, v := range src {
		dst = append(dst, float32(v))
	}
	return dst
}

func tagSource(s classify.Source) schemas.TagSource {
	switch s {
	case classify.SourceLabel:
		return schemas.TagLabel
	case classify.SourceMetadata:
		return schemas.TagMetadata
	case classify.SourceValue:
		return schemas.TagValue
	default:
		return schemas.TagDefault
	}
}

// MeanSize returns the mean value size of msgs in bytes (0 for none).
func MeanSize(msgs []kafka.Message) float64 {
	if len(msgs) == 0 {
		return 0
	}
	n := 0
	for _, m := range msgs {
		n += len(m.Value)
	}
	return float64(n) / float64(len(msgs))
}
