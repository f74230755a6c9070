package producers

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/aelp/aelp/internal/kafkax"
	"github.com/aelp/aelp/schemas"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
)

// FollowPolicies reads every partition of the policy topic from the
// beginning and calls fn, from one goroutine at a time, with each decodable
// snapshot whose key is experimentID, in log order per partition. It keeps
// following new records until ctx ends, retrying broker failures with
// backoff; undecodable records are logged and skipped (the policy topic is
// written only by learners). It returns nil when ctx ends.
func FollowPolicies(ctx context.Context, kcfg kafkax.Config, topic, experimentID string, log zerolog.Logger, fn func(*schemas.PolicySnapshot)) error {
	var parts []int
	if err := kafkax.Retry(ctx, log, "policy topic metadata", func(ctx context.Context) error {
		var err error
		parts, err = kafkax.Partitions(ctx, kcfg, topic)
		return kcfg.Explain(err)
	}); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make([]error, len(parts))
	for i, p := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = followPartition(ctx, kcfg, topic, p, experimentID, log, func(s *schemas.PolicySnapshot) {
				mu.Lock()
				defer mu.Unlock()
				fn(s)
			})
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func followPartition(ctx context.Context, kcfg kafkax.Config, topic string, part int, experimentID string, log zerolog.Logger, fn func(*schemas.PolicySnapshot)) error {
	r, err := kafkax.NewPartitionReader(kcfg, topic, part, kafka.FirstOffset, kafkax.ReaderOptions{Logger: log})
	if err != nil {
		return err
	}
	defer r.Close()
	for {
		m, err := kafkax.FetchRetry(ctx, kcfg, r, log)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("policy topic %s/%d: %w", topic, part, err)
		}
		if string(m.Key) != experimentID {
			continue
		}
		var snap schemas.PolicySnapshot
		if err := schemas.UnmarshalPolicySnapshot(m.Value, &snap); err != nil {
			log.Warn().Err(err).Int64("offset", m.Offset).Msg("undecodable policy snapshot skipped")
			continue
		}
		fn(&snap)
	}
}

// LatestPolicy returns the newest snapshot of experimentID on the policy
// topic, reading it up to the end offsets seen at the call; nil when there
// is none.
func LatestPolicy(ctx context.Context, kcfg kafkax.Config, topic, experimentID string, log zerolog.Logger) (*schemas.PolicySnapshot, error) {
	var best *schemas.PolicySnapshot
	err := ReadPolicies(ctx, kcfg, topic, experimentID, log, func(s *schemas.PolicySnapshot) {
		if best == nil || s.Version > best.Version {
			best = s
		}
	})
	return best, err
}

// ReadPolicies calls fn with every decodable snapshot of experimentID on
// the policy topic, reading each partition up to the end offset seen at
// the call, in log order per partition. fn owns the snapshot it is given.
func ReadPolicies(ctx context.Context, kcfg kafkax.Config, topic, experimentID string, log zerolog.Logger, fn func(*schemas.PolicySnapshot)) error {
	offs, err := kafkax.ListOffsets(ctx, kcfg, topic)
	if err != nil {
		return err
	}
	for p, end := range offs.End {
		if end <= offs.First[p] {
			continue
		}
		r, err := kafkax.NewPartitionReader(kcfg, topic, p, offs.First[p], kafkax.ReaderOptions{Logger: log})
		if err != nil {
			return err
		}
		for {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				r.Close()
				return fmt.Errorf("read %s/%d: %w", topic, p, kcfg.Explain(err))
			}
			if string(m.Key) == experimentID {
				snap := new(schemas.PolicySnapshot)
				if err := schemas.UnmarshalPolicySnapshot(m.Value, snap); err == nil {
					fn(snap)
				}
			}
			if m.Offset+1 >= end {
				break
			}
		}
		r.Close()
	}
	return nil
}
