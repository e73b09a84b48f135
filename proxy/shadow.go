package proxy

import "tailguard/metrics"

// shadowCounts are what shadow-mode policies decided for one request and
// did not do, for its metrics sample: a retry (the first one only: a
// later decision would depend on an answer never received), the breaker's
// refusal, and the hedges.
type shadowCounts struct {
	retry, reject bool
	hedges        uint8
}

// addTo adds the counts to the request's sample.
func (c shadowCounts) addTo(s *metrics.Sample) {
	s.WouldHedges = c.hedges
	if c.retry {
		s.Flags |= metrics.WouldRetry
	}
	if c.reject {
		s.Flags |= metrics.WouldReject
	}
}

// countShadowHedges counts the hedges a shadow-mode hedge policy would
// have sent during the plain round res: in enforce mode one goes each
// time the delay passes without an answer, up to max_extra, while the
// route is not saturated and the budget allows (a shadow withdrawal,
// which bounds would-be hedges as real ones are bounded and takes nothing
// from real retries). With max_extra 1 that is exact: a hedge exactly when
// the attempt took longer than the delay. With more it is an upper bound,
// since a hedge that would have won early would have ended the round.
func (x *exchange) countShadowHedges(res round) {
	r := x.route
	delay, ok := r.hedge.Delay()
	if !ok || r.admission.Saturated() {
		return
	}
	n := min(r.hedge.MaxExtra(), maxParallelAttempts-1)
	if delay > 0 {
		n = min(n, int(res.end.Sub(res.start)/delay))
	}
	for range n {
		if !r.budget.TryShadowExtra(res.end, r.hedge.Ratio()) {
			return
		}
		x.shadow.hedges++
	}
}

// setModes switches the upstream's breaker and outlier detection between
// shadow and enforce mode; an upstream a reload keeps whole gets the new
// config's modes this way, its state kept.
func (u *Upstream) setModes(m upstreamModes) {
	u.breaker.SetShadow(m.breakerShadow)
	u.outlier.SetShadow(m.outlierShadow)
}
