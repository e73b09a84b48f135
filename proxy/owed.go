package proxy

import (
	"time"

	"github.com/valyala/fasthttp"

	"tailguard/proxy/internal/client"
	"tailguard/proxy/internal/spool"
	"tailguard/resilience"
)

// owed is how an attempt ended, held back from its upstream while its
// response's body still streams from it (issue 16): a response whose head
// was good may yet break off mid-body, and that is the upstream's failure
// as much as a 502 is. So for a streamed response the balancer, outlier
// detection, the endpoint's counts and the breaker hear of the attempt
// when the stream ends (Server.finish), not at its head; a response
// held whole, or buffered to its last byte within the attempt, is
// reported by the attempt itself, as it ends. The endpoint stays
// outstanding for the balancer while its stream lasts, as its connection
// stays busy.
//
// An owed is a value in the round, the loop's result and the exchange;
// the zero value owes nothing.
type owed struct {
	u        *Upstream // nil: nothing owed
	endpoint int
	rtt      time.Duration // the attempt's time to its head, as reported for any attempt
	// breaker holds back the request's outcome from the upstream's
	// breaker (resilience.Breaker.Defer); zero: the breaker counted it.
	breaker resilience.Ticket
}

// owes returns what an attempt on endpoint i of u that ended at its head
// after rtt owes, if resp's body still streams from the upstream: a
// stream, or a buffered part with the rest still to come. It owes nothing
// for a failure (a 5xx that streams failed already) or a body it read
// whole.
func owes(u *Upstream, i int, rtt time.Duration, out resilience.Outcome, resp *fasthttp.Response) owed {
	if out != resilience.Success || !streamsUpstream(resp) {
		return owed{}
	}
	return owed{u: u, endpoint: i, rtt: rtt}
}

// streamsUpstream reports whether resp's body is still to be read from
// the upstream.
func streamsUpstream(resp *fasthttp.Response) bool {
	switch r := resp.BodyStream().(type) {
	case *spool.Reader:
		return r.Streams()
	case client.Handover:
		return true
	}
	return false
}

// pay reports out, the stream's end at now, to whom it is owed; it owes
// nothing after.
func (o *owed) pay(now time.Time, out resilience.Outcome) {
	if o.u == nil {
		return
	}
	o.u.done(o.endpoint, now, o.rtt, out)
	if b := o.u.breaker; b != nil {
		b.Settle(o.breaker, out)
	}
	*o = owed{}
}
