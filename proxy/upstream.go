package proxy

import (
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// Upstream is a configured service: equivalent endpoints, each with its own
// pool of keep-alive connections. Safe for concurrent use.
type Upstream struct {
	name      string
	endpoints []*endpoint
	next      atomic.Uint64 // round robin
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

// pick chooses the endpoint for the next attempt.
func (u *Upstream) pick() *endpoint {
	if len(u.endpoints) == 1 {
		return u.endpoints[0]
	}
	return u.endpoints[(u.next.Add(1)-1)%uint64(len(u.endpoints))]
}

// closeIdle closes the upstream's idle connections at shutdown; busy ones
// are left to finish their requests.
func (u *Upstream) closeIdle() {
	for _, e := range u.endpoints {
		e.hc.CloseIdleConnections()
	}
}
