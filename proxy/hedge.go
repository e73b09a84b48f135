package proxy

import (
	"tailguard/proxy/internal/cause"
	"tailguard/proxy/internal/client"
	"tailguard/resilience"
)

// hedgedRound sends the primary attempt to a hedge worker and waits for
// the first good answer; each time the hedge delay passes without one, it
// sends another attempt (preferring another endpoint), up to the route's
// max_extra, while the budget allows and the route is not saturated. The
// first success wins and is the only response written; the others run to
// their per-try deadline on the workers and are released there. Without a
// success, the round ends when every attempt has: with the last failure
// the upstream gave, or if there was none, the last attempt's. Without a
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
			if a.res.out == resilience.Success {
				if last != nil {
					releaseAttempt(last)
				}
				return x.win(a)
			}
			// No answer yet. Should none come, the round ends with the
			// most telling failure: the upstream's own over an attempt
			// never sent (a hedge that found the pool full must not end
			// the round while the primary is still out).
			if last == nil || a.res.out == resilience.Failure || last.res.out != resilience.Failure {
				last, a = a, last
			}
			if a != nil {
				releaseAttempt(a)
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
	return x.win(last)
}

// win makes attempt a the request's answer: its response moves into
// ctx.Response (a streamed body changes hands without being read), and
// its round is returned, with what a owes its upstream. a is released.
func (x *exchange) win(a *attempt) round {
	if a.hedge && a.res.out != resilience.Failure {
		x.hedgeWon = true
	}
	if a.res.cause == cause.None {
		client.Move(&x.ctx.Response, a.resp)
	}
	res := a.res
	a.res.owed = owed{}
	releaseAttempt(a)
	return res
}
