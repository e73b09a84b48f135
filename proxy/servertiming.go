package proxy

import (
	"strconv"
	"time"
)

// appendServerTiming appends a Server-Timing header value (W3C Server
// Timing) that splits the response time into what the request waited in
// tailguard and what the upstream took, so that a developer sees the split
// in the browser's network panel: "queue;dur=0.012, upstream;dur=3.4"
// (milliseconds).
func appendServerTiming(dst []byte, queue, upstream time.Duration) []byte {
	dst = append(dst, "queue;dur="...)
	dst = appendMillis(dst, queue)
	dst = append(dst, ", upstream;dur="...)
	return appendMillis(dst, upstream)
}

// appendMillis appends d in milliseconds with up to three decimals
// (microsecond precision) and no trailing zeros.
func appendMillis(dst []byte, d time.Duration) []byte {
	us := d.Microseconds()
	if us < 0 {
		us = 0
	}
	dst = strconv.AppendInt(dst, us/1000, 10)
	frac := us % 1000
	if frac == 0 {
		return dst
	}
	digits := [3]byte{byte('0' + frac/100), byte('0' + frac/10%10), byte('0' + frac%10)}
	n := 3
	for digits[n-1] == '0' {
		n--
	}
	return append(append(dst, '.'), digits[:n]...)
}
