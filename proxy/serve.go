package proxy

import (
	"time"

	"github.com/valyala/fasthttp"
)

const headerRequestID = "X-Request-Id"

var http10 = []byte("HTTP/1.0")

// serve is the request path, top to bottom: match a route, check the body
// against the route's limit, make the request fit to forward, send it to
// one endpoint of the route's upstream, and pass the response back, or
// answer with tailguard's own error.
//
// The plain path uses ctx.Request and ctx.Response as the upstream request
// and response (no copies) and allocates nothing.
func (s *Server) serve(ctx *fasthttp.RequestCtx) {
	route := s.table.Load().Match(ctx.Host(), ctx.Path(), ctx.Method())
	if route == nil {
		s.fail(ctx, nil, causeNoRoute, nil)
		return
	}
	var deadline time.Time
	if route.timeout > 0 {
		deadline = ctx.Time().Add(route.timeout)
	}
	req := &ctx.Request
	if c := s.prepareBody(ctx, route, deadline); c != causeNone {
		s.fail(ctx, route, c, nil)
		return
	}

	// The client's own connection semantics are answered by the server
	// after this handler returns; the upstream hop gets HTTP/1.1 keep-alive.
	clientClose := req.Header.ConnectionClose()
	clientHTTP10 := !req.Header.IsHTTP11()
	x := acquireExchange()
	defer releaseExchange(x)
	x.scratch = stripHopHeaders(&req.Header, x.scratch)
	req.Header.Del(fasthttp.HeaderExpect) // the server answered 100-continue
	if uri := req.Header.RequestURI(); len(uri) > 0 && uri[0] != '/' {
		// Absolute form: the target's authority replaces any Host header
		// (RFC 9112 §3.2.2). It named the route; it never names the
		// destination.
		req.Header.SetHostBytes(ctx.Host())
	}
	req.UseHostHeader = true // forward Host as the client wrote it
	x.scratch = setForwarded(&req.Header, ctx.RemoteIP(), req.Header.Host(), x.scratch)
	requestID := req.Header.Peek(headerRequestID)
	if len(requestID) == 0 {
		x.scratch = s.ids.appendNext(x.scratch[:0])
		req.Header.SetBytesV(headerRequestID, x.scratch)
		requestID = req.Header.Peek(headerRequestID)
	}
	if clientHTTP10 {
		req.Header.SetProtocol("HTTP/1.1")
	}

	err := route.upstream.pick().roundTrip(req, &ctx.Response, deadline)

	if clientHTTP10 {
		req.Header.SetProtocolBytes(http10)
	}
	if err != nil {
		s.fail(ctx, route, causeOf(err), requestID)
		return
	}
	x.scratch = stripHopHeaders(&ctx.Response.Header, x.scratch)
	if clientClose {
		ctx.Response.SetConnectionClose()
	}
	if ctx.Response.IsBodyStream() && !deadline.IsZero() {
		// A streamed response must reach the client by the deadline too,
		// or a client that stops reading would pin the upstream connection.
		_ = ctx.SetWriteDeadline(deadline)
	}
	if s.access.all {
		s.logRequest(ctx, route, causeNone, requestID)
	}
}

// prepareBody applies the route's body limit. A body with a Content-Length
// over the limit is refused before anything is sent upstream; a body that
// streams (longer than the server buffers, or chunked) is wrapped so that
// the limit holds for chunked bodies too and a failing client is told
// apart from a failing upstream. Its reads from the client share the
// request's deadline.
func (s *Server) prepareBody(ctx *fasthttp.RequestCtx, route *Route, deadline time.Time) cause {
	req := &ctx.Request
	cl := req.Header.ContentLength()
	if route.maxBody >= 0 && int64(cl) > route.maxBody {
		return causeBodyTooLarge
	}
	if !req.IsBodyStream() || cl == 0 || cl == -2 {
		return causeNone
	}
	limit := int64(-1)
	if cl == -1 {
		limit = route.maxBody
	}
	req.SetBodyStream(newRequestBody(ctx.RequestBodyStream(), limit), cl)
	if !deadline.IsZero() {
		_ = ctx.SetReadDeadline(deadline)
	}
	return causeNone
}

// fail answers with tailguard's own error and logs it (sampled).
func (s *Server) fail(ctx *fasthttp.RequestCtx, route *Route, c cause, requestID []byte) {
	bodies := noRouteBodies
	if route != nil {
		bodies = route.errors
	}
	respond(ctx, bodies, c, requestID)
	if s.access.errors {
		s.logRequest(ctx, route, c, requestID)
	}
}
