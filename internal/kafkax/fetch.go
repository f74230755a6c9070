package kafkax

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The fetch loop of Reader.Read. One goroutine (run) owns every
// partition's state; it sends at most one fetch request at a time to each
// partition leader, each from a goroutine of its own that decodes the
// response with kgo.ProcessFetchPartition (which applies the isolation
// level: control records dropped, aborted transactions filtered under
// read_committed) and hands the result back. A partition is in at most one
// request at a time, so its batches reach fn in offset order. kgo's
// consumer is not used because it does not expose its fetch position: a
// bounded read could not tell that it has reached its end when the last
// records before it are ones it does not return.

// readPart is the state of one partition of a Read.
type readPart struct {
	pos      int64 // next offset to fetch
	end      int64 // bounded: stop here; -1: follow
	leader   int32 // -1: unknown
	inflight bool
	done     bool
	failures int // consecutive fetches that failed to decode, without progress
}

// fetchBroker is the state of one partition leader.
type fetchBroker struct {
	busy    bool
	retryAt time.Time
	backoff Backoff
	attempt int
}

// fetchResult is a fetch response (or its failure) for one broker.
type fetchResult struct {
	broker  int32
	offsets map[int32]int64 // the offsets requested, per partition
	err     error           // the request failed
	parts   []partResult
}

// partResult is the decoded response of one partition.
type partResult struct {
	partition int32
	err       error // a partition error code, or a decode error
	batch     Batch
}

// read is one Reader.Read.
type read struct {
	r       *Reader
	parts   map[int32]*readPart
	brokers map[int32]*fetchBroker
	results chan fetchResult
	wg      sync.WaitGroup

	topicID  [16]byte
	needMeta bool
	metaAt   time.Time
	metaBack Backoff
	metaOnce bool // the first metadata look-up was made
}

func (r *Reader) newRead(start, end map[int]int64) (*read, error) {
	rd := &read{r: r, parts: make(map[int32]*readPart, len(start)), brokers: map[int32]*fetchBroker{},
		results: make(chan fetchResult), needMeta: true}
	for p, s := range start {
		e := int64(-1)
		if end != nil {
			var ok bool
			if e, ok = end[p]; !ok || s >= e {
				continue
			}
		}
		if s < 0 {
			return nil, fmt.Errorf("read %s/%d: start offset %d is negative", r.topic, p, s)
		}
		rd.parts[int32(p)] = &readPart{pos: s, end: e, leader: -1}
	}
	return rd, nil
}

// run is the loop of one Read; see Reader.Read.
func (rd *read) run(ctx context.Context, fn func(*Batch) error) error {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var batches []Batch
	for {
		if rd.allDone() {
			return nil
		}
		if err := rd.refreshIfDue(ctx); err != nil {
			return err
		}
		rd.dispatch(ctx)
		timer.Reset(rd.nextWake())
		select {
		case res := <-rd.results:
			var err error
			if batches, err = rd.handle(ctx, res, batches[:0]); err != nil {
				return err
			}
			// Fetch ahead while fn works on what arrived.
			rd.dispatch(ctx)
			for i := range batches {
				if err := fn(&batches[i]); err != nil {
					return err
				}
			}
			clear(batches)
		case <-timer.C:
		case <-rd.r.refused():
			return fmt.Errorf("read %s: %w", rd.r.topic, rd.r.sasl.refused())
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (rd *read) allDone() bool {
	for _, p := range rd.parts {
		if !p.done {
			return false
		}
	}
	return true
}

// refreshIfDue looks the partition leaders up when one is unknown and the
// backoff allows. The first look-up fails the read on errors a retry cannot
// fix (a topic or partition that does not exist, a refused credential);
// later ones only on a refused credential.
func (rd *read) refreshIfDue(ctx context.Context) error {
	if !rd.needMeta || time.Now().Before(rd.metaAt) {
		return nil
	}
	first := !rd.metaOnce
	rd.metaOnce = true
	err := rd.refresh(ctx)
	if err == nil {
		rd.metaBack.Reset()
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var ute *UnknownTopicError
	var mpe missingPartitionError
	if errors.Is(err, ErrAuth) || first && (errors.As(err, &ute) || errors.As(err, &mpe)) {
		return fmt.Errorf("read %s: %w", rd.r.topic, err)
	}
	wait := rd.metaBack.Next()
	rd.metaAt = time.Now().Add(wait)
	rd.r.log.Warn().Err(err).Str("topic", rd.r.topic).Dur("retry_in", wait).Msg("partition leaders unknown, retrying")
	return nil
}

// missingPartitionError is a partition to read that the topic lacks.
type missingPartitionError struct {
	topic     string
	partition int32
}

func (e missingPartitionError) Error() string {
	return fmt.Sprintf("topic %q has no partition %d", e.topic, e.partition)
}

// refresh updates every partition's leader from the topic's metadata.
// needMeta stays set while a partition has no leader.
func (rd *read) refresh(ctx context.Context) error {
	md, err := rd.r.metadata(ctx)
	if err != nil {
		return err
	}
	rd.topicID = md.id
	rd.needMeta = false
	var missing error
	for p, ps := range rd.parts {
		leader, ok := md.leaders[p]
		if !ok {
			leader = -1
			missing = missingPartitionError{rd.r.topic, p}
		}
		ps.leader = leader
		if leader < 0 && !ps.done {
			rd.needMeta = true
		}
	}
	if missing != nil {
		return missing
	}
	if rd.needMeta {
		return errors.New("a partition has no leader")
	}
	return nil
}

// broker returns the state of broker id, created on first use.
func (rd *read) broker(id int32) *fetchBroker {
	b := rd.brokers[id]
	if b == nil {
		b = &fetchBroker{}
		rd.brokers[id] = b
	}
	return b
}

// dispatch sends a fetch to every leader that is idle, out of backoff, and
// leads a partition that is neither done nor in a request.
func (rd *read) dispatch(ctx context.Context) {
	now := time.Now()
	var reqs map[int32]map[int32]int64
	for p, ps := range rd.parts {
		if ps.done || ps.inflight || ps.leader < 0 {
			continue
		}
		b := rd.broker(ps.leader)
		if b.busy || now.Before(b.retryAt) {
			continue
		}
		if reqs == nil {
			reqs = map[int32]map[int32]int64{}
		}
		if reqs[ps.leader] == nil {
			reqs[ps.leader] = map[int32]int64{}
		}
		reqs[ps.leader][p] = ps.pos
	}
	for id, offsets := range reqs {
		rd.brokers[id].busy = true
		for p := range offsets {
			rd.parts[p].inflight = true
		}
		rd.wg.Add(1)
		go func() {
			defer rd.wg.Done()
			res := rd.r.fetch(ctx, id, rd.topicID, offsets)
			select {
			case rd.results <- res:
			case <-ctx.Done():
			}
		}()
	}
}

// nextWake is how long run may wait for a result before something else is
// due: a metadata look-up or a broker's backoff ending.
func (rd *read) nextWake() time.Duration {
	wake := time.Hour
	now := time.Now()
	if rd.needMeta {
		wake = min(wake, rd.metaAt.Sub(now))
	}
	for _, ps := range rd.parts {
		if ps.done || ps.inflight || ps.leader < 0 {
			continue
		}
		if b := rd.brokers[ps.leader]; b != nil && !b.busy {
			wake = min(wake, b.retryAt.Sub(now))
		}
	}
	return max(wake, time.Millisecond)
}

// handle applies one fetch result to the partitions' state and appends the
// batches to deliver to out.
func (rd *read) handle(ctx context.Context, res fetchResult, out []Batch) ([]Batch, error) {
	r := rd.r
	b := rd.broker(res.broker)
	b.busy = false
	for p := range res.offsets {
		rd.parts[p].inflight = false
	}
	if res.err != nil {
		if ctx.Err() != nil {
			return out, ctx.Err()
		}
		err := r.cfg.explainKgo(res.err)
		if errors.Is(err, ErrAuth) {
			return out, fmt.Errorf("read %s: %w", r.topic, err)
		}
		b.attempt++
		wait := b.backoff.Next()
		b.retryAt = time.Now().Add(wait)
		rd.needMeta = true // the leaders may have moved
		r.log.Warn().Err(err).Str("topic", r.topic).Int32("broker", res.broker).Int("attempt", b.attempt).
			Dur("retry_in", wait).Msg("fetch failed, retrying")
		return out, nil
	}
	b.backoff.Reset()
	b.attempt = 0
	for i := range res.parts {
		pr := &res.parts[i]
		ps := rd.parts[pr.partition]
		if ps == nil || ps.done || res.offsets[pr.partition] != ps.pos {
			continue
		}
		var err error
		if out, err = rd.apply(ctx, ps, pr, out); err != nil {
			return out, err
		}
	}
	return out, nil
}

// apply is handle for one partition.
func (rd *read) apply(ctx context.Context, ps *readPart, pr *partResult, out []Batch) ([]Batch, error) {
	r := rd.r
	p := pr.partition
	progress := pr.batch.Next > ps.pos
	if progress {
		ps.failures = 0
		out = rd.deliver(ps, &pr.batch, out)
	}
	switch err := pr.err; {
	case err == nil:
	case errors.Is(err, kerr.OffsetOutOfRange):
		return rd.reset(ctx, ps, p, out)
	case errors.Is(r.cfg.explainKgo(err), ErrAuth):
		return out, fmt.Errorf("read %s/%d: %w", r.topic, p, r.cfg.explainKgo(err))
	case kerr.IsRetriable(err):
		// A leader moving or loading, the topic not yet known on the
		// broker: look the leader up again.
		ps.leader = -1
		rd.needMeta = true
		r.log.Warn().Err(err).Str("topic", r.topic).Int32("partition", p).Msg("fetch failed, looking the leader up again")
	case isKafkaError(err):
		return out, fmt.Errorf("read %s/%d at offset %d: %w", r.topic, p, ps.pos, err)
	case !progress:
		// The records do not decode (a corrupt batch): retry a few times,
		// in case it was a transfer error, then give up.
		ps.failures++
		if ps.failures >= 3 {
			return out, fmt.Errorf("read %s/%d at offset %d: %w", r.topic, p, ps.pos, err)
		}
		b := rd.broker(ps.leader)
		b.retryAt = time.Now().Add(b.backoff.Next())
		r.log.Warn().Err(err).Str("topic", r.topic).Int32("partition", p).Int64("offset", ps.pos).Msg("fetched records do not decode, retrying")
	}
	return out, nil
}

func isKafkaError(err error) bool {
	_, ok := errors.AsType[*kerr.Error](err)
	return ok
}

// deliver advances ps past batch and appends it to out, cut at ps.end on a
// bounded read.
func (rd *read) deliver(ps *readPart, batch *Batch, out []Batch) []Batch {
	ps.pos = batch.Next
	if ps.end >= 0 && ps.pos >= ps.end {
		ps.done = true
		ms := batch.Messages
		n := len(ms)
		for n > 0 && ms[n-1].Offset >= ps.end {
			n--
		}
		batch.Messages = ms[:n]
		batch.Next = ps.end
	}
	return append(out, *batch)
}

// reset handles OFFSET_OUT_OF_RANGE as kafka-go's reader does: a position
// before the log's start (records deleted by retention) moves to the first
// offset kept, one past the end (a log truncated or recreated) to the end.
func (rd *read) reset(ctx context.Context, ps *readPart, p int32, out []Batch) ([]Batch, error) {
	r := rd.r
	first, err := r.listOffsets(ctx, []int{int(p)}, -2)
	if err != nil {
		return out, fmt.Errorf("read %s/%d: offset %d out of range: %w", r.topic, p, ps.pos, err)
	}
	last, err := r.listOffsets(ctx, []int{int(p)}, -1)
	if err != nil {
		return out, fmt.Errorf("read %s/%d: offset %d out of range: %w", r.topic, p, ps.pos, err)
	}
	to := min(max(ps.pos, first[int(p)]), last[int(p)])
	r.log.Warn().Str("topic", r.topic).Int32("partition", p).Int64("offset", ps.pos).Int64("first", first[int(p)]).
		Int64("end", last[int(p)]).Int64("reset_to", to).Msg("offset out of the log's range, reading on from the nearest offset in it")
	if to > ps.pos || ps.end >= 0 && to >= ps.end {
		// Tell the caller where the partition is read from now.
		return rd.deliver(ps, &Batch{Partition: int(p), Next: to}, out), nil
	}
	ps.pos = to
	return out, nil
}

// fetch sends one fetch request for offsets to broker and decodes the
// response.
func (r *Reader) fetch(ctx context.Context, broker int32, topicID [16]byte, offsets map[int32]int64) fetchResult {
	res := fetchResult{broker: broker, offsets: offsets}
	req := kmsg.NewPtrFetchRequest()
	req.MaxWaitMillis = int32(r.opt.MaxWait / time.Millisecond)
	req.MinBytes = 1
	req.MaxBytes = r.opt.MaxBytes
	req.IsolationLevel = r.opt.Isolation.level()
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = r.topic
	rt.TopicID = topicID
	for p, off := range offsets {
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition = p
		rp.FetchOffset = off
		rp.PartitionMaxBytes = r.opt.PartitionMaxBytes
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	kresp, err := r.cl.Broker(int(broker)).Request(ctx, req)
	if err != nil {
		res.err = err
		return res
	}
	resp := kresp.(*kmsg.FetchResponse)
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		res.err = err
		return res
	}
	for i := range resp.Topics {
		t := &resp.Topics[i]
		if t.Topic != r.topic && t.TopicID != topicID {
			continue
		}
		for j := range t.Partitions {
			rp := &t.Partitions[j]
			off, ok := offsets[rp.Partition]
			if !ok {
				continue
			}
			res.parts = append(res.parts, r.decode(rp, off))
		}
	}
	return res
}

// decode turns one partition of a fetch response into a batch of
// messages: kgo.ProcessFetchPartition applies the isolation level (control
// records dropped, aborted transactions filtered under read_committed) and
// returns the next offset to fetch.
func (r *Reader) decode(rp *kmsg.FetchResponseTopicPartition, offset int64) partResult {
	opts := kgo.ProcessFetchPartitionOpts{Offset: offset, IsolationLevel: r.opt.Isolation.kgo(), Topic: r.topic, Partition: rp.Partition,
		Pools: []kgo.Pool{&r.records}}
	fp, next := kgo.ProcessFetchPartition(opts, rp, r.decomp, nil)
	pr := partResult{partition: rp.Partition, err: fp.Err, batch: Batch{Partition: int(rp.Partition), Next: next,
		HighWaterMark: fp.HighWatermark, LastStableOffset: fp.LastStableOffset, LogStartOffset: fp.LogStartOffset}}
	if len(fp.Records) == 0 {
		return pr
	}
	nh := 0
	for _, rec := range fp.Records {
		nh += len(rec.Headers)
	}
	msgs := make([]kafka.Message, len(fp.Records))
	var hs []kafka.Header
	if nh > 0 {
		hs = make([]kafka.Header, nh)
	}
	for i, rec := range fp.Records {
		m := &msgs[i]
		m.Topic = r.topic
		m.Partition = int(rec.Partition)
		m.Offset = rec.Offset
		m.HighWaterMark = fp.HighWatermark
		m.Key = rec.Key
		m.Value = rec.Value
		m.Time = rec.Timestamp
		if n := len(rec.Headers); n > 0 {
			h := hs[:n:n]
			hs = hs[n:]
			for k, rh := range rec.Headers {
				h[k] = kafka.Header{Key: rh.Key, Value: rh.Value}
			}
			m.Headers = h
		}
		rec.Recycle() // its slab returns to r.records once every record of it is converted
	}
	pr.batch.Messages = msgs
	return pr
}

// recordPool recycles the slabs of kgo.Records that ProcessFetchPartition
// decodes a record batch into: the messages keep the keys and values,
// which belong to the fetched bytes, not to the slab.
type recordPool struct{ p sync.Pool }

// GetRecords implements kgo.PoolRecords.
func (rp *recordPool) GetRecords(n int) []kgo.Record {
	if s, ok := rp.p.Get().(*[]kgo.Record); ok && cap(*s) >= n {
		return (*s)[:0]
	}
	return make([]kgo.Record, 0, n)
}

// PutRecords implements kgo.PoolRecords.
func (rp *recordPool) PutRecords(s []kgo.Record) {
	clear(s[:cap(s)])
	rp.p.Put(&s)
}
