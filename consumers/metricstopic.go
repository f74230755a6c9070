package consumers

import (
	"context"
	"fmt"

	"github.com/aelp/aelp/internal/kafkax"
	"github.com/aelp/aelp/schemas"
	"github.com/segmentio/kafka-go"
)

// Reading the metrics topic as a whole, for aelp plot.

// ReadMetrics returns the TrainingMetrics records of experiment (every
// experiment when empty) on topic, read from the beginning to the end
// offsets seen at the call (with opt's isolation level: by default the
// last stable offset, committed records only), in offset order per
// partition. Records of other schemas and undecodable ones are counted in
// skipped.
func ReadMetrics(ctx context.Context, cfg kafkax.Config, topic, experiment string, opt kafkax.ReadOptions) (ms []schemas.TrainingMetrics, skipped int64, err error) {
	r, err := kafkax.NewReader(cfg, topic, opt)
	if err != nil {
		return nil, 0, fmt.Errorf("read metrics: %w", err)
	}
	defer r.Close()
	offs, err := r.ListOffsets(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("read metrics: %w", err)
	}
	err = r.ReadMessages(ctx, offs.First, offs.End, func(m *kafka.Message) error {
		var tm schemas.TrainingMetrics
		if err := schemas.UnmarshalTrainingMetrics(m.Value, &tm); err != nil {
			skipped++
			return nil
		}
		if experiment == "" || tm.ExperimentID == experiment {
			ms = append(ms, tm)
		}
		return nil
	})
	if err != nil {
		return nil, skipped, fmt.Errorf("read metrics: %w", err)
	}
	return ms, skipped, nil
}
