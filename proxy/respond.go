package proxy

import (
	"github.com/valyala/fasthttp"

	"tailguard/proxy/internal/cause"
)

// respond makes the response in ctx the one to hand back: tailguard's own
// answer if the exchange has a cause, a tunnel if the upstream switched
// protocols (tunnel.go), else the upstream's response, made fit to pass
// on: hop-by-hop headers and X-Accel-Buffering (a word to the proxy, not
// the client) out, in one walk over the headers (responseHeaderSet), then
// the route's response header rules. The client's own connection
// semantics are the server's to answer after the handler returns.
func (x *exchange) respond() {
	ctx := x.ctx
	if x.clientHTTP10 {
		ctx.Request.Header.SetProtocolBytes(strHTTP10)
	}
	if x.cause != cause.None {
		x.srv.fail(ctx, x.route, x.cause, x.requestID)
		return
	}
	if x.upgraded != nil {
		x.srv.tunnel(ctx, x.route, x.upgraded)
		x.upgraded = nil
		return
	}
	var set headerSet
	set, x.scratch = responseHeaderSet(&ctx.Response.Header, x.scratch[:0])
	stripHeaders(&ctx.Response.Header, set&(hopHeaders|hasAccelBuffering), x.scratch)
	x.route.responseHeaders.apply(&ctx.Response.Header)
	if x.clientClose {
		ctx.Response.SetConnectionClose()
	}
	if ctx.Response.IsBodyStream() && !x.deadline.IsZero() {
		// A streamed response must reach the client by the deadline too,
		// or a client that stops reading would pin the upstream connection.
		_ = ctx.SetWriteDeadline(x.deadline)
	}
}

var strHTTP10 = []byte("HTTP/1.0")

// fail answers a request with tailguard's own answer for c (route nil:
// it matched none) and logs it (sampled).
func (s *Server) fail(ctx *fasthttp.RequestCtx, route *Route, c cause.Cause, requestID []byte) {
	answer(ctx, route, c, requestID)
	if s.access.errors {
		s.logRequest(ctx, route, c, requestID)
	}
}

// refuse answers a request refused before a route was chosen, and counts
// it for the listener's figures: no route's metrics will.
func (s *Server) refuse(ctx *fasthttp.RequestCtx, c cause.Cause) {
	s.clients.Refuse(c)
	s.fail(ctx, nil, c, nil)
}

// answer replaces whatever response is under way with tailguard's own
// answer for c on route (nil: no route matched): the cause's status, its
// X-Tailguard-Error and its fixed body. Refusals that invite a later try
// (shed, breaker open) carry Retry-After; a route may shed with 429
// instead of 503. Causes after which the connection's next bytes may not
// be a request (cause.Closes) close it.
func answer(ctx *fasthttp.RequestCtx, route *Route, c cause.Cause, requestID []byte) {
	bodies, status := cause.Unrouted, c.Status()
	var retryAfter []byte
	if route != nil {
		bodies = route.errors
		switch c {
		case cause.Shed:
			status, retryAfter = route.shed.status, route.shed.retryAfter
		case cause.BreakerOpen:
			retryAfter = route.upstream.breakerRetryAfter
		}
	}
	// Reset also drops the server's "no default Date" setting: tailguard's
	// own answers carry a Date of their own.
	ctx.Response.Reset()
	ctx.Response.SetStatusCode(status)
	ctx.Response.Header.SetContentType("text/plain; charset=utf-8")
	ctx.Response.Header.Set(cause.Header, c.String())
	if len(retryAfter) > 0 {
		ctx.Response.Header.SetBytesV(fasthttp.HeaderRetryAfter, retryAfter)
	}
	if len(requestID) > 0 {
		ctx.Response.Header.SetBytesV(headerRequestID, requestID)
	}
	ctx.Response.SetBodyRaw(bodies.Of(c))
	if c.Closes() {
		ctx.SetConnectionClose()
	}
}
