package bench

import (
	"fmt"
	"io"
	"math"
	"text/tabwriter"
	"time"
)

// Row is one line of the bench table.
type Row struct {
	// Stage names what was measured.
	Stage string
	// Aelp and Raw are the figures (records per second, or for latency
	// rows the p50 in seconds); Raw is NaN without a baseline.
	Aelp, Raw float64
	// AelpText and RawText are the printed figures.
	AelpText, RawText string
	// Baseline says what the raw figure measured.
	Baseline string
	// Latency marks latency rows: lower is better, and the ratio
	// aelp/raw of the medians says how many times longer aelp takes.
	Latency bool
}

// Ratio returns Aelp/Raw (NaN without a baseline).
func (r Row) Ratio() float64 {
	if math.IsNaN(r.Raw) || r.Raw == 0 {
		return math.NaN()
	}
	return r.Aelp / r.Raw
}

// Stage names of the rows, for callers that look rows up.
const (
	StageSimulate   = "simulate → raw topic"
	StageAggregate  = "aggregate: consume, decode, tag, publish, commit"
	StageLearn      = "learn ingest, default schedule (1 sample/insert)"
	StageLearnFast  = "learn ingest, 1/64 sample per insert"
	StageUpdates    = "learn PPO updates (batch 256), default schedule"
	StageDecode     = "decode+validate TaggedExperience, 1 goroutine"
	StageToTagged   = "latency produce → tagged record readable"
	StageFirstUse   = "latency produce → first use in a batch"
	StageJoin       = "join: decisions + outcomes → experiences"
	StageJoinWindow = "latency window end → joined experience readable"
	baselineJoin    = "pass-through of the same decisions and outcomes, no decoding"
	baselineProduce = "kafka-go writer, pre-encoded records of the same sizes"
	baselinePass    = "pass-through: consume + produce the same bytes, no decoding"
	baselineConsume = "partition readers of the tagged topic, no decoding"
	baselineTwoHops = "produce → pass-through → consume (2 hops), same rate and sizes"
)

func rate(m Measure) string { return fmt.Sprintf("%.0f/s", m.Rate()) }

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }

func latencyText(l Latency) string { return ms(l.P50) + " / " + ms(l.P99) }

// Rows returns the bench table's rows. Rows whose phase was skipped are
// left out.
func (r Report) Rows() []Row {
	rows := []Row{
		{Stage: StageSimulate, Aelp: r.Simulate.Rate(), Raw: r.RawProduce.Rate(), AelpText: rate(r.Simulate), RawText: rate(r.RawProduce), Baseline: baselineProduce},
		{Stage: StageAggregate, Aelp: r.Aggregate.Rate(), Raw: r.PassThrough.Rate(), AelpText: rate(r.Aggregate), RawText: rate(r.PassThrough), Baseline: baselinePass},
		{Stage: StageLearn, Aelp: r.Learn.Rate(), Raw: r.RawConsume.Rate(), AelpText: rate(r.Learn), RawText: rate(r.RawConsume), Baseline: baselineConsume},
		{Stage: StageLearnFast, Aelp: r.LearnFast.Rate(), Raw: r.RawConsume.Rate(), AelpText: rate(r.LearnFast), RawText: rate(r.RawConsume), Baseline: baselineConsume},
		{Stage: StageJoin, Aelp: r.Join.Rate(), Raw: r.JoinPass.Rate(), AelpText: rate(r.Join.Measure), RawText: rate(r.JoinPass), Baseline: baselineJoin},
	}
	ups := r.LearnUpdates
	rows = append(rows,
		Row{Stage: StageUpdates, Aelp: ups.Rate(), Raw: math.NaN(), AelpText: fmt.Sprintf("%.1f/s (%.0f samples/s)", ups.Rate(), 256*ups.Rate()), RawText: "—", Baseline: "(no Kafka analogue)"},
		Row{Stage: StageDecode, Aelp: r.Decode.Rate(), Raw: math.NaN(), AelpText: rate(r.Decode), RawText: "—", Baseline: "(the learner's readers decode in parallel, one per partition)"},
	)
	if r.ToTagged.Records > 0 {
		rows = append(rows,
			Row{Stage: StageToTagged + " (p50 / p99)", Aelp: r.ToTagged.P50.Seconds(), Raw: r.RawLatency.P50.Seconds(),
				AelpText: latencyText(r.ToTagged), RawText: latencyText(r.RawLatency), Baseline: baselineTwoHops, Latency: true},
			Row{Stage: StageFirstUse + " (p50 / p99)", Aelp: r.FirstUse.P50.Seconds(), Raw: r.RawLatency.P50.Seconds(),
				AelpText: latencyText(r.FirstUse), RawText: latencyText(r.RawLatency), Baseline: baselineTwoHops, Latency: true},
		)
	}
	if r.JoinLatency.Records > 0 {
		rows = append(rows, Row{Stage: StageJoinWindow + " (p50 / p99)", Aelp: r.JoinLatency.P50.Seconds(), Raw: math.NaN(),
			AelpText: latencyText(r.JoinLatency), RawText: "—", Latency: true,
			Baseline: fmt.Sprintf("(window %s, grace %s: the watermark trails the stream by the grace)", JoinLatencyWindow, JoinLatencyGrace)})
	}
	return rows
}

// Print writes the bench table and the notes that say how each figure was
// measured.
func (r Report) Print(w io.Writer) {
	c := r.Config
	where := fmt.Sprintf("brokers %v", r.Brokers)
	if r.Embedded {
		where = fmt.Sprintf("the embedded broker %v", r.Brokers)
	}
	fmt.Fprintf(w, "\naelp bench on %s: %d users (%d records; Experience %.0f B, TaggedExperience %.0f B), %d partitions, %d simulator workers; %.0fs\n\n",
		where, c.Users, r.Simulate.Records, r.RawSize, r.TaggedSize, c.Partitions, c.Workers, r.Elapsed.Seconds())
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "stage\taelp\traw kafka-go, same run\taelp/raw\tbaseline\n")
	for _, row := range r.Rows() {
		ratio := "—"
		if x := row.Ratio(); !math.IsNaN(x) {
			ratio = fmt.Sprintf("%.2f", x)
			if row.Latency {
				ratio = fmt.Sprintf("%.1f× (p50)", x)
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", row.Stage, row.AelpText, row.RawText, ratio, row.Baseline)
	}
	tw.Flush()
	fmt.Fprintf(w, "\nHow: stages run one after another on the previous stage's output; simulate and the raw writer time\n")
	fmt.Fprintf(w, "from the first write to the last acknowledgement (acks=all, lz4, %d goroutines × 512-record slices);\n", c.Workers)
	fmt.Fprintf(w, "the aggregator and the pass-through are timed from their first published batch to the last commit\n")
	fmt.Fprintf(w, "(excluding the group join and the first batch); the learner is a bounded run (start to final\n")
	fmt.Fprintf(w, "checkpoint-less exit) whose ingest the rate limiter paces to training at 1 sample per insert.\n")
	fmt.Fprintf(w, "The join reads a live simulator stream (%d decisions, %d outcomes; %d users arriving at %g/s of event time, the\n",
		r.Join.Decisions, r.Join.Outcomes, max(1, c.Users/joinUserShare), joinArrivalRate)
	fmt.Fprintf(w, "default 10m window), %d rounds in turn, summed: it and its pass-through count input records from their first\n", joinRounds)
	fmt.Fprintf(w, "poll; the join is flushed once it has read them all and timed to its last experience written (%d of %d\n",
		r.Join.ByWatermark, r.Join.Decisions)
	fmt.Fprintf(w, "emitted by a watermark).\n")
	if r.ToTagged.Records > 0 {
		fmt.Fprintf(w, "Latency phase: simulate → aggregate → learn running together at %.0f records/s for %s (%d records);\n",
			r.StreamRate.Rate(), c.LatencyDuration, r.StreamRate.Records)
		fmt.Fprintf(w, "latency runs from the experience's timestamp (millisecond resolution, set when simulated) to the\n")
		fmt.Fprintf(w, "tagged record's arrival at a probe reader (exact percentiles over %d records), and to its first\n", r.ToTagged.Records)
		fmt.Fprintf(w, "draw into a training batch (%d first uses, percentiles interpolated within the learner's factor-2\n", r.FirstUse.Records)
		fmt.Fprintf(w, "histogram buckets aelp_learn_first_use_latency_seconds; first use waits for the sampler to pick the\n")
		fmt.Fprintf(w, "item out of a buffer of up to 50,000, so it measures replay, not Kafka). Raw pass: %d records at %.0f/s.\n",
			r.RawLatencyRate.Records, r.RawLatencyRate.Rate())
	}
	if r.JoinLatency.Records > 0 {
		fmt.Fprintf(w, "Join latency: decisions stamped with the wall clock and an impression each, %.0f records/s for %s; from\n",
			r.JoinStreamRate.Rate(), c.LatencyDuration)
		fmt.Fprintf(w, "each decision's timestamp + window to its experience's arrival at a reader (%d experiences, exact percentiles).\n",
			r.JoinLatency.Records)
	}
}
