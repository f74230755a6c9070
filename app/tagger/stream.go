package tagger

import (
	"fmt"
	"math"

	"github.com/aelp/aelp/consumers/classify"
	"github.com/aelp/aelp/producers/sim"
	"golang.org/x/sync/errgroup"
)

// StreamUser is one user's records of a stream as a tagger tagged them,
// with the version of the policy that acted on the user's journey.
type StreamUser struct {
	// Metadata is the user's metadata, as its records carry it (the
	// simulator writes the same map on every record of a journey).
	Metadata map[string]string
	// PolicyVersion is the acting policy's version, −1 for the uniform
	// logging policy.
	PolicyVersion int64
	// Records are the user's records.
	Records []StreamRecord
}

// StreamRecord is one tagged record.
type StreamRecord struct {
	// Value is the record's value.
	Value float64
	// Crisis is the ground truth; Labelled says whether the record carries
	// a label (which decides it for every tagger).
	Crisis, Labelled bool
	// Tagged is the tagger's crisis tag and Score its tag_score.
	Tagged bool
	Score  float64
}

// StreamLimit is the Bayes limit of a tagged stream beside the tagger that
// tagged it, over the same records.
type StreamLimit struct {
	// Users and Records count the stream; Labelled the records with a
	// label. Ghosts is the Monte Carlo posterior's journeys per segment
	// and user; Versions the number of acting policies (the uniform
	// logging policy included when it acted).
	Users, Records, Labelled, Ghosts, Versions int
	// All are the tagger and the Bayes limit on every record (labels
	// decide the labelled ones, for both); Unlabelled on the records
	// without a label, the ones a tagger decides.
	All, Unlabelled [2]Row
	// BayesThreshold is the posterior threshold of the unlabelled Bayes
	// limit; BayesExpectedF1 the limit computed from the posteriors alone.
	BayesThreshold, BayesExpectedF1 float64
}

// MeasureStream computes the Bayes limit of a stream acted on by a
// sequence of policies — each user's journey by the policy of its
// PolicyVersion, found in policies (version −1, the uniform logging
// policy, need not be) — and the tagger's figures on the same records.
// Each record's posterior is the exact one (sim.Posterior) for the logging
// policy's users and the Monte Carlo one (sim.PolicyPosterior, ghosts
// journeys per segment and user) for the others, from the simulator
// configuration cfg; the ghost journeys come from (seed, streams 2⁴⁰ + w).
// The posterior is conditioned on the acting policy's version as well as
// on the signals: the limit is that of a tagger that also knew which
// policy acted, an upper bound on the limit from the signals alone.
func MeasureStream(cfg sim.Config, users []StreamUser, policies map[int64]sim.Policy, ghosts int, seed uint64) (StreamLimit, error) {
	if ghosts < 1 {
		return StreamLimit{}, fmt.Errorf("tagger: ghosts %d < 1", ghosts)
	}
	post, err := sim.NewPosterior(cfg)
	if err != nil {
		return StreamLimit{}, fmt.Errorf("tagger: %w", err)
	}
	versions := map[int64]bool{}
	for _, u := range users {
		if _, ok := policies[u.PolicyVersion]; !ok && u.PolicyVersion != -1 {
			return StreamLimit{}, fmt.Errorf("tagger: no policy of version %d, which acted on a user", u.PolicyVersion)
		}
		versions[u.PolicyVersion] = true
	}
	posts := make([][]float64, len(users))
	var g errgroup.Group
	for w := range posteriorWorkers {
		g.Go(func() error {
			pp, err := sim.NewPolicyPosterior(cfg, sim.Uniform{N: cfg.NumActions()}, ghosts, seed, 1<<40+uint64(w))
			if err != nil {
				return fmt.Errorf("tagger: %w", err)
			}
			var ev sim.UserEvidence
			for i := w; i < len(users); i += posteriorWorkers {
				u := &users[i]
				posts[i] = make([]float64, len(u.Records))
				if u.PolicyVersion == -1 {
					for j, r := range u.Records {
						posts[i][j] = sigmoid(post.LogOdds(u.Metadata, r.Value))
					}
					continue
				}
				pp.SetPolicy(policies[u.PolicyVersion])
				if err := pp.User(u.Metadata, &ev); err != nil {
					return fmt.Errorf("tagger: %w", err)
				}
				for j, r := range u.Records {
					posts[i][j] = sigmoid(ev.LogOdds(r.Value))
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return StreamLimit{}, err
	}
	out := StreamLimit{Users: len(users), Ghosts: ghosts, Versions: len(versions)}
	var recs []record
	var all, unl classify.Counts
	var calAll, calUnl classify.Calibration
	for i, u := range users {
		for j, r := range u.Records {
			recs = append(recs, record{value: r.Value, crisis: r.Crisis, labelled: r.Labelled, post: posts[i][j]})
			all.Observe(r.Tagged, r.Crisis)
			calAll.Observe(r.Score, r.Crisis)
			if r.Labelled {
				out.Labelled++
				continue
			}
			unl.Observe(r.Tagged, r.Crisis)
			calUnl.Observe(r.Score, r.Crisis)
		}
	}
	out.Records = len(recs)
	var rep Report
	bayes(recs, &rep)
	out.All = [2]Row{{Name: "tagger", Metrics: metrics(all, &calAll)}, rep.All[2]}
	out.Unlabelled = [2]Row{{Name: "tagger", Metrics: metrics(unl, &calUnl)}, rep.Unlabelled[2]}
	out.BayesThreshold, out.BayesExpectedF1 = rep.BayesThreshold, rep.BayesExpectedF1
	return out, nil
}

func sigmoid(z float64) float64 { return 1 / (1 + math.Exp(-z)) }
