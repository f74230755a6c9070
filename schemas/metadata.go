package schemas

// KeyTrueSegment is the Experience.Metadata key under which a producer that
// knows a user's true segment (the simulator) writes it, as an EventType
// symbol ("CRISIS_PARENT" or "REGULAR_PARENT"). It is a convention of the
// wire format, defined here once: ground truth for measuring the tags and
// the learning, which a tagger must never read to decide.
const KeyTrueSegment = "aelp.true_segment"
