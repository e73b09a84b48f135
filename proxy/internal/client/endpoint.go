// Package client is tailguard's HTTP/1.1 client to upstream endpoints. It
// uses fasthttp.HostClient only as a bounded pool of connections and
// writes requests and reads responses itself, so that it can keep the
// promise fasthttp's own client does not: a connection is pooled again
// only after an exactly framed response, and a pooled connection is
// checked for bytes nobody asked for before it carries another request,
// so a response is never read by the wrong request (ARCHITECTURE.md,
// "response desync"). It never sends a request twice and never queues:
// retries and waiting belong to the proxy's policies.
//
// The API is small: an Endpoint makes round trips (RoundTrip), Classify
// tells what a round trip's error means for the client and for the
// policies, Move hands a response from one object to another, and a
// Prober runs active health checks.
package client

import (
	"crypto/tls"
	"net"
	"time"

	"github.com/valyala/fasthttp"
)

// Endpoint is one host:port of an upstream, with its own pool of
// keep-alive connections. Safe for concurrent use.
type Endpoint struct {
	addr string
	tls  *tls.Config // nil: plain HTTP
	hc   *fasthttp.HostClient
}

// Pool sizing. Response heads up to responseHeaderLimit bytes fit the read
// buffer; larger ones are refused as malformed.
const (
	responseHeaderLimit = 16 << 10
	requestWriteBuffer  = 8 << 10
	// idleConnTimeout closes pooled connections unused this long. Upstream
	// closes are also detected at reuse (upstreamConn.send, socketIdle), so this
	// only bounds idle sockets.
	idleConnTimeout = 60 * time.Second
)

// NewEndpoint returns an endpoint for addr that keeps at most maxConns
// connections and gives a dial (with its TLS handshake) at most
// connectTimeout. With tc it speaks TLS; tc's ServerName, if empty, is the
// endpoint's host.
func NewEndpoint(addr string, maxConns int, connectTimeout time.Duration, tc *tls.Config) *Endpoint {
	tc = serverName(tc, addr)
	return &Endpoint{addr: addr, tls: tc, hc: &fasthttp.HostClient{
		Addr:        addr,
		DialTimeout: dialer{connectTimeout: connectTimeout, tls: tc}.dial,
		MaxConns:    maxConns,
		// No hidden queue: a full pool fails at once (ARCHITECTURE.md).
		MaxConnWaitTimeout: 0,
		// No hidden retries. The client drives requests itself and never
		// calls HostClient.Do; this guards any future caller.
		MaxIdemponentCallAttempts: 1,
		MaxIdleConnDuration:       idleConnTimeout,
		ConnPoolStrategy:          fasthttp.LIFO,
		ReadBufferSize:            responseHeaderLimit,
		WriteBufferSize:           requestWriteBuffer,
		NoDefaultUserAgentHeader:  true,
	}}
}

// serverName returns tc with ServerName set to addr's host if it has
// none; nil stays nil.
func serverName(tc *tls.Config, addr string) *tls.Config {
	if tc == nil || tc.ServerName != "" {
		return tc
	}
	tc = tc.Clone()
	tc.ServerName, _, _ = net.SplitHostPort(addr)
	return tc
}

// Addr is the endpoint's host:port.
func (e *Endpoint) Addr() string { return e.addr }

// MaxConns is the most connections the endpoint keeps open at once.
func (e *Endpoint) MaxConns() int { return e.hc.MaxConns }

// CloseIdle closes the endpoint's idle connections; busy ones are left to
// finish their requests.
func (e *Endpoint) CloseIdle() { e.hc.CloseIdleConnections() }
