package proxy

import (
	"time"

	"github.com/valyala/fasthttp"

	"tailguard/metrics"
	"tailguard/resilience"
)

// attempts is the attempt loop. Each round is one attempt, or on a hedged
// route a primary and its hedges; a failed round is tried again while the
// route's retry policy, its budget and the deadline allow. The winning
// response ends up in ctx.Response; if every attempt failed, x.err holds
// the last failure, or ctx.Response the last failing status. It returns
// the request's outcome, which is what the breaker counts.
//
// Requests that cannot be sent twice (not idempotent, or with a body that
// streamed) get one plain attempt, as do all requests while the breaker
// is probing, so that probes are not amplified.
func (x *exchange) attempts() resilience.Outcome {
	r := x.route
	replay := x.replayable()
	probing := r.upstream.breaker != nil && r.upstream.breaker.Probing()
	avoid := -1
	for try := 0; ; try++ {
		var res round
		if r.hedge != nil && replay && !probing && !r.admission.Saturated() {
			res = x.hedgedRound(avoid)
		} else {
			res = x.plainRound(avoid)
		}
		if res.out != resilience.Failure || r.retry == nil || !replay || probing {
			return res.out
		}
		backoff, ok := r.retry.Next(try, res.status, res.why, res.end, x.deadline)
		if !ok || !r.budget.TryExtra(res.end, r.retry.Ratio()) {
			return res.out
		}
		x.ctx.Response.ResetBody() // drop the failed answer (and its stream)
		x.wait(backoff)
		x.retries++
		avoid = res.endpoint
	}
}

// round is how one round of attempts ended.
type round struct {
	out      resilience.Outcome
	status   int
	why      resilience.Reason
	endpoint int
	end      time.Time
}

// replayable reports whether the request may be sent more than once: an
// idempotent method (or an Idempotency-Key) and a body held in memory.
func (x *exchange) replayable() bool {
	req := &x.ctx.Request
	return !req.IsBodyStream() &&
		resilience.Idempotent(req.Header.Method(), len(req.Header.Peek(headerIdempotencyKey)) > 0)
}

// plainRound makes one attempt on the handler goroutine, with the client's
// own request and response objects: no copies, no allocation.
func (x *exchange) plainRound(avoid int) round {
	u := x.route.upstream
	req := &x.ctx.Request
	start := time.Now()
	i := u.pick(start, avoid)
	deadline := resilience.PerTry(start, x.deadline, x.route.perTry)
	x.scratch = x.route.setDeadlineHeader(&req.Header, start, deadline, x.scratch)
	err := u.endpoints[i].roundTrip(req, &x.ctx.Response, start, deadline)
	end := time.Now()
	res := u.settle(i, start, end, x.ctx.Response.StatusCode(), err)
	x.service, x.err = end.Sub(start), err
	return res
}

// settle classifies an attempt's end and tells the upstream's balancer
// and outlier detection about it.
func (u *Upstream) settle(i int, start, end time.Time, status int, err error) round {
	_, why := classify(err)
	if why != resilience.ReasonNone {
		status = 0
	}
	out := resilience.Classify(status, why)
	u.done(i, end, end.Sub(start), out)
	return round{out: out, status: status, why: why, endpoint: i, end: end}
}

// hedgedRound sends the primary attempt to a hedge worker and waits for
// the first good answer; each time the hedge delay passes without one, it
// sends another attempt (preferring another endpoint), up to the route's
// max_extra, while the budget allows and the route is not saturated. The
// first success wins and is the only response written; the others run to
// their per-try deadline on the workers and are released there. Without a
// trusted delay or a free worker the round is a plain one.
func (x *exchange) hedgedRound(avoid int) round {
	r := x.route
	delay, ok := r.hedge.Delay()
	if !ok {
		return x.plainRound(avoid)
	}
	primary := x.newAttempt(avoid, false)
	if !x.srv.workers.run(primary) {
		x.dropAttempt(primary)
		return x.plainRound(avoid)
	}
	sent, done := 1, 0
	x.timer.Reset(delay)
	defer x.timer.Stop()
	var last *attempt
	for done < sent {
		select {
		case a := <-x.results:
			done++
			if last != nil {
				releaseAttempt(last)
			}
			last = a
			if res := a.res; res.out != resilience.Failure {
				x.win(a) // releases a
				return res
			}
		case now := <-x.timer.C:
			if sent > r.hedge.MaxExtra() || sent >= maxParallelAttempts || r.admission.Saturated() ||
				!r.budget.TryExtra(now, r.hedge.Ratio()) {
				continue
			}
			h := x.newAttempt(int(primary.endpoint.Load()), true)
			if !x.srv.workers.run(h) {
				x.dropAttempt(h)
				continue
			}
			sent++
			x.hedges++
			if sent <= r.hedge.MaxExtra() {
				x.timer.Reset(delay)
			}
		}
	}
	res := last.res
	x.win(last) // releases last
	return res
}

// win makes attempt a the request's answer: its response is moved into
// ctx.Response (a streamed body changes hands without being read), and
// its timing becomes the request's service time. a is released.
func (x *exchange) win(a *attempt) {
	defer releaseAttempt(a)
	x.service, x.err = a.end.Sub(a.start), a.err
	if a.hedge && a.res.out != resilience.Failure {
		x.flags |= metrics.HedgeWon
	}
	if a.err != nil {
		return
	}
	resp := &x.ctx.Response
	a.resp.Header.CopyTo(&resp.Header)
	if sb, ok := a.resp.BodyStream().(*streamBody); ok {
		sb.handOff()
		resp.SetBodyStream(sb, a.resp.Header.ContentLength())
		a.resp.ResetBody() // lets go of the stream without closing it
		return
	}
	resp.SetBody(a.resp.Body())
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
