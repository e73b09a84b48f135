package proxy

import (
	"bytes"
	"io"
	"time"

	"github.com/valyala/fasthttp"

	"tailguard/proxy/internal/cause"
	"tailguard/proxy/internal/client"
	"tailguard/proxy/internal/edge"
	"tailguard/resilience"
)

const (
	headerRequestID      = "X-Request-Id"
	headerIdempotencyKey = "Idempotency-Key"
	headerServerTiming   = "Server-Timing"
)

// serve is the request path, top to bottom, in the one order tailguard
// applies its policies (doc.go draws it):
//
//	check → match → take the body → admit → breaker → attempts → respond → record
//
// A request that fails the edge's check gets tailguard's own 400, 414 or
// 431 and its connection closes: whatever follows on it cannot be trusted
// to be framed as the client meant. A connection whose request had a
// chunked body closes after the response too: where such a body ends is
// fasthttp's decoder's decision alone, and its trailer section is lenient,
// so no byte after it is ever read as the next request. Chunked uploads
// are rare and long; a new connection is cheap next to them.
//
// Each step that refuses the request sets the exchange's cause, and the
// steps after it are skipped: respond answers for the cause, and record
// counts it. The plain path uses ctx.Request and ctx.Response as the
// upstream request and response (no copies) and allocates nothing.
func (s *Server) serve(ctx *fasthttp.RequestCtx) {
	if c := edge.Check(ctx, s.maxURI()); c != cause.None {
		s.refuse(ctx, c)
		ctx.SetConnectionClose()
		return
	}
	if edge.MeterChunkedBody(ctx) {
		defer ctx.SetConnectionClose()
	}
	route := s.table.Load().Match(ctx.Host(), ctx.Path(), ctx.Method())
	if route == nil {
		s.refuse(ctx, cause.NoRoute)
		return
	}
	x := s.acquireExchange(ctx, route)
	x.cause = x.takeBody()
	var permit resilience.Permit
	if x.cause == cause.None {
		permit, x.cause = x.admit()
	}
	if x.cause == cause.None {
		x.prepareHeaders()
		res := x.guardedAttempts()
		permit.Release(res.service, res.cause == cause.None)
		x.service, x.cause, x.owed = res.service, res.cause, res.owed
	}
	x.respond()
	s.record(x)
}

// admit checks the route's rate limit (ratelimit.go), then waits for the
// route's admission, the only place a request waits. Admission's clock
// is the moment the request is ready to wait: its arrival, unless reading
// a body whole (for replays, or collecting it for buffering) took time
// first.
func (x *exchange) admit() (resilience.Permit, cause.Cause) {
	r := x.route
	ready := x.arrived
	if len(x.body) > prereadBytes || x.spooled != nil {
		ready = x.now()
	}
	if c := x.limitRate(ready); c != cause.None {
		return resilience.Permit{}, c
	}
	permit, err := r.admission.AdmitKey(ready, x.deadline, x.priority(), x.fairKey())
	x.admitted = x.now()
	if err != nil {
		return permit, cause.Shed
	}
	if r.budget != nil {
		r.budget.Request(x.admitted)
	}
	return permit, cause.None
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

// prepareHeaders makes the request fit to forward: hop-by-hop headers
// and Expect out, X-Forwarded-* in, the route's request header rules,
// X-Request-Id (the client's, or a new one), the target as the client
// sent it, HTTP/1.1 to the upstream. It notes first what the client asked
// of its own connection, which respond answers. One walk over the
// client's header block finds which of the headers it acts on are there
// (requestHeaderSet); it looks for no other.
func (x *exchange) prepareHeaders() {
	req := &x.ctx.Request
	x.clientClose = req.Header.ConnectionClose()
	x.clientHTTP10 = !req.Header.IsHTTP11()
	x.upgrade = x.route.websocket && !req.IsBodyStream() && req.Header.ConnectionUpgrade() &&
		edge.HasToken(req.Header.Peek(fasthttp.HeaderUpgrade), strWebSocket)
	if x.upgrade {
		x.upgradeProto = append(x.upgradeProto[:0], req.Header.Peek(fasthttp.HeaderUpgrade)...)
	}
	var set headerSet
	set, x.scratch = requestHeaderSet(&req.Header, x.scratch[:0])
	stripHeaders(&req.Header, set&(hopHeaders|hasExpect), x.scratch) // the server answered 100-continue
	if x.upgrade {
		req.Header.Set(fasthttp.HeaderConnection, "Upgrade")
		req.Header.SetBytesV(fasthttp.HeaderUpgrade, x.upgradeProto)
	}
	if uri := req.Header.RequestURI(); len(uri) > 0 && uri[0] != '/' {
		// Absolute form: the target's authority replaces any Host header
		// (RFC 9112 §3.2.2). It named the route; it never names the
		// destination.
		req.Header.SetHostBytes(x.ctx.Host())
	}
	// The target reaches the upstream as the client sent it: routing
	// matched the normalised path, but a normalised target would break
	// encoded slashes in identifiers and signed URLs (DESIGN.md,
	// "Forwarding fidelity"). Setting it again also stops fasthttp from
	// writing its parsed, normalised form.
	x.scratch = originForm(x.scratch[:0], req.Header.RequestURI())
	req.SetRequestURIBytes(x.scratch)
	req.UseHostHeader = true // forward Host as the client wrote it
	peer := x.ctx.RemoteIP()
	x.scratch = setForwarded(&req.Header, set, peer, trustedPeer(peer, x.route.trustedProxies), x.srv.proto, req.Header.Host(), x.scratch)
	x.route.requestHeaders.apply(&req.Header)
	x.setRequestID(set&hasRequestID != 0)
	if x.clientHTTP10 {
		req.Header.SetProtocol("HTTP/1.1")
	}
}

// setRequestID keeps the request's X-Request-Id, or gives it a new one
// if it has none. sent is false when the client certainly sent none; the
// route's header rules may have set one all the same.
func (x *exchange) setRequestID(sent bool) {
	h := &x.ctx.Request.Header
	if rules := x.route.requestHeaders; sent || rules != nil && rules.setsRequestID {
		if x.requestID = h.Peek(headerRequestID); len(x.requestID) > 0 {
			return
		}
	}
	x.scratch = x.srv.ids.appendNext(x.scratch[:0])
	h.SetCanonical(keyRequestID, x.scratch)
	x.requestID = h.Peek(headerRequestID)
}

// originForm appends the request target as the upstream gets it: the
// client's bytes of an origin-form target; for an absolute-form one
// (checked by the edge: http:// or https://), the path and query after its
// authority, "/" where it has no path.
func originForm(dst, uri []byte) []byte {
	if len(uri) > 0 && uri[0] == '/' {
		return append(dst, uri...)
	}
	rest := uri[bytes.Index(uri, strSchemeEnd)+len(strSchemeEnd):]
	i := bytes.IndexAny(rest, "/?")
	if i < 0 || rest[i] == '?' {
		dst = append(dst, '/')
	}
	if i >= 0 {
		dst = append(dst, rest[i:]...)
	}
	return dst
}

var (
	strSchemeEnd = []byte("://")
	strHTTP      = []byte("http")
	strHTTPS     = []byte("https")
	strWebSocket = []byte("websocket")
)

// takeBody applies the route's body limit. A body with a Content-Length
// over the limit is refused before anything is sent upstream. A body
// fasthttp has already read (prereadBytes), and on a route that buffers
// requests or may send one twice (retries, hedges) one up to
// streamThreshold, is taken whole into the exchange. A larger body is
// collected in the spool on a buffering route (buffer.go); on any other it
// streams: it is wrapped so that the limit holds for chunked bodies too
// and a failing client is told apart from a failing upstream; its reads
// from the client share the request's deadline.
func (x *exchange) takeBody() cause.Cause {
	ctx, route := x.ctx, x.route
	req := &ctx.Request
	cl := req.Header.ContentLength()
	if route.maxBody >= 0 && int64(cl) > route.maxBody {
		return cause.BodyTooLarge
	}
	if !req.IsBodyStream() || cl == 0 || cl == -2 {
		return cause.None
	}
	whole := route.bufferRequests || route.retry != nil || route.hedge != nil
	if cl > 0 && (cl <= prereadBytes || cl <= streamThreshold && whole) {
		if cap(x.body) < cl {
			x.body = make([]byte, cl)
		}
		x.body = x.body[:cl]
		if _, err := io.ReadFull(x.clientBody(), x.body); err != nil {
			return x.bodyFailure(err)
		}
		req.SetBody(x.body)
		return cause.None
	}
	if route.bufferRequests {
		return x.spoolBody(cl)
	}
	return x.streamBody(cl)
}

// streamBody makes the client's body the upstream's request body as it
// arrives, its reads sharing the request's deadline.
func (x *exchange) streamBody(cl int) cause.Cause {
	ctx := x.ctx
	ctx.Request.SetBodyStream(client.NewRequestBody(ctx.RequestBodyStream(), cl, x.route.maxBody), cl)
	if !x.deadline.IsZero() {
		_ = ctx.SetReadDeadline(x.deadline)
	}
	return cause.None
}

// record adds Server-Timing where the route asks for it, while the head
// can still change, and records the request once its response has reached
// the client: now for a response held whole, when its body stream closes
// for one streamed or buffered (sent.go).
func (s *Server) record(x *exchange) {
	x.setRateLimitHeaders()
	if x.route.serverTiming {
		x.scratch = appendServerTiming(x.scratch[:0], x.queue(), x.service)
		x.ctx.Response.Header.SetBytesV(headerServerTiming, x.scratch)
	}
	if x.cause == cause.None && x.sent.watch(x) {
		return
	}
	s.finish(x, x.now())
}

// finish records the request, once, as its response's last byte was
// handed to the client connection at now (or its stream broke off), pays
// what the attempt owes its upstream for a streamed response, and lets go
// of the exchange. A response that broke off is logged with its cause
// like tailguard's own answers.
func (s *Server) finish(x *exchange, now time.Time) {
	out := resilience.Success
	if x.cause == cause.MidBodyFailure {
		out = resilience.Failure
	}
	x.owed.pay(now, out)
	sample := x.sample(now)
	if m := x.route.metrics; m != nil {
		m.Record(x.ctx.ConnID(), sample)
	}
	switch {
	case x.cause == cause.MidBodyFailure && s.access.errors:
		s.logRequest(x.ctx, x.route, x.cause, x.requestID)
	case x.cause == cause.None && s.access.logsUpstream(x.ctx.Response.StatusCode()):
		s.logRequest(x.ctx, x.route, cause.None, x.requestID)
	}
	x.release()
}
