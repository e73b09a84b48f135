package resilience

import (
	"math"
	"math/rand/v2"
	"time"
)

// RetryOn is the set of attempt endings a route retries: failure reasons
// (connect_failure, reset, timeout) and response statuses (4xx, 5xx). The
// zero value matches nothing. It is a small value, safe to copy and to
// share, and comparable with ==.
type RetryOn struct {
	reasons  uint8     // bit 1<<Reason
	statuses [4]uint64 // bit status-400, for 400..599
}

// retryOnMinStatus and retryOnMaxStatus bound the statuses RetryOn holds.
const (
	retryOnMinStatus = 400
	retryOnMaxStatus = 599
)

// WithReason returns o with the failure reason why added. With
// WithStatus it builds a route's set once, when the route is built.
// ReasonNone adds nothing Matches consults: a response matches by its
// status.
func (o RetryOn) WithReason(why Reason) RetryOn {
	o.reasons |= 1 << why
	return o
}

// WithStatus returns o with the response status added. A status outside
// 400–599, which config does not allow, is not held: o is returned
// unchanged.
func (o RetryOn) WithStatus(status int) RetryOn {
	if status >= retryOnMinStatus && status <= retryOnMaxStatus {
		i := status - retryOnMinStatus
		o.statuses[i/64] |= 1 << (i % 64)
	}
	return o
}

// Matches reports whether an attempt that ended with status and why is in
// the set. A response (why == ReasonNone) matches by its status; an attempt
// without one matches by its reason.
func (o RetryOn) Matches(status int, why Reason) bool {
	if why != ReasonNone {
		return o.reasons&(1<<why) != 0
	}
	if status < retryOnMinStatus || status > retryOnMaxStatus {
		return false
	}
	i := status - retryOnMinStatus
	return o.statuses[i/64]&(1<<(i%64)) != 0
}

// RetrySettings configures a route's retries. Zero fields mean what each
// says; NewRetry normalises them.
type RetrySettings struct {
	// Attempts is how many extra attempts may follow the first; 0 (or
	// less) never retries.
	Attempts int
	// On is what is retried; the zero RetryOn retries nothing.
	On RetryOn
	// Backoff is the base of the exponential backoff before retry n
	// (0-based): a random wait in [0, min(MaxBackoff, Backoff·2^n)]. 0 (or
	// less) retries at once.
	Backoff time.Duration
	// MaxBackoff caps one backoff; 0 (or less) means 10×Backoff.
	MaxBackoff time.Duration
	// Ratio is the share of the route's requests that retries may add,
	// passed to Budget.TryExtra; 0 (or less) leaves only the budget's
	// per-second minimum.
	Ratio float64
}

// Retry decides whether a failed attempt is tried again, and after how
// long. It is immutable after NewRetry and safe for concurrent use. Whether
// the method may be retried at all is Idempotent's question, and whether
// the route can afford it is the Budget's: the caller asks all three.
type Retry struct {
	attempts   int
	on         RetryOn
	backoff    time.Duration
	maxBackoff time.Duration
	ratio      float64
}

// NewRetry builds a Retry from s, normalising its zero and negative fields
// as RetrySettings documents.
func NewRetry(s RetrySettings) *Retry {
	r := &Retry{
		attempts:   max(s.Attempts, 0),
		on:         s.On,
		backoff:    max(s.Backoff, 0),
		maxBackoff: s.MaxBackoff,
		ratio:      max(s.Ratio, 0),
	}
	if r.maxBackoff <= 0 {
		r.maxBackoff = retryScaled(r.backoff, 10)
	}
	return r
}

// retryScaled returns d×n, saturating at the largest Duration.
func retryScaled(d time.Duration, n int64) time.Duration {
	if d > math.MaxInt64/time.Duration(n) {
		return math.MaxInt64
	}
	return d * time.Duration(n)
}

// Next decides after attempt try (0 is the first) ended with status and
// why. ok says retry, after waiting backoff: exponential with full jitter
// (AWS's "full jitter": uniform in [0, min(MaxBackoff, Backoff·2^try)]), so
// clients that failed together do not retry together. It refuses when the
// attempts are used up, when the ending is not in On, or when now+backoff
// is not before deadline (a zero deadline has no bound): a retry that
// cannot start in time only burns the upstream. It does not allocate.
func (r *Retry) Next(try int, status int, why Reason, now, deadline time.Time) (backoff time.Duration, ok bool) {
	if try < 0 || try >= r.attempts || !r.on.Matches(status, why) {
		return 0, false
	}
	backoff = retryJitter(r.backoffCap(try))
	if !deadline.IsZero() && !now.Add(backoff).Before(deadline) {
		return 0, false
	}
	return backoff, true
}

// backoffCap returns min(maxBackoff, backoff·2^try) without overflowing.
func (r *Retry) backoffCap(try int) time.Duration {
	if try >= 63 || r.backoff > r.maxBackoff>>uint(try) {
		return r.maxBackoff
	}
	return r.backoff << uint(try)
}

// retryJitter draws uniformly from [0, c].
func retryJitter(c time.Duration) time.Duration {
	if c <= 0 {
		return 0
	}
	n := int64(c)
	if n < math.MaxInt64 {
		n++
	}
	return time.Duration(rand.Int64N(n))
}

// Ratio returns the share of requests retries may add, for Budget.TryExtra.
func (r *Retry) Ratio() float64 { return r.ratio }

// Idempotent reports whether a request may be sent more than once (retried
// or hedged): GET, HEAD, OPTIONS, PUT and DELETE (RFC 9110 §9.2.2), or any
// method when the client sent an Idempotency-Key, which lets the service
// recognise the repeat. Method names are case-sensitive. It does not
// allocate.
func Idempotent(method []byte, hasIdempotencyKey bool) bool {
	if hasIdempotencyKey {
		return true
	}
	switch string(method) {
	case "GET", "HEAD", "OPTIONS", "PUT", "DELETE":
		return true
	}
	return false
}
