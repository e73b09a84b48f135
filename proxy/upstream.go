package proxy

import (
	"time"

	"github.com/valyala/fasthttp"

	"tailguard/resilience"
)

// Upstream is a configured service: equivalent endpoints, each with its own
// pool of keep-alive connections, and the decisions that spread attempts
// over them: a balancer, and optionally outlier ejection and active health
// checks. Safe for concurrent use.
type Upstream struct {
	settings  upstreamSettings // what it was built from; see carry.go
	endpoints []*endpoint
	balancer  *resilience.Balancer
	outlier   *resilience.Outlier // nil: no ejection
	health    *resilience.Health  // nil: no health checks
	probe     *prober             // nil: no health checks
	breaker   *resilience.Breaker // nil: never cut off
	// breakerRetryAfter is the Retry-After of a breaker refusal: the
	// breaker's open time, in seconds.
	breakerRetryAfter []byte
}

// endpoint is one host:port of an upstream.
type endpoint struct {
	addr string
	hc   *fasthttp.HostClient
}

// Pool sizing. Response heads up to responseHeaderLimit bytes fit the read
// buffer; larger ones are refused as malformed.
const (
	responseHeaderLimit = 16 << 10
	requestWriteBuffer  = 8 << 10
	// idleConnTimeout closes pooled connections unused this long. Upstream
	// closes are also detected at reuse (upstreamConn.reusable), so this
	// only bounds idle sockets.
	idleConnTimeout = 60 * time.Second
)

func newEndpoint(addr string, maxConns int, connectTimeout time.Duration) *endpoint {
	return &endpoint{addr: addr, hc: &fasthttp.HostClient{
		Addr:        addr,
		DialTimeout: dialer{connectTimeout: connectTimeout}.dial,
		MaxConns:    maxConns,
		// No hidden queue: a full pool fails at once (ARCHITECTURE.md).
		MaxConnWaitTimeout: 0,
		// No hidden retries. tailguard drives requests itself
		// (transport.go) and never calls HostClient.Do; this guards any
		// future caller.
		MaxIdemponentCallAttempts: 1,
		MaxIdleConnDuration:       idleConnTimeout,
		ConnPoolStrategy:          fasthttp.LIFO,
		ReadBufferSize:            responseHeaderLimit,
		WriteBufferSize:           requestWriteBuffer,
		NoDefaultUserAgentHeader:  true,
	}}
}

// pick chooses the endpoint for an attempt among those neither ejected nor
// failing health checks (all of them if none is left), preferring one
// other than avoid (an earlier attempt's, for hedges; -1 for none). The
// caller must call done for it.
func (u *Upstream) pick(now int64, avoid int) int {
	i := u.balancer.Pick(now, u.outlier.Available(now)&u.health.Healthy(), avoid)
	u.balancer.Start(i)
	return i
}

// done reports how an attempt on endpoint i ended, for the balancer's
// latency estimate and for outlier detection.
func (u *Upstream) done(i int, now int64, rtt time.Duration, out resilience.Outcome) {
	u.balancer.Done(i, now, rtt)
	u.outlier.Observe(i, now, out)
}

// ready reports whether the upstream can take traffic: without health
// checks always, with them while an endpoint passes.
func (u *Upstream) ready() bool { return u.health.AnyHealthy() }

// closeIdle closes the upstream's idle connections at shutdown; busy ones
// are left to finish their requests.
func (u *Upstream) closeIdle() {
	for _, e := range u.endpoints {
		e.hc.CloseIdleConnections()
	}
}
