package schemas

import (
	"errors"
	"fmt"
)

// Sentinel causes of a failed decode. They are wrapped in a *DecodeError;
// test them with errors.Is.
var (
	// ErrBadMagic means the value does not start with the single-object
	// marker C3 01.
	ErrBadMagic = errors.New("bad magic")
	// ErrTruncated means the value ended before the header or the datum was
	// complete.
	ErrTruncated = errors.New("truncated")
	// ErrUnknownSchema means the writer fingerprint is not a shipped schema,
	// or is one of another record type than the one asked for.
	ErrUnknownSchema = errors.New("unknown schema")
	// ErrBadBody means the datum does not decode under its writer schema, has
	// trailing bytes, or cannot be resolved to the current reader schema.
	ErrBadBody = errors.New("bad body")
)

// DecodeError is the error of every decoding function: the operation, the
// writer fingerprint read from the header (0 when the header was too short),
// and the cause, which wraps one of ErrBadMagic, ErrTruncated,
// ErrUnknownSchema or ErrBadBody.
type DecodeError struct {
	// Op names the operation, e.g. "decode experience".
	Op string
	// Fingerprint is the writer schema fingerprint from the header.
	Fingerprint uint64
	// Err is the cause.
	Err error
}

// Error describes the failure.
func (e *DecodeError) Error() string {
	return fmt.Sprintf("%s: fingerprint 0x%016x: %v", e.Op, e.Fingerprint, e.Err)
}

// Unwrap returns the cause.
func (e *DecodeError) Unwrap() error { return e.Err }

// ValidationError says which field of a decoded record is invalid and why.
type ValidationError struct {
	// Field is the Avro field name, e.g. "reward" or "state".
	Field string
	// Reason is a short human-readable explanation.
	Reason string
}

// Error describes the invalid field.
func (e *ValidationError) Error() string {
	return "invalid " + e.Field + ": " + e.Reason
}

// Reason returns a short, stable dead-letter reason for an error returned by
// this package: "bad-magic", "truncated", "unknown-schema", "bad-body",
// "invalid:<field>" for a *ValidationError, "" for nil and "error" for
// anything else. Consumers put it in the aelp.error header.
func Reason(err error) string {
	var ve *ValidationError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &ve):
		return "invalid:" + ve.Field
	case errors.Is(err, ErrBadMagic):
		return "bad-magic"
	case errors.Is(err, ErrTruncated):
		return "truncated"
	case errors.Is(err, ErrUnknownSchema):
		return "unknown-schema"
	case errors.Is(err, ErrBadBody):
		return "bad-body"
	default:
		return "error"
	}
}

func badBody(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrBadBody}, args...)...)
}
