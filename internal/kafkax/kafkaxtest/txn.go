// Package kafkaxtest writes topics that exercise the readers of kafkax:
// records of transactional producers (committed, aborted and still open
// transactions, with their control records) interleaved with plain ones.
// It is for tests only.
package kafkaxtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"testing"
	"time"

	"github.com/aelp/aelp/internal/kafkax"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Partitions are the partitions WriteTransactions writes to (the topic must
// have them).
var Partitions = []int{0, 1}

// TxnLog is what WriteTransactions wrote, per partition, in log order.
type TxnLog struct {
	// Committed are the values a read_committed reader returns: the plain
	// records and those of committed transactions.
	Committed map[int][]string
	// Uncommitted are the values a read_uncommitted reader returns: every
	// data record, those of aborted and open transactions included.
	Uncommitted map[int][]string
	// Open are the values of the transaction left open (empty unless
	// asked for); Commit or Abort ends it.
	Open map[int][]string

	open *kgo.Client
}

// End ends the open transaction: committed when commit is true, else
// aborted. A committed one's values join Committed. It does nothing when no
// transaction is open.
func (l *TxnLog) End(t testing.TB, commit bool) {
	t.Helper()
	if l.open == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := l.open.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
		t.Fatalf("end the open transaction: %v", err)
	}
	if commit {
		for p, vs := range l.Open {
			l.Committed[p] = append(l.Committed[p], vs...)
		}
	}
	l.open.Close()
	l.open = nil
}

// writer produces to topic, plain or in transactions.
type writer struct {
	t     testing.TB
	ctx   context.Context
	topic string
	log   *TxnLog
}

func (w *writer) client(opts []kgo.Opt, txnID string) *kgo.Client {
	w.t.Helper()
	opts = append(opts, kgo.DefaultProduceTopic(w.topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if txnID != "" {
		opts = append(opts, kgo.TransactionalID(txnID), kgo.TransactionTimeout(2*time.Minute))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		w.t.Fatalf("kgo client: %v", err)
	}
	w.t.Cleanup(cl.Close)
	return cl
}

// produce writes value name-<partition> to every partition and records
// where a reader of each isolation level must see it.
func (w *writer) produce(cl *kgo.Client, name string, committed bool) {
	w.t.Helper()
	for _, p := range Partitions {
		v := fmt.Sprintf("%s-p%d", name, p)
		rec := &kgo.Record{Partition: int32(p), Key: []byte(name), Value: []byte(v),
			Headers: []kgo.RecordHeader{{Key: "case", Value: []byte(name)}}}
		if err := cl.ProduceSync(w.ctx, rec).FirstErr(); err != nil {
			w.t.Fatalf("produce %s: %v", v, err)
		}
		w.log.Uncommitted[p] = append(w.log.Uncommitted[p], v)
		if committed {
			w.log.Committed[p] = append(w.log.Committed[p], v)
		}
	}
}

func (w *writer) begin(cl *kgo.Client) {
	w.t.Helper()
	if err := cl.BeginTransaction(); err != nil {
		w.t.Fatalf("begin transaction: %v", err)
	}
}

func (w *writer) end(cl *kgo.Client, commit bool) {
	w.t.Helper()
	if err := cl.EndTransaction(w.ctx, kgo.TransactionEndTry(commit)); err != nil {
		w.t.Fatalf("end transaction (commit %v): %v", commit, err)
	}
}

// WriteTransactions writes to each of Partitions of topic: plain records,
// committed and aborted transactions of one producer, then two producers'
// transactions interleaved (one aborted, one committed), and ends with an
// aborted transaction, so that the last offsets below the end are aborted
// records and an abort marker. With open, it then leaves the log with an
// aborted transaction's records below the last stable offset whose abort
// marker lies above it (a second producer's transaction began in between
// and stays open): the LSO lags the high-water mark until TxnLog.End.
// Every record has the header case=<name>; values are <name>-p<partition>.
// A topic that does not exist yet is created with the Partitions.
func WriteTransactions(t testing.TB, cfg kafkax.Config, topic string, open bool) *TxnLog {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := kafkax.EnsureTopics(ctx, cfg, kafkax.TopicSpec{Name: topic, Partitions: len(Partitions)}); err != nil {
		t.Fatal(err)
	}
	opts, err := cfg.KgoOptions(zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	var id [6]byte
	_, _ = rand.Read(id[:])
	txn := "aelp-test-" + hex.EncodeToString(id[:])
	log := &TxnLog{Committed: map[int][]string{}, Uncommitted: map[int][]string{}, Open: map[int][]string{}}
	w := &writer{t: t, ctx: ctx, topic: topic, log: log}
	plain := w.client(opts, "")
	x := w.client(opts, txn+"-x")
	y := w.client(opts, txn+"-y")

	w.produce(plain, "plain-1", true)
	w.begin(x)
	w.produce(x, "commit-1", true)
	w.produce(x, "commit-2", true)
	w.end(x, true)
	w.produce(plain, "plain-2", true)
	w.begin(x)
	w.produce(x, "abort-1", false)
	w.produce(x, "abort-2", false)
	w.end(x, false)
	w.produce(plain, "plain-3", true)
	// Two producers' transactions interleaved.
	w.begin(x)
	w.begin(y)
	w.produce(x, "abort-3", false)
	w.produce(y, "commit-3", true)
	w.produce(x, "abort-4", false)
	w.end(x, false)
	w.produce(y, "commit-4", true)
	w.end(y, true)
	// The log ends with aborted records and their abort marker.
	w.begin(x)
	w.produce(x, "abort-5", false)
	w.end(x, false)
	if open {
		// x's records below the LSO, its abort marker above it: y's open
		// transaction began in between.
		w.begin(x)
		w.produce(x, "abort-6", false)
		w.begin(y)
		w.produce(y, "open-1", false)
		w.end(x, false)
		for _, p := range Partitions {
			log.Open[p] = append(log.Open[p], fmt.Sprintf("open-1-p%d", p))
		}
		log.open = y
	}
	return log
}

// ProduceTransaction writes msgs (keys, values and headers; partitions are
// chosen by key) to topic in one transaction of a new transactional
// producer, then commits it or aborts it.
func ProduceTransaction(t testing.TB, cfg kafkax.Config, topic string, commit bool, msgs []kafka.Message) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	opts, err := cfg.KgoOptions(zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	var id [6]byte
	_, _ = rand.Read(id[:])
	cl, err := kgo.NewClient(append(opts, kgo.TransactionalID("aelp-test-"+hex.EncodeToString(id[:])), kgo.DefaultProduceTopic(topic))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	recs := make([]*kgo.Record, len(msgs))
	for i, m := range msgs {
		recs[i] = &kgo.Record{Key: m.Key, Value: m.Value}
		for _, h := range m.Headers {
			recs[i].Headers = append(recs[i].Headers, kgo.RecordHeader{Key: h.Key, Value: h.Value})
		}
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce in a transaction: %v", err)
	}
	if err := cl.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
		t.Fatalf("end transaction (commit %v): %v", commit, err)
	}
}
