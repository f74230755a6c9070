package systemtest

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// check is one query TestPrometheusScrapesEveryRole puts to Prometheus
// until judge says done; a non-empty bad fails the test at once (a value
// that no moment of a healthy run can have). last describes the answer of
// the latest attempt, for the message of a test that stops progressing.
type check struct {
	what, expr, last string
	judge            func([]promSample) (done bool, bad string)
}

// valueRule is what a documented metric's every value must satisfy
// (within [lo, hi], and never NaN or ±Inf) and what at least one of its
// series must reach before the check is done (ready, nil: nothing more
// than being present).
type valueRule struct {
	lo, hi float64
	ready  func(float64) bool
	want   string // ready, in words
}

func positive(v float64) bool { return v > 0 }

// counted are the counters (and histograms) the test's run must move: the
// simulator produces, the aggregator tags, the learner trains, snapshots
// and checkpoints, the gated learner holds users out, evaluates its
// snapshots and holds back the first ones (too few journeys), and both consumers dead-letter the record that is not
// Avro that the test writes to their input topics. The other counters
// count what a healthy run need not do (encode errors, refused commits,
// conversions).
var counted = []string{
	"aelp_simulate_experiences_total", "aelp_simulate_episodes_total",
	"aelp_aggregate_records_in_total", "aelp_aggregate_records_tagged_total", "aelp_aggregate_tags_total",
	"aelp_aggregate_dead_letters_total",
	"aelp_learn_experiences_ingested_total", "aelp_learn_updates_total", "aelp_learn_samples_total",
	"aelp_learn_checkpoints_total", "aelp_learn_dead_letters_total",
	"aelp_learn_ope_held_out_total", "aelp_learn_snapshots_held_back_total", "aelp_learn_ope_evaluation_seconds",
	"aelp_learn_update_seconds", "aelp_learn_first_use_latency_seconds",
	"aelp_join_experiences_total", "aelp_join_dead_letters_total", "aelp_join_late_outcomes_total",
	"aelp_join_event_latency_seconds", "aelp_join_wall_latency_seconds",
}

// gaugeRule returns the rule of the gauge name. Shares, precisions, Brier
// scores and calibration errors of tag_score and the
// importance-sampling weights (min(p)/p)^β lie in [0, 1]; sizes, rates,
// norms and losses that are squares are not negative; the gauges the first
// update sets from a batch (weights, β, learning rate, buffer) or that
// count running goroutines and memory must become positive, as must the
// held-out evaluation set and its ESS; the learner's policy version must
// reach a published snapshot (≥ 0), and the gated learner's evaluated
// version an evaluated one.
func gaugeRule(name string) valueRule {
	inf := math.Inf(1)
	has := func(parts ...string) bool {
		return slices.ContainsFunc(parts, func(p string) bool { return strings.Contains(name, p) })
	}
	r := valueRule{lo: -inf, hi: inf}
	switch {
	case has("_precision", "_recall", "_f1", "_ratio", "_fraction", "clip_frac", "importance_weights_", "_beta",
		"tag_score_brier", "tag_score_ece"):
		r.lo, r.hi = 0, 1
	case has("policy_version"):
		r.lo = -1
	case name == "aelp_join_watermark_lag_seconds":
		// Wall now − event time: negative while event time runs ahead of
		// the wall clock (the live simulator's simulated time, clock skew).
	case has("explained_variance"):
		r.hi = 1
	case has("_lag", "_per_sec", "value_loss", "grad_norm", "entropy", "learning_rate", "buffer_size",
		"_parent_weight", "_bytes", "goroutines", "_ope_ess", "_ope_journeys"):
		r.lo = 0
	}
	switch {
	case has("importance_weights_mean", "importance_weights_max", "_beta", "learning_rate", "buffer_size",
		"ingest_per_sec", "samples_per_sec", "goroutines", "_bytes", "_ope_ess", "_ope_journeys"):
		r.ready, r.want = positive, "a value > 0"
	case name == "aelp_learn_ope_policy_version":
		r.ready, r.want = func(v float64) bool { return v >= 0 }, "an evaluated snapshot (≥ 0)"
	case name == "aelp_learn_policy_version":
		r.ready, r.want = func(v float64) bool { return v >= 0 }, "a published snapshot (≥ 0)"
	}
	return r
}

// metricCheck returns the check of documented metric m, scraped from the
// roles jobs (named as the roles). A histogram is queried by its _count.
// Every series must carry the documented labels and come from the role its
// name says (aelp_<role>_…) or, for the Go and process collectors' metrics,
// from every role; every value must be finite and within the metric's
// bounds, and the check is done once a series is ready.
func metricCheck(m docMetric, jobs []string) check {
	expr := m.name
	rule := valueRule{lo: 0, hi: math.Inf(1)}
	switch m.typ {
	case "histogram":
		expr += "_count"
	case "gauge":
		rule = gaugeRule(m.name)
	}
	if m.typ != "gauge" && slices.Contains(counted, m.name) {
		rule.ready, rule.want = positive, "a count > 0"
	}
	wantJobs := jobs
	for _, j := range jobs {
		if strings.HasPrefix(m.name, "aelp_"+j+"_") {
			wantJobs = []string{j}
		}
	}
	what := "documented " + m.typ + " " + m.name
	if rule.want != "" {
		what += " (waiting for " + rule.want + ")"
	}
	return check{what: what, expr: expr, judge: func(s []promSample) (bool, string) {
		seen := map[string]bool{}
		ready := rule.ready == nil && len(s) > 0
		for _, x := range s {
			job := x.labels["job"]
			if !slices.Contains(wantJobs, job) {
				return false, fmt.Sprintf("series %v from job %q, want only %v", x.labels, job, wantJobs)
			}
			seen[job] = true
			for _, l := range m.labels {
				if x.labels[l] == "" {
					return false, fmt.Sprintf("series %v without the documented label %q", x.labels, l)
				}
			}
			if math.IsNaN(x.value) || math.IsInf(x.value, 0) || x.value < rule.lo || x.value > rule.hi {
				return false, fmt.Sprintf("series %v = %v, want a finite value in [%v, %v]", x.labels, x.value, rule.lo, rule.hi)
			}
			if rule.ready != nil && rule.ready(x.value) {
				ready = true
			}
		}
		if len(seen) < len(wantJobs) {
			return false, ""
		}
		return ready, ""
	}}
}

// panelCheck returns the check of one dashboard query: done once it
// answers a series with a number (NaN, as a quantile of no observations,
// is not yet one).
func panelCheck(q panelQuery) check {
	return check{what: fmt.Sprintf("panel %q query %s", q.panel, q.refID), expr: q.expr, judge: func(s []promSample) (bool, string) {
		return slices.ContainsFunc(s, func(x promSample) bool { return !math.IsNaN(x.value) }), ""
	}}
}

// describe sums up an answer for a failure message.
func describe(s []promSample) string {
	if len(s) == 0 {
		return "no series"
	}
	parts := make([]string, 0, len(s))
	for _, x := range s {
		parts = append(parts, fmt.Sprintf("%v = %v", x.labels, x.value))
	}
	return strings.Join(parts, "; ")
}
