// Package join is the pure core of `aelp join`: it joins a live ad
// system's decisions with their delayed outcomes into exactly one
// schemas.Experience per decision, when the decision's attribution window
// is closed by its partition's watermark. It knows nothing of Kafka: the
// role feeds it decoded records with their partition, offset and the wall
// clock, and publishes what it returns.
//
// # Time
//
// Event time is the records' timestamps (milliseconds). Each partition has
// two inputs, decisions and outcomes (the topics are co-partitioned by
// user id). The partition's watermark is
//
//	W = max(W, min over active inputs of (highest event time seen) − Grace)
//
// where an input is active when it delivered a record within IdleAdvance of
// wall time (an input that never delivered one counts from the moment the
// partition was first seen). The minimum keeps a fast-read topic from
// closing windows whose outcomes are still unread on the other. When
// neither input is active, W = max(W, max(highest event time seen,
// wall-clock now) − Grace): a quiet partition never holds windows open
// (learning-loop's punctuation). While the core is Full, the decisions
// input is not counted, so outcomes alone move the clock. Flush moves every
// watermark to +∞ (end of input).
//
// # Attribution
//
// An outcome with a decision id belongs to that decision. An outcome
// without one belongs to the user's latest decision (in the same
// partition, among those open) at or before the outcome's event time. It
// counts when its event time is at most decision time + the window of its
// kind; otherwise it is returned as late with reason outside-window. An
// outcome whose decision has not arrived is held for BackwardWindow of
// event time; a decision arriving in that time claims it (by id, or, for
// outcomes without id, the user's held outcomes at or after the decision's
// time). An outcome for a decision already emitted is late (reason late);
// one that nothing claimed within BackwardWindow is unmatched. Duplicates
// (same non-empty outcome id, or the same kind, timestamp, value and cost
// when the id is empty) count once.
//
// # Experience
//
// A decision made at t is emitted when W ≥ t + Windows.Max(): every
// decision waits the longest window, so actions with fast feedback are not
// favoured. Its experience has the decision's id, experiment, user,
// episode, step, timestamp, state, action, behavior_logprob,
// policy_version, value and metadata, and
//
//	reward     = Σ value − Σ cost over its outcomes (each sum in event-time,
//	             then id order), or DefaultReward when it has none
//	done       = an END outcome counted, or step ≥ MaxSteps−1 (when set), or
//	             no next decision of the user in the episode (a higher step)
//	             at or before t + Windows.Max()
//	next_state = the next decision's state; the decision's own state when
//	             done (the learner masks V(s′) by done)
//
// # Crash safety
//
// The core keeps no durable state. SafeOffsets returns, per partition, the
// offsets below which every record is no longer needed: on decisions the
// oldest open decision, on outcomes the oldest outcome held or attributed
// to a decision at or after it. A consumer that commits only those offsets
// re-reads, after a crash, every record an open decision depends on and
// rebuilds the same state: decisions emitted before the crash whose offset
// is above the commit are emitted again, with the same id and, the inputs
// being in event-time order within Grace, the same reward (at least once;
// the learner drops the duplicates by id).
//
// # Memory
//
// Open decisions are bounded by MaxPending (back pressure, see Full); held
// outcomes by BackwardWindow; the ids of emitted decisions remembered to
// tell late outcomes from unmatched ones by MaxPending.
package join
