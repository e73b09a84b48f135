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
//	admit (Admission) → breaker (Breaker) → attempt loop
//	    (Retry, Hedge and Budget; each attempt: Balancer.Pick → forward
//	    with a per-try deadline → Outlier and Balancer learn the Outcome)
//	→ respond → record
//
// Time is always an argument, never read inside a decision, so tests drive
// state changes without waiting. Every instant crossing this API, "now" and
// deadlines alike, is a time.Time, normally from time.Now() (fasthttp's
// ctx.Time() is one too): callers already hold those, so passing one costs
// no clock read and no conversion, and there is no shared epoch to agree
// on across packages. A type that keeps instants in atomic words
// (Balancer, Outlier, Budget) turns them into int64 nanoseconds since its
// own construction; that subtraction uses the monotonic readings, so it
// is cheap and unaffected by wall-clock steps. Tests build their instants
// as a start plus offsets.
package resilience
