package metrics

import "time"

// A Sample is everything recorded about one request: where its time went
// and how it ended. The proxy builds one when it hands the response back
// and passes it by value to Route.Record, so recording allocates nothing.
//
// The durations are measured from the request's arrival, fasthttp's
// ctx.Time(), taken when the request was read: time spent waiting in
// tailguard is never hidden (see the package doc on coordinated omission).
type Sample struct {
	// Queue is arrival to admission: the time the request waited in
	// tailguard before it was allowed to proceed.
	Queue time.Duration
	// Service is the winning attempt's upstream time; 0 if no attempt was
	// made (shed, breaker open, bad request), and then it is not recorded.
	Service time.Duration
	// Response is arrival to response handed back: what the client saw.
	// Overhead = Response − Queue − Service is derived from it.
	Response time.Duration
	// Status is the status sent to the client, tailguard's own errors
	// included.
	Status int
	// Flags says why tailguard answered by itself, if it did, and whether
	// a hedge won.
	Flags Flag
	// Retries is the number of retry attempts made.
	Retries uint8
	// Hedges is the number of hedge attempts sent.
	Hedges uint8
	// TraceID is the request's W3C trace id (TraceparentID of its
	// traceparent header), nil if it has none; RequestID is its
	// X-Request-Id. The latency histograms keep recent requests' ids as
	// exemplars (the trace id when there is one): Record copies the bytes
	// into a fixed array and keeps no reference, so they may point into
	// buffers that are reused after it returns.
	TraceID, RequestID []byte
	// WouldHedges is the number of hedges a shadow-mode hedge policy
	// decided and did not send.
	WouldHedges uint8
}

// A Flag marks how a request ended, beyond its status. Flags combine.
type Flag uint8

const (
	// Shed marks a request refused by admission control.
	Shed Flag = 1 << iota
	// BreakerRejected marks a request refused because the breaker was open.
	BreakerRejected
	// TimedOut marks a request tailguard answered with 504 because a
	// deadline passed.
	TimedOut
	// HedgeWon marks a response that came from a hedge attempt.
	HedgeWon
	// RateLimited marks a request refused because its client was over the
	// route's rate limit.
	RateLimited
	// WouldRetry marks a request a shadow-mode retry policy would have
	// retried (its first retry; later ones depend on answers never
	// received).
	WouldRetry
	// WouldReject marks a request a shadow-mode breaker would have
	// refused, and let through.
	WouldReject
)

// overhead is the time tailguard itself spent on a request: Response −
// Queue − Service, never negative.
func (s *Sample) overhead() time.Duration {
	return max(s.Response-s.Queue-s.Service, 0)
}
