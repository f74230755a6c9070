package kafkax

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/segmentio/kafka-go"
)

// TopicSpec describes a topic to create when it is missing.
type TopicSpec struct {
	// Name is the topic name.
	Name string
	// Partitions is the partition count. Default 6.
	Partitions int
	// ReplicationFactor; -1 (the default) lets the broker choose.
	ReplicationFactor int
	// Compact sets cleanup.policy=compact (policy snapshots keep the newest
	// per key).
	Compact bool
	// Configs are further topic configs (e.g. retention.ms).
	Configs map[string]string
}

// DefaultTopics returns the specs of the pipeline's topics with the given
// partition count for the experience topics.
func DefaultTopics(partitions int) []TopicSpec {
	return []TopicSpec{
		{Name: TopicRaw, Partitions: partitions},
		{Name: TopicTagged, Partitions: partitions},
		{Name: TopicMetrics, Partitions: 1},
		{Name: TopicPolicy, Partitions: 1, Compact: true},
		{Name: TopicDeadLetter, Partitions: 1},
	}
}

// EnsureTopics creates each topic that does not exist yet. A topic that
// already exists is fine, whatever its settings.
func EnsureTopics(ctx context.Context, cfg Config, specs ...TopicSpec) error {
	client, err := cfg.Client()
	if err != nil {
		return err
	}
	// kafka-go reports a connection that fails (a refused SASL credential
	// in particular) from CreateTopics as "broker not available", since it
	// cannot learn the controller: ask for metadata first, whose error
	// Explain can turn into the real cause.
	if _, err := client.Metadata(ctx, &kafka.MetadataRequest{}); err != nil {
		return fmt.Errorf("create topics: %w", cfg.Explain(err))
	}
	req := &kafka.CreateTopicsRequest{}
	for _, s := range specs {
		tc := kafka.TopicConfig{Topic: s.Name, NumPartitions: s.Partitions, ReplicationFactor: s.ReplicationFactor}
		if tc.NumPartitions == 0 {
			tc.NumPartitions = 6
		}
		if tc.ReplicationFactor == 0 {
			tc.ReplicationFactor = -1
		}
		if s.Compact {
			tc.ConfigEntries = append(tc.ConfigEntries, kafka.ConfigEntry{ConfigName: "cleanup.policy", ConfigValue: "compact"})
		}
		keys := make([]string, 0, len(s.Configs))
		for k := range s.Configs {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			tc.ConfigEntries = append(tc.ConfigEntries, kafka.ConfigEntry{ConfigName: k, ConfigValue: s.Configs[k]})
		}
		req.Topics = append(req.Topics, tc)
	}
	resp, err := client.CreateTopics(ctx, req)
	if err != nil {
		return fmt.Errorf("create topics: %w", cfg.Explain(err))
	}
	for name, terr := range resp.Errors {
		if terr == nil || errors.Is(terr, kafka.TopicAlreadyExists) {
			continue
		}
		return fmt.Errorf("create topic %s: %w", name, terr)
	}
	// Wait until the metadata shows every topic with leaders, so the first
	// produce does not race topic creation.
	names := make([]string, len(specs))
	for i, s := range specs {
		names[i] = s.Name
	}
	for {
		ok, err := topicsReady(ctx, client, names)
		if err == nil && ok {
			return nil
		}
		select {
		case <-ctx.Done():
			if err != nil {
				return fmt.Errorf("wait for topics: %w", err)
			}
			return fmt.Errorf("wait for topics: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func topicsReady(ctx context.Context, client *kafka.Client, names []string) (bool, error) {
	md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: names})
	if err != nil {
		return false, err
	}
	if len(md.Topics) != len(names) {
		return false, nil
	}
	for _, t := range md.Topics {
		if t.Error != nil || len(t.Partitions) == 0 {
			return false, t.Error
		}
		for _, p := range t.Partitions {
			if p.Error != nil || p.Leader.Host == "" {
				return false, nil
			}
		}
	}
	return true, nil
}

// Partitions returns the partition ids of topic, sorted.
func Partitions(ctx context.Context, cfg Config, topic string) ([]int, error) {
	client, err := cfg.Client()
	if err != nil {
		return nil, err
	}
	md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return nil, fmt.Errorf("metadata %s: %w", topic, cfg.Explain(err))
	}
	for _, t := range md.Topics {
		if t.Name != topic {
			continue
		}
		if t.Error != nil {
			return nil, fmt.Errorf("metadata %s: %w", topic, t.Error)
		}
		ps := make([]int, 0, len(t.Partitions))
		for _, p := range t.Partitions {
			ps = append(ps, p.ID)
		}
		sort.Ints(ps)
		return ps, nil
	}
	return nil, fmt.Errorf("metadata %s: %w", topic, kafka.UnknownTopicOrPartition)
}
