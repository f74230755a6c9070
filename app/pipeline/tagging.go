package pipeline

import (
	"context"
	"fmt"
	"io"

	"path/filepath"

	"github.com/aelp/aelp/app/tagger"
	"github.com/aelp/aelp/consumers"
	"github.com/aelp/aelp/consumers/classify"
	"github.com/aelp/aelp/internal/kafkax"
	"github.com/aelp/aelp/learner/policy"
	"github.com/aelp/aelp/producers/sim"
	"github.com/aelp/aelp/schemas"
	"github.com/segmentio/kafka-go"
)

// taggerStatePath is where the run's aggregator keeps its learned tagger's
// state (consumers.AggregateConfig.TaggerStatePath): DataDir/tagger.state
// when the broker's log outlives the run (Persist, or brokers given), so
// that the next run, whose aggregator resumes from the group's committed
// offsets, resumes with what the tagger had learned from the records
// before them; empty (nothing kept) on an in-memory embedded broker,
// where every run's stream starts afresh.
func taggerStatePath(cfg Config) string {
	if !cfg.Persist && len(cfg.Kafka.Brokers) == 0 {
		return ""
	}
	return filepath.Join(cfg.DataDir, "tagger.state")
}

// writeTagging writes the summary's tagging lines: the tagger, precision,
// recall, F1 and the calibration (Brier score, ECE) of tag_score overall
// and per tag source.
func writeTagging(tw io.Writer, cfg classify.Config, st consumers.AggregateStats) {
	acc := st.Accuracy
	if cfg.Tagger == classify.TaggerLearned {
		fmt.Fprintf(tw, "  crisis tagger\tlearned (objective %s, rules for the first %d labelled records)\n", cfg.Objective, cfg.TaggerWarmUp)
	} else {
		fmt.Fprintf(tw, "  crisis tagger\trules\n")
	}
	if cfg.Tagger == classify.TaggerLearned {
		h := st.TaggerHeldOut
		fmt.Fprintf(tw, "  learned model, held-out labelled records\tBrier %.4f, ECE %.4f over %d records (each predicted before the model trained on it); threshold %.3f at the end\n",
			h.Brier(), h.ECE(), h.N(), st.TaggerThreshold)
	}
	if st.TaggerResumed > 0 {
		fmt.Fprintf(tw, "  learned tagger state\tresumed with %d labelled records learned before this run, %d at its end\n", st.TaggerResumed, st.TaggerLabelled)
	}
	ov := acc.Overall
	fmt.Fprintf(tw, "  crisis tag precision / recall / F1\t%.3f / %.3f / %.3f\n", ov.Precision, ov.Recall, ov.F1)
	fmt.Fprintf(tw, "  tag_score Brier / ECE\t%.4f / %.4f\n", ov.Brier, ov.ECE)
	for src, m := range acc.BySource {
		if m.Total() == 0 {
			continue
		}
		tagged := m.TP + m.FP
		switch {
		case tagged == 0:
			fmt.Fprintf(tw, "    %s decided %d records\tno crisis tag, %d crisis parents missed; Brier %.4f, ECE %.4f\n",
				classify.Source(src), m.Total(), m.FN, m.Brier, m.ECE)
		default:
			fmt.Fprintf(tw, "    %s decided %d records\t%d crisis tags, precision %.3f, recall %.3f, F1 %.3f; Brier %.4f, ECE %.4f\n",
				classify.Source(src), m.Total(), tagged, m.Precision, m.Recall, m.F1, m.Brier, m.ECE)
		}
	}
}

// DefaultBayesGhosts is the Monte Carlo posterior's ghost journeys per
// segment and user of the run's Bayes limit (Config.BayesGhosts).
const DefaultBayesGhosts = 8

// measureTagLimit computes the Bayes limit of the run's own stream: it
// reads back every record the aggregator tagged for the experiment (the
// tagged topic, read_committed, each record once by id) and every policy
// snapshot that acted, and computes each record's posterior from the
// simulator's model given the policy that acted on its user
// (tagger.MeasureStream), beside the tags the aggregator gave.
func measureTagLimit(ctx context.Context, cfg Config, kcfg kafkax.Config, r *roles) (*tagger.StreamLimit, error) {
	users, err := readTagged(ctx, cfg, kcfg, r.agg.Config().OutTopic)
	if err != nil {
		return nil, fmt.Errorf("bayes limit: %w", err)
	}
	src := policy.Source{Kafka: kcfg, Topic: r.lcfg.WithDefaults().PolicyTopic, ExperimentID: cfg.ExperimentID, Log: cfg.Log}
	snaps, err := policy.LoadSnapshots(ctx, src)
	if err != nil {
		return nil, fmt.Errorf("bayes limit: %w", err)
	}
	pols := make(map[int64]sim.Policy, len(snaps))
	for v, p := range snaps {
		pols[v] = p
	}
	lim, err := tagger.MeasureStream(cfg.Sim, users, pols, cfg.BayesGhosts, cfg.Seed)
	if err != nil {
		return nil, fmt.Errorf("bayes limit: %w", err)
	}
	return &lim, nil
}

// readTagged returns the experiment's tagged records on topic, grouped by
// user and acting policy version. Only a user's first record keeps its
// metadata (the simulator writes the same signals on every record of a
// journey), so the whole stream fits in a few tens of megabytes.
func readTagged(ctx context.Context, cfg Config, kcfg kafkax.Config, topic string) ([]tagger.StreamUser, error) {
	rd, err := kafkax.NewReader(kcfg, topic, kafkax.ReadOptions{Logger: cfg.Log})
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	offs, err := rd.ListOffsets(ctx)
	if err != nil {
		return nil, err
	}
	type key struct {
		user    string
		version int64
	}
	index := map[key]int{}
	seen := map[string]struct{}{}
	var users []tagger.StreamUser
	var te schemas.TaggedExperience
	err = rd.ReadMessages(ctx, offs.First, offs.End, func(m *kafka.Message) error {
		if err := schemas.UnmarshalTaggedExperience(m.Value, &te); err != nil || te.ExperimentID != cfg.ExperimentID {
			return nil // another experiment's record (or schema): not this run's stream
		}
		if _, dup := seen[te.ID]; dup {
			return nil
		}
		seen[te.ID] = struct{}{}
		k := key{te.UserID, te.PolicyVersion}
		i, ok := index[k]
		if !ok {
			i = len(users)
			index[k] = i
			users = append(users, tagger.StreamUser{Metadata: te.Metadata, PolicyVersion: te.PolicyVersion})
		}
		_, labelled := te.Metadata[sim.KeyEventType]
		users[i].Records = append(users[i].Records, tagger.StreamRecord{Value: te.Value,
			Crisis: te.Metadata[sim.KeyTrueSegment] == sim.SegmentCrisis, Labelled: labelled,
			Tagged: te.EventType == schemas.EventCrisis, Score: te.TagScore})
		te = schemas.TaggedExperience{} // the metadata map stays with the user
		return nil
	})
	return users, err
}

// writeTagLimit writes the summary's Bayes-limit lines.
func writeTagLimit(tw io.Writer, lim *tagger.StreamLimit) {
	fmt.Fprintf(tw, "  Bayes limit of this run's stream\t%d records of %d users, %d acting policies; posterior from the simulator's model given the acting policy, %d ghost journeys per segment and user\n",
		lim.Records, lim.Users, lim.Versions, lim.Ghosts)
	sets := []struct {
		name string
		rows [2]tagger.Row
		n    int
	}{{"unlabelled", lim.Unlabelled, lim.Records - lim.Labelled}, {"all", lim.All, lim.Records}}
	for _, s := range sets {
		t, b := s.rows[0], s.rows[1]
		fmt.Fprintf(tw, "    %s records (%d)\ttagger F1 %.3f (precision %.3f, recall %.3f), Bayes limit F1 %.3f (precision %.3f, recall %.3f): tagger - limit %+.3f\n",
			s.name, s.n, t.F1, t.Precision, t.Recall, b.F1, b.Precision, b.Recall, t.F1-b.F1)
	}
	fmt.Fprintf(tw, "    Bayes limit, unlabelled records\tposterior threshold %.3f, expected F1 from the posteriors %.3f\n", lim.BayesThreshold, lim.BayesExpectedF1)
}
