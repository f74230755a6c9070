package classify

import (
	"strconv"
	"strings"
)

// maxNumberLen bounds the length of a number in metadata. With at most 32
// bytes and an exponent of at most two digits a decimal cannot overflow or
// underflow a float64, so strconv never takes its (allocating) error path.
const maxNumberLen = 32

// parseDecimal parses s, surrounding spaces trimmed, as a decimal number
// [+-]digits[.digits][e[+-]d[d]] of at most maxNumberLen bytes (at least one
// mantissa digit; "NaN", "Inf", hex and underscores are rejected). It never
// allocates.
func parseDecimal(s string) (float64, bool) {
	s = strings.TrimSpace(s)
	if len(s) == 0 || len(s) > maxNumberLen {
		return 0, false
	}
	i := 0
	if s[i] == '+' || s[i] == '-' {
		i++
	}
	digits := 0
	for i < len(s) && isDigit(s[i]) {
		i++
		digits++
	}
	if i < len(s) && s[i] == '.' {
		i++
		for i < len(s) && isDigit(s[i]) {
			i++
			digits++
		}
	}
	if digits == 0 {
		return 0, false
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		exp := 0
		for i < len(s) && isDigit(s[i]) {
			i++
			exp++
		}
		if exp == 0 || exp > 2 {
			return 0, false
		}
	}
	if i != len(s) {
		return 0, false
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, false
	}
	return v, true
}

// parseCount parses s, surrounding spaces trimmed, as a decimal integer
// [+-]digits with at most 18 digits. It never allocates.
func parseCount(s string) (int64, bool) {
	s = strings.TrimSpace(s)
	neg := false
	if len(s) > 0 && (s[0] == '+' || s[0] == '-') {
		neg = s[0] == '-'
		s = s[1:]
	}
	if len(s) == 0 || len(s) > 18 {
		return 0, false
	}
	var v int64
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return 0, false
		}
		v = 10*v + int64(s[i]-'0')
	}
	if neg {
		v = -v
	}
	return v, true
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// hasKeyword reports whether any comma-separated item of list, trimmed of
// surrounding spaces, equals one of keywords under Unicode case folding. It
// scans list in place and never allocates.
func hasKeyword(list string, keywords []string) bool {
	for rest, more := list, true; more; {
		var item string
		item, rest, more = strings.Cut(rest, ",")
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		for _, k := range keywords {
			if strings.EqualFold(item, k) {
				return true
			}
		}
	}
	return false
}

// parseLabel reads a label value: LabelCrisis or LabelRegular,
// case-insensitive, surrounding spaces trimmed. ok is false for anything else.
func parseLabel(s string) (crisis, ok bool) {
	s = strings.TrimSpace(s)
	switch {
	case strings.EqualFold(s, LabelCrisis):
		return true, true
	case strings.EqualFold(s, LabelRegular):
		return false, true
	}
	return false, false
}
