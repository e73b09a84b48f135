package proxy

import (
	"fmt"

	"github.com/valyala/fasthttp"
)

// A cause is why tailguard answered a request itself instead of passing on
// the upstream's response. Each has one status and one X-Tailguard-Error
// value, so a client can always tell tailguard's errors from the service's.
type cause uint8

const (
	causeNone cause = iota
	causeBadRequest
	causeNoRoute
	causeHeaderTimeout
	causeBodyTooLarge
	causeURITooLong
	causeHeadersTooLarge
	causeConnectFailure
	causeUpstreamReset
	causeBadResponse
	causePoolFull
	causeConnectTimeout
	causeTimeout
	causeShed
	causeBreakerOpen
	causeTooManyHeaders
	causeConnLimit
	causeCount
)

// causes is the one table from cause to status, header value and message.
// Messages are fixed: an upstream's error text never reaches a client.
var causes = [causeCount]struct {
	status int
	name   string
	msg    string
}{
	causeBadRequest:      {fasthttp.StatusBadRequest, "bad_request", "malformed or ambiguous request"},
	causeNoRoute:         {fasthttp.StatusNotFound, "no_route", "no route matches this request"},
	causeHeaderTimeout:   {fasthttp.StatusRequestTimeout, "header_timeout", "request headers not received in time"},
	causeBodyTooLarge:    {fasthttp.StatusRequestEntityTooLarge, "body_too_large", "request body too large"},
	causeURITooLong:      {fasthttp.StatusRequestURITooLong, "uri_too_long", "request URI too long"},
	causeHeadersTooLarge: {fasthttp.StatusRequestHeaderFieldsTooLarge, "headers_too_large", "request headers too large"},
	causeConnectFailure:  {fasthttp.StatusBadGateway, "connect_failure", "could not connect to the upstream"},
	causeUpstreamReset:   {fasthttp.StatusBadGateway, "upstream_reset", "upstream closed the connection"},
	causeBadResponse:     {fasthttp.StatusBadGateway, "bad_response", "upstream sent a malformed response"},
	causePoolFull:        {fasthttp.StatusServiceUnavailable, "pool_exhausted", "upstream connection limit reached"},
	causeConnectTimeout:  {fasthttp.StatusGatewayTimeout, "connect_timeout", "upstream connect timed out"},
	causeTimeout:         {fasthttp.StatusGatewayTimeout, "timeout", "upstream timed out"},
	causeShed:            {fasthttp.StatusServiceUnavailable, "shed", "overloaded, request shed"},
	causeBreakerOpen:     {fasthttp.StatusServiceUnavailable, "breaker_open", "upstream circuit breaker open"},
	causeTooManyHeaders:  {fasthttp.StatusRequestHeaderFieldsTooLarge, "too_many_headers", "too many request headers"},
	causeConnLimit:       {fasthttp.StatusServiceUnavailable, "connection_limit", "too many client connections"},
}

// errorBodies holds the fixed response bodies of one route, built once so
// that answering an error allocates nothing.
type errorBodies [causeCount][]byte

func newErrorBodies(route string) *errorBodies {
	var b errorBodies
	for c := causeBadRequest; c < causeCount; c++ {
		if route == "" {
			b[c] = fmt.Appendf(nil, "tailguard: %s\n", causes[c].msg)
		} else {
			b[c] = fmt.Appendf(nil, "tailguard: %s (route %q)\n", causes[c].msg, route)
		}
	}
	return &b
}

// noRouteBodies serves requests that matched no route.
var noRouteBodies = newErrorBodies("")

// respond replaces whatever response is under way with tailguard's own
// answer for c on route (nil: no route matched). Refusals that invite a
// later try (shed, breaker open) carry Retry-After; a route may shed with
// 429 instead of 503. A request whose body was not read to its end leaves
// the connection out of step, so such answers close it (as do 400s).
func respond(ctx *fasthttp.RequestCtx, route *Route, c cause, requestID []byte) {
	info := &causes[c]
	bodies, status := noRouteBodies, info.status
	var retryAfter []byte
	if route != nil {
		bodies = route.errors
		switch c {
		case causeShed:
			status, retryAfter = route.shed.status, route.shed.retryAfter
		case causeBreakerOpen:
			retryAfter = route.upstream.breakerRetryAfter
		}
	}
	// Reset also drops the server's "no default Date" setting: tailguard's
	// own answers carry a Date of their own.
	ctx.Response.Reset()
	ctx.Response.SetStatusCode(status)
	ctx.Response.Header.SetContentType("text/plain; charset=utf-8")
	ctx.Response.Header.Set("X-Tailguard-Error", info.name)
	if len(retryAfter) > 0 {
		ctx.Response.Header.SetBytesV(fasthttp.HeaderRetryAfter, retryAfter)
	}
	if len(requestID) > 0 {
		ctx.Response.Header.SetBytesV(headerRequestID, requestID)
	}
	ctx.Response.SetBodyRaw(bodies[c])
	if c == causeBadRequest || c == causeBodyTooLarge {
		ctx.SetConnectionClose()
	}
}
