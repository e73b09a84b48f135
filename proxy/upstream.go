package proxy

import (
	"sync/atomic"
	"time"

	"tailguard/proxy/internal/client"
	"tailguard/resilience"
)

// Upstream is a configured service: equivalent endpoints, each with its own
// pool of keep-alive connections, and the decisions that spread attempts
// over them: a balancer, and optionally outlier ejection and active health
// checks. Safe for concurrent use.
type Upstream struct {
	settings  upstreamSettings // what it was built from; see carry.go
	endpoints []*client.Endpoint
	balancer  *resilience.Balancer
	outlier   *resilience.Outlier // nil: no ejection
	health    *resilience.Health  // nil: no health checks
	probe     *client.Prober      // nil: no health checks
	breaker   *resilience.Breaker // nil: never cut off
	// breakerRetryAfter is the Retry-After of a breaker refusal: the
	// breaker's open time, in seconds.
	breakerRetryAfter []byte
	// attempts counts each endpoint's attempts, for /stats and /metrics.
	attempts []endpointAttempts
}

// endpointAttempts counts the attempts sent to one endpoint and those that
// failed. It is padded to a cache line so that attempts on different
// endpoints do not contend.
type endpointAttempts struct {
	sent, failed atomic.Uint64
	_            [48]byte
}

// pick chooses the endpoint for an attempt among those neither ejected nor
// failing health checks (all of them if none is left), with endpoints
// back from an ejection weighted by their slow start, preferring one
// other than avoid (an earlier attempt's, for hedges; -1 for none). The
// caller must call done for it.
func (u *Upstream) pick(now time.Time, avoid int) int {
	i := u.balancer.Pick(now, u.outlier.Eligible(now, u.health.Healthy()), avoid)
	u.balancer.Start(i)
	return i
}

// done reports how an attempt on endpoint i ended, for the balancer's
// latency estimate, for outlier detection (failures and tail latency),
// and for the endpoint's counts (an attempt tailguard did not send,
// Excluded, is not counted).
func (u *Upstream) done(i int, now time.Time, rtt time.Duration, out resilience.Outcome) {
	u.balancer.Done(i, now, rtt)
	u.outlier.Observe(i, now, rtt, out)
	if out != resilience.Excluded {
		a := &u.attempts[i]
		a.sent.Add(1)
		if out == resilience.Failure {
			a.failed.Add(1)
		}
	}
}

// ready reports whether the upstream can take traffic: without health
// checks always, with them while an endpoint passes.
func (u *Upstream) ready() bool { return u.health.AnyHealthy() }

// closeIdle closes the upstream's idle connections at shutdown; busy ones
// are left to finish their requests.
func (u *Upstream) closeIdle() {
	for _, e := range u.endpoints {
		e.CloseIdle()
	}
}
