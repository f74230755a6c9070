package kafkax

import (
	"strconv"

	"github.com/segmentio/kafka-go"
)

// Dead-letter headers (DESIGN.md).
const (
	HeaderError           = "aelp.error"
	HeaderSourceTopic     = "aelp.source.topic"
	HeaderSourcePartition = "aelp.source.partition"
	HeaderSourceOffset    = "aelp.source.offset"
)

// DeadLetter returns the message to publish on the dead-letter topic for
// m: the same key, value and headers, unchanged (a null key, value or
// header value stays null and an empty one empty, as long as m came from
// a reader that tells them apart, as Reader does), plus headers saying why
// and where it came from.
func DeadLetter(m kafka.Message, reason string) kafka.Message {
	h := make([]kafka.Header, 0, len(m.Headers)+4)
	h = append(h, m.Headers...)
	h = append(h,
		kafka.Header{Key: HeaderError, Value: []byte(reason)},
		kafka.Header{Key: HeaderSourceTopic, Value: []byte(m.Topic)},
		kafka.Header{Key: HeaderSourcePartition, Value: strconv.AppendInt(nil, int64(m.Partition), 10)},
		kafka.Header{Key: HeaderSourceOffset, Value: strconv.AppendInt(nil, m.Offset, 10)},
	)
	return kafka.Message{Key: m.Key, Value: m.Value, Headers: h, Time: m.Time}
}

// DeadLetterOrigin is what a dead letter's headers say of it.
type DeadLetterOrigin struct {
	// Reason is aelp.error.
	Reason string
	// Topic, Partition and Offset are where the record was read
	// (Partition and Offset -1 when absent).
	Topic     string
	Partition int
	Offset    int64
}

// DeadLetterSource returns the origin a dead letter made by DeadLetter
// carries in its headers (the last ones of each name).
func DeadLetterSource(m kafka.Message) DeadLetterOrigin {
	o := DeadLetterOrigin{Partition: -1, Offset: -1}
	for _, h := range m.Headers {
		switch h.Key {
		case HeaderError:
			o.Reason = string(h.Value)
		case HeaderSourceTopic:
			o.Topic = string(h.Value)
		case HeaderSourcePartition:
			if p, err := strconv.Atoi(string(h.Value)); err == nil {
				o.Partition = p
			}
		case HeaderSourceOffset:
			if off, err := strconv.ParseInt(string(h.Value), 10, 64); err == nil {
				o.Offset = off
			}
		}
	}
	return o
}
