// Package sim is the Monte Carlo ad simulator that stands in for a live ad
// system: a seeded population of parents, 10% of them "crisis parents", each
// walking through a journey of ad opportunities on which a policy bids.
// It is pure Go and knows nothing of Kafka, Avro or the other aelp roles; the
// producer loop wraps it.
//
// # Journey
//
// A user is one episode of at most Config.MaxSteps ad opportunities. At each
// step the policy picks an action a = bid·Creatives + creative (see
// Config.Action; with the defaults bid ∈ 0…3 low→high, creative 0 urgent
// help, 1 family deals, 2 lifestyle). The auction is won with probability
// win(bid); a won impression costs bid+1 budget units (Config.UnitCost money
// each) and converts with a segment- and action-dependent probability.
// Reward per step is conversion value minus spend. The journey ends on
// conversion, when the budget is exhausted, or after MaxSteps steps.
//
// # Response model
//
// With m_b = b/(BidLevels−1) and creative urgency u_c = 1 − c/(Creatives−1):
//
//	win(b)         = 0.25 + 0.70·m_b
//	cost(b)        = b + 1 units (the last impression is charged what remains)
//	p_crisis(b,c)  = CrisisRate · e^(−2.5(1−u_c)) · (0.40 + 0.60·m_b)
//	p_regular(b,c) = R_reg · e^(−((u_c−0.4)/0.45)²) · (0.85 + 0.15·m_b)
//
// Crisis parents convert on urgent creatives at high bids; regular parents
// on the mid-urgency creative and barely respond to the bid. R_reg is solved
// exactly so that crisis parents make CrisisConversionShare of conversions
// under uniform logging. Dynamics depend only on (segment, action, step,
// budget), so Oracle computes expected returns exactly by backward recursion.
//
// # Observation layout
//
// Every value is rounded to float32 precision (float64(float32(x))) so that
// it survives an Avro float round trip unchanged.
//
//	 0  sin(2π·hour/24)           hour of the opportunity (crisis users skew late)
//	 1  cos(2π·hour/24)
//	 2  device is mobile (0/1)
//	 3  device is desktop (0/1)    (neither: tablet)
//	 4  crisis-content engagement + N(0, (0.2k)²)
//	 5  ln(1 + urgent searches) + N(0, (0.5k)²)
//	 6  profile has crisis keywords (0/1)
//	 7  campaign is crisis-targeted (0/1)
//	 8  recent engagement: per-user level + N(0, (0.5k)²)
//	 9  per-step urgency signal N(0.6 crisis / 0 regular, k²)
//	10  step / MaxSteps
//	11  impressions so far / MaxSteps
//	12  remaining budget / BudgetUnits
//	13  previous step won an impression (0/1)
//	14  previous bid level / (BidLevels−1) (0 at the first step)
//	15… N(0,1) distractors up to StateDim
//
// with k = Config.ObsNoise. The segment is not in the observation, but
// features 0–9 carry evidence of it that accumulates over the journey.
package sim

import (
	"math"
	"math/rand/v2"
	"strconv"

	"github.com/aelp/aelp/schemas"
)

// Metadata keys written on every transition. The aggregator classifies on
// the first five; KeyTrueSegment is ground truth for measuring accuracy only.
const (
	// KeyEventType holds an explicit segment label (SegmentCrisis or
	// SegmentRegular) for Config.LabelShare of users and is absent otherwise.
	KeyEventType = "event_type"
	// KeyProfileKeywords holds comma-separated profile keywords.
	KeyProfileKeywords = "profile_keywords"
	// KeyCrisisContentEngagement holds a decimal in [0,1] with three digits.
	KeyCrisisContentEngagement = "crisis_content_engagement"
	// KeyUrgentSearchCount holds a non-negative integer.
	KeyUrgentSearchCount = "urgent_search_count"
	// KeyCampaignID holds the campaign that served the user.
	KeyCampaignID = "campaign_id"
	// KeyTrueSegment holds the true segment; classifiers must not read it.
	// It is schemas.KeyTrueSegment.
	KeyTrueSegment = schemas.KeyTrueSegment
)

// Segment labels used as metadata values.
const (
	// SegmentCrisis labels a crisis parent.
	SegmentCrisis = "CRISIS_PARENT"
	// SegmentRegular labels a regular parent.
	SegmentRegular = "REGULAR_PARENT"
)

var (
	crisisKeywords   = [...]string{"crisis", "urgent", "emergency", "high_priority"}
	neutralKeywords  = [...]string{"parenting", "toddler", "deals", "school", "family", "baby", "outdoor", "recipes", "sports", "books", "crafts", "travel"}
	crisisCampaigns  = [...]string{"crisis_support", "emergency_help", "urgent_care"}
	regularCampaigns = [...]string{"back_to_school", "family_deals", "weekend_fun", "baby_gear"}
)

// CrisisKeywords returns the profile keywords that signal a crisis parent.
func CrisisKeywords() []string { return append([]string(nil), crisisKeywords[:]...) }

// NeutralKeywords returns the profile keywords that carry no segment signal.
func NeutralKeywords() []string { return append([]string(nil), neutralKeywords[:]...) }

// CrisisCampaigns returns the crisis-targeted campaign ids.
func CrisisCampaigns() []string { return append([]string(nil), crisisCampaigns[:]...) }

// RegularCampaigns returns the regular campaign ids.
func RegularCampaigns() []string { return append([]string(nil), regularCampaigns[:]...) }

// Policy maps an observation to a distribution over actions.
type Policy interface {
	// ActionProbs writes into dst (length NumActions) non-negative
	// probabilities summing to 1 for observation obs. It must not keep obs
	// or dst after it returns.
	ActionProbs(obs []float64, dst []float64)
}

// Uniform is the uniform random logging policy over N actions.
type Uniform struct {
	// N is the number of actions.
	N int
}

// ActionProbs sets every entry of dst to 1/N. It panics if len(dst) != N.
func (u Uniform) ActionProbs(_ []float64, dst []float64) {
	if len(dst) != u.N {
		panic("sim: Uniform.ActionProbs: len(dst) != N")
	}
	p := 1 / float64(u.N)
	for i := range dst {
		dst[i] = p
	}
}

// Transition is one step of one user's journey as an ad system logs it.
type Transition struct {
	// UserID identifies the user; it is also the Kafka key.
	UserID string
	// EpisodeID identifies the journey (one per user).
	EpisodeID string
	// Step is the 0-based index of the step within the journey.
	Step int
	// State is the observation the policy acted on (Config.StateDim wide).
	State []float64
	// NextState is the observation after the step (also set on the last step).
	NextState []float64
	// Action is the chosen action index.
	Action int
	// BehaviorLogProb is log μ(Action|State) of the acting policy.
	BehaviorLogProb float64
	// Reward is conversion value (if converted) minus Spend.
	Reward float64
	// ConversionValue is the conversion's value when Converted, else 0.
	ConversionValue float64
	// ActionProbs is the distribution Action was drawn from (owned by the
	// Sim, reused like State).
	ActionProbs []float64
	// Spend is the money spent on this step.
	Spend float64
	// Won reports whether the auction was won (an impression shown).
	Won bool
	// Done reports whether the journey ended with this step.
	Done bool
	// Converted reports whether the user converted on this step.
	Converted bool
	// Crisis is the true segment (also in Metadata[KeyTrueSegment]).
	Crisis bool
	// Value is a noisy estimate of the step's expected conversion value,
	// V_seg·win(b)·p_seg(a)·e^(σZ − σ²/2) with Z ~ N(0,1), σ = ValueNoise.
	Value float64
	// Metadata is the user's metadata, shared by all the user's steps and
	// read-only.
	Metadata map[string]string
}

// EpisodeResult summarises one journey.
type EpisodeResult struct {
	// Crisis is the user's true segment.
	Crisis bool
	// Converted reports whether the journey ended in a conversion.
	Converted bool
	// Return is the sum of the journey's rewards.
	Return float64
	// Spend is the money spent over the journey.
	Spend float64
	// Steps is the number of steps taken.
	Steps int
}

// user holds the latent and observable per-user draws.
type user struct {
	crisis     bool
	seg        int
	engagement float64 // crisis-content engagement in [0,1]
	searches   int
	logSearch  float64 // ln(1 + searches)
	keywords   bool
	crisisCamp bool
	mobile     bool
	desktop    bool
	hour       float64
	recent     float64
}

// Sim is one seeded simulator stream. It is not safe for concurrent use; run
// one Sim per worker with distinct stream numbers.
type Sim struct {
	m   *model
	cfg Config
	// master draws one seed pair per journey; rng, reseeded from it at the
	// start of every journey, draws everything inside the journey. So the
	// k-th user of a (seed, stream) is the same user whatever policy acts
	// (common random numbers), and policies evaluated on one seed are
	// compared on the same population.
	master   *rand.Rand
	episode  *rand.PCG
	rng      *rand.Rand
	seed     uint64
	stream   uint64
	episodes uint64
	probs    []float64
	obs      [2][]float64
	tr       Transition
	u        user
	buf      []byte
}

// splitmix64 is the SplitMix64 output function, used to derive well-mixed
// PCG seeds from (seed, stream).
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// New returns a simulator for cfg whose randomness is fully determined by
// (seed, stream). Give K workers the same seed and streams 0…K−1 to get
// independent, reproducible streams; user and episode ids embed the seed,
// the stream and a per-stream counter, so they are unique across streams.
func New(cfg Config, seed, stream uint64) (*Sim, error) {
	m, err := newModel(cfg)
	if err != nil {
		return nil, err
	}
	hi := splitmix64(seed ^ splitmix64(stream))
	lo := splitmix64(hi ^ 0x6a09e667f3bcc909 ^ stream)
	s := &Sim{
		m:      m,
		cfg:    cfg,
		master: rand.New(rand.NewPCG(hi, lo)),
		seed:   seed,
		stream: stream,
		probs:  make([]float64, cfg.NumActions()),
		buf:    make([]byte, 0, 128),
	}
	s.episode = rand.NewPCG(0, 0)
	s.rng = rand.New(s.episode)
	s.obs[0] = make([]float64, cfg.StateDim)
	s.obs[1] = make([]float64, cfg.StateDim)
	return s, nil
}

// Config returns the simulator's configuration.
func (s *Sim) Config() Config { return s.cfg }

// NumActions returns the number of actions, BidLevels × Creatives.
func (s *Sim) NumActions() int { return s.m.nA }

// Episodes returns the number of journeys run so far.
func (s *Sim) Episodes() uint64 { return s.episodes }

func (s *Sim) bernoulli(p float64) bool { return s.rng.Float64() < p }

// poisson draws from Poisson(λ) by Knuth's multiplication method (λ small).
func (s *Sim) poisson(lambda float64) int {
	l, k, p := math.Exp(-lambda), 0, s.rng.Float64()
	for p > l {
		k++
		p *= s.rng.Float64()
	}
	return k
}

func clamp01(x float64) float64 { return math.Max(0, math.Min(1, x)) }

func f32(x float64) float64 { return float64(float32(x)) }

// newUser draws a user, builds its metadata map and ids.
func (s *Sim) newUser() map[string]string {
	s.drawUser()
	md := s.userMetadata()
	s.userIDs()
	return md
}

// drawUser draws the new user's segment and latent traits into s.u.
func (s *Sim) drawUser() {
	u := &s.u
	*u = user{crisis: s.bernoulli(s.cfg.CrisisFraction)}
	var hourMean, hourSD, mobile, desktop, engMean, engSD, searchRate, recent float64
	if u.crisis {
		u.seg = segCrisis
		hourMean, hourSD, mobile, desktop = 22, 3.5, 0.70, 0.20
		engMean, engSD, searchRate, recent = 0.60, 0.18, 3.0, 0.4
		u.keywords = s.bernoulli(s.cfg.CrisisKeywordShare)
		u.crisisCamp = s.bernoulli(s.cfg.CrisisCampaignShare)
	} else {
		u.seg = segRegular
		hourMean, hourSD, mobile, desktop = 14, 4, 0.50, 0.35
		engMean, engSD, searchRate, recent = 0.25, 0.15, 0.6, 0
		u.keywords = s.bernoulli(s.cfg.RegularKeywordShare)
		u.crisisCamp = s.bernoulli(s.cfg.RegularCampaignShare)
	}
	u.hour = math.Mod(hourMean+hourSD*s.rng.NormFloat64()+48, 24)
	d := s.rng.Float64()
	u.mobile, u.desktop = d < mobile, d >= mobile && d < mobile+desktop
	u.engagement = clamp01(engMean + engSD*s.rng.NormFloat64())
	u.searches = s.poisson(searchRate)
	u.logSearch = math.Log1p(float64(u.searches))
	u.recent = recent + s.rng.NormFloat64()
}

// userMetadata returns the new user's metadata map: the true segment, the
// label on a share of users, the profile keywords, the engagement, the
// urgent searches and the campaign.
func (s *Sim) userMetadata() map[string]string {
	u := &s.u
	md := make(map[string]string, 6)
	seg := SegmentRegular
	if u.crisis {
		seg = SegmentCrisis
	}
	md[KeyTrueSegment] = seg
	if s.bernoulli(s.cfg.LabelShare) {
		md[KeyEventType] = seg
	}
	// Two or three distinct neutral keywords, then one or two crisis keywords.
	b := s.buf[:0]
	var picked [3]int
	nn := 2 + s.rng.IntN(2)
	for i := 0; i < nn; {
		k := s.rng.IntN(len(neutralKeywords))
		if (i > 0 && picked[0] == k) || (i > 1 && picked[1] == k) {
			continue // rejection keeps the keywords distinct
		}
		picked[i] = k
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, neutralKeywords[k]...)
		i++
	}
	if u.keywords {
		nc := 1 + s.rng.IntN(2)
		k := s.rng.IntN(len(crisisKeywords))
		for i := range nc {
			b = append(b, ',')
			b = append(b, crisisKeywords[(k+i)%len(crisisKeywords)]...)
		}
	}
	md[KeyProfileKeywords] = string(b)
	md[KeyCrisisContentEngagement] = strconv.FormatFloat(u.engagement, 'f', 3, 64)
	md[KeyUrgentSearchCount] = strconv.Itoa(u.searches)
	if u.crisisCamp {
		md[KeyCampaignID] = crisisCampaigns[s.rng.IntN(len(crisisCampaigns))]
	} else {
		md[KeyCampaignID] = regularCampaigns[s.rng.IntN(len(regularCampaigns))]
	}
	s.buf = b[:0]
	return md
}

// userIDs sets the transition's user and episode ids.
func (s *Sim) userIDs() {
	// Ids: "u-<seed hex>-<stream hex>-<n>" and "e-…" cut from one string.
	b := append(s.buf[:0], "u-"...)
	b = strconv.AppendUint(b, s.seed, 16)
	b = append(b, '-')
	b = strconv.AppendUint(b, s.stream, 16)
	b = append(b, '-')
	b = strconv.AppendUint(b, s.episodes, 10)
	n := len(b)
	b = append(b, b...)
	b[n] = 'e'
	ids := string(b)
	s.tr.UserID, s.tr.EpisodeID = ids[:n], ids[n:]
	s.buf = b[:0]
}

// observe writes the observation for the current step into dst.
func (s *Sim) observe(dst []float64, step, impressions, remaining int, lastWon bool, lastBid int) {
	u := &s.u
	k := s.cfg.ObsNoise
	sin, cos := math.Sincos(2 * math.Pi * u.hour / 24)
	dst[0], dst[1] = f32(sin), f32(cos)
	dst[2], dst[3] = b2f(u.mobile), b2f(u.desktop)
	dst[4] = f32(u.engagement + k*0.2*s.rng.NormFloat64())
	dst[5] = f32(u.logSearch + k*0.5*s.rng.NormFloat64())
	dst[6], dst[7] = b2f(u.keywords), b2f(u.crisisCamp)
	dst[8] = f32(u.recent + k*0.5*s.rng.NormFloat64())
	urg := k * s.rng.NormFloat64()
	if u.crisis {
		urg += 0.6
	}
	dst[9] = f32(urg)
	T := float64(s.cfg.MaxSteps)
	dst[10] = f32(float64(step) / T)
	dst[11] = f32(float64(impressions) / T)
	dst[12] = f32(float64(remaining) / float64(s.cfg.BudgetUnits))
	dst[13] = b2f(lastWon)
	dst[14] = f32(float64(lastBid) / float64(s.cfg.BidLevels-1))
	for i := MinStateDim; i < len(dst); i++ {
		dst[i] = f32(s.rng.NormFloat64())
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// RunEpisode simulates one user's journey under policy p and calls emit once
// per step, in order. The *Transition and its State and NextState slices are
// owned by the Sim and reused after emit returns: a caller that keeps them
// must copy them (Metadata is a fresh map per user and may be kept as is,
// read-only). emit may be nil.
//
// The action is drawn by inverse CDF from p's probabilities for exactly the
// observation in Transition.State, and BehaviorLogProb = log(prob[action]).
// RunEpisode panics if p returns probabilities that are negative, NaN, or do
// not sum to 1 within 1e-6 (a programming error in the policy).
func (s *Sim) RunEpisode(p Policy, emit func(*Transition)) EpisodeResult {
	s.episode.Seed(s.master.Uint64(), s.master.Uint64())
	md := s.newUser()
	s.episodes++
	u := &s.u
	tr := &s.tr
	tr.Metadata, tr.Crisis = md, u.crisis
	res := EpisodeResult{Crisis: u.crisis}
	cur, next := s.obs[0], s.obs[1]
	remaining, impressions, lastBid, lastWon := s.cfg.BudgetUnits, 0, 0, false
	s.observe(cur, 0, 0, remaining, false, 0)
	V := s.m.value[u.seg]
	conv := s.m.conv[u.seg]
	sigma := s.cfg.ValueNoise
	for step := 0; ; step++ {
		p.ActionProbs(cur, s.probs)
		a := s.sample()
		b, _ := s.cfg.Decode(a)
		won := s.bernoulli(s.m.win[b])
		spend := 0.0
		converted := false
		if won {
			units := min(s.m.cost[b], remaining)
			remaining -= units
			impressions++
			spend = float64(units) * s.cfg.UnitCost
			converted = s.bernoulli(conv[a])
		}
		reward := -spend
		if converted {
			reward += V
		}
		done := converted || remaining == 0 || step+1 == s.cfg.MaxSteps
		lastWon, lastBid = won, b
		u.hour = math.Mod(u.hour+0.25+1.5*s.rng.Float64(), 24)
		s.observe(next, step+1, impressions, remaining, lastWon, lastBid)

		tr.Step = step
		tr.State, tr.NextState = cur, next
		tr.Action = a
		tr.BehaviorLogProb = math.Log(s.probs[a])
		tr.Reward = reward
		tr.ConversionValue = 0
		if converted {
			tr.ConversionValue = V
		}
		tr.ActionProbs = s.probs
		tr.Spend = spend
		tr.Won, tr.Done, tr.Converted = won, done, converted
		tr.Value = V * s.m.win[b] * conv[a] * math.Exp(sigma*s.rng.NormFloat64()-sigma*sigma/2)
		if emit != nil {
			emit(tr)
		}
		res.Return += reward
		res.Spend += spend
		res.Steps = step + 1
		if done {
			res.Converted = converted
			return res
		}
		cur, next = next, cur
	}
}

// sample draws an action from s.probs by inverse CDF, after checking that the
// probabilities form a distribution.
func (s *Sim) sample() int {
	sum := 0.0
	for _, q := range s.probs {
		if !(q >= 0) {
			panic("sim: policy returned a negative or NaN probability")
		}
		sum += q
	}
	if math.Abs(sum-1) > 1e-6 {
		panic("sim: policy probabilities do not sum to 1")
	}
	x := s.rng.Float64() * sum
	last := 0
	for a, q := range s.probs {
		if q == 0 {
			continue
		}
		last = a
		x -= q
		if x < 0 {
			return a
		}
	}
	return last
}
