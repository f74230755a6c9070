package kafkax

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The consumer group of kafkax, on franz-go's kgo client (kafka-go's group
// reader has the transaction defects of its partition reader: see
// kgo.go). At-least-once is the caller's loop:
//
//	for {
//		b.Reset()
//		err := g.Poll(ctx, &b, max)    // rebalances wait from here…
//		… produce the outputs of b.Messages and wait for their acks …
//		err = g.Commit(ctx, &b)        // the positions of b's partitions
//		g.AllowRebalance()             // …to here
//	}
//
// Between Poll and AllowRebalance the member keeps its partitions (kgo's
// BlockRebalanceOnPoll: the revoke waits), so a commit never lands after
// its partition was handed to another member; a member whose batch outlasts
// RebalanceTimeout is removed from the group instead, and its commit is
// refused (ErrCommitRefused): the new owner reads the batch again,
// duplicates but never loss.

// GroupOptions tunes a GroupConsumer; the zero value gives the defaults.
type GroupOptions struct {
	// Isolation is ReadCommitted (the default) or ReadUncommitted.
	Isolation Isolation
	// StartAtEnd starts a partition without a committed offset at its end
	// instead of its first offset.
	StartAtEnd bool
	// MaxWait bounds how long a fetch waits at the end of the log for new
	// records. Default 500 ms.
	MaxWait time.Duration
	// MaxBytes bounds one fetch response; PartitionMaxBytes one partition's
	// share of it. Defaults 32 MiB and 8 MiB (as ReadOptions).
	MaxBytes, PartitionMaxBytes int32
	// SessionTimeout is how long the group waits for a member's heartbeat
	// before removing it (a killed member's partitions move after it).
	// Default 10 s.
	SessionTimeout time.Duration
	// RebalanceTimeout is how long a rebalance waits for every member to
	// rejoin, so the longest a batch may take between Poll and
	// AllowRebalance once a rebalance began. Default 30 s.
	RebalanceTimeout time.Duration
	// HeartbeatInterval is the heartbeat period. Default 1 s.
	HeartbeatInterval time.Duration
	// Logger receives a warning per consumer error that kgo retries.
	Logger zerolog.Logger
	// OnRevoked, when set, is called with the partitions, per topic, that
	// the member gives up: revoked in a rebalance (with the range strategy,
	// every partition at every rebalance: they are assigned again after
	// it), or lost when the group removed the member. It runs on kgo's
	// group goroutine, before the partitions can be fetched again by any
	// member, and while no batch is held (between AllowRebalance and the
	// next Poll's return) except for lost partitions; it must not block
	// nor call the consumer's methods. A caller keeping state per partition
	// drops it there (or notes the partitions for its loop to drop), so
	// that records read again from the committed offsets rebuild it.
	OnRevoked func(revoked map[string][]int)
}

func (o *GroupOptions) setDefaults() {
	ro := ReadOptions{MaxWait: o.MaxWait, MaxBytes: o.MaxBytes, PartitionMaxBytes: o.PartitionMaxBytes}
	ro.setDefaults()
	o.MaxWait, o.MaxBytes, o.PartitionMaxBytes = ro.MaxWait, ro.MaxBytes, ro.PartitionMaxBytes
	if o.SessionTimeout == 0 {
		o.SessionTimeout = 10 * time.Second
	}
	if o.RebalanceTimeout == 0 {
		o.RebalanceTimeout = 30 * time.Second
	}
	if o.HeartbeatInterval == 0 {
		o.HeartbeatInterval = time.Second
	}
}

// ErrCommitRefused is matched by the error of a commit the group refused
// because the member no longer owns the partitions (a rebalance removed
// it, or moved them): their new owner reads them again from the offsets
// committed before. Retrying cannot help.
var ErrCommitRefused = errors.New("offset commit refused by the group")

// ErrGroupClosed is returned by Poll after Close.
var ErrGroupClosed = errors.New("group consumer closed")

// GroupConsumer is one member of a consumer group over one or more topics,
// on franz-go's kgo client, reading with the isolation level of its options
// (read_committed by default: no control record, no record of an aborted
// transaction, ever reaches the caller). Partitions are assigned with the
// range strategy: with topics of equal partition counts, a member gets the
// same partitions of every topic (co-partitioning, which a join needs), and
// members of older aelp versions (kafka-go, "range" and "roundrobin") can
// share the group during an upgrade. Offsets are committed only by Commit.
//
// Poll, Commit and AllowRebalance are for one goroutine (the consumer's
// loop); Joined and Assigned may be called from any.
type GroupConsumer struct {
	cfg    Config
	group  string
	topics []string
	opt    GroupOptions
	log    zerolog.Logger
	cl     *kgo.Client
	sasl   *saslWatch // nil without SASL

	mu       sync.Mutex
	owned    map[string]map[int32]bool
	joined   chan struct{}
	joinOnce sync.Once
}

// NewGroupConsumer returns a member of group consuming topics. It connects
// lazily: the first Poll joins the group. The caller closes it.
func NewGroupConsumer(cfg Config, group string, topics []string, opt GroupOptions) (*GroupConsumer, error) {
	cfg.setDefaults()
	if group == "" {
		return nil, fmt.Errorf("group consumer on %v: empty group id", topics)
	}
	if len(topics) == 0 || slices.Contains(topics, "") {
		return nil, fmt.Errorf("group consumer %s: no topic, or an empty topic name, in %q", group, topics)
	}
	opt.setDefaults()
	kopts, err := cfg.KgoOptions(opt.Logger)
	if err != nil {
		return nil, err
	}
	g := &GroupConsumer{cfg: cfg, group: group, topics: slices.Clone(topics), opt: opt, log: opt.Logger,
		owned: map[string]map[int32]bool{}, joined: make(chan struct{})}
	reset := kgo.NewOffset().AtStart()
	if opt.StartAtEnd {
		reset = kgo.NewOffset().AtEnd()
	}
	kopts = append(kopts,
		kgo.ConsumerGroup(group), kgo.ConsumeTopics(topics...),
		kgo.Balancers(kgo.RangeBalancer()),
		kgo.DisableAutoCommit(), kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsAssigned(g.onAssigned), kgo.OnPartitionsRevoked(g.onRevoked), kgo.OnPartitionsLost(g.onRevoked),
		kgo.FetchIsolationLevel(opt.Isolation.kgo()),
		// Control records come through so that Commit can commit past
		// them (a committed offset on a transaction's marker would leave
		// the group's lag at 1 for ever); Poll drops them.
		kgo.KeepControlRecords(),
		kgo.ConsumeResetOffset(reset),
		kgo.FetchMaxWait(opt.MaxWait), kgo.FetchMaxBytes(opt.MaxBytes), kgo.FetchMaxPartitionBytes(opt.PartitionMaxBytes),
		kgo.SessionTimeout(opt.SessionTimeout), kgo.RebalanceTimeout(opt.RebalanceTimeout),
		kgo.HeartbeatInterval(opt.HeartbeatInterval),
	)
	if cfg.SASL.Mechanism != "" {
		g.sasl = newSASLWatch(cfg)
		kopts = append(kopts, kgo.WithHooks(g.sasl))
	}
	if g.cl, err = kgo.NewClient(kopts...); err != nil {
		return nil, fmt.Errorf("group consumer %s: %w", group, err)
	}
	return g, nil
}

// Group returns the group id.
func (g *GroupConsumer) Group() string { return g.group }

// Topics returns the topics consumed.
func (g *GroupConsumer) Topics() []string { return slices.Clone(g.topics) }

// onAssigned records the partitions a join gave the member (kgo calls it
// after every join, with nothing new too) and marks the group joined.
func (g *GroupConsumer) onAssigned(_ context.Context, _ *kgo.Client, assigned map[string][]int32) {
	g.mu.Lock()
	for t, ps := range assigned {
		if g.owned[t] == nil {
			g.owned[t] = map[int32]bool{}
		}
		for _, p := range ps {
			g.owned[t][p] = true
		}
	}
	n := 0
	for _, ps := range g.owned {
		n += len(ps)
	}
	g.mu.Unlock()
	g.joinOnce.Do(func() { close(g.joined) })
	g.log.Info().Str("group", g.group).Int("partitions", n).Msg("joined the consumer group")
}

// onRevoked forgets partitions revoked or lost and tells OnRevoked.
func (g *GroupConsumer) onRevoked(_ context.Context, _ *kgo.Client, revoked map[string][]int32) {
	g.mu.Lock()
	out := make(map[string][]int, len(revoked))
	for t, ps := range revoked {
		for _, p := range ps {
			delete(g.owned[t], p)
			out[t] = append(out[t], int(p))
		}
		slices.Sort(out[t])
	}
	g.mu.Unlock()
	if g.opt.OnRevoked != nil && len(out) > 0 {
		g.opt.OnRevoked(out)
	}
}

// PauseTopics stops fetching topics until ResumeTopics (kgo's
// PauseFetchTopics): a Poll returns no record of them, buffered ones
// included, and the member keeps its partitions and its place in the
// group. Pausing a paused topic does nothing. Safe from any goroutine.
func (g *GroupConsumer) PauseTopics(topics ...string) { g.cl.PauseFetchTopics(topics...) }

// ResumeTopics fetches topics paused by PauseTopics again.
func (g *GroupConsumer) ResumeTopics(topics ...string) { g.cl.ResumeFetchTopics(topics...) }

// Paused returns the topics paused now, sorted.
func (g *GroupConsumer) Paused() []string {
	ts := g.cl.PauseFetchTopics()
	slices.Sort(ts)
	return ts
}

// Joined returns a channel that is closed once the member has joined the
// group for the first time: its first assignment arrived, an empty one
// included (a group with more members than partitions).
func (g *GroupConsumer) Joined() <-chan struct{} { return g.joined }

// Assigned returns the partitions the member holds now, per topic, sorted.
func (g *GroupConsumer) Assigned() map[string][]int {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make(map[string][]int, len(g.owned))
	for t, ps := range g.owned {
		if len(ps) == 0 {
			continue
		}
		for p := range ps {
			out[t] = append(out[t], int(p))
		}
		slices.Sort(out[t])
	}
	return out
}

// GroupBatch is what one or more Polls gathered: the messages and, per
// partition, the position to commit. The zero value is an empty batch;
// Reset empties it keeping its storage.
type GroupBatch struct {
	// Messages are the records polled, in offset order within a partition,
	// with Topic, Partition, Offset, HighWaterMark, Key (nil when null),
	// Value, Headers and Time set. Never a control record; under
	// ReadCommitted never a record of an aborted transaction.
	Messages []kafka.Message
	next     map[string]map[int32]kgo.EpochOffset
}

// Reset empties the batch.
func (b *GroupBatch) Reset() {
	clear(b.Messages) // drop the references to the records' bytes
	b.Messages = b.Messages[:0]
	for _, ps := range b.next {
		clear(ps)
	}
}

// Len returns the number of messages.
func (b *GroupBatch) Len() int { return len(b.Messages) }

// Empty reports whether the batch holds no position to commit: nothing was
// polled into it, control records included.
func (b *GroupBatch) Empty() bool {
	for _, ps := range b.next {
		if len(ps) > 0 {
			return false
		}
	}
	return true
}

// Positions returns, per topic and partition, the offset Commit commits:
// one past the last record polled into the batch (control records
// included).
func (b *GroupBatch) Positions() map[string]map[int]int64 {
	out := map[string]map[int]int64{}
	for t, ps := range b.next {
		for p, eo := range ps {
			if out[t] == nil {
				out[t] = map[int]int64{}
			}
			out[t][int(p)] = eo.Offset
		}
	}
	return out
}

// add appends the records of fs to b, control records only as positions,
// and returns how many records it took.
func (b *GroupBatch) add(fs kgo.Fetches) int {
	n := 0
	fs.EachPartition(func(p kgo.FetchTopicPartition) {
		if len(p.Records) == 0 {
			return
		}
		n += len(p.Records)
		last := p.Records[len(p.Records)-1]
		if b.next == nil {
			b.next = map[string]map[int32]kgo.EpochOffset{}
		}
		if b.next[p.Topic] == nil {
			b.next[p.Topic] = map[int32]kgo.EpochOffset{}
		}
		b.next[p.Topic][p.Partition] = kgo.EpochOffset{Epoch: last.LeaderEpoch, Offset: last.Offset + 1}
		for _, rec := range p.Records {
			if rec.Attrs.IsControl() {
				continue
			}
			b.Messages = append(b.Messages, toMessage(rec, p.HighWatermark))
		}
	})
	return n
}

// toMessage converts a kgo record to the kafka.Message the roles handle.
func toMessage(rec *kgo.Record, hwm int64) kafka.Message {
	m := kafka.Message{Topic: rec.Topic, Partition: int(rec.Partition), Offset: rec.Offset, HighWaterMark: hwm,
		Key: rec.Key, Value: rec.Value, Time: rec.Timestamp}
	if len(rec.Headers) > 0 {
		m.Headers = make([]kafka.Header, len(rec.Headers))
		for i, h := range rec.Headers {
			m.Headers[i] = kafka.Header{Key: h.Key, Value: h.Value}
		}
	}
	return m
}

// Poll waits until records arrive and adds up to max-b.Len() of them to b
// (fewer when fewer are fetched). It returns nil once it added at least one
// record — possibly only a control record, which adds a position and no
// message —, ctx's error when ctx ends first, and errors retrying cannot
// fix: a refused credential (*AuthError), a denied topic or group
// (*AuthorizationError), ErrGroupClosed. Failures kgo retries by itself (a
// broker down, a coordinator moving, a rebalance) are logged and waited
// out. Once Poll returned, whatever it returned, rebalances wait for
// AllowRebalance.
func (g *GroupConsumer) Poll(ctx context.Context, b *GroupBatch, max int) error {
	n := max - b.Len()
	if n <= 0 {
		return nil
	}
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if g.sasl != nil {
		stop := context.AfterFunc(g.sasl.ctx, cancel)
		defer stop()
	}
	for {
		fs := g.cl.PollRecords(pctx, n)
		if fs.IsClientClosed() {
			return ErrGroupClosed
		}
		added := b.add(fs)
		if err := g.pollErrors(fs); err != nil {
			return err
		}
		if added > 0 {
			return nil
		}
		if b.Empty() {
			// A poll of errors only (a broker down) blocks rebalances like
			// one of records: with nothing in hand, let the group's
			// recovery (a rejoin, its offset fetch) go on, or the member
			// never reads again once the broker is back.
			g.cl.AllowRebalance()
		}
		if err := g.sasl.refused(); err != nil {
			return fmt.Errorf("group %s: %w", g.group, err)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

// Gather is Poll, then more Polls for up to wait once the first records
// came, until b holds max messages: a batch shaped by size and time. Its
// errors are the first Poll's; a later Poll's failure only ends the
// gathering (the next Gather reports it).
func (g *GroupConsumer) Gather(ctx context.Context, b *GroupBatch, max int, wait time.Duration) error {
	if err := g.Poll(ctx, b, max); err != nil {
		return err
	}
	gctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	for b.Len() < max {
		if g.Poll(gctx, b, max) != nil {
			break
		}
	}
	return nil
}

// pollErrors returns the first error of fs that retrying cannot fix, and
// logs the others (kgo goes on retrying them).
func (g *GroupConsumer) pollErrors(fs kgo.Fetches) error {
	var fatal error
	fs.EachError(func(topic string, partition int32, err error) {
		if fatal != nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return
		}
		if _, ok := errors.AsType[*kgo.ErrGroupSession](err); ok {
			if aerr := g.cfg.classify(err, fmt.Sprintf("join consumer group %q", g.group)); errors.Is(aerr, ErrAuth) {
				fatal = fmt.Errorf("group %s: %w", g.group, aerr)
				return
			}
			g.log.Warn().Err(err).Str("group", g.group).Msg("consumer group failed, rejoining")
			return
		}
		if aerr := g.cfg.classify(err, fmt.Sprintf("read topic %q", topic)); errors.Is(aerr, ErrAuth) {
			fatal = fmt.Errorf("group %s: read %s: %w", g.group, topic, aerr)
			return
		}
		if dl, ok := errors.AsType[*kgo.ErrDataLoss](err); ok {
			g.log.Warn().Err(dl).Str("group", g.group).Str("topic", topic).Int32("partition", partition).
				Msg("offset out of the log's range (records deleted or the log truncated), reading on from the nearest offset in it")
			return
		}
		g.log.Warn().Err(err).Str("group", g.group).Str("topic", topic).Int32("partition", partition).Msg("fetch failed, retrying")
	})
	return fatal
}

// Commit commits, for every partition of b the member still owns, the
// offset after the last record polled into b (the next to read), and
// returns once the group coordinator has answered. Call it after every
// output of b's messages is acknowledged and before AllowRebalance. It
// returns an error matching ErrCommitRefused when the group refuses the
// commit (the member was removed from the group, or no longer owns a
// partition: b's records are read again by their new owner), an
// *AuthorizationError when the ACLs deny the commit, and other errors
// (the coordinator unreachable or moving) that a retry may fix.
func (g *GroupConsumer) Commit(ctx context.Context, b *GroupBatch) error {
	return g.commit(ctx, b.next)
}

// CommitOffsets is Commit with the offsets given: offsets[topic][p] is
// the next offset to read of partition p (every record below it is
// processed), for a caller that commits less than it polled (a join whose
// open windows still need records below the last one read). Offsets of
// partitions the member no longer owns are not committed and make it
// return an error matching ErrCommitRefused, as Commit's; a negative
// offset is refused as a programmer's error.
func (g *GroupConsumer) CommitOffsets(ctx context.Context, offsets map[string]map[int]int64) error {
	next := make(map[string]map[int32]kgo.EpochOffset, len(offsets))
	for t, ps := range offsets {
		for p, off := range ps {
			if off < 0 {
				return fmt.Errorf("group %s: commit %s/%d at %d: negative offset", g.group, t, p, off)
			}
			if next[t] == nil {
				next[t] = map[int32]kgo.EpochOffset{}
			}
			next[t][int32(p)] = kgo.EpochOffset{Epoch: -1, Offset: off}
		}
	}
	return g.commit(ctx, next)
}

func (g *GroupConsumer) commit(ctx context.Context, next map[string]map[int32]kgo.EpochOffset) error {
	offsets := map[string]map[int32]kgo.EpochOffset{}
	var lost []string
	g.mu.Lock()
	for t, ps := range next {
		for p, eo := range ps {
			if !g.owned[t][p] {
				lost = append(lost, fmt.Sprintf("%s/%d", t, p))
				continue
			}
			if offsets[t] == nil {
				offsets[t] = map[int32]kgo.EpochOffset{}
			}
			offsets[t][p] = eo
		}
	}
	g.mu.Unlock()
	var cerr error
	if len(offsets) > 0 {
		g.cl.CommitOffsetsSync(ctx, offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
			cerr = commitError(err, resp)
		})
	}
	switch {
	case cerr != nil && isRefusedCommit(cerr):
		return fmt.Errorf("group %s: commit: %w: %w", g.group, ErrCommitRefused, cerr)
	case cerr != nil:
		return fmt.Errorf("group %s: commit: %w", g.group, g.cfg.classify(cerr, fmt.Sprintf("commit offsets of consumer group %q", g.group)))
	case len(lost) > 0:
		slices.Sort(lost)
		return fmt.Errorf("group %s: commit: %w: partitions %v are no longer assigned to this member", g.group, ErrCommitRefused, lost)
	}
	return nil
}

// commitError is the first error of a commit: the request's, or a
// partition's error code.
func commitError(err error, resp *kmsg.OffsetCommitResponse) error {
	if err != nil || resp == nil {
		return err
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return fmt.Errorf("%s/%d: %w", t.Topic, p.Partition, err)
			}
		}
	}
	return nil
}

// isRefusedCommit reports whether a commit failed because the member's
// generation is over: it was removed from the group or a rebalance is
// under way.
func isRefusedCommit(err error) bool {
	return errors.Is(err, kerr.RebalanceInProgress) || errors.Is(err, kerr.IllegalGeneration) ||
		errors.Is(err, kerr.UnknownMemberID) || errors.Is(err, kerr.FencedInstanceID) ||
		errors.Is(err, kerr.StaleMemberEpoch) || errors.Is(err, kerr.FencedMemberEpoch)
}

// AllowRebalance lets a rebalance that waited for the batch in hand go on
// (kgo's Client.AllowRebalance). Call it after Commit, or after deciding
// not to commit; a Poll without it keeps the member's partitions.
func (g *GroupConsumer) AllowRebalance() { g.cl.AllowRebalance() }

// Close allows rebalances, leaves the group (its partitions go to the other
// members at once, not after SessionTimeout) and closes the connections.
// It commits nothing: Commit what was processed first. Close waits for the
// leave to be answered, at most until ctx ends.
func (g *GroupConsumer) Close(ctx context.Context) error {
	g.cl.AllowRebalance()
	err := g.cl.LeaveGroupContext(ctx)
	g.cl.Close()
	if err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("group %s: leave: %w", g.group, g.cfg.explainKgo(err))
	}
	return nil
}

// GroupCommitted returns the offset group has committed on every partition
// of the reader's topic (-1 for a partition without a commit), within
// LookupTimeout. A group coordinator that is loading, moving or not yet
// elected is retried within that time.
func (r *Reader) GroupCommitted(ctx context.Context, group string) (map[int]int64, error) {
	parts, err := r.Partitions(ctx)
	if err != nil {
		return nil, err
	}
	lctx, done := r.lookupCtx(ctx)
	var b Backoff
	for {
		out, err := r.offsetFetch(lctx, group, parts)
		if err == nil || !kerr.IsRetriable(err) && !errors.Is(err, errIncomplete) {
			return out, done(err)
		}
		select {
		case <-lctx.Done():
			return nil, done(fmt.Errorf("%w (%v)", err, lctx.Err()))
		case <-time.After(b.Next()):
		}
	}
}

// errIncomplete is an OffsetFetch answer that lacks partitions asked for.
var errIncomplete = errors.New("answer lacks partitions")

// offsetFetch asks once for group's committed offsets of parts.
func (r *Reader) offsetFetch(ctx context.Context, group string, parts []int) (map[int]int64, error) {
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Group = group
	rt := kmsg.NewOffsetFetchRequestTopic()
	rt.Topic = r.topic
	for _, p := range parts {
		rt.Partitions = append(rt.Partitions, int32(p))
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, r.cl)
	if err != nil {
		return nil, fmt.Errorf("committed offsets of group %s on %s: %w", group, r.topic, r.cfg.classify(err, ""))
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); errors.Is(err, kerr.GroupIDNotFound) {
		// A group that never joined has committed nothing (Apache Kafka
		// answers -1 per partition, the embedded broker this code).
		return noCommits(parts), nil
	} else if err != nil {
		return nil, fmt.Errorf("committed offsets of group %s on %s: %w", group, r.topic, r.cfg.classify(err, fmt.Sprintf("describe consumer group %q", group)))
	}
	out := make(map[int]int64, len(parts))
	for _, t := range resp.Topics {
		if t.Topic != r.topic {
			continue
		}
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); errors.Is(err, kerr.GroupIDNotFound) {
				return noCommits(parts), nil
			} else if err != nil {
				return nil, fmt.Errorf("committed offsets of group %s on %s/%d: %w", group, r.topic, p.Partition, r.cfg.classify(err, ""))
			}
			out[int(p.Partition)] = p.Offset
		}
	}
	if len(out) != len(parts) {
		return nil, fmt.Errorf("committed offsets of group %s on %s: %w (%d of %d)", group, r.topic, errIncomplete, len(out), len(parts))
	}
	return out, nil
}

// noCommits is -1 (no commit) for every partition of parts.
func noCommits(parts []int) map[int]int64 {
	out := make(map[int]int64, len(parts))
	for _, p := range parts {
		out[p] = -1
	}
	return out
}

// GroupLag returns how many records of the reader's topic group has not
// committed: Σ_p End[p] − committed[p] over the partitions, with End from
// ListOffsets (the last stable offset under ReadCommitted) and a partition
// without a commit counted from its first offset. It is 0 once the group
// has committed everything readable.
func (r *Reader) GroupLag(ctx context.Context, group string) (int64, error) {
	offs, err := r.ListOffsets(ctx)
	if err != nil {
		return 0, err
	}
	committed, err := r.GroupCommitted(ctx, group)
	if err != nil {
		return 0, err
	}
	return offs.Lag(committed), nil
}

// Lag returns Σ_p End[p] − committed[p] over o's partitions, a partition
// absent from committed or at -1 (no commit) counted from First[p], and a
// commit past End (a read_uncommitted group ahead of the last stable
// offset) as 0.
func (o Offsets) Lag(committed map[int]int64) int64 {
	var lag int64
	for p, end := range o.End {
		c, ok := committed[p]
		if !ok || c < 0 {
			c = o.First[p]
		}
		lag += max(0, end-c)
	}
	return lag
}
