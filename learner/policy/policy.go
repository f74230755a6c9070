// Package policy reads the policy topic, where the learner publishes a
// PolicySnapshot of each experiment (keyed by experiment id): following it,
// reading it to its end, its newest snapshot, and the learning curve (every
// snapshot evaluated on held-out journeys of the simulator).
//
// It sits between the plumbing and the roles: it imports kafkax, schemas,
// learner/ppo and producers/sim, never a role package, so the simulate role
// and the composition above it can import it.
package policy

import (
	"context"
	"errors"
	"fmt"

	"github.com/aelp/aelp/internal/kafkax"
	"github.com/aelp/aelp/schemas"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
)

// Source is the policy topic of one experiment.
type Source struct {
	// Kafka is the connection.
	Kafka kafkax.Config
	// Topic is the policy topic. Default aelp.policy.
	Topic string
	// ExperimentID selects the snapshots: records keyed by it. Required.
	ExperimentID string
	// Isolation is kafkax.ReadCommitted (the default) or
	// kafkax.ReadUncommitted.
	Isolation kafkax.Isolation
	// Log receives warnings: broker failures retried, snapshots that do
	// not decode.
	Log zerolog.Logger
}

func (s *Source) setDefaults() {
	if s.Topic == "" {
		s.Topic = kafkax.TopicPolicy
	}
}

// reader opens the topic.
func (s *Source) reader() (*kafkax.Reader, error) {
	s.setDefaults()
	if s.ExperimentID == "" {
		return nil, errors.New("policy topic: no experiment id")
	}
	return kafkax.NewReader(s.Kafka, s.Topic, kafkax.ReadOptions{Isolation: s.Isolation, Logger: s.Log})
}

// snapshots returns a read callback that decodes the experiment's records
// and hands each snapshot to fn; other experiments' records are skipped
// undecoded, undecodable ones logged and skipped (the topic is written only
// by learners).
func (s *Source) snapshots(fn func(*schemas.PolicySnapshot)) func(*kafka.Message) error {
	return func(m *kafka.Message) error {
		if string(m.Key) != s.ExperimentID {
			return nil
		}
		snap := new(schemas.PolicySnapshot)
		if err := schemas.UnmarshalPolicySnapshot(m.Value, snap); err != nil {
			s.Log.Warn().Err(err).Str("topic", s.Topic).Int("partition", m.Partition).Int64("offset", m.Offset).
				Msg("undecodable policy snapshot skipped")
			return nil
		}
		fn(snap)
		return nil
	}
}

// Follow reads every partition of the topic from its beginning and calls
// fn, on one goroutine, with each decodable snapshot of the experiment, in
// log order per partition; fn owns the snapshot. It keeps following new
// records until ctx ends, riding out broker outages (the offsets are
// looked up again until they answer), and returns nil then; it returns an
// error only for what a retry cannot fix (a refused credential).
func (s Source) Follow(ctx context.Context, fn func(*schemas.PolicySnapshot)) error {
	r, err := s.reader()
	if err != nil {
		return err
	}
	defer r.Close()
	var offs kafkax.Offsets
	if err := kafkax.Retry(ctx, s.Log, "policy topic offsets", func(ctx context.Context) error {
		offs, err = r.ListOffsets(ctx)
		return err
	}); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("policy topic %s: %w", s.Topic, err)
	}
	err = r.ReadMessages(ctx, offs.First, nil, s.snapshots(fn))
	if ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("policy topic %s: %w", s.Topic, err)
}

// ReadAll calls fn with every decodable snapshot of the experiment, reading
// each partition up to the end offsets seen at the call, in log order per
// partition. fn owns the snapshot it is given.
func (s Source) ReadAll(ctx context.Context, fn func(*schemas.PolicySnapshot)) error {
	r, err := s.reader()
	if err != nil {
		return err
	}
	defer r.Close()
	offs, err := r.ListOffsets(ctx)
	if err != nil {
		return fmt.Errorf("policy topic: %w", err)
	}
	if err := r.ReadMessages(ctx, offs.First, offs.End, s.snapshots(fn)); err != nil {
		return fmt.Errorf("policy topic %s: %w", s.Topic, err)
	}
	return nil
}

// Latest returns the experiment's snapshot of the highest version, reading
// the topic up to the end offsets seen at the call; nil when there is none.
func (s Source) Latest(ctx context.Context) (*schemas.PolicySnapshot, error) {
	var best *schemas.PolicySnapshot
	err := s.ReadAll(ctx, func(p *schemas.PolicySnapshot) {
		if best == nil || p.Version > best.Version {
			best = p
		}
	})
	return best, err
}
