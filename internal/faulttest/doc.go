// Package faulttest holds aelp's fault and security tests against a broker
// started by kafkatest: the broker killed with SIGKILL mid-stream, an
// aggregator process and a learner process killed with SIGKILL and
// restarted, and every role over SASL_SSL with SCRAM-SHA-512 (right and
// wrong password). Each fault test logs
//
//	produced=N delivered=N lost=N duplicated=N
//
// and fails unless lost is 0. The fault tests need real Apache Kafka
// (AELP_TEST_KAFKA=real) and skip otherwise; the SASL test runs against
// either broker. The package has no code of its own: it knows the roles
// only through their exported APIs and the aelp binary's flags.
package faulttest
