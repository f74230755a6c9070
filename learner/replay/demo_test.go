package replay

import (
	"bytes"
	"errors"
	"math"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// demoOutput is the parsed output of RunDemo.
type demoOutput struct {
	batchK, batchN          int
	batchPct                float64
	isShare, uniShare       float64 // percent
	formula, masses         float64 // percent
	floor                   bool
	wMean, wStd, wMin, wMax float64
	crisisW, regularW       float64
	hasItemWeights, hasNote bool
	population, crisisN     int
	crisisFrac              float64
}

// parseDemo parses RunDemo's output; every numbered line must be present.
func parseDemo(t *testing.T, out string) demoOutput {
	t.Helper()
	var d demoOutput
	num := func(s string) float64 {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			t.Fatalf("parse %q: %v", s, err)
		}
		return v
	}
	match := func(re string) []string {
		m := regexp.MustCompile(`(?m)^` + re + `$`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("output has no line matching %q:\n%s", re, out)
		}
		return m
	}
	f := `([0-9]+(?:\.[0-9]+)?)`
	m := match(`Replay buffer demo: population ([0-9]+), crisis fraction ` + f + ` \(([0-9]+) crisis\), batch [0-9]+, [0-9]+ batches, seed [0-9]+`)
	d.population, d.crisisFrac, d.crisisN = int(num(m[1])), num(m[2]), int(num(m[3]))
	m = match(`Crisis parents in batch: ([0-9]+)/([0-9]+) \(` + f + `%\)`)
	d.batchK, d.batchN, d.batchPct = int(num(m[1])), int(num(m[2])), num(m[3])
	d.isShare = num(match(`Mean crisis share with importance sampling: ` + f + `%`)[1])
	d.uniShare = num(match(`Mean crisis share without importance sampling: ` + f + `%`)[1])
	d.formula = num(match(`Expected crisis share \(formula\): ` + f + `%`)[1])
	d.masses = num(match(`Expected crisis share \(buffer masses\): ` + f + `%`)[1])
	d.floor = match(`Floor active: (true|false)`)[1] == "true"
	m = match(`IS weights: mean ` + f + ` std ` + f + ` min ` + f + ` max ` + f)
	d.wMean, d.wStd, d.wMin, d.wMax = num(m[1]), num(m[2]), num(m[3]), num(m[4])
	if m := regexp.MustCompile(`(?m)^IS weight of a crisis item: ` + f + `, of a regular item: ` + f + `$`).FindStringSubmatch(out); m != nil {
		d.crisisW, d.regularW, d.hasItemWeights = num(m[1]), num(m[2]), true
	}
	d.hasNote = strings.Contains(out, `Note: the original design quoted "~25%"`)
	return d
}

func TestRunDemoOutputIsConsistent(t *testing.T) {
	base := DefaultDemoConfig()
	floored := base
	floored.Weight, floored.CrisisFraction, floored.Population = 1, 0.01, 20_000
	heavy := base
	heavy.Weight, heavy.Alpha, heavy.Beta, heavy.Seed = 14.6, 0.6, 1, 7
	tests := []struct {
		name string
		cfg  DemoConfig
	}{
		{"defaults", base},
		{"floored", floored},
		{"w14.6 beta1", heavy},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			var buf bytes.Buffer
			if err := RunDemo(&buf, cfg); err != nil {
				t.Fatal(err)
			}
			d := parseDemo(t, buf.String())
			f := cfg.CrisisFraction
			if d.population != cfg.Population || d.crisisN != int(math.Round(f*float64(cfg.Population))) {
				t.Errorf("population %d crisis %d, want %d %v", d.population, d.crisisN, cfg.Population, f*float64(cfg.Population))
			}
			// The single batch: k/n and its percentage agree.
			if d.batchN != cfg.BatchSize || math.Abs(100*float64(d.batchK)/float64(d.batchN)-d.batchPct) > 0.05 {
				t.Errorf("batch line %d/%d (%v%%) inconsistent", d.batchK, d.batchN, d.batchPct)
			}
			// Expected share: formula, or the floor when it applies.
			want := ExpectedCrisisShare(f, cfg.Weight, cfg.Alpha, cfg.Temperature)
			if math.Abs(d.formula-100*want) > 0.005 {
				t.Errorf("formula share %v%%, want %.4f%%", d.formula, 100*want)
			}
			if d.floor != (want < DefaultMinCrisisRatio) {
				t.Errorf("floor active %t, formula share %v", d.floor, want)
			}
			if want < DefaultMinCrisisRatio {
				want = DefaultMinCrisisRatio
			}
			if math.Abs(d.masses-100*want) > 0.005 {
				t.Errorf("buffer-mass share %v%%, want %.4f%%", d.masses, 100*want)
			}
			// Measured shares within 3 binomial SE (+ printing rounding).
			n := float64(cfg.Batches * cfg.BatchSize)
			if se := math.Sqrt(want * (1 - want) / n); math.Abs(d.isShare/100-want) > 3*se+5e-5 {
				t.Errorf("IS share %v%%, want %.2f%% ± %.2f", d.isShare, 100*want, 300*se)
			}
			if se := math.Sqrt(f * (1 - f) / n); math.Abs(d.uniShare/100-f) > 3*se+5e-5 {
				t.Errorf("uniform share %v%%, want %.2f%% ± %.2f", d.uniShare, 100*f, 300*se)
			}
			// Item weights: regular items hold P_min, so weight 1; crisis
			// items (P_c/P_r)^(−β).
			if !d.hasItemWeights {
				t.Fatal("no item weight line")
			}
			ratio := math.Pow(cfg.Weight, cfg.Alpha/cfg.Temperature)
			if d.floor {
				ratio = (DefaultMinCrisisRatio / f) / ((1 - DefaultMinCrisisRatio) / (1 - f))
			}
			if wc := math.Pow(ratio, -cfg.Beta); math.Abs(d.crisisW-wc) > 5e-5 || d.regularW != 1 {
				t.Errorf("item weights crisis %v regular %v, want %.4f 1", d.crisisW, d.regularW, wc)
			}
			// Weight statistics: two values, so mean and std follow from the share.
			s := d.isShare / 100
			if math.Abs(d.wMin-d.crisisW) > 1e-9 || d.wMax != 1 {
				t.Errorf("weight min/max %v %v, want %v 1", d.wMin, d.wMax, d.crisisW)
			}
			if wantMean := s*d.crisisW + (1 - s); math.Abs(d.wMean-wantMean) > 2e-4 {
				t.Errorf("weight mean %v, want %v from the share", d.wMean, wantMean)
			}
			if wantStd := math.Sqrt(s*(1-s)) * (1 - d.crisisW); math.Abs(d.wStd-wantStd) > 2e-4 {
				t.Errorf("weight std %v, want %v from the share", d.wStd, wantStd)
			}
			if !d.hasNote {
				t.Error("explanatory note missing")
			}
			// Same config, same output.
			var again bytes.Buffer
			if err := RunDemo(&again, cfg); err != nil {
				t.Fatal(err)
			}
			if again.String() != buf.String() {
				t.Error("two runs with the same seed differ")
			}
		})
	}
}

func TestRunDemoErrors(t *testing.T) {
	bad := []func(*DemoConfig){
		func(c *DemoConfig) { c.BatchSize = 0 },
		func(c *DemoConfig) { c.Batches = 0 },
		func(c *DemoConfig) { c.Population = 0 },
		func(c *DemoConfig) { c.CrisisFraction = 1.5 },
		func(c *DemoConfig) { c.Weight = 0 },
		func(c *DemoConfig) { c.Temperature = -1 },
	}
	for k, modify := range bad {
		cfg := DefaultDemoConfig()
		cfg.Population = 100
		modify(&cfg)
		if err := RunDemo(&bytes.Buffer{}, cfg); err == nil {
			t.Errorf("case %d: RunDemo(%+v) = nil, want an error", k, cfg)
		}
	}
	cfg := DefaultDemoConfig()
	cfg.Population, cfg.Batches = 100, 2
	if err := RunDemo(failWriter{}, cfg); !errors.Is(err, errWrite) {
		t.Errorf("RunDemo to a failing writer = %v, want %v", err, errWrite)
	}
	if err := ShareTable(failWriter{}); !errors.Is(err, errWrite) {
		t.Errorf("ShareTable to a failing writer = %v, want %v", err, errWrite)
	}
	// One segment empty: the item-weight line says so.
	cfg.CrisisFraction = 0
	var buf bytes.Buffer
	if err := RunDemo(&buf, cfg); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "IS weight of a crisis item: n/a") {
		t.Errorf("no-crisis demo output lacks the n/a line:\n%s", buf.String())
	}
}

var errWrite = errors.New("write failed")

// failWriter fails every write.
type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errWrite }

func TestShareTable(t *testing.T) {
	var buf bytes.Buffer
	if err := ShareTable(&buf); err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile(`(?m)^\| ([0-9.]+) \| ([0-9.]+) \| ([0-9.]+) \| ([0-9.]+)% \| ([0-9.]+)% \| ([0-9.]+)% \|$`)
	rows := row.FindAllStringSubmatch(buf.String(), -1)
	if len(rows) != len(ShareTableWeights)*len(ShareTableAlphas) {
		t.Fatalf("%d rows, want %d:\n%s", len(rows), len(ShareTableWeights)*len(ShareTableAlphas), buf.String())
	}
	known := map[[2]string]string{ // (w, α) → share, from the design
		{"5", "0.6"}: "22.6", {"14.6", "0.6"}: "35.7", {"1", "0.6"}: "10.0", {"5", "1.0"}: "35.7",
	}
	for _, r := range rows {
		w, _ := strconv.ParseFloat(r[1], 64)
		a, _ := strconv.ParseFloat(r[2], 64)
		want := 100 * ExpectedCrisisShare(0.1, w, a, 1)
		for col := 4; col <= 6; col++ {
			got, _ := strconv.ParseFloat(r[col], 64)
			tol := 0.051 // printed to 0.1
			if col == 6 {
				tol = 0.2 // measured over 20,000 stratified draws
			}
			if math.Abs(got-want) > tol {
				t.Errorf("w %v α %v column %d: %v%%, want %.2f%%", w, a, col, got, want)
			}
		}
		if s, ok := known[[2]string{r[1], r[2]}]; ok && r[4] != s {
			t.Errorf("w %s α %s: formula share %s%%, want %s%%", r[1], r[2], r[4], s)
		}
	}
}
