package bench

import (
	"bytes"
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/aelp/aelp/internal/kafkatest"
	"github.com/aelp/aelp/producers/sim"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"
)

func TestQuantile(t *testing.T) {
	tests := []struct {
		xs   []float64
		q    float64
		want float64
	}{
		{[]float64{1, 2, 3, 4, 5}, 0.5, 3},
		{[]float64{1, 2, 3, 4}, 0.5, 2.5},
		{[]float64{1, 2, 3, 4, 5}, 0, 1},
		{[]float64{1, 2, 3, 4, 5}, 1, 5},
		{[]float64{10, 20}, 0.99, 19.9},
		{[]float64{7}, 0.99, 7},
		{[]float64{0, 100}, 0.25, 25},
	}
	for _, tt := range tests {
		if got := Quantile(tt.xs, tt.q); math.Abs(got-tt.want) > 1e-12 {
			t.Errorf("Quantile(%v, %v) = %v, want %v", tt.xs, tt.q, got, tt.want)
		}
	}
	if got := Quantile(nil, 0.5); !math.IsNaN(got) {
		t.Errorf("Quantile(nil) = %v, want NaN", got)
	}
	for _, bad := range []func(){func() { Quantile([]float64{2, 1}, 0.5) }, func() { Quantile([]float64{1}, 1.5) }} {
		func() {
			defer func() {
				if recover() == nil {
					t.Error("Quantile of unsorted values or q > 1 did not panic")
				}
			}()
			bad()
		}()
	}
}

func TestHistogramQuantile(t *testing.T) {
	h := &dto.Histogram{
		SampleCount: proto.Uint64(100),
		Bucket: []*dto.Bucket{
			{UpperBound: proto.Float64(1), CumulativeCount: proto.Uint64(10)},
			{UpperBound: proto.Float64(2), CumulativeCount: proto.Uint64(60)},
			{UpperBound: proto.Float64(4), CumulativeCount: proto.Uint64(98)},
			{UpperBound: proto.Float64(math.Inf(1)), CumulativeCount: proto.Uint64(100)},
		},
	}
	tests := []struct{ q, want float64 }{
		{0.05, 0.5},          // inside the first bucket, from 0
		{0.5, 1 + 40.0/50},   // rank 50 of 10…60 in (1, 2]
		{0.9, 2 + 2*30.0/38}, // rank 90 of 60…98 in (2, 4]
		{0.99, 4},            // in the +Inf bucket: the highest finite bound
		{0.6, 2},             // exactly the top of a bucket
	}
	for _, tt := range tests {
		if got := histogramQuantile(h, tt.q); math.Abs(got-tt.want) > 1e-12 {
			t.Errorf("histogramQuantile(q=%v) = %v, want %v", tt.q, got, tt.want)
		}
	}
	if got := histogramQuantile(&dto.Histogram{}, 0.5); !math.IsNaN(got) {
		t.Errorf("empty histogram: %v, want NaN", got)
	}
}

func TestMeasureRate(t *testing.T) {
	tests := []struct {
		m    Measure
		want float64
	}{
		{Measure{Records: 1000, Elapsed: 2 * time.Second}, 500},
		{Measure{Records: 5, Elapsed: 0}, 0},
		{Measure{}, 0},
	}
	for _, tt := range tests {
		if got := tt.m.Rate(); got != tt.want {
			t.Errorf("%+v.Rate() = %v, want %v", tt.m, got, tt.want)
		}
	}
	lat := latencyOf([]float64{0.003, 0.001, 0.002})
	if lat.Records != 3 || lat.P50 != 2*time.Millisecond {
		t.Errorf("latencyOf = %+v, want 3 records, p50 2ms", lat)
	}
}

func TestSimRecordsDeterministic(t *testing.T) {
	cfg := sim.DefaultConfig()
	a, err := SimRecords(cfg, "x", 50, 3, true)
	if err != nil {
		t.Fatal(err)
	}
	b, err := SimRecords(cfg, "x", 50, 3, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != len(b) || len(a) < 50 {
		t.Fatalf("got %d and %d records, want equal counts of at least one per user", len(a), len(b))
	}
	for i := range a {
		if string(a[i].Key) != string(b[i].Key) || len(a[i].Value) != len(b[i].Value) {
			t.Fatalf("record %d differs: key %q/%q, size %d/%d", i, a[i].Key, b[i].Key, len(a[i].Value), len(b[i].Value))
		}
	}
	if MeanSize(a) <= 0 {
		t.Errorf("MeanSize = %v, want > 0", MeanSize(a))
	}
}

// TestShortBench runs `aelp bench` small on the embedded broker: every row
// of the table must be there with positive figures. 2,400 users (about
// 18,000 records) make several batches of at most 2,000: the aggregator and
// pass-through rates are timed after their first batch, so one batch alone
// would measure nothing; the join's live stream of a quarter of them
// (about 8,000 records) takes more than one of its polls of at most 4,096.
func TestShortBench(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	rep, err := Run(ctx, Config{
		Kafka: c.Config(), Users: 2400, Rate: 1500, LatencyDuration: 2 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{StageSimulate, StageAggregate, StageLearn, StageLearnFast, StageJoin, StageUpdates, StageDecode, StageToTagged, StageFirstUse, StageJoinWindow}
	rows := rep.Rows()
	if len(rows) != len(want) {
		t.Fatalf("got %d rows, want %d", len(rows), len(want))
	}
	for i, row := range rows {
		if !strings.HasPrefix(row.Stage, want[i]) {
			t.Errorf("row %d is %q, want %q", i, row.Stage, want[i])
		}
		if !(row.Aelp > 0) || math.IsInf(row.Aelp, 0) {
			t.Errorf("row %q: aelp figure %v, want positive", row.Stage, row.Aelp)
		}
		if row.RawText != "—" && !(row.Raw > 0) {
			t.Errorf("row %q: raw figure %v, want positive", row.Stage, row.Raw)
		}
	}
	if rep.Simulate.Records == 0 || rep.RawConsume.Records != rep.Simulate.Records || rep.Learn.Records != rep.Simulate.Records {
		t.Errorf("records: simulated %d, tagged %d, learned %d: want all equal and > 0",
			rep.Simulate.Records, rep.RawConsume.Records, rep.Learn.Records)
	}
	if rep.FirstUse.Records == 0 || rep.ToTagged.Records != rep.StreamRate.Records {
		t.Errorf("latency: %d first uses, %d of %d streamed records probed", rep.FirstUse.Records, rep.ToTagged.Records, rep.StreamRate.Records)
	}
	if rep.Join.Decisions == 0 || rep.Join.Records == 0 || rep.JoinPass.Records == 0 {
		t.Errorf("join: %d experiences (%d by a watermark) over %d records; pass-through %d records: want all > 0",
			rep.Join.Decisions, rep.Join.ByWatermark, rep.Join.Records, rep.JoinPass.Records)
	}
	// Every measured decision's window closed: the experience cannot
	// arrive before its window's end plus the grace.
	if rep.JoinLatency.Records == 0 || rep.JoinLatency.P50 < JoinLatencyGrace {
		t.Errorf("join latency: %d experiences, p50 %s beyond the window; want > 0 and at least the grace %s",
			rep.JoinLatency.Records, rep.JoinLatency.P50, JoinLatencyGrace)
	}
	var out bytes.Buffer
	rep.Print(&out)
	for _, s := range want {
		if !strings.Contains(out.String(), s) {
			t.Errorf("printed table lacks %q", s)
		}
	}
}
