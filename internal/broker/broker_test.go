package broker_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aelp/aelp/internal/broker"
	"github.com/aelp/aelp/internal/kafkatest"
	"github.com/aelp/aelp/internal/kafkax/kafkaxtest"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     broker.Config
		wantErr string
	}{
		{"zero value", broker.Config{}, ""},
		{"port zero", broker.Config{Listen: "127.0.0.1:0"}, ""},
		{"no port", broker.Config{Listen: "127.0.0.1"}, "listen"},
		{"empty host", broker.Config{Listen: ":9092"}, "host is empty"},
		{"bad port", broker.Config{Listen: "127.0.0.1:70000"}, "bad port"},
		{"negative partitions", broker.Config{DefaultPartitions: -1}, "default partitions"},
		{"scram user", broker.Config{Users: []broker.User{{Mechanism: "SCRAM-SHA-512", Username: "u", Password: "p"}}}, ""},
		{"unknown mechanism", broker.Config{Users: []broker.User{{Mechanism: "GSSAPI", Username: "u"}}}, "unknown SASL mechanism"},
		{"empty user", broker.Config{Users: []broker.User{{Mechanism: "PLAIN"}}}, "empty name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kafkaxtest.WantError(t, "Validate()", tt.cfg.Validate(), tt.wantErr)
		})
	}
	if _, err := broker.Start(broker.Config{Listen: "nonsense"}); err == nil {
		t.Error("Start with an invalid config succeeded")
	}
}

func TestStartOnTakenPort(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	b, err := broker.Start(broker.Config{Listen: l.Addr().String()})
	if err == nil {
		b.Close()
		t.Fatalf("Start on the taken address %s succeeded", l.Addr())
	}
}

func start(t *testing.T, cfg broker.Config) *broker.Broker {
	t.Helper()
	b, err := broker.Start(cfg)
	if err != nil {
		t.Fatalf("start broker: %v", err)
	}
	t.Cleanup(b.Close)
	if len(b.Addrs()) != 1 {
		t.Fatalf("Addrs() = %v, want one address", b.Addrs())
	}
	return b
}

func newClient(t *testing.T, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr), kgo.RetryTimeout(20 * time.Second)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// createTopic creates topic with kmsg through kgo (partitions -1: the
// broker's default).
func createTopic(ctx context.Context, t *testing.T, cl *kgo.Client, topic string, partitions int32) {
	t.Helper()
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, partitions, 1
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
	if err := kerr.ErrorForCode(resp.Topics[0].ErrorCode); err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
}

// partitionCount asks for topic's metadata.
func partitionCount(ctx context.Context, t *testing.T, cl *kgo.Client, topic string) int {
	t.Helper()
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatalf("metadata %s: %v", topic, err)
	}
	if len(resp.Topics) != 1 {
		t.Fatalf("metadata %s: %d topics", topic, len(resp.Topics))
	}
	if err := kerr.ErrorForCode(resp.Topics[0].ErrorCode); err != nil {
		t.Fatalf("metadata %s: %v", topic, err)
	}
	return len(resp.Topics[0].Partitions)
}

func produce(ctx context.Context, t *testing.T, cl *kgo.Client, topic, prefix string, n int) {
	t.Helper()
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = &kgo.Record{Topic: topic, Key: fmt.Appendf(nil, "k%d", i%37), Value: fmt.Appendf(nil, "%s-%d", prefix, i)}
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

// consumeN polls cl until it has n records and returns their values.
func consumeN(ctx context.Context, t *testing.T, cl *kgo.Client, n int) map[string]int32 {
	t.Helper()
	got := map[string]int32{}
	for len(got) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d records: %v", len(got), n, ctx.Err())
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) { got[string(r.Value)] = r.Partition })
	}
	return got
}

// committedOffsets fetches the group's committed offsets of topic.
func committedOffsets(ctx context.Context, t *testing.T, cl *kgo.Client, group, topic string) map[int32]int64 {
	t.Helper()
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Group = group
	rt := kmsg.NewOffsetFetchRequestTopic()
	rt.Topic = topic
	rt.Partitions = []int32{0, 1, 2}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatalf("offset fetch: %v", err)
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		t.Fatalf("offset fetch: %v", err)
	}
	out := map[int32]int64{}
	for _, rt := range resp.Topics {
		for _, p := range rt.Partitions {
			out[p.Partition] = p.Offset
		}
	}
	return out
}

// anyClientScenario runs an independent client (franz-go) against addr:
// create a topic, produce, consume in a group with explicit commits, then
// restart the broker with restart and find the records and offsets again.
func anyClientScenario(t *testing.T, addr string, restart func(), opts ...kgo.Opt) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const topic, group, n = "franz.any-client", "franz-group", 1000

	admin := newClient(t, addr, opts...)
	createTopic(ctx, t, admin, topic, 3)
	produce(ctx, t, admin, topic, "v", n)

	cons := newClient(t, addr, append(opts, kgo.ConsumeTopics(topic), kgo.ConsumerGroup(group),
		kgo.DisableAutoCommit(), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))...)
	got := consumeN(ctx, t, cons, n)
	keyPart := map[string]int32{}
	for v, p := range got {
		if !strings.HasPrefix(v, "v-") {
			t.Fatalf("unexpected record %q", v)
		}
		var i int
		fmt.Sscanf(v, "v-%d", &i)
		k := fmt.Sprintf("k%d", i%37)
		if q, ok := keyPart[k]; ok && q != p {
			t.Errorf("key %s on partitions %d and %d", k, q, p)
		}
		keyPart[k] = p
	}
	if err := cons.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatalf("commit: %v", err)
	}
	cons.Close()
	before := committedOffsets(ctx, t, admin, group, topic)
	var sum int64
	for _, o := range before {
		sum += o
	}
	if sum != n {
		t.Errorf("committed offsets %v sum to %d, want %d", before, sum, n)
	}
	admin.Close()

	restart()

	admin2 := newClient(t, addr, opts...)
	if got := partitionCount(ctx, t, admin2, topic); got != 3 {
		t.Errorf("after restart %s has %d partitions, want 3", topic, got)
	}
	if after := committedOffsets(ctx, t, admin2, group, topic); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("committed offsets after restart = %v, want %v", after, before)
	}
	all := newClient(t, addr, append(opts, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(200*time.Millisecond))...)
	again := consumeN(ctx, t, all, n)
	for v, p := range got {
		if q, ok := again[v]; !ok || q != p {
			t.Fatalf("after restart record %s: partition %d present %v, want partition %d", v, q, ok, p)
		}
	}
	// The group resumes after its committed offsets.
	produce(ctx, t, admin2, topic, "after", 10)
	resumed := newClient(t, addr, append(opts, kgo.ConsumeTopics(topic), kgo.ConsumerGroup(group),
		kgo.DisableAutoCommit(), kgo.FetchMaxWait(200*time.Millisecond))...)
	for v := range consumeN(ctx, t, resumed, 10) {
		if !strings.HasPrefix(v, "after-") {
			t.Fatalf("group redelivered %q after restart", v)
		}
	}
}

// TestAnyClient proves `aelp broker` is a Kafka endpoint for a client that
// is not kafka-go: franz-go creates a topic, produces, consumes in a group,
// and finds records and committed offsets after a restart on the same
// DataDir and port. With AELP_TEST_KAFKA=real the same scenario also runs
// against Apache Kafka, as the reference the embedded broker must match.
func TestAnyClient(t *testing.T) {
	t.Run("embedded", func(t *testing.T) {
		dir := t.TempDir()
		b := start(t, broker.Config{Listen: "127.0.0.1:0", DataDir: dir})
		addr := b.Addrs()[0]
		anyClientScenario(t, addr, func() {
			b.Close()
			start(t, broker.Config{Listen: addr, DataDir: dir})
		})
	})
	t.Run("real-kafka-reference", func(t *testing.T) {
		kafkatest.RequireReal(t)
		c := kafkatest.Start(t, kafkatest.Options{})
		anyClientScenario(t, c.Addr(), func() { c.Restart(t) })
	})
}

func TestDefaultPartitionsAndMemoryOnly(t *testing.T) {
	b := start(t, broker.Config{Listen: "127.0.0.1:0", DefaultPartitions: 4})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl := newClient(t, b.Addrs()[0])
	createTopic(ctx, t, cl, "defaults", -1)
	if got := partitionCount(ctx, t, cl, "defaults"); got != 4 {
		t.Errorf("topic created with -1 partitions has %d, want DefaultPartitions 4", got)
	}
	// Without a DataDir nothing survives a restart.
	addr := b.Addrs()[0]
	cl.Close()
	b.Close()
	start(t, broker.Config{Listen: addr})
	cl2 := newClient(t, addr)
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr("defaults")
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl2)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Topics) != 1 || !errors.Is(kerr.ErrorForCode(resp.Topics[0].ErrorCode), kerr.UnknownTopicOrPartition) {
		t.Errorf("in-memory broker kept topic %q across a restart: %+v", "defaults", resp.Topics)
	}
}

// TestSASLOverTLS checks SCRAM-SHA-512 and PLAIN users over TLS with
// franz-go: right credentials work, a wrong password is refused.
func TestSASLOverTLS(t *testing.T) {
	certs, err := kafkatest.GenerateCerts(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	b := start(t, broker.Config{
		Listen: "127.0.0.1:0",
		TLS:    certs.Server,
		Users: []broker.User{
			{Mechanism: "SCRAM-SHA-512", Username: "scram-user", Password: "scram-pw"},
			{Mechanism: "PLAIN", Username: "plain-user", Password: "plain-pw"},
		},
	})
	caPEM, err := os.ReadFile(certs.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	tlsOpt := kgo.DialTLSConfig(&tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12})
	addr := b.Addrs()[0]
	tests := []struct {
		name   string
		opts   []kgo.Opt
		wantOK bool
	}{
		{"scram right", []kgo.Opt{tlsOpt, kgo.SASL(scram.Auth{User: "scram-user", Pass: "scram-pw"}.AsSha512Mechanism())}, true},
		{"scram wrong password", []kgo.Opt{tlsOpt, kgo.SASL(scram.Auth{User: "scram-user", Pass: "nope"}.AsSha512Mechanism())}, false},
		{"plain right", []kgo.Opt{tlsOpt, kgo.SASL(plain.Auth{User: "plain-user", Pass: "plain-pw"}.AsMechanism())}, true},
		{"plain wrong password", []kgo.Opt{tlsOpt, kgo.SASL(plain.Auth{User: "plain-user", Pass: "nope"}.AsMechanism())}, false},
		{"no sasl", []kgo.Opt{tlsOpt}, false},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cl := newClient(t, addr, append(tt.opts, kgo.RequestRetries(0), kgo.RetryTimeout(time.Second))...)
			topic := fmt.Sprintf("sasl-%d", i)
			req := kmsg.NewPtrCreateTopicsRequest()
			rt := kmsg.NewCreateTopicsRequestTopic()
			rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, 1, 1
			req.Topics = append(req.Topics, rt)
			resp, err := req.RequestWith(ctx, cl)
			if err == nil {
				err = kerr.ErrorForCode(resp.Topics[0].ErrorCode)
			}
			if tt.wantOK {
				if err != nil {
					t.Fatalf("create topic: %v", err)
				}
				produce(ctx, t, cl, topic, "tls", 5)
				return
			}
			if err == nil {
				t.Fatal("request with bad credentials succeeded")
			}
			if ctx.Err() != nil {
				t.Errorf("bad credentials ran into the deadline: %v", err)
			}
		})
	}
}
