package resilience

import (
	"strconv"
	"time"
)

// Deadlines are absolute times. The zero time.Time means "no deadline"
// throughout, so a route with timeout 0 (long polling) needs no special
// case: every function below treats zero as later than any real time.

// PerTry returns the deadline of one attempt that starts at start: the
// earlier of the request's overall deadline and start+perTry. A perTry of
// zero or less means attempts are bounded by overall alone. Every attempt
// of a request shares overall, so retries and hedges never outlive the
// route's timeout.
func PerTry(start, overall time.Time, perTry time.Duration) time.Time {
	if perTry <= 0 {
		return overall
	}
	return Earliest(overall, start.Add(perTry))
}

// Earliest returns the earlier of two deadlines, where zero means none: it
// is the other one if either is zero. An incoming deadline header and the
// route's timeout combine with it (the smaller wins).
func Earliest(a, b time.Time) time.Time {
	switch {
	case a.IsZero():
		return b
	case b.IsZero(), a.Before(b):
		return a
	default:
		return b
	}
}

// maxTimeoutDigits bounds an incoming deadline header: 12 decimal digits
// is over 31 years in milliseconds, so the value can never overflow a
// time.Duration and a hostile header costs at most 12 steps.
const maxTimeoutDigits = 12

// ParseTimeoutMillis parses an incoming deadline header value (such as
// X-Request-Timeout-Ms): a non-negative decimal integer of milliseconds,
// digits only, at most 12 of them. It reports false for anything else
// (empty, signs, spaces, fractions, longer input), so a malformed header is
// ignored rather than trusted. It does not allocate.
func ParseTimeoutMillis(v []byte) (time.Duration, bool) {
	if len(v) == 0 || len(v) > maxTimeoutDigits {
		return 0, false
	}
	var ms int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		ms = ms*10 + int64(c-'0')
	}
	return time.Duration(ms) * time.Millisecond, true
}

// AppendTimeoutMillis appends the remaining deadline in whole milliseconds
// to dst, for the upstream's deadline header, so the service can give up
// when tailguard will. It rounds down (the upstream is told no more time
// than there is) but never below 1: "0" would read as "already late" or,
// to some servers, "no deadline". It does not allocate when dst has room
// for 13 bytes (the most milliseconds a Duration holds).
func AppendTimeoutMillis(dst []byte, remaining time.Duration) []byte {
	return strconv.AppendInt(dst, max(remaining.Milliseconds(), 1), 10)
}
