// Package layers holds the module's structure tests; it has no code.
//
// The packages form layers, and imports run one way, from a higher layer
// to a lower one or within a layer:
//
//	0 base         schemas, internal/stats: the record formats and the
//	               statistics every core shares; no aelp imports
//	1 cores        producers/sim, consumers/classify, learner/replay,
//	               learner/ppo, learner/train, consumers/join: the pure
//	               domain code, no Kafka
//	2 plumbing     every other package under internal/ (kafkax, broker,
//	               obs, plot, lifecycle, kafkatest, …): shared machinery
//	               that knows no role
//	3 roles        producers, consumers, learner, learner/policy (and
//	               their test helpers): records between Kafka and the cores
//	4 composition  app/…: the roles wired together (run, bench,
//	               experiment)
//	5 command      cmd/aelp: flags and wiring
//
// TestLayers checks, over `go list -json` of the module's packages (their
// non-test imports; a test may drive anything), that no package imports
// one of a higher layer, that no package under internal/ imports anything
// under producers/, consumers/, learner/, app/ or cmd/ (not even a core:
// plumbing knows the records, not the domain), that every package is
// placed in a layer, and that the aelp binary does not link the testing
// package. TestFunctionLength keeps every non-test function within 80
// lines.
package layers
