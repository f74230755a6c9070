package bench_test

import (
	"testing"

	"github.com/aelp/aelp/app/bench"
)

// measureRuns calls run b.N times (with i = 0, 1, …) and reports the
// records/s of all its runs together: their records over their measured
// time. A run stops the timer around its own set-up; an error fails b.
func measureRuns(b *testing.B, run func(i int) (bench.Measure, error)) {
	b.Helper()
	var total bench.Measure
	for i := range b.N {
		m, err := run(i)
		if err != nil {
			b.Fatal(err)
		}
		total.Records += m.Records
		total.Elapsed += m.Elapsed
	}
	b.ReportMetric(total.Rate(), "records/s")
}
