package main

import "github.com/aelp/aelp/learner"

// gateFlags binds the learner's held-out off-policy evaluation and
// promotion gate (learner.OPEConfig) to flags, shared by learn and run.
func gateFlags(fs *flagSet, c *learner.Config) {
	o := &c.OPE
	fs.Float64Var(&o.Holdout, "ope-holdout", o.Holdout, "share of users (by a hash of the user id) never trained on, kept to evaluate every snapshot off-policy (0: off)")
	fs.IntVar(&o.Journeys, "ope-journeys", o.Journeys, "most recent held-out journeys kept in the evaluation set")
	fs.IntVar(&o.MinJourneys, "ope-min-journeys", o.MinJourneys, "held-out journeys needed before a snapshot is evaluated (and, with --promote lcb, promoted)")
	fs.StringVar(&o.Promote, "promote", o.Promote, "always: publish every snapshot; lcb: only one whose value's lower bound beats the serving policy's (others go to --candidates-topic)")
	fs.StringVar(&o.ProtectSegment, "protect-segment", o.ProtectSegment, "with --promote lcb, a segment whose lower bound must beat the serving policy's too: crisis, or a segment name such as \"true CRISIS_PARENT\"")
	fs.StringVar(&o.Estimator, "ope-estimator", o.Estimator, "estimator the gate and the figures use: WPDIS, PDIS or DR")
	fs.IntVar(&o.Eval.Resamples, "ope-resamples", o.Eval.Resamples, "bootstrap resamples behind each held-out interval")
	fs.Float64Var(&o.Eval.Confidence, "ope-confidence", o.Eval.Confidence, "level of the held-out intervals (the gate's bounds)")
	fs.IntVar(&o.Eval.Workers, "ope-workers", o.Eval.Workers, "goroutines of each held-out evaluation")
	fs.StringVar(&c.CandidatesTopic, "candidates-topic", c.CandidatesTopic, "topic of the snapshots the gate held back (reason in the aelp.gate.reason header)")
}
