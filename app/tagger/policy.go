package tagger

import (
	"fmt"
	"hash/fnv"
	"math"

	"github.com/aelp/aelp/producers/sim"
	"golang.org/x/sync/errgroup"
)

// posteriorWorkers is the number of goroutines the Monte Carlo posterior
// is computed on, each with its own ghost stream; user u goes to
// u mod posteriorWorkers, so the figures do not depend on the machine.
const posteriorWorkers = 2

// simulatePolicy runs the users round-robin over the workers' streams with
// cfg.Policy acting, then computes every record's posterior by Monte
// Carlo (sim.PolicyPosterior, cfg.Ghosts journeys per segment and user).
func simulatePolicy(cfg Config) ([]record, error) {
	sims, err := newStreams(cfg)
	if err != nil {
		return nil, err
	}
	recs := make([]record, 0, cfg.Users*6)
	first := make([]int, cfg.Users+1) // user u's records are recs[first[u]:first[u+1]]
	for u := range cfg.Users {
		first[u] = len(recs)
		var member int
		sims[u%cfg.Workers].RunEpisode(cfg.Policy, func(tr *sim.Transition) {
			if tr.Step == 0 {
				h := fnv.New32a()
				h.Write([]byte(tr.UserID))
				member = int(h.Sum32() % 2)
			}
			_, labelled := tr.Metadata[sim.KeyEventType]
			recs = append(recs, record{md: tr.Metadata, value: tr.Value, crisis: tr.Crisis, labelled: labelled, member: member})
		})
	}
	first[cfg.Users] = len(recs)
	var g errgroup.Group
	for w := range posteriorWorkers {
		g.Go(func() error {
			// Ghost streams past the simulator's: never a stream of the
			// records themselves.
			pp, err := sim.NewPolicyPosterior(cfg.Sim, cfg.Policy, cfg.Ghosts, cfg.Seed, uint64(cfg.Workers+w))
			if err != nil {
				return fmt.Errorf("tagger: %w", err)
			}
			var ev sim.UserEvidence
			for u := w; u < cfg.Users; u += posteriorWorkers {
				own := recs[first[u]:first[u+1]]
				if err := pp.User(own[0].md, &ev); err != nil {
					return fmt.Errorf("tagger: %w", err)
				}
				for i := range own {
					own[i].post = 1 / (1 + math.Exp(-ev.LogOdds(own[i].value)))
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return recs, nil
}
