// Package tagger measures the crisis-parent taggers of consumers/classify on
// a simulated stream, in-process and without Kafka: the hand-set rules, the
// learned tagger, and the Bayes limit — the best F1 any tagger reading the
// same signals can reach, from the simulator's exact posterior
// (sim.Posterior). It also measures how far two aggregator group members,
// each learning on its own half of the users, end up apart. `aelp tagger`
// prints its Report.
package tagger

import (
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"slices"

	"github.com/aelp/aelp/consumers/classify"
	"github.com/aelp/aelp/producers/sim"
)

// Config configures Measure.
type Config struct {
	// Users is the number of simulated users (journeys). Default 60,000,
	// aelp run's.
	Users int
	// Workers is the number of simulator streams the users are split over,
	// their records interleaved user by user. Default 2, aelp run's.
	Workers int
	// Seed seeds the simulator. Default 1, aelp run's.
	Seed uint64
	// Sim is the simulator configuration. Default sim.DefaultConfig().
	Sim sim.Config
	// Classifier configures both taggers (its Tagger field is overridden).
	// Default classify.DefaultConfig().
	Classifier classify.Config
	// Policy acts on the stream; nil is the uniform logging policy, whose
	// posterior is exact (sim.Posterior). Another policy's posterior is
	// estimated by Monte Carlo (sim.PolicyPosterior) with Ghosts journeys
	// per segment and user. It must be safe for concurrent use.
	Policy sim.Policy
	// Ghosts is the Monte Carlo posterior's journeys per segment and user.
	// Default 32.
	Ghosts int
}

// DefaultConfig returns aelp run's stream setting.
func DefaultConfig() Config {
	return Config{Users: 60_000, Workers: 2, Seed: 1, Sim: sim.DefaultConfig(), Classifier: classify.DefaultConfig(), Ghosts: 32}
}

// Validate reports the first problem with c.
func (c Config) Validate() error {
	switch {
	case c.Users < 1:
		return fmt.Errorf("tagger: users %d < 1", c.Users)
	case c.Workers < 1:
		return fmt.Errorf("tagger: workers %d < 1", c.Workers)
	case c.Policy != nil && c.Ghosts < 1:
		return fmt.Errorf("tagger: ghosts %d < 1", c.Ghosts)
	}
	if err := c.Sim.Validate(); err != nil {
		return fmt.Errorf("tagger: %w", err)
	}
	if err := c.Classifier.Validate(); err != nil {
		return fmt.Errorf("tagger: %w", err)
	}
	return nil
}

// Row is one tagger's figures on a set of records.
type Row struct {
	// Name names the tagger.
	Name string
	// Metrics are its precision, recall, F1, Brier score and ECE.
	classify.Metrics
}

// Report is the result of Measure.
type Report struct {
	// Users and Records count the stream; Labelled the records with a label.
	Users, Records, Labelled int
	// RecordCrisisShare is the share of crisis records, π: exact under the
	// uniform policy, counted on the stream under another.
	RecordCrisisShare float64
	// Ghosts is the Monte Carlo posterior's journeys per segment and user
	// (0: the posterior is exact, the uniform policy's).
	Ghosts int
	// All are rules, learned and the Bayes limit on every record (labels
	// decide the labelled ones, for all three).
	All [3]Row
	// Unlabelled are the same on the records without a label, the ones a
	// tagger decides.
	Unlabelled [3]Row
	// AfterWarmUp are rules and learned on the unlabelled records that
	// came after the learned tagger's warm-up.
	AfterWarmUp [2]Row
	// BayesExpectedF1 is the Bayes limit on the unlabelled records computed
	// from the posteriors alone (TP = Σ p over the tagged records, and so
	// on): the population figure, free of the sample's luck in the truth.
	BayesExpectedF1 float64
	// BayesThreshold is the posterior threshold of the unlabelled Bayes
	// limit.
	BayesThreshold float64
	// HeldOut is the learned model's calibration on the labelled records,
	// each predicted before it was trained on.
	HeldOutBrier, HeldOutECE float64
	// LearnedThreshold is the learned tagger's final threshold.
	LearnedThreshold float64
	// Weights are the learned model's final weights, in
	// classify.FeatureNames order.
	Weights []float64
	// Members compares two group members, each learning on the users
	// that hash to it, evaluated on every unlabelled record.
	Members MemberDiff
}

// MemberDiff compares the models of two aggregator group members.
type MemberDiff struct {
	// F1 is each member's F1 on the unlabelled records with its own final
	// model and threshold; Single the single model's, by the same rule.
	F1     [2]float64
	Single float64
	// MeanAbsDiff and MaxAbsDiff are the mean and largest |p₀ − p₁| of the
	// two members' final models over the unlabelled records; Disagree the
	// share of them the two members tag differently.
	MeanAbsDiff, MaxAbsDiff, Disagree float64
}

// record is one simulated record as a tagger sees it.
type record struct {
	md       map[string]string
	value    float64
	crisis   bool
	labelled bool
	member   int
	post     float64 // exact posterior
}

// Measure simulates cfg's stream under cfg.Policy (the uniform logging
// policy when nil) and measures the taggers on it.
func Measure(cfg Config) (Report, error) {
	if err := cfg.Validate(); err != nil {
		return Report{}, err
	}
	post, err := sim.NewPosterior(cfg.Sim)
	if err != nil {
		return Report{}, fmt.Errorf("tagger: %w", err)
	}
	var recs []record
	if cfg.Policy == nil {
		recs, err = simulate(cfg, post)
	} else {
		recs, err = simulatePolicy(cfg)
	}
	if err != nil {
		return Report{}, err
	}
	rep := Report{Users: cfg.Users, Records: len(recs), RecordCrisisShare: post.RecordCrisisShare()}
	if cfg.Policy != nil {
		var crisis float64
		for _, r := range recs {
			crisis += b2f(r.crisis)
		}
		rep.RecordCrisisShare, rep.Ghosts = crisis/float64(len(recs)), cfg.Ghosts
	}
	learned, err := runTaggers(cfg.Classifier, recs, &rep)
	if err != nil {
		return Report{}, err
	}
	rep.Weights = make([]float64, classify.NumFeatures)
	w := learned.Model().Weights()
	copy(rep.Weights, w[:])
	bayes(recs, &rep)
	if rep.Members, err = members(cfg.Classifier, recs, learned); err != nil {
		return Report{}, err
	}
	return rep, nil
}

// simulate runs the users round-robin over the workers' streams.
func simulate(cfg Config, post *sim.Posterior) ([]record, error) {
	sims, err := newStreams(cfg)
	if err != nil {
		return nil, err
	}
	pol := sim.Uniform{N: cfg.Sim.NumActions()}
	recs := make([]record, 0, cfg.Users*6)
	for u := range cfg.Users {
		var member int
		sims[u%cfg.Workers].RunEpisode(pol, func(tr *sim.Transition) {
			if tr.Step == 0 {
				h := fnv.New32a()
				h.Write([]byte(tr.UserID))
				member = int(h.Sum32() % 2)
			}
			_, labelled := tr.Metadata[sim.KeyEventType]
			lo := post.LogOdds(tr.Metadata, tr.Value)
			recs = append(recs, record{md: tr.Metadata, value: tr.Value, crisis: tr.Crisis, labelled: labelled,
				member: member, post: 1 / (1 + math.Exp(-lo))})
		})
	}
	return recs, nil
}

// newStreams returns the workers' simulator streams 0…Workers−1 of
// cfg.Seed.
func newStreams(cfg Config) ([]*sim.Sim, error) {
	sims := make([]*sim.Sim, cfg.Workers)
	for i := range sims {
		s, err := sim.New(cfg.Sim, cfg.Seed, uint64(i))
		if err != nil {
			return nil, fmt.Errorf("tagger: %w", err)
		}
		sims[i] = s
	}
	return sims, nil
}

// runTaggers streams the records through a rules and a learned classifier,
// in order, as an aggregator would, and returns the learned one.
func runTaggers(ccfg classify.Config, recs []record, rep *Report) (*classify.Classifier, error) {
	ccfg.Tagger = classify.TaggerRules
	rules, err := classify.New(ccfg)
	if err != nil {
		return nil, fmt.Errorf("tagger: %w", err)
	}
	ccfg.Tagger = classify.TaggerLearned
	learned, err := classify.New(ccfg)
	if err != nil {
		return nil, fmt.Errorf("tagger: %w", err)
	}
	var all, unl, warm [2]classify.Accuracy
	for _, r := range recs {
		wasWarm := learned.Learned()
		dr, dl := rules.Classify(r.md, r.value), learned.Classify(r.md, r.value)
		all[0].Observe(dr, r.crisis)
		all[1].Observe(dl, r.crisis)
		if r.labelled {
			rep.Labelled++
			continue
		}
		unl[0].Observe(dr, r.crisis)
		unl[1].Observe(dl, r.crisis)
		if wasWarm {
			warm[0].Observe(dr, r.crisis)
			warm[1].Observe(dl, r.crisis)
		}
	}
	names := [2]string{"rules", "learned"}
	for i := range 2 {
		rep.All[i] = Row{Name: names[i], Metrics: all[i].Report().Overall}
		rep.Unlabelled[i] = Row{Name: names[i], Metrics: unl[i].Report().Overall}
		rep.AfterWarmUp[i] = Row{Name: names[i], Metrics: warm[i].Report().Overall}
	}
	h := learned.HeldOut()
	rep.HeldOutBrier, rep.HeldOutECE, rep.LearnedThreshold = h.Brier(), h.ECE(), learned.Threshold()
	if !learned.Learned() {
		return nil, errors.New("tagger: the stream ended before the learned tagger's warm-up")
	}
	return learned, nil
}

// bayes fills the Bayes-limit rows: the posterior thresholded where F1 is
// highest, over the unlabelled records and over all (labels decide the
// labelled ones).
func bayes(recs []record, rep *Report) {
	var unl []record
	var labPos, labNeg uint64
	var cal classify.Calibration
	var calAll classify.Calibration
	for _, r := range recs {
		if r.labelled {
			if r.crisis {
				labPos++
				calAll.Observe(1, true)
			} else {
				labNeg++
				calAll.Observe(0, false)
			}
			continue
		}
		unl = append(unl, r)
		cal.Observe(r.post, r.crisis)
		calAll.Observe(r.post, r.crisis)
	}
	slices.SortFunc(unl, func(a, b record) int { return -cmpFloat(a.post, b.post) })
	var pos, posE float64
	for _, r := range unl {
		pos += b2f(r.crisis)
		posE += r.post
	}
	bestU, bestA, bestE := scanF1(unl, pos, posE, labPos)
	rep.BayesThreshold = bestU.thr
	rep.BayesExpectedF1 = bestE
	rep.Unlabelled[2] = Row{Name: "Bayes limit", Metrics: metrics(bestU.c, &cal)}
	a := bestA.c
	a.TP += labPos
	a.TN += labNeg
	rep.All[2] = Row{Name: "Bayes limit", Metrics: metrics(a, &calAll)}
}

type cut struct {
	c   classify.Counts
	thr float64
}

// scanF1 tags the k records of highest posterior, for every k, and returns
// the best cut for F1 over the unlabelled records, over all records
// (labPos labelled crisis records counted as TP) and the best expected F1.
func scanF1(unl []record, pos, posE float64, labPos uint64) (bestU, bestA cut, bestE float64) {
	fU, fA := -1.0, -1.0
	var tp, tpE float64
	total := uint64(len(unl))
	for k, r := range unl {
		tp += b2f(r.crisis)
		tpE += r.post
		if k+1 < len(unl) && unl[k+1].post == r.post {
			continue // a threshold cannot split ties
		}
		n := float64(k + 1)
		c := classify.Counts{TP: uint64(tp), FP: uint64(n - tp), FN: uint64(pos - tp)}
		c.TN = total - c.TP - c.FP - c.FN
		if f := c.F1(); f > fU {
			fU, bestU = f, cut{c, r.post}
		}
		ca := c
		ca.TP += labPos
		if f := ca.F1(); f > fA {
			fA, bestA = f, cut{c, r.post}
		}
		if fe := 2 * tpE / (n + posE); fe > bestE {
			bestE = fe
		}
	}
	return bestU, bestA, bestE
}

func metrics(c classify.Counts, cal *classify.Calibration) classify.Metrics {
	return classify.Metrics{Counts: c, Precision: c.Precision(), Recall: c.Recall(), F1: c.F1(), Brier: cal.Brier(), ECE: cal.ECE()}
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// members trains one learned classifier per group member on the records of
// the users that hash to it, and compares their final models on every
// unlabelled record with each other and with the single model.
func members(ccfg classify.Config, recs []record, single *classify.Classifier) (MemberDiff, error) {
	ccfg.Tagger = classify.TaggerLearned
	var ms [2]*classify.Classifier
	for i := range ms {
		c, err := classify.New(ccfg)
		if err != nil {
			return MemberDiff{}, fmt.Errorf("tagger: %w", err)
		}
		ms[i] = c
	}
	for _, r := range recs {
		ms[r.member].Classify(r.md, r.value)
	}
	var d MemberDiff
	var acc [3]classify.Counts
	var n, disagree float64
	for _, r := range recs {
		if r.labelled {
			continue
		}
		p0, p1 := ms[0].Prob(r.md, r.value), ms[1].Prob(r.md, r.value)
		t0, t1 := p0 >= ms[0].Threshold(), p1 >= ms[1].Threshold()
		acc[0].Observe(t0, r.crisis)
		acc[1].Observe(t1, r.crisis)
		acc[2].Observe(single.Prob(r.md, r.value) >= single.Threshold(), r.crisis)
		diff := math.Abs(p0 - p1)
		d.MeanAbsDiff += diff
		d.MaxAbsDiff = math.Max(d.MaxAbsDiff, diff)
		disagree += b2f(t0 != t1)
		n++
	}
	d.MeanAbsDiff /= n
	d.Disagree = disagree / n
	d.F1 = [2]float64{acc[0].F1(), acc[1].F1()}
	d.Single = acc[2].F1()
	return d, nil
}
