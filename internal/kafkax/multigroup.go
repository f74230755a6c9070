package kafkax

import (
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"
)

// NewMultiGroupReader returns a consumer-group Reader over several topics
// as one member (kafka-go's GroupTopics), configured as NewGroupReader:
// explicit commits only. With the range assignor, co-partitioned topics
// of equal partition counts have partition p of each assigned to the same
// member. kafka-go tells the caller nothing of rebalances; the join role
// uses it until the franz-go group consumer replaces it.
func NewMultiGroupReader(cfg Config, topics []string, group string, opt ReaderOptions) (*kafka.Reader, error) {
	cfg.setDefaults()
	if group == "" || len(topics) == 0 {
		return nil, fmt.Errorf("group reader on %v: empty group id or no topic", topics)
	}
	d, err := cfg.Dialer()
	if err != nil {
		return nil, err
	}
	opt.setDefaults()
	return kafka.NewReader(kafka.ReaderConfig{
		Brokers: cfg.Brokers, GroupID: group, GroupTopics: topics, Dialer: d,
		QueueCapacity: 1000, MinBytes: 1, MaxBytes: opt.MaxBytes, MaxWait: opt.MaxWait,
		ReadBatchTimeout: opt.MaxWait + 5*time.Second, CommitInterval: 0, StartOffset: opt.StartOffset,
		HeartbeatInterval: time.Second, SessionTimeout: 10 * time.Second, RebalanceTimeout: 10 * time.Second,
		JoinGroupBackoff: 500 * time.Millisecond, WatchPartitionChanges: true, PartitionWatchInterval: 5 * time.Second,
		ReadBackoffMin: 50 * time.Millisecond, ReadBackoffMax: time.Second, MaxAttempts: 10,
		ErrorLogger: kafka.LoggerFunc(func(f string, a ...any) { opt.Logger.Warn().Str("component", "kafka-reader").Msgf(f, a...) }),
	}), nil
}
