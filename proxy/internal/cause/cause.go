// Package cause names why tailguard answered a request itself instead of
// passing on the upstream's response, and holds the one table that gives
// each cause its status, its X-Tailguard-Error value, its fixed body and
// what metrics count it as. The client edge, the upstream client and the
// request path all speak it, so a client can always tell tailguard's
// errors from the service's, and each error is counted the same way
// wherever it arises.
package cause

import (
	"fmt"
	"sync/atomic"

	"github.com/valyala/fasthttp"

	"tailguard/metrics"
)

// Header is the response header naming the cause of tailguard's own
// answers.
const Header = "X-Tailguard-Error"

// A Cause is why tailguard answered a request itself. The zero value,
// None, means it did not: the upstream answered.
type Cause uint8

// The causes, in no particular order. DESIGN.md ("Errors a client can get
// from tailguard itself") is their contract.
const (
	None Cause = iota
	BadRequest
	NoRoute
	HeaderTimeout
	BodyTooLarge
	URITooLong
	HeadersTooLarge
	ConnectFailure
	UpstreamReset
	BadResponse
	PoolFull
	ConnectTimeout
	Timeout
	Shed
	BreakerOpen
	TooManyHeaders
	ConnLimit
	TLSFailure
	BodyTimeout
	RateLimited
	// MidBodyFailure is a streamed response that broke off after its head
	// was sent (issue 16): the upstream reset or closed the connection,
	// stalled past the deadline, sent less than its Content-Length or a
	// malformed chunked body (or, rarely, a buffered body could not be
	// read back from its spool file, which the upstream is not blamed
	// for). The client cannot be answered any more; its connection
	// closes, and the request counts as the 502 it would have had
	// (Status) in the route's figures and the SLO, and as a failure for
	// the breaker and outlier detection, while the access log shows the
	// status sent.
	MidBodyFailure
	count
)

// info is one row of the cause table.
type info struct {
	status int
	name   string // the X-Tailguard-Error value
	msg    string // fixed: an upstream's error text never reaches a client
	flags  metrics.Flag
}

// table is the one table from cause to status, header value, message and
// metrics flags.
var table = [count]info{
	BadRequest:      {fasthttp.StatusBadRequest, "bad_request", "malformed or ambiguous request", 0},
	NoRoute:         {fasthttp.StatusNotFound, "no_route", "no route matches this request", 0},
	HeaderTimeout:   {fasthttp.StatusRequestTimeout, "header_timeout", "request headers not received in time", 0},
	BodyTooLarge:    {fasthttp.StatusRequestEntityTooLarge, "body_too_large", "request body too large", 0},
	URITooLong:      {fasthttp.StatusRequestURITooLong, "uri_too_long", "request URI too long", 0},
	HeadersTooLarge: {fasthttp.StatusRequestHeaderFieldsTooLarge, "headers_too_large", "request headers too large", 0},
	ConnectFailure:  {fasthttp.StatusBadGateway, "connect_failure", "could not connect to the upstream", 0},
	UpstreamReset:   {fasthttp.StatusBadGateway, "upstream_reset", "upstream closed the connection", 0},
	BadResponse:     {fasthttp.StatusBadGateway, "bad_response", "upstream sent a malformed response", 0},
	PoolFull:        {fasthttp.StatusServiceUnavailable, "pool_exhausted", "upstream connection limit reached", 0},
	ConnectTimeout:  {fasthttp.StatusGatewayTimeout, "connect_timeout", "upstream connect timed out", metrics.TimedOut},
	Timeout:         {fasthttp.StatusGatewayTimeout, "timeout", "upstream timed out", metrics.TimedOut},
	Shed:            {fasthttp.StatusServiceUnavailable, "shed", "overloaded, request shed", metrics.Shed},
	BreakerOpen:     {fasthttp.StatusServiceUnavailable, "breaker_open", "upstream circuit breaker open", metrics.BreakerRejected},
	TooManyHeaders:  {fasthttp.StatusRequestHeaderFieldsTooLarge, "too_many_headers", "too many request headers", 0},
	ConnLimit:       {fasthttp.StatusServiceUnavailable, "connection_limit", "too many client connections", 0},
	TLSFailure:      {fasthttp.StatusBadGateway, "tls_failure", "TLS with the upstream failed", 0},
	BodyTimeout:     {fasthttp.StatusRequestTimeout, "body_timeout", "request body not received in time", 0},
	RateLimited:     {fasthttp.StatusTooManyRequests, "rate_limited", "rate limit exceeded, slow down", metrics.RateLimited},
	MidBodyFailure:  {fasthttp.StatusBadGateway, "mid_body_failure", "upstream response broke off mid-body", 0},
}

// Status is the HTTP status tailguard answers c with (a route may shed
// with 429 instead; see the proxy's respond).
func (c Cause) Status() int { return table[c].status }

// String is c's X-Tailguard-Error value, as in "shed"; "" for None.
func (c Cause) String() string { return table[c].name }

// Flags is how metrics count a request answered for c: a shed, a breaker
// refusal, a timeout.
func (c Cause) Flags() metrics.Flag { return table[c].flags }

// Closes reports whether answering c must close the client connection:
// the request's framing cannot be trusted (400), or its body was not read
// to its end (413, 408), so the next bytes on the connection may not be a
// request; or the response itself broke off (MidBodyFailure), which only
// closing the connection can tell the client.
func (c Cause) Closes() bool {
	return c == BadRequest || c == BodyTooLarge || c == BodyTimeout || c == MidBodyFailure
}

// Bodies holds the fixed response bodies of one route, built once so that
// answering an error allocates nothing.
type Bodies [count][]byte

// NewBodies builds the bodies for route; "" for requests that matched no
// route.
func NewBodies(route string) *Bodies {
	var b Bodies
	for c := BadRequest; c < count; c++ {
		if route == "" {
			b[c] = fmt.Appendf(nil, "tailguard: %s\n", table[c].msg)
		} else {
			b[c] = fmt.Appendf(nil, "tailguard: %s (route %q)\n", table[c].msg, route)
		}
	}
	return &b
}

// Of returns the body for c.
func (b *Bodies) Of(c Cause) []byte { return b[c] }

// Unrouted serves requests that matched no route, or that were refused
// before one was matched.
var Unrouted = NewBodies("")

// BeforeRouting are the causes for which tailguard refuses a connection or
// a request before a route is chosen, in DESIGN.md's order (/stats
// listener.errors): such a refusal reaches no route's metrics, so the
// listener counts it.
var BeforeRouting = [...]Cause{BadRequest, NoRoute, HeaderTimeout, HeadersTooLarge, TooManyHeaders, URITooLong, ConnLimit}

// Counts counts events by cause: one atomic counter per cause, indexed by
// it, so that counting is one atomic add, with no map and no allocation.
// Safe for concurrent use; the zero value is ready. Counts must not be
// copied.
type Counts [count]atomic.Uint64

// Add counts one event for c.
func (n *Counts) Add(c Cause) { n[c].Add(1) }

// Get is the number of events counted for c.
func (n *Counts) Get(c Cause) uint64 { return n[c].Load() }

// Each calls f for every cause but None, in the table's order, with its
// count.
func (n *Counts) Each(f func(Cause, uint64)) {
	for c := BadRequest; c < count; c++ {
		f(c, n[c].Load())
	}
}
