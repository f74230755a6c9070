package replay

import (
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
)

// DemoConfig configures RunDemo, the logic behind `aelp demo`.
type DemoConfig struct {
	// Weight is the crisis priority weight w (regular items have weight 1).
	// Default 5.
	Weight float64
	// Alpha is the prioritisation exponent α. Default 0.6.
	Alpha float64
	// Beta is the IS exponent β, held fixed for the demo. Default 0.4.
	Beta float64
	// Temperature is T. Default 1.
	Temperature float64
	// BatchSize is the number of draws per batch. Default 32.
	BatchSize int
	// Batches is the number of batches averaged. Default 1,000.
	Batches int
	// Population is the number of items in the buffer (its capacity).
	// Default 50,000.
	Population int
	// CrisisFraction is the fraction of crisis items in the population,
	// in [0, 1]. Default 0.1.
	CrisisFraction float64
	// Seed seeds every random source of the demo. Default 1.
	Seed uint64
}

// DefaultDemoConfig returns the demo's defaults: w = 5, α = 0.6, β = 0.4,
// T = 1, batches of 32, 1,000 batches, 50,000 items, 10% crisis.
func DefaultDemoConfig() DemoConfig {
	return DemoConfig{
		Weight:         DefaultCrisisWeight,
		Alpha:          DefaultAlpha,
		Beta:           DefaultBeta0,
		Temperature:    DefaultTemperature,
		BatchSize:      32,
		Batches:        1000,
		Population:     50_000,
		CrisisFraction: 0.1,
		Seed:           1,
	}
}

// Validate reports the demo fields that are out of range; the buffer's own
// Validate checks the rest when RunDemo builds it.
func (c DemoConfig) Validate() error {
	var errs []error
	if c.BatchSize < 1 {
		errs = append(errs, fmt.Errorf("replay demo: batch size %d must be at least 1", c.BatchSize))
	}
	if c.Batches < 1 {
		errs = append(errs, fmt.Errorf("replay demo: batches %d must be at least 1", c.Batches))
	}
	if c.Population < 1 {
		errs = append(errs, fmt.Errorf("replay demo: population %d must be at least 1", c.Population))
	}
	if !(c.CrisisFraction >= 0 && c.CrisisFraction <= 1) {
		errs = append(errs, fmt.Errorf("replay demo: crisis fraction %v must be in [0, 1]", c.CrisisFraction))
	}
	return errors.Join(errs...)
}

// bufferConfig returns the buffer configuration of the demo, importance
// sampling on or off.
func (c DemoConfig) bufferConfig(uniform bool) Config {
	bc := DefaultConfig()
	bc.Capacity = c.Population
	bc.CrisisWeight = c.Weight
	bc.Alpha = c.Alpha
	bc.Temperature = c.Temperature
	bc.Beta0 = c.Beta // step 0 throughout, so β = Beta
	bc.Uniform = uniform
	return bc
}

// demoRun holds what one buffer produced over the demo's batches.
type demoRun struct {
	first      Batch[int] // the first batch drawn
	crisisDraw int        // crisis items over all batches
	draws      int        // items over all batches
	wSum, wSS  float64    // Σw and Σw² over all draws
	wMin, wMax float64
}

// share returns the crisis share over all batches.
func (r *demoRun) share() float64 { return float64(r.crisisDraw) / float64(r.draws) }

// runBatches draws cfg.Batches batches from buf.
func runBatches(buf *Buffer[int], cfg DemoConfig) (demoRun, error) {
	r := demoRun{wMin: math.Inf(1), wMax: math.Inf(-1)}
	var batch Batch[int]
	for k := range cfg.Batches {
		if err := buf.Sample(&batch, cfg.BatchSize); err != nil {
			return r, err
		}
		if k == 0 {
			r.first = Batch[int]{
				Items:   append([]int(nil), batch.Items...),
				Weights: append([]float64(nil), batch.Weights...),
				Indices: append([]int(nil), batch.Indices...),
				Probs:   append([]float64(nil), batch.Probs...),
				Crisis:  append([]bool(nil), batch.Crisis...),
			}
		}
		for j, w := range batch.Weights {
			if batch.Crisis[j] {
				r.crisisDraw++
			}
			r.draws++
			r.wSum += w
			r.wSS += w * w
			r.wMin = math.Min(r.wMin, w)
			r.wMax = math.Max(r.wMax, w)
		}
	}
	return r, nil
}

// fillDemo adds cfg.Population items, exactly round(f·Population) of them
// crisis items, in a random order; item k is the integer k. It returns the
// slot of one crisis item and one regular item (−1 when there is none).
func fillDemo(buf *Buffer[int], cfg DemoConfig, rng *rand.Rand) (crisisSlot, regularSlot int) {
	nc := int(math.Round(cfg.CrisisFraction * float64(cfg.Population)))
	isCrisis := make([]bool, cfg.Population)
	for k := range nc {
		isCrisis[k] = true
	}
	rng.Shuffle(len(isCrisis), func(i, j int) { isCrisis[i], isCrisis[j] = isCrisis[j], isCrisis[i] })
	crisisSlot, regularSlot = -1, -1
	for k, c := range isCrisis {
		i := buf.Add(k, c)
		switch {
		case c && crisisSlot < 0:
			crisisSlot = i
		case !c && regularSlot < 0:
			regularSlot = i
		}
	}
	return crisisSlot, regularSlot
}

// RunDemo shows the crisis oversampling at work and writes a report to w.
// It fills a buffer of cfg.Population items, a fraction cfg.CrisisFraction of
// them crisis items, and draws cfg.Batches batches of cfg.BatchSize with
// importance sampling and, from an identical buffer, without it (uniform
// mode). It prints one batch's crisis count, the mean crisis share of both,
// the expected share from ExpectedCrisisShare and from the buffer's tree
// masses (after the MinCrisisRatio floor, DefaultMinCrisisRatio), the
// statistics of every IS weight drawn, and the IS weight of a crisis and of
// a regular item. Every figure is computed; the output is a function of cfg
// (including Seed) alone.
func RunDemo(w io.Writer, cfg DemoConfig) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	src := rand.New(rand.NewPCG(cfg.Seed, 0x5eed_de30))
	fillRNG := rand.New(rand.NewPCG(src.Uint64(), src.Uint64()))
	isRNG := rand.New(rand.NewPCG(src.Uint64(), src.Uint64()))
	uniRNG := rand.New(rand.NewPCG(src.Uint64(), src.Uint64()))

	is, err := New[int](cfg.bufferConfig(false), isRNG)
	if err != nil {
		return fmt.Errorf("replay demo: %w", err)
	}
	uni, err := New[int](cfg.bufferConfig(true), uniRNG)
	if err != nil {
		return fmt.Errorf("replay demo: %w", err)
	}
	crisisSlot, regularSlot := fillDemo(is, cfg, fillRNG)
	// Same population, same order, for the uniform buffer.
	for i := range is.Len() {
		uni.Add(is.Get(i), is.IsCrisis(i))
	}

	isRun, err := runBatches(is, cfg)
	if err != nil {
		return fmt.Errorf("replay demo: %w", err)
	}
	uniRun, err := runBatches(uni, cfg)
	if err != nil {
		return fmt.Errorf("replay demo: %w", err)
	}
	st := is.Stats()
	expected := ExpectedCrisisShare(st.CrisisFraction, cfg.Weight, cfg.Alpha, cfg.Temperature)

	k := 0
	for _, c := range isRun.first.Crisis {
		if c {
			k++
		}
	}
	n := float64(isRun.draws)
	mean := isRun.wSum / n
	std := math.Sqrt(math.Max(0, isRun.wSS/n-mean*mean))

	p := &printer{w: w}
	p.printf("Replay buffer demo: population %d, crisis fraction %.4f (%d crisis), batch %d, %d batches, seed %d\n",
		st.Size, st.CrisisFraction, st.CrisisCount, cfg.BatchSize, cfg.Batches, cfg.Seed)
	p.printf("Crisis weight: %g (regular 1), alpha %g, temperature %g, beta %g, min crisis ratio %g\n",
		cfg.Weight, cfg.Alpha, cfg.Temperature, is.Beta(), is.Config().MinCrisisRatio)
	p.printf("Crisis parents in batch: %d/%d (%.1f%%)\n", k, cfg.BatchSize, 100*float64(k)/float64(cfg.BatchSize))
	p.printf("Mean crisis share with importance sampling: %.2f%%\n", 100*isRun.share())
	p.printf("Mean crisis share without importance sampling: %.2f%%\n", 100*uniRun.share())
	p.printf("Expected crisis share (formula): %.2f%%\n", 100*expected)
	p.printf("Expected crisis share (buffer masses): %.2f%%\n", 100*st.ExpectedBatchCrisisRatio)
	p.printf("Floor active: %t\n", st.FloorActive)
	p.printf("IS weights: mean %.4f std %.4f min %.4f max %.4f\n", mean, std, isRun.wMin, isRun.wMax)
	if crisisSlot >= 0 && regularSlot >= 0 {
		p.printf("IS weight of a crisis item: %.4f, of a regular item: %.4f\n",
			is.Weight(crisisSlot), is.Weight(regularSlot))
	} else {
		p.printf("IS weight of a crisis item: n/a, of a regular item: n/a (one segment is empty)\n")
	}
	if cfg.Alpha > 0 {
		w5 := math.Pow(5, cfg.Temperature/cfg.Alpha)
		p.printf("Note: the original design quoted \"~25%%\" for w = 5; w is a priority, raised to α/T, so the "+
			"probability ratio is w^(α/T) = %.3f. A probability ratio of 5 needs w = 5^(T/α) = %.1f, giving %.1f%%.\n",
			math.Pow(cfg.Weight, cfg.Alpha/cfg.Temperature), w5,
			100*ExpectedCrisisShare(st.CrisisFraction, w5, cfg.Alpha, cfg.Temperature))
	}
	return p.err
}

// printer writes formatted lines and keeps the first error.
type printer struct {
	w   io.Writer
	err error
}

// printf writes one formatted string unless an earlier write failed.
func (p *printer) printf(format string, args ...any) {
	if p.err != nil {
		return
	}
	_, p.err = fmt.Fprintf(p.w, format, args...)
}

// ShareTableWeights and ShareTableAlphas are the rows of ShareTable.
var (
	// ShareTableWeights are the crisis weights tabulated by ShareTable.
	ShareTableWeights = []float64{1, 2, 5, 10, 14.6}
	// ShareTableAlphas are the exponents α tabulated by ShareTable.
	ShareTableAlphas = []float64{0.6, 1.0}
)

// ShareTable writes a markdown table of the expected crisis share of a
// batch at crisis fraction f = 0.1 and T = 1 for each weight in
// ShareTableWeights and α in ShareTableAlphas. Each row gives the formula
// ExpectedCrisisShare, the share ρ_c read from the tree masses of a 10,000-
// item buffer with 1,000 crisis items, and the share measured over 20,000
// stratified draws from it (seeded, so the output is fixed).
func ShareTable(w io.Writer) error {
	const (
		f       = 0.1
		size    = 10_000
		batch   = 1000
		batches = 20
	)
	p := &printer{w: w}
	p.printf("| crisis weight w | α | probability ratio w^(α/T) | expected share (formula) | buffer ρ_c | measured (%d draws) |\n", batch*batches)
	p.printf("|---:|---:|---:|---:|---:|---:|\n")
	var b Batch[int]
	for _, alpha := range ShareTableAlphas {
		for _, wt := range ShareTableWeights {
			cfg := DefaultConfig()
			cfg.Capacity = size
			cfg.CrisisWeight = wt
			cfg.Alpha = alpha
			buf, err := New[int](cfg, rand.New(rand.NewPCG(1, 2)))
			if err != nil {
				return fmt.Errorf("share table: %w", err)
			}
			for k := range size {
				buf.Add(k, k%10 == 0) // exactly f = 0.1
			}
			nc := 0
			for range batches {
				if err := buf.Sample(&b, batch); err != nil {
					return fmt.Errorf("share table: %w", err)
				}
				for _, c := range b.Crisis {
					if c {
						nc++
					}
				}
			}
			p.printf("| %g | %.1f | %.3f | %.1f%% | %.1f%% | %.1f%% |\n",
				wt, alpha, math.Pow(wt, alpha), 100*ExpectedCrisisShare(f, wt, alpha, 1),
				100*buf.Stats().ExpectedBatchCrisisRatio, 100*float64(nc)/float64(batch*batches))
		}
	}
	return p.err
}
