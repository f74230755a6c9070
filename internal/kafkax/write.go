package kafkax

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
)

// WriteAll writes msgs and retries what failed, with backoff, until every
// record is acknowledged, ctx ends or the broker refuses our credentials.
// A broker outage therefore stalls the caller (back pressure) instead of
// losing records. Records acknowledged before a retry may be written again
// by it only when the client cannot tell which failed (at-least-once).
func WriteAll(ctx context.Context, cfg Config, w *kafka.Writer, log zerolog.Logger, msgs []kafka.Message) error {
	pending := msgs
	var b Backoff
	for attempt := 1; ; attempt++ {
		err := w.WriteMessages(ctx, pending...)
		if err == nil {
			return nil
		}
		var werrs kafka.WriteErrors
		if errors.As(err, &werrs) && len(werrs) == len(pending) {
			failed := pending[:0:0]
			for i, e := range werrs {
				if e != nil {
					failed = append(failed, pending[i])
				}
			}
			pending = failed
		}
		err = cfg.Explain(err)
		if errors.Is(err, ErrAuth) {
			return err
		}
		if ctx.Err() != nil {
			return fmt.Errorf("write %d records to %s: %w", len(pending), w.Topic, ctx.Err())
		}
		wait := b.Next()
		log.Warn().Err(err).Str("topic", w.Topic).Int("pending", len(pending)).Int("attempt", attempt).
			Dur("retry_in", wait).Msg("produce failed, retrying")
		select {
		case <-ctx.Done():
			return fmt.Errorf("write %d records to %s: %w (last error: %v)", len(pending), w.Topic, ctx.Err(), err)
		case <-time.After(wait):
		}
	}
}

// FetchRetry fetches the next message from r, retrying transient failures
// (a broker outage, a rebalance) with backoff and a warning each, so a
// consumer rides out an outage instead of crashing. It returns ctx's error
// when ctx ends, and an authentication failure (ErrAuth) at once.
func FetchRetry(ctx context.Context, cfg Config, r *kafka.Reader, log zerolog.Logger) (kafka.Message, error) {
	var b Backoff
	for attempt := 1; ; attempt++ {
		m, err := r.FetchMessage(ctx)
		if err == nil {
			return m, nil
		}
		if ctx.Err() != nil {
			return kafka.Message{}, ctx.Err()
		}
		err = cfg.Explain(err)
		if errors.Is(err, ErrAuth) {
			return kafka.Message{}, err
		}
		wait := b.Next()
		log.Warn().Err(err).Str("topic", r.Config().Topic).Int("attempt", attempt).Dur("retry_in", wait).Msg("fetch failed, retrying")
		select {
		case <-ctx.Done():
			return kafka.Message{}, ctx.Err()
		case <-time.After(wait):
		}
	}
}
