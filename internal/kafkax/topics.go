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

// Offsets holds the first and end (next-to-be-written) offset of each
// partition of a topic.
type Offsets struct {
	// First is the earliest offset still in the log, per partition.
	First map[int]int64
	// End is the offset the next record will get, per partition.
	End map[int]int64
}

// Total returns the number of records between First and End over all
// partitions.
func (o Offsets) Total() int64 {
	var n int64
	for p, e := range o.End {
		n += e - o.First[p]
	}
	return n
}

// ListOffsets returns the first and end offsets of every partition of topic.
// Transient partition errors — a leader that is moving or still loading,
// as right after topic creation or a broker restart — are retried with
// backoff for up to about ten seconds before they are returned.
func ListOffsets(ctx context.Context, cfg Config, topic string) (Offsets, error) {
	var b Backoff
	for attempt := 1; ; attempt++ {
		out, err := listOffsetsOnce(ctx, cfg, topic)
		if err == nil || attempt >= 12 || !isTransient(err) || ctx.Err() != nil {
			return out, err
		}
		select {
		case <-ctx.Done():
			return out, err
		case <-time.After(b.Next()):
		}
	}
}

// isTransient reports a Kafka error that a retry after a moment can fix.
func isTransient(err error) bool {
	var ke kafka.Error
	return errors.As(err, &ke) && ke.Temporary()
}

func listOffsetsOnce(ctx context.Context, cfg Config, topic string) (Offsets, error) {
	parts, err := Partitions(ctx, cfg, topic)
	if err != nil {
		return Offsets{}, err
	}
	client, err := cfg.Client()
	if err != nil {
		return Offsets{}, err
	}
	reqs := make([]kafka.OffsetRequest, 0, 2*len(parts))
	for _, p := range parts {
		reqs = append(reqs, kafka.FirstOffsetOf(p), kafka.LastOffsetOf(p))
	}
	resp, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		return Offsets{}, fmt.Errorf("list offsets %s: %w", topic, cfg.Explain(err))
	}
	out := Offsets{First: map[int]int64{}, End: map[int]int64{}}
	for _, po := range resp.Topics[topic] {
		if po.Error != nil {
			return Offsets{}, fmt.Errorf("list offsets %s/%d: %w", topic, po.Partition, po.Error)
		}
		out.First[po.Partition] = po.FirstOffset
		out.End[po.Partition] = po.LastOffset
	}
	return out, nil
}

// OffsetsForTime returns, per partition, the first offset whose timestamp is
// at or after t (the end offset when there is none).
func OffsetsForTime(ctx context.Context, cfg Config, topic string, t time.Time) (map[int]int64, error) {
	parts, err := Partitions(ctx, cfg, topic)
	if err != nil {
		return nil, err
	}
	client, err := cfg.Client()
	if err != nil {
		return nil, err
	}
	reqs := make([]kafka.OffsetRequest, 0, len(parts))
	for _, p := range parts {
		reqs = append(reqs, kafka.TimeOffsetOf(p, t))
	}
	resp, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		return nil, fmt.Errorf("list offsets %s at %s: %w", topic, t.Format(time.RFC3339), cfg.Explain(err))
	}
	end, err := ListOffsets(ctx, cfg, topic)
	if err != nil {
		return nil, err
	}
	out := map[int]int64{}
	for _, po := range resp.Topics[topic] {
		if po.Error != nil {
			return nil, fmt.Errorf("list offsets %s/%d: %w", topic, po.Partition, po.Error)
		}
		off := end.End[po.Partition]
		for o := range po.Offsets {
			if o >= 0 && o < off {
				off = o
			}
		}
		out[po.Partition] = off
	}
	return out, nil
}
