package kafkaxtest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aelp/aelp/internal/kafkax"
	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Client returns a plain kgo client of cfg's brokers with opts, closed
// when the test ends.
func Client(t testing.TB, cfg kafkax.Config, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl := newClient(t, cfg, opts...)
	t.Cleanup(cl.Close)
	return cl
}

func newClient(t testing.TB, cfg kafkax.Config, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	base, err := cfg.KgoOptions(zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// ConsumeAll reads n records of topic from the start with a plain kgo
// consumer (a client that keeps null and empty apart, independent of
// kafkax's readers). It fails the test on a fetch error or when ctx ends
// first.
func ConsumeAll(t testing.TB, ctx context.Context, cfg kafkax.Config, topic string, n int) []*kgo.Record {
	t.Helper()
	cl := newClient(t, cfg, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(200*time.Millisecond))
	defer cl.Close()
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %s: %d of %d records: %v", topic, len(out), n, ctx.Err())
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("read %s/%d: %v", topic, p, err) })
		out = append(out, fs.Records()...)
	}
	return out
}

// WantError fails the test unless err is nil when want is empty, or an
// error whose text contains want otherwise; call names what returned err
// ("Validate()").
func WantError(t testing.TB, call string, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Errorf("%s = %v, want nil", call, err)
	case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
		t.Errorf("%s = %v, want an error containing %q", call, err, want)
	}
}
