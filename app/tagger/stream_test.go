package tagger

import (
	"math"
	"testing"

	"github.com/aelp/aelp/producers/sim"
)

// streamUsers simulates n users under the uniform policy and tags their
// records with tag, all under policy version.
func streamUsers(t *testing.T, n int, version int64, tag func(md map[string]string, v float64) (bool, float64)) []StreamUser {
	t.Helper()
	s, err := sim.New(sim.DefaultConfig(), 7, 0)
	if err != nil {
		t.Fatal(err)
	}
	pol := sim.Uniform{N: sim.DefaultConfig().NumActions()}
	users := make([]StreamUser, 0, n)
	for range n {
		u := StreamUser{PolicyVersion: version}
		s.RunEpisode(pol, func(tr *sim.Transition) {
			if u.Metadata == nil {
				u.Metadata = tr.Metadata
			}
			_, labelled := tr.Metadata[sim.KeyEventType]
			tagged, score := tag(tr.Metadata, tr.Value)
			u.Records = append(u.Records, StreamRecord{Value: tr.Value, Crisis: tr.Crisis, Labelled: labelled, Tagged: tagged, Score: score})
		})
		users = append(users, u)
	}
	return users
}

// TestMeasureStreamUniform: on a uniform-policy stream the Monte Carlo
// posterior (the uniform policy given as an acting version) and the exact
// one (version −1) give the same Bayes limit within Monte Carlo noise; a
// tagger that thresholds the exact posterior at the limit's threshold
// scores the limit's F1; and the tagger's rows count the tags it gave.
func TestMeasureStreamUniform(t *testing.T) {
	cfg := sim.DefaultConfig()
	post, err := sim.NewPosterior(cfg)
	if err != nil {
		t.Fatal(err)
	}
	noTag := func(map[string]string, float64) (bool, float64) { return false, 0.1 }
	const n = 4000
	exact, err := MeasureStream(cfg, streamUsers(t, n, -1, noTag), nil, 4, 1)
	if err != nil {
		t.Fatal(err)
	}
	if exact.Users != n || exact.Records < 5*n || exact.Labelled == 0 || exact.Versions != 1 {
		t.Fatalf("users %d records %d labelled %d versions %d", exact.Users, exact.Records, exact.Labelled, exact.Versions)
	}
	if tg := exact.Unlabelled[0]; tg.TP+tg.FP != 0 || tg.F1 != 0 || tg.FN == 0 {
		t.Errorf("a tagger that never tags: %+v", tg.Counts)
	}
	tg := exact.Unlabelled[0]
	if want := (0.01*float64(tg.TN) + 0.81*float64(tg.FN)) / float64(tg.Total()); math.Abs(tg.Brier-want) > 1e-9 {
		t.Errorf("Brier of a constant 0.1: %v", exact.Unlabelled[0].Brier)
	}
	thr := exact.BayesThreshold
	byPost := func(md map[string]string, v float64) (bool, float64) {
		p := sigmoid(post.LogOdds(md, v))
		_, labelled := md[sim.KeyEventType]
		if labelled {
			c := md[sim.KeyEventType] == sim.SegmentCrisis
			return c, b2f(c)
		}
		return p >= thr, p
	}
	mc, err := MeasureStream(cfg, streamUsers(t, n, 0, byPost), map[int64]sim.Policy{0: sim.Uniform{N: cfg.NumActions()}}, 4, 1)
	if err != nil {
		t.Fatal(err)
	}
	if d := math.Abs(mc.Unlabelled[1].F1 - exact.Unlabelled[1].F1); d > 0.01 {
		t.Errorf("Bayes limit: Monte Carlo %.4f, exact %.4f", mc.Unlabelled[1].F1, exact.Unlabelled[1].F1)
	}
	if d := mc.Unlabelled[0].F1 - exact.Unlabelled[1].F1; math.Abs(d) > 1e-9 {
		t.Errorf("the exact posterior at the limit's threshold: F1 %.4f, the limit %.4f", mc.Unlabelled[0].F1, exact.Unlabelled[1].F1)
	}
	if mc.All[0].F1 <= mc.Unlabelled[0].F1 {
		t.Errorf("all-record F1 %.4f not above the unlabelled %.4f (labels are exact)", mc.All[0].F1, mc.Unlabelled[0].F1)
	}
	if _, err := MeasureStream(cfg, streamUsers(t, 10, 3, noTag), nil, 4, 1); err == nil {
		t.Error("a version without its policy: no error")
	}
	if _, err := MeasureStream(cfg, nil, nil, 0, 1); err == nil {
		t.Error("0 ghosts: no error")
	}
}
