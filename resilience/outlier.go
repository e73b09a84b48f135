package resilience

import (
	"math"
	"math/bits"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults for OutlierSettings' zero fields: Envoy's outlier detection
// defaults (consecutive_5xx, base_ejection_time, max_ejection_percent,
// and max_ejection_time = 10 × base).
const (
	outlierDefaultConsecutive = 5
	outlierDefaultEjection    = 30 * time.Second
	outlierDefaultPercent     = 10
	outlierMaxMultiplier      = 10
)

// OutlierSettings configure passive outlier detection for one upstream
// (config `upstreams.*.outlier`). Without them an upstream is never cut
// off: proxy builds no Outlier.
type OutlierSettings struct {
	// Consecutive5xx is how many Failures in a row, with no Success
	// between, eject an endpoint. Zero or negative means 5.
	Consecutive5xx int
	// EjectionTime is the base ejection time. An endpoint's k-th ejection
	// in a row lasts k × EjectionTime, k at most 10 (Envoy's growth and
	// its default max_ejection_time of 10 × base). Each full EjectionTime
	// the endpoint then spends back in service forgives one earlier
	// ejection. Zero or negative means 30s.
	EjectionTime time.Duration
	// MaxEjectedPercent bounds the share of endpoints ejected at once:
	// an ejection that would exceed it is skipped (the endpoint stays in
	// and Skipped counts it). As in Envoy, one endpoint may always be
	// ejected whatever the percentage, so small upstreams are protected
	// too. Zero or negative means 10 (Envoy's default); above 100 means
	// 100.
	MaxEjectedPercent int
}

// An Outlier ejects, for a while, an endpoint whose attempts keep failing,
// so the Balancer stops sending it traffic (Envoy's passive outlier
// detection). It only decides: proxy reports each attempt's Outcome with
// Observe and intersects the Balancer's candidates with Available.
//
// An Outlier is safe for concurrent use. Observe allocates nothing; on
// the common paths (a success, a failure below the threshold) it is one
// or two atomic operations. Ejecting, rare by design, takes a mutex so
// that MaxEjectedPercent holds exactly. Available and Ejected take no
// lock. An expired ejection ends by itself: nothing needs to run on a
// timer. Times (now) are instants from time.Now() (see the package doc):
// the Outlier keeps ejection ends as nanoseconds since it was built. An
// Outlier must not be copied.
//
// A nil *Outlier ejects nothing (an upstream without `outlier:`), so
// proxy need not branch: Available is then every endpoint.
type Outlier struct {
	eps        []outlierEndpoint
	all        uint64
	threshold  int64 // failures in a row that eject
	base       int64 // base ejection time, ns
	clock      clock // now → the nanoseconds of until
	maxEjected int   // endpoints that may be ejected at once
	ejected    atomic.Uint64
	ejections  atomic.Uint64
	skipped    atomic.Uint64
	mu         sync.Mutex // serialises ejections
}

// outlierEndpoint is one endpoint's state, padded to a cache line.
type outlierEndpoint struct {
	fails atomic.Int64 // failures in a row
	until atomic.Int64 // end of the current or last ejection, ns on the clock
	times int          // ejections still counted in the multiplier; mu
	_     [40]byte
}

// NewOutlier returns an Outlier over n endpoints with nothing ejected.
// Zero settings fields take their documented defaults. An n above
// MaxEndpoints is clamped to it; with n ≤ 0 nothing is ever ejected.
func NewOutlier(s OutlierSettings, n int) *Outlier {
	n = min(max(n, 0), MaxEndpoints)
	if s.Consecutive5xx <= 0 {
		s.Consecutive5xx = outlierDefaultConsecutive
	}
	if s.EjectionTime <= 0 {
		s.EjectionTime = outlierDefaultEjection
	}
	if s.MaxEjectedPercent <= 0 {
		s.MaxEjectedPercent = outlierDefaultPercent
	}
	pct := min(s.MaxEjectedPercent, 100)
	return &Outlier{
		eps:        make([]outlierEndpoint, n),
		all:        endpointMask(n),
		threshold:  int64(s.Consecutive5xx),
		base:       int64(s.EjectionTime),
		clock:      newClock(),
		maxEjected: max(n*pct/100, min(n, 1)),
	}
}

// Observe counts one attempt's Outcome on endpoint i at now and reports
// whether this call ejected the endpoint. A Failure adds to the endpoint's
// consecutive failures, a Success resets them, Excluded (or the zero
// Outcome) counts for nothing. Reaching Consecutive5xx ejects the endpoint
// unless MaxEjectedPercent forbids it; either way the count starts again.
// Outcomes of attempts on an endpoint while it is ejected (sent before
// the ejection, or in panic mode) are ignored. An i out of range is
// ignored.
func (o *Outlier) Observe(i int, now time.Time, out Outcome) bool {
	if o == nil || uint(i) >= uint(len(o.eps)) {
		return false
	}
	e := &o.eps[i]
	switch out {
	case Success:
		if e.fails.Load() != 0 { // a read keeps the line shared when healthy
			e.fails.Store(0)
		}
	case Failure:
		if !o.ejectedAt(i, now) && e.fails.Add(1) >= o.threshold {
			return o.eject(i, now)
		}
	}
	return false
}

// ejectedAt reports whether endpoint i is ejected at now. It converts now
// only for an endpoint marked ejected, so a failure on a healthy endpoint
// costs no conversion.
func (o *Outlier) ejectedAt(i int, now time.Time) bool {
	return o.ejected.Load()&(1<<i) != 0 && o.eps[i].until.Load() > o.clock.nanos(now)
}

// eject ejects endpoint i at now if it is not already ejected and the
// cap allows it.
func (o *Outlier) eject(i int, now time.Time) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.ejectedAt(i, now) {
		return false // a concurrent failure got here first
	}
	ns := o.clock.nanos(now)
	e := &o.eps[i]
	e.fails.Store(0)
	if o.expireLocked(ns) >= o.maxEjected {
		o.skipped.Add(1)
		return false
	}
	e.times = o.multiplierLocked(e, ns)
	e.until.Store(outlierEnd(ns, o.base, e.times))
	o.ejected.Or(1 << i) // after until, so a reader seeing the bit sees it
	o.ejections.Add(1)
	return true
}

// expireLocked clears the bits of ejections over at ns and returns the
// number still in force.
func (o *Outlier) expireLocked(ns int64) int {
	live := o.all &^ o.available(ns)
	o.ejected.And(live)
	return bits.OnesCount64(live)
}

// multiplierLocked is the multiplier of e's next ejection at ns: one
// more than its earlier ejections, less one per full base ejection time
// spent back in service since the last ended, at most outlierMaxMultiplier.
func (o *Outlier) multiplierLocked(e *outlierEndpoint, ns int64) int {
	k := e.times
	if quiet := ns - e.until.Load(); k > 0 && quiet > 0 {
		k -= int(min(quiet/o.base, int64(k)))
	}
	return min(k+1, outlierMaxMultiplier)
}

// outlierEnd is ns + k × base, saturating instead of overflowing.
func outlierEnd(ns, base int64, k int) int64 {
	if base > math.MaxInt64/int64(k) {
		return math.MaxInt64
	}
	d := base * int64(k)
	if ns > math.MaxInt64-d {
		return math.MaxInt64
	}
	return ns + d
}

// Available is the set of endpoints not ejected at now, as a bitmask for
// Balancer.Pick (intersect it with Health.Healthy first). It is 0 only if
// every endpoint is ejected, which Pick treats as panic mode. A nil
// Outlier returns all bits set.
func (o *Outlier) Available(now time.Time) uint64 {
	if o == nil {
		return math.MaxUint64
	}
	m := o.ejected.Load()
	if m == 0 {
		return o.all // the common case: no clock conversion
	}
	return o.available(o.clock.nanos(now))
}

// available is Available at ns on o.clock, for a non-nil o.
func (o *Outlier) available(ns int64) uint64 {
	avail := o.all
	for m := o.ejected.Load(); m != 0; m &= m - 1 {
		i := bits.TrailingZeros64(m)
		if o.eps[i].until.Load() > ns {
			avail &^= 1 << i
		}
	}
	return avail
}

// Ejected is the number of endpoints ejected at now.
func (o *Outlier) Ejected(now time.Time) int {
	if o == nil {
		return 0
	}
	return bits.OnesCount64(o.all &^ o.Available(now))
}

// Ejections is the number of ejections made so far, for /stats.
func (o *Outlier) Ejections() uint64 {
	if o == nil {
		return 0
	}
	return o.ejections.Load()
}

// Skipped is the number of ejections refused so far because
// MaxEjectedPercent of the endpoints were already ejected, for /stats.
func (o *Outlier) Skipped() uint64 {
	if o == nil {
		return 0
	}
	return o.skipped.Load()
}
