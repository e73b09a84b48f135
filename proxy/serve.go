package proxy

import (
	"io"
	"time"

	"github.com/valyala/fasthttp"

	"tailguard/metrics"
	"tailguard/resilience"
)

const (
	headerRequestID      = "X-Request-Id"
	headerIdempotencyKey = "Idempotency-Key"
	headerServerTiming   = "Server-Timing"
)

// serve is the request path, top to bottom, in the one order tailguard
// applies its policies:
//
//	check the request's framing → match a route → check the body → admit
//	(the only place a request waits) → breaker → attempt loop (retries,
//	hedges; each attempt: pick an endpoint → forward with a per-try
//	deadline) → respond → record
//
// A request that fails checkRequest (strict.go) gets tailguard's own 400,
// 414 or 431 and its connection closes: whatever follows on it cannot be
// trusted to be framed as the client meant. A connection whose request had
// a chunked body closes after the response too: where such a body ends is
// fasthttp's decoder's decision alone, and its trailer section is lenient,
// so no byte after it is ever read as the next request. Chunked uploads
// are rare and long; a new connection is cheap next to them.
//
// The plain path uses ctx.Request and ctx.Response as the upstream request
// and response (no copies) and allocates nothing.
func (s *Server) serve(ctx *fasthttp.RequestCtx) {
	if c := checkRequest(ctx, s.maxURI()); c != causeNone {
		s.fail(ctx, nil, c, nil)
		ctx.SetConnectionClose()
		return
	}
	if meterChunkedBody(ctx) {
		defer ctx.SetConnectionClose()
	}
	route := s.table.Load().Match(ctx.Host(), ctx.Path(), ctx.Method())
	if route == nil {
		s.fail(ctx, nil, causeNoRoute, nil)
		return
	}
	x := s.acquireExchange(ctx, route)
	s.forward(x)
	s.finish(x)
}

// forward takes an exchange from admission to a response in ctx.
func (s *Server) forward(x *exchange) {
	ctx, route := x.ctx, x.route
	if c := s.prepareBody(x); c != causeNone {
		x.answer(c)
		return
	}
	// Admission's clock is the moment the request is ready to wait: its
	// arrival, unless reading a body whole (for replays) took time first.
	ready := x.arrived
	if len(x.body) > prereadBytes {
		ready = time.Now()
	}
	permit, err := route.admission.Admit(ready, x.deadline, x.priority())
	x.admitted = time.Now()
	if err != nil {
		x.flags |= metrics.Shed
		x.answer(causeShed)
		return
	}
	if route.budget != nil {
		route.budget.Request(x.admitted)
	}

	// The client's own connection semantics are answered by the server
	// after this handler returns; the upstream hop gets HTTP/1.1 keep-alive.
	req := &ctx.Request
	clientClose := req.Header.ConnectionClose()
	clientHTTP10 := !req.Header.IsHTTP11()
	s.prepareHeaders(x)

	if b := route.upstream.breaker; b != nil {
		_, err = b.Do(x.runAttempts)
	} else {
		x.attempts()
	}
	// An attempt that failed did not measure the upstream's service time.
	permit.Release(x.service, x.err == nil)

	if clientHTTP10 {
		req.Header.SetProtocolBytes(strHTTP10)
	}
	switch {
	case err != nil:
		x.flags |= metrics.BreakerRejected
		x.answer(causeBreakerOpen)
		return
	case x.err != nil:
		c, _ := classify(x.err)
		x.answer(c)
		return
	}
	x.scratch = stripHopHeaders(&ctx.Response.Header, x.scratch)
	if clientClose {
		ctx.Response.SetConnectionClose()
	}
	if ctx.Response.IsBodyStream() && !x.deadline.IsZero() {
		// A streamed response must reach the client by the deadline too,
		// or a client that stops reading would pin the upstream connection.
		_ = ctx.SetWriteDeadline(x.deadline)
	}
}

// prepareHeaders makes the request fit to forward: hop-by-hop headers
// out, X-Forwarded-* and X-Request-Id in, HTTP/1.1 to the upstream.
func (s *Server) prepareHeaders(x *exchange) {
	req := &x.ctx.Request
	x.scratch = stripHopHeaders(&req.Header, x.scratch)
	req.Header.Del(fasthttp.HeaderExpect) // the server answered 100-continue
	if uri := req.Header.RequestURI(); len(uri) > 0 && uri[0] != '/' {
		// Absolute form: the target's authority replaces any Host header
		// (RFC 9112 §3.2.2). It named the route; it never names the
		// destination.
		req.Header.SetHostBytes(x.ctx.Host())
	}
	req.UseHostHeader = true // forward Host as the client wrote it
	x.scratch = setForwarded(&req.Header, x.ctx.RemoteIP(), req.Header.Host(), x.scratch)
	x.requestID = req.Header.Peek(headerRequestID)
	if len(x.requestID) == 0 {
		x.scratch = s.ids.appendNext(x.scratch[:0])
		req.Header.SetBytesV(headerRequestID, x.scratch)
		x.requestID = req.Header.Peek(headerRequestID)
	}
	if !req.Header.IsHTTP11() {
		req.Header.SetProtocol("HTTP/1.1")
	}
}

// priority is the request's priority for admission: its priority header,
// or the route's default.
func (x *exchange) priority() resilience.Priority {
	r := x.route
	if r.priorityHeader != "" {
		if p, ok := resilience.ParsePriority(x.ctx.Request.Header.Peek(r.priorityHeader)); ok {
			return p
		}
	}
	return r.priorityDefault
}

// prepareBody applies the route's body limit. A body with a Content-Length
// over the limit is refused before anything is sent upstream. A body
// fasthttp has already read (prereadBytes), and on a route that may send a
// request twice (retries, hedges) one up to streamThreshold so that it can
// be replayed, is taken whole. Any other body streams: it is wrapped so
// that the limit holds for chunked bodies too and a failing client is told
// apart from a failing upstream; its reads from the client share the
// request's deadline.
func (s *Server) prepareBody(x *exchange) cause {
	ctx, route := x.ctx, x.route
	req := &ctx.Request
	cl := req.Header.ContentLength()
	if route.maxBody >= 0 && int64(cl) > route.maxBody {
		return causeBodyTooLarge
	}
	if !req.IsBodyStream() || cl == 0 || cl == -2 {
		return causeNone
	}
	replays := route.retry != nil || route.hedge != nil
	if cl > 0 && (cl <= prereadBytes || cl <= streamThreshold && replays) {
		if cap(x.body) < cl {
			x.body = make([]byte, cl)
		}
		x.body = x.body[:cl]
		if _, err := io.ReadFull(ctx.RequestBodyStream(), x.body); err != nil {
			return causeBadRequest
		}
		req.SetBody(x.body)
		return causeNone
	}
	limit := int64(-1)
	if cl == -1 {
		limit = route.maxBody
	}
	req.SetBodyStream(newRequestBody(ctx.RequestBodyStream(), limit), cl)
	if !x.deadline.IsZero() {
		_ = ctx.SetReadDeadline(x.deadline)
	}
	return causeNone
}

// answer replaces the response with tailguard's own answer for c.
func (x *exchange) answer(c cause) {
	if c == causeTimeout {
		x.flags |= metrics.TimedOut
	}
	x.answered = true
	x.srv.fail(x.ctx, x.route, c, x.requestID)
}

// finish records the request, once, as its response is handed back, adds
// Server-Timing where the route asks for it, and lets go of the exchange.
func (s *Server) finish(x *exchange) {
	now := time.Now()
	sample := x.sample(now)
	if x.route.serverTiming {
		x.scratch = appendServerTiming(x.scratch[:0], sample.Queue, sample.Service)
		x.ctx.Response.Header.SetBytesV(headerServerTiming, x.scratch)
	}
	if m := x.route.metrics; m != nil {
		m.Record(x.ctx.ConnID(), sample)
	}
	if s.access.all && !x.answered {
		s.logRequest(x.ctx, x.route, causeNone, x.requestID)
	}
	x.release()
}

// fail answers a request with tailguard's own answer for c (route nil:
// it matched none) and logs it (sampled).
func (s *Server) fail(ctx *fasthttp.RequestCtx, route *Route, c cause, requestID []byte) {
	respond(ctx, route, c, requestID)
	if s.access.errors {
		s.logRequest(ctx, route, c, requestID)
	}
}
