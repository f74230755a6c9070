package bench

import (
	"fmt"
	"strconv"
	"time"

	"github.com/aelp/aelp/consumers"
	"github.com/aelp/aelp/consumers/classify"
	"github.com/aelp/aelp/producers"
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
			producers.FillExperience(e, tr, prefix+strconv.FormatUint(seq, 10), -1, time.Now())
			var val []byte
			if tagged {
				consumers.ApplyDecision(&te, cls.Classify(tr.Metadata, tr.Value), e.Timestamp)
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
