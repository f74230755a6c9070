//go:build race

package sim

func init() {
	// The race detector slows the simulator about tenfold; 60k users still
	// put the ±1 pp and ±3 pp calibration tolerances beyond 8 and 4
	// standard errors. Without -race the test runs 100k users.
	calibrationUsers = 100_000
	raceEnabled = true
}
