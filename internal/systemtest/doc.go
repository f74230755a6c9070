// Package systemtest runs the aelp binary against a broker started by
// kafkatest and checks what it does with tools aelp did not write:
// record/replay fidelity read back with franz-go's kgo and kcat (null and
// empty keys, values and header values), and a real Prometheus scraping
// every long-running role, querying back each metric docs/operations.md
// documents and every panel of the Grafana dashboard in deploy/grafana;
// and that `aelp learn` refuses a checkpoint of another experiment or
// tagged topic. The package has no code of its own: it knows the roles
// through the binary's flags, its output and HTTP endpoints, and writes a
// checkpoint with the learner's exported API.
//
// The outside tools come from Debian (apt-get install prometheus kcat);
// a test whose tool is missing skips, saying so, unless
// AELP_TEST_PROMETHEUS=require or AELP_TEST_KCAT=require (both set by
// .ci/run; AELP_TEST_TOOLS=require covers both) makes it a failure.
package systemtest
