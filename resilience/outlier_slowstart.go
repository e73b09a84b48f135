package resilience

import (
	"math/bits"
	"math/rand/v2"
	"time"
)

// Eligible is the set of endpoints an attempt may be sent to at now, as
// a bitmask for Balancer.Pick: those in healthy (Health.Healthy) that are
// not ejected, less the returning endpoints that sit this pick out.
//
// An endpoint whose ejection ended less than one base EjectionTime ago is
// in slow start: it is a candidate for a pick with probability w, rising
// linearly from 10% when it returns to 100% at the end of the slow start
// (Envoy's slow start, with its default minimum weight and aggression 1).
// Applied to the candidate set, the weight works with every Policy: round
// robin sends it about w of its turns, least request and P2C see it in w
// of their draws. Without it a returning endpoint would take a full share
// at once, and under P2C more than that: its peak EWMA decayed toward
// zero while it was out, so it would look the cheapest and be flooded.
// If leaving out the returning endpoints would leave no candidate, they
// all stay in (a warming endpoint beats panic mode).
//
// In shadow mode, or with nothing ejected or warming, it is healthy
// intersected with every endpoint, at the cost of one atomic load. A nil
// Outlier returns healthy. It allocates nothing.
func (o *Outlier) Eligible(now time.Time, healthy uint64) uint64 {
	if o == nil {
		return healthy
	}
	m := o.ejected.Load()
	if m == 0 || o.shadow.Load() {
		return o.all & healthy
	}
	ns := o.clock.nanos(now)
	avail := o.available(ns) & healthy
	out := avail
	for ; m != 0; m &= m - 1 {
		i := bits.TrailingZeros64(m)
		if avail&(1<<i) == 0 {
			continue // still ejected, or unhealthy
		}
		since := ns - o.eps[i].until.Load()
		if since >= o.base {
			o.endSlowStart(i, ns)
			continue
		}
		w := outlierMinWeight + (1-outlierMinWeight)*float64(since)/float64(o.base)
		if rand.Float64() >= w {
			out &^= 1 << i
		}
	}
	if out == 0 {
		return avail
	}
	return out
}

// endSlowStart clears endpoint i's mark once its slow start is over at
// ns, so that later picks skip it. It takes the ejection mutex, without
// waiting for it (the next pick will try again), so that it cannot clear
// the mark of an ejection being made at the same moment.
func (o *Outlier) endSlowStart(i int, ns int64) {
	if !o.mu.TryLock() {
		return
	}
	defer o.mu.Unlock()
	if ns-o.eps[i].until.Load() >= o.base {
		o.ejected.And(^(uint64(1) << i))
	}
}
