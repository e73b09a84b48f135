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
// Time is always an argument (now time.Time, or nanoseconds), never read
// inside a decision, so tests drive state changes without waiting.
package resilience
