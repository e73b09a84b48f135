package proxy

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"tailguard/proxy/internal/cause"
	"tailguard/proxy/internal/client"
	"tailguard/resilience"
)

// An attempt is one upstream try. The plain path's attempt lives in the
// exchange and sends the client's own request and response objects; a
// hedged-path attempt is pooled, runs on a hedge worker so that the
// handler stays free to send a hedge when the delay passes, and carries
// its own copy of the request and its own response. Either way, run makes
// the try.
type attempt struct {
	x     *exchange
	req   *fasthttp.Request
	resp  *fasthttp.Response
	avoid int  // an endpoint to avoid if another is available; -1: none
	hedge bool // sent because the hedge delay passed
	// upgrade asks the upstream to switch protocols; upgraded is its
	// connection once it answered 101.
	upgrade  bool
	upgraded *client.Upgraded
	endpoint atomic.Int32
	res      round
	scratch  []byte
	// own holds a hedged-path attempt's request and response; nil for the
	// plain path's attempt, which uses ctx's (and so costs its pooled
	// exchange no 1.5 KiB of unused messages).
	own *messages
}

// messages are a hedged-path attempt's own request and response.
type messages struct {
	req  fasthttp.Request
	resp fasthttp.Response
}

// round is how one attempt, or one round of a primary and its hedges,
// ended: what the policies see, and the cause tailguard answers with if
// it is the last.
type round struct {
	out        resilience.Outcome
	status     int
	why        resilience.Reason
	cause      cause.Cause
	endpoint   int
	start, end time.Time
	// owed is the report held back from the upstream while the response
	// streams (owed.go).
	owed owed
}

// run makes the one upstream try: pick an endpoint, bound the try by the
// per-try deadline and tell the upstream so, round trip (on a buffering
// route, to the response's last byte), and report how it ended to the
// upstream's balancer and outlier detection; for a good response whose
// body still streams from the upstream, the report is owed until the
// stream ends.
func (a *attempt) run() {
	x := a.x
	u := x.route.upstream
	start := x.now()
	i := u.pick(start, a.avoid)
	a.endpoint.Store(int32(i))
	deadline := resilience.PerTry(start, x.deadline, x.route.perTry)
	a.scratch = x.route.setDeadlineHeader(&a.req.Header, start, deadline, a.scratch)
	var err error
	if a.upgrade {
		a.upgraded, err = u.endpoints[i].Upgrade(a.req, a.resp, start, deadline)
	} else {
		x.sendSpooled(a.req)
		err = u.endpoints[i].RoundTrip(a.req, a.resp, start, deadline)
		if err == nil && x.route.bufferResponses {
			err = x.srv.bufferResponse(a.resp)
		}
	}
	end := x.now()
	c, why := client.Classify(err)
	status := a.resp.StatusCode()
	if why != resilience.ReasonNone {
		status = 0
	}
	out := resilience.Classify(status, why)
	o := owes(u, i, end.Sub(start), out, a.resp)
	if o.u == nil {
		u.done(i, end, end.Sub(start), out)
	}
	a.res = round{out: out, status: status, why: why, cause: c, endpoint: i, start: start, end: end, owed: o}
}

// setDeadlineHeader tells the upstream how long the attempt has
// (deadline_header, in whole milliseconds), so that it can give up when
// tailguard will. It returns the grown scratch buffer.
func (r *Route) setDeadlineHeader(h *fasthttp.RequestHeader, start, deadline time.Time, scratch []byte) []byte {
	if deadline.IsZero() || r.deadlineHeader == "" {
		return scratch
	}
	scratch = resilience.AppendTimeoutMillis(scratch[:0], deadline.Sub(start))
	h.SetBytesV(r.deadlineHeader, scratch)
	return scratch
}

var attemptPool = sync.Pool{New: func() any { return &attempt{own: new(messages)} }}

// newAttempt copies the request for a hedged-path attempt of x. It takes
// a reference on x, which the worker drops when the attempt has reported.
func (x *exchange) newAttempt(avoid int, hedge bool) *attempt {
	a := attemptPool.Get().(*attempt)
	a.x, a.avoid, a.hedge = x, avoid, hedge
	a.req, a.resp = &a.own.req, &a.own.resp
	a.endpoint.Store(-1)
	x.ctx.Request.CopyTo(a.req)
	x.hold()
	return a
}

// dropAttempt undoes newAttempt for an attempt that never ran.
func (x *exchange) dropAttempt(a *attempt) {
	releaseAttempt(a)
	x.release()
}

// releaseAttempt returns a hedged-path attempt to the pool. One whose
// response lost while it streamed is reported as it ended, at its head:
// its stream is closed unread.
func releaseAttempt(a *attempt) {
	if a.res.owed.u != nil {
		a.res.owed.pay(time.Now(), a.res.out)
	}
	a.own.req.Reset()
	a.own.resp.Reset() // closes a body stream the attempt still owns
	a.x, a.req, a.resp, a.res = nil, nil, nil, round{}
	a.scratch = a.scratch[:0]
	attemptPool.Put(a)
}
