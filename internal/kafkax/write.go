package kafkax

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
)

// WriteAll writes msgs to w's topic and returns once each record is
// acknowledged (acks=all) or refused for good, or ctx ends.
//
//   - A record larger than w takes (Writer.MaxRecordBytes) is not sent: it
//     is refused with a *RecordTooLargeError.
//   - A batch the broker refuses for its records (MESSAGE_TOO_LARGE,
//     INVALID_RECORD, CORRUPT_MESSAGE, INVALID_TIMESTAMP,
//     RECORD_LIST_TOO_LARGE) is split in halves, each written on its own,
//     down to the single record the broker refuses, which is refused with
//     that error (a *RecordTooLargeError for MESSAGE_TOO_LARGE). No other
//     caller's record shares a batch with those halves.
//   - Errors a retry can fix (a broker down or restarting, no leader, not
//     enough replicas, a timeout) are retried with backoff and a warning
//     each, for as long as ctx lasts: an outage stalls the caller (back
//     pressure) instead of losing records.
//   - Errors no retry can fix end the write at once with a *ProduceError
//     holding the broker's answer: a refused credential or an ACL denial
//     (errors.Is ErrAuth), a topic that does not exist (an
//     *UnknownTopicError inside), any other code that is not retriable.
//
// The other records are written whatever happens to the refused ones.
// When some records were refused and the rest written, WriteAll returns a
// *RefusedError saying which and why. When ctx ends it returns ctx's
// error with the last broker error; records then may or may not have been
// written. Records acknowledged before a retry may be written again by it
// when the client cannot tell which failed (at-least-once). A record
// retried, or split off a refused batch, can land after records of its
// partition handed over after it.
func WriteAll(ctx context.Context, cfg Config, w *Writer, log zerolog.Logger, msgs []kafka.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	wr := &writeRun{cfg: cfg.WithDefaults(), w: w, log: log, msgs: msgs}
	pending := make([]int, 0, len(msgs))
	for i := range msgs {
		if n := RecordBatchBytes(msgs[i]); n > w.maxRecord {
			wr.refuse(i, &RecordTooLargeError{Topic: w.Topic, Size: n, Limit: w.limit.Bytes, MaxRecord: w.maxRecord})
			continue
		}
		pending = append(pending, i)
	}
	var b Backoff
	for attempt := 1; len(pending) > 0; attempt++ {
		res := wr.write(ctx, pending, false)
		if res.fatal != nil {
			return res.fatal
		}
		retry := res.retry
		if len(res.split) > 0 {
			more, err := wr.isolate(ctx, res.split)
			if err != nil {
				return err
			}
			retry = append(retry, more...)
		}
		pending = retry
		if len(pending) == 0 {
			break
		}
		if ctx.Err() != nil {
			return fmt.Errorf("write %d records to %s: %w (last error: %v)", len(pending), w.Topic, ctx.Err(), res.err)
		}
		wait := b.Next()
		log.Warn().Err(res.err).Str("topic", w.Topic).Int("pending", len(pending)).Int("attempt", attempt).
			Dur("retry_in", wait).Msg("produce failed, retrying")
		select {
		case <-ctx.Done():
			return fmt.Errorf("write %d records to %s: %w (last error: %v)", len(pending), w.Topic, ctx.Err(), res.err)
		case <-time.After(wait):
		}
	}
	return wr.refusedError()
}

// writeRun is one WriteAll call.
type writeRun struct {
	cfg     Config
	w       *Writer
	log     zerolog.Logger
	msgs    []kafka.Message
	refused []RefusedRecord
}

func (wr *writeRun) refuse(i int, err error) {
	wr.refused = append(wr.refused, RefusedRecord{Index: i, Err: err})
}

func (wr *writeRun) refusedError() error {
	if len(wr.refused) == 0 {
		return nil
	}
	slices.SortFunc(wr.refused, func(a, b RefusedRecord) int { return a.Index - b.Index })
	return &RefusedError{Topic: wr.w.Topic, Written: len(wr.msgs) - len(wr.refused), Records: wr.refused}
}

// writeResult sorts the records of one write by what failed them.
type writeResult struct {
	retry []int // a retry can fix it
	split []int // their batch was refused for its records
	fatal error // no retry can fix it (the whole write ends)
	err   error // the last error, for logs
}

// write sends the records idxs of msgs in one WriteMessages call (holding
// w.split shared, or exclusively with alone) and sorts the failures.
func (wr *writeRun) write(ctx context.Context, idxs []int, alone bool) writeResult {
	batch := make([]kafka.Message, len(idxs))
	for j, i := range idxs {
		batch[j] = wr.msgs[i]
	}
	if !alone {
		wr.w.split.RLock()
	}
	err := wr.w.WriteMessages(ctx, batch...)
	if !alone {
		wr.w.split.RUnlock()
	}
	var res writeResult
	if err == nil {
		return res
	}
	res.err = err
	werrs, perRecord := errors.AsType[kafka.WriteErrors](err)
	perRecord = perRecord && len(werrs) == len(idxs)
	for j, i := range idxs {
		e := err
		if perRecord {
			if e = werrs[j]; e == nil {
				continue
			}
		}
		switch wr.kind(ctx, e) {
		case errSplit:
			res.split = append(res.split, i)
		case errFatal:
			res.fatal = &ProduceError{Topic: wr.w.Topic, Records: len(idxs), Err: wr.explain(ctx, e)}
			return res
		default:
			res.retry = append(res.retry, i)
		}
	}
	return res
}

// isolate writes the records idxs, whose batches the broker refused for
// their records, in halves (holding w.split exclusively, so no other
// caller's record joins the batches), halving what is refused again, and
// refuses each record the broker refuses on its own. It returns the
// records to retry (a retriable error met on the way).
func (wr *writeRun) isolate(ctx context.Context, idxs []int) (retry []int, err error) {
	wr.w.split.Lock()
	defer wr.w.split.Unlock()
	wr.log.Warn().Str("topic", wr.w.Topic).Int("records", len(idxs)).Int("max_message_bytes", wr.w.limit.Bytes).
		Str("limit_source", wr.w.limit.Source).Msg("the broker refused a batch for its records; writing it in halves")
	queue := [][]int{idxs}
	for len(queue) > 0 && ctx.Err() == nil {
		g := queue[0]
		queue = queue[1:]
		parts := [][]int{g}
		if len(g) > 1 {
			parts = [][]int{g[:len(g)/2], g[len(g)/2:]}
		}
		for _, part := range parts {
			res := wr.write(ctx, part, true)
			if res.fatal != nil {
				return nil, res.fatal
			}
			retry = append(retry, res.retry...)
			switch {
			case len(res.split) == 0:
			case len(part) == 1:
				wr.refuse(part[0], wr.recordError(part[0], res.err))
			default:
				queue = append(queue, res.split)
			}
		}
	}
	for _, g := range queue { // ctx ended: WriteAll retries them no more
		retry = append(retry, g...)
	}
	return retry, nil
}

// recordError is the refusal of record i, which was refused on its own
// with err.
func (wr *writeRun) recordError(i int, err error) error {
	if we, ok := errors.AsType[kafka.WriteErrors](err); ok {
		for _, e := range we {
			if e != nil {
				err = e
				break
			}
		}
	}
	if errors.Is(err, kafka.MessageSizeTooLarge) {
		return &RecordTooLargeError{Topic: wr.w.Topic, Size: RecordBatchBytes(wr.msgs[i]), Limit: wr.w.limit.Bytes, MaxRecord: wr.w.maxRecord, Err: err}
	}
	return fmt.Errorf("%s refused the record: %w", wr.w.Topic, err)
}

// Kinds of produce errors.
const (
	errRetry = iota
	errSplit
	errFatal
)

// kind says what WriteAll does about a record that failed with err.
func (wr *writeRun) kind(ctx context.Context, err error) int {
	var code kafka.Error
	switch {
	case ctx.Err() != nil:
		return errRetry // WriteAll stops on ctx
	case errors.Is(wr.cfg.ExplainContext(ctx, err), ErrAuth), errors.Is(err, io.ErrClosedPipe):
		return errFatal
	case errors.As(err, &code):
		switch code {
		case kafka.MessageSizeTooLarge, kafka.InvalidMessage, kafka.InvalidRecord, kafka.InvalidTimestamp, kafka.RecordListTooLarge:
			return errSplit
		case kafka.UnknownTopicOrPartition:
			if wr.topicGone(ctx) {
				return errFatal
			}
			return errRetry
		}
		if code.Temporary() {
			return errRetry
		}
		return errFatal
	}
	return errRetry // network errors, timeouts
}

// topicGone reports whether the broker says the topic does not exist (a
// fresh look-up: the writer's metadata comes from a cache).
func (wr *writeRun) topicGone(ctx context.Context) bool {
	_, err := wr.w.client.MaxMessageBytes(ctx, wr.w.Topic)
	return errors.As(err, new(*UnknownTopicError))
}

// explain is the error of a fatal failure: an *UnknownTopicError for a
// topic that does not exist, else Config.Explain's.
func (wr *writeRun) explain(ctx context.Context, err error) error {
	if errors.Is(err, kafka.UnknownTopicOrPartition) {
		return &UnknownTopicError{Topic: wr.w.Topic}
	}
	return wr.cfg.Explain(err)
}

// RefusalReason returns the dead-letter reason (aelp.error) of a record
// refused with err (a RefusedRecord's Err): too-large for a record larger
// than its topic takes, else refused:<the broker's error, in words joined
// by hyphens>, e.g. refused:invalid-record.
func RefusalReason(err error) string {
	if errors.Is(err, kafka.MessageSizeTooLarge) {
		return "too-large"
	}
	var code kafka.Error
	if errors.As(err, &code) {
		return "refused:" + strings.ReplaceAll(strings.ToLower(code.Title()), " ", "-")
	}
	return "refused"
}

// RecordTooLargeError is a record larger than its topic takes.
type RecordTooLargeError struct {
	// Topic is the topic written.
	Topic string
	// Size is the record's size as RecordBatchBytes counts it.
	Size int
	// Limit is the topic's max.message.bytes as the writer knows it.
	Limit int
	// MaxRecord is the largest record the writer sends
	// (Writer.MaxRecordBytes).
	MaxRecord int
	// Err is the broker's answer when the writer sent the record (within
	// MaxRecord) and it was refused on its own; nil when the writer kept
	// it back.
	Err error
}

func (e *RecordTooLargeError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("record of %d bytes refused by %s as too large (max.message.bytes %d as the writer knows it): %v", e.Size, e.Topic, e.Limit, e.Err)
	}
	return fmt.Sprintf("record of %d bytes is larger than %s takes: max.message.bytes %d, records up to %d bytes", e.Size, e.Topic, e.Limit, e.MaxRecord)
}

// Is matches kafka-go's MESSAGE_TOO_LARGE error code.
func (e *RecordTooLargeError) Is(target error) bool {
	return target == error(kafka.MessageSizeTooLarge)
}

// RefusedRecord is one record of a WriteAll call that was not written.
type RefusedRecord struct {
	// Index is the record's index in the slice given to WriteAll.
	Index int
	// Err says why: a *RecordTooLargeError, or the broker's error code.
	Err error
}

// RefusedError reports the records of a WriteAll call that were refused
// for good while the others were written.
type RefusedError struct {
	// Topic is the topic written.
	Topic string
	// Written is how many records were acknowledged.
	Written int
	// Records are the refused ones, by index.
	Records []RefusedRecord
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("%s refused %d of %d records (first, #%d: %v)", e.Topic, len(e.Records), len(e.Records)+e.Written, e.Records[0].Index, e.Records[0].Err)
}

// Unwrap returns the refusals' errors.
func (e *RefusedError) Unwrap() []error {
	errs := make([]error, len(e.Records))
	for i, r := range e.Records {
		errs[i] = r.Err
	}
	return errs
}

// ProduceError is a write that no retry can fix: the broker refused the
// credential, an ACL denied the write, the topic does not exist, or it
// answered a code that is not retriable.
type ProduceError struct {
	// Topic is the topic written.
	Topic string
	// Records is how many records the failed write held.
	Records int
	// Err is the cause: an *AuthError, an *UnknownTopicError or the
	// broker's error code.
	Err error
}

func (e *ProduceError) Error() string {
	return fmt.Sprintf("write %d records to %s: refused for good: %v", e.Records, e.Topic, e.Err)
}

// Unwrap returns the cause.
func (e *ProduceError) Unwrap() error { return e.Err }
