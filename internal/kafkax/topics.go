package kafkax

import (
	"context"
	"sort"

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

// topicConfig returns the CreateTopics entry of s, defaults filled in.
func (s TopicSpec) topicConfig() kafka.TopicConfig {
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
	return tc
}

// EnsureTopics is Client.EnsureTopics on a client of its own, for one-off
// calls (tools, tests); a role uses its Client.
func EnsureTopics(ctx context.Context, cfg Config, specs ...TopicSpec) error {
	c, err := NewClient(cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	return c.EnsureTopics(ctx, specs...)
}

// Partitions is Client.Partitions on a client of its own, for one-off
// calls (tools, tests); a role uses its Client.
func Partitions(ctx context.Context, cfg Config, topic string) ([]int, error) {
	c, err := NewClient(cfg)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.Partitions(ctx, topic)
}
