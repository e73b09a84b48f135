// Package resilience holds tailguard's decisions: pure types over times,
// counts and outcomes that say whether to admit a request, whether the
// circuit is open, whether and when to retry or hedge, which endpoint to
// pick, which to eject. It never touches bytes, sockets or goroutines
// (package proxy does), so every decision is unit-tested with an injected
// clock and no sleeping.
//
// proxy consults the policies in one fixed order, written once in
// proxy/serve.go:
//
//	rate limit (RateLimiter) → admit (Admission, fair by client key when
//	    configured) → breaker (Breaker) → attempt loop
//	    (Retry, Hedge and Budget; each attempt: Balancer.Pick → forward
//	    with a per-try deadline → Outlier and Balancer learn the Outcome)
//	→ respond → record
//
// Per-client state (RateLimiter, a fair Admission) lives in fixed-size
// tables that evict idle clients (keyTable), never in a map that grows
// with what clients send; fair.go gives the reasoning behind fair
// admission's discipline.
//
// Time is always an argument, never read inside a decision, so tests drive
// state changes without waiting. Every instant crossing this API, "now"
// and deadlines alike, is a time.Time carrying a monotonic reading: one
// from time.Now() (fasthttp's ctx.Time() is one), or derived from one with
// Add. Callers already hold such values, so passing one costs no clock
// read, and no epoch has to be shared across packages to agree on what a
// number means. A type that keeps instants in atomic words (Balancer,
// Outlier, Budget) turns each into int64 nanoseconds since its own
// construction: a subtraction of monotonic readings, a few nanoseconds and
// unaffected by wall-clock steps, done only where the decision needs it.
// Tests build their instants as an origin plus offsets.
package resilience
