// Package schemas holds aelp's Avro schemas and their codecs: the embedded
// .avsc files of every version of Experience, TaggedExperience,
// TrainingMetrics, PolicySnapshot, and of the live streams' Decision and
// Outcome (namespace aelp), the typed Go structs
// and their conversion to and from goavro's native form, the Avro
// single-object framing (C3 01, the CRC-64-AVRO fingerprint of the writer
// schema's Parsing Canonical Form, the binary datum), writer→reader schema
// resolution so that records of older versions stay readable, validation of
// decoded experiences, decisions and outcomes, and the typed errors a consumer turns into
// dead-letter reasons. It also holds the recording format of `aelp record`
// and `aelp replay` (an Avro object container file of RecordedMessage
// entries, avro/recorded_message.v2.avsc, with its reader and writer) and
// JSONValue, the conversion of decoded values to JSON for tools.
//
// The package knows nothing of Kafka, topics or the learner: it turns values
// into bytes and back.
//
// Schema evolution: a new version is a new file avro/<name>.v<N+1>.avsc that
// only adds fields with defaults (or makes other changes the resolver
// supports); the old files stay, so their fingerprints keep resolving.
package schemas
