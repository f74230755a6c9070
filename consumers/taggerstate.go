package consumers

// TaggerState returns the state of the aggregator's learned crisis tagger
// (classify.Classifier.AppendState): pass it as AggregateConfig.Classifier.State
// to the next aggregator so that a restart keeps what was learned. Call it
// only after Run has returned (the classifier belongs to Run's loop while
// it runs).
func (a *Aggregator) TaggerState() []byte { return a.cls.AppendState(nil) }
