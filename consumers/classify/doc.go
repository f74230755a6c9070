// Package classify decides whether an experience comes from a crisis parent.
//
// It is the pure core of the aggregator: a Classifier applies, first match
// wins, an explicit label in the metadata (LABEL), a weighted score of
// metadata rules against a threshold (METADATA), the experience's value
// against a streaming P² estimate of a high percentile of the values seen
// (VALUE), and otherwise tags the experience a regular parent (DEFAULT).
// Beside the rules it keeps a learned tagger: a logistic regression of
// P(crisis | signals) over documented features of the metadata and the
// value (Features), trained online by AdaGrad SGD on the labelled records,
// with a decision threshold chosen for an Objective. With Config.Tagger
// TaggerLearned the model decides the unlabelled records once it has seen
// Config.TaggerWarmUp labelled ones; the rules decide before that. Every
// Decision's Score is the model's calibrated probability. An Accuracy
// tracker measures the decisions against ground truth (precision, recall,
// F1, and the Brier score and expected calibration error of the scores).
//
// The package knows nothing of Kafka, Avro or the project's schemas; callers
// convert their records to a metadata map and a value. It never reads the
// ground-truth metadata key to classify: only Classifier.Truth does, for
// accuracy reporting.
package classify
