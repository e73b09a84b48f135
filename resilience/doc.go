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
//
// # Latency-induced probation
//
// Outlier ejection for failures (consecutive_5xx) misses the gray
// failure: an endpoint that never fails but is slow at the tail (a noisy
// neighbour, a thrashing garbage collector, a bad disk). Round robin keeps
// sending it its share, so with three endpoints and one answering a fifth
// of its requests after 150 ms, the route's p99 is that endpoint's. P2C's
// peak EWMA steers by something close to the mean, and a fifth of
// stragglers barely moves a mean that decays back between them. The Tail
// at Scale calls the remedy latency-induced probation: take the slow
// replica out of rotation for a while. Envoy has had an open issue for it
// since 2016 (envoyproxy/envoy#288); Outlier does it with LatencyFactor F:
//
//  1. Each attempt's round trip goes into its endpoint's histogram:
//     log-linear buckets of at most 1/8 relative width, one atomic add,
//     no lock, no allocation. Counts decay to 3/4 each second instead of
//     being reset, so an endpoint is judged on about its last four
//     seconds of traffic, without a ring of windows. A histogram holding
//     fewer than the samples a judgement needs does not decay: an
//     endpoint that P2C already starves (a slow one gets a few percent
//     of the picks) is judged on its last 100 samples, however long they
//     took to come, instead of never. The scenario "gray" showed it: with
//     the decay alone, P2C kept the gray endpoint under the minimum and
//     fed it bursts whenever its latency estimate had decayed.
//  2. Once a second (the first Observe to find the comparison due takes a
//     TryLock; the rest go on), each endpoint that is in service and holds
//     at least 100 samples has its tail taken: the p99 of its histogram.
//     p99, because that is the percentile a route's users and its SLO
//     feel first; 100 samples, because fewer cannot tell a p99 from the
//     maximum of a handful.
//  3. An endpoint is compared with its peers, not with a fixed threshold:
//     the reference is the median of the other judged endpoints' tails
//     (the lower one for an even count), so that one slow endpoint cannot
//     raise its own bar, a service that is slow everywhere ejects nobody,
//     and with three endpoints the gray one is measured against the
//     healthy two. An endpoint with no judged peer (a single endpoint, or
//     too little traffic elsewhere) is never ejected for latency.
//  4. It is ejected when its tail is at least F times the reference and
//     at least 10 ms: a ratio of small numbers (1 ms against 0.3 ms) is
//     no gray failure a client notices, and must not empty an upstream.
//  5. From there it is an ejection like a failure one: its length grows
//     with repeats, MaxEjectedPercent caps how many are out at once, panic
//     mode applies when every endpoint is out, and shadow mode only
//     counts. Its histogram is emptied, so on return it must show its tail
//     again on fresh samples before it can be judged.
//  6. A returning endpoint, after either kind of ejection, earns its share
//     back over one base ejection time (Eligible): it is a candidate for a
//     pick with a probability rising from 10% to 100%. Weighting the
//     candidate set rather than a policy's arithmetic works with every
//     balance policy, and keeps P2C from flooding an endpoint whose
//     latency estimate decayed toward zero while it was out.
//
// What it does not do: it does not compare an endpoint with itself over
// time (a whole upstream getting slower is an admission matter, not an
// ejection), and it cannot tell a slow endpoint from slow requests that
// happen to land on it.
package resilience
