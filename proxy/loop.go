package proxy

import (
	"time"

	"tailguard/proxy/internal/cause"
	"tailguard/resilience"
)

// A result is how the attempt loop ended: the outcome the breaker counts,
// the winning (or last) attempt's service time, the cause tailguard
// answers with if no attempt produced a response to pass on, and the
// report owed to the upstream until a streamed response ends.
type result struct {
	out     resilience.Outcome
	service time.Duration
	cause   cause.Cause
	owed    owed
}

// guardedAttempts runs the attempt loop under the upstream's breaker: an
// open breaker refuses the request without an attempt, and counts the
// loop's outcome otherwise: at once, or for a response that streams from
// the upstream when its stream ends (guard). The breaker takes a func
// value made once per pooled exchange (runAttempts), which leaves its
// result in x.guarded. A shadow breaker that would have refused has run
// the loop all the same, outside it: the request is marked so, and its
// outcome is not the breaker's.
func (x *exchange) guardedAttempts() result {
	b := x.route.upstream.breaker
	if b == nil {
		return x.attempts()
	}
	switch _, err := b.Do(x.runAttempts); err {
	case nil:
	case resilience.ErrWouldReject:
		x.shadow.reject = true
		x.guarded.owed.breaker = resilience.Ticket{}
	default:
		return result{cause: cause.BreakerOpen}
	}
	return x.guarded
}

// guard is the attempt loop as the breaker runs it: the loop's outcome,
// or for a response that still streams from the upstream, Excluded, its
// outcome deferred to the stream's end (owed.pay). A probe, while the
// breaker is half-open, is judged at its head as before: deferring would
// free its place for more probes while it streams.
func (x *exchange) guard() resilience.Outcome {
	x.guarded = x.attempts()
	b := x.route.upstream.breaker
	if x.guarded.owed.u == nil || b.Probing() {
		return x.guarded.out
	}
	x.guarded.owed.breaker = b.Defer()
	return resilience.Excluded
}

// attempts is the attempt loop. Each round is one attempt, or on a hedged
// route a primary and its hedges; a failed round is tried again while the
// route's retry policy, its budget and the deadline allow. The winning
// response ends up in ctx.Response; if every attempt failed, the result
// has the last failure's cause, or ctx.Response the last failing status.
//
// Requests that cannot be sent twice (not idempotent, or with a body that
// streamed) get one plain attempt, as do all requests while the breaker
// is probing, so that probes are not amplified.
//
// A hedge or retry policy in shadow mode takes the same decisions at the
// same places, counts them (shadow.go) and sends nothing more: the round
// is a plain one, and a failed round is the last.
func (x *exchange) attempts() result {
	r := x.route
	replay := x.replayable()
	probing := r.upstream.breaker != nil && r.upstream.breaker.Probing()
	avoid := -1
	for try := 0; ; try++ {
		var res round
		hedge := r.hedge != nil && replay && !probing && !r.admission.Saturated()
		switch {
		case hedge && r.hedgeShadow:
			res = x.plainRound(avoid)
			x.countShadowHedges(res)
		case hedge:
			res = x.hedgedRound(avoid)
		default:
			res = x.plainRound(avoid)
		}
		if res.out != resilience.Failure || r.retry == nil || !replay || probing {
			return res.result()
		}
		backoff, ok := r.retry.Next(try, res.status, res.why, res.end, x.deadline)
		if r.retryShadow {
			x.shadow.retry = ok && r.budget.TryShadowExtra(res.end, r.retry.Ratio())
			return res.result()
		}
		if !ok || !r.budget.TryExtra(res.end, r.retry.Ratio()) {
			return res.result()
		}
		x.ctx.Response.ResetBody() // drop the failed answer (and its stream)
		x.wait(backoff)
		x.retries++
		avoid = res.endpoint
	}
}

// result is how the loop ends with r as its last round.
func (r round) result() result {
	return result{out: r.out, service: r.end.Sub(r.start), cause: r.cause, owed: r.owed}
}

// replayable reports whether the request may be sent more than once: an
// idempotent method (or an Idempotency-Key) and a body held whole (in
// memory or collected in the spool), and not a request to switch
// protocols.
func (x *exchange) replayable() bool {
	req := &x.ctx.Request
	return (x.spooled != nil || !req.IsBodyStream()) && !x.upgrade &&
		resilience.Idempotent(req.Header.Method(), len(req.Header.Peek(headerIdempotencyKey)) > 0)
}

// plainRound makes one attempt on the handler goroutine, with the client's
// own request and response objects: no copies, no allocation.
func (x *exchange) plainRound(avoid int) round {
	a := &x.plain
	a.x, a.req, a.resp, a.avoid, a.upgrade = x, &x.ctx.Request, &x.ctx.Response, avoid, x.upgrade
	a.run()
	x.upgraded, a.upgraded = a.upgraded, nil
	return a.res
}
