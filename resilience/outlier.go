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
	// outlierMinWeight is a returning endpoint's weight when its slow
	// start begins (Envoy's min_weight_percent default, 10%).
	outlierMinWeight = 0.1
)

// OutlierSettings configure passive outlier detection for one upstream
// (config `upstreams.*.outlier`). Without them an upstream is never cut
// off: proxy builds no Outlier.
type OutlierSettings struct {
	// Consecutive5xx is how many Failures in a row, with no Success
	// between, eject an endpoint. Zero or negative means 5, or, with
	// LatencyFactor set, that failures never eject: probation for
	// latency alone.
	Consecutive5xx int
	// LatencyFactor, if above zero, puts on probation (ejects) an
	// endpoint whose tail latency is at least this many times its peers'
	// (see the package doc: latency-induced probation). Zero or negative
	// means latency never ejects.
	LatencyFactor float64
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

// An Outlier ejects, for a while, an endpoint whose attempts keep failing
// (Envoy's passive outlier detection), or, with LatencyFactor, whose tail
// latency stands out from its peers' (latency-induced probation), so the
// Balancer stops sending it traffic; when the ejection ends the endpoint
// earns its share back over a slow start. It only decides: proxy reports
// each attempt's Outcome and round trip with Observe and gives the
// Balancer the candidates Eligible returns.
//
// An Outlier is safe for concurrent use. Observe allocates nothing; on
// the common paths (a success, a failure below the threshold) it is one
// or two atomic operations, and with LatencyFactor one more add to the
// endpoint's histogram; once a second one caller compares the tails,
// under a TryLock the others skip. Ejecting, rare by design, takes a
// mutex so that MaxEjectedPercent holds exactly. Available, Eligible and
// Ejected take no lock. An expired ejection ends by itself: nothing needs
// to run on a timer. Times (now) are instants from time.Now() (see the package doc):
// the Outlier keeps ejection ends as nanoseconds since it was built. An
// Outlier must not be copied.
//
// A nil *Outlier ejects nothing (an upstream without `outlier:`), so
// proxy need not branch: Available is then every endpoint, and Eligible
// the healthy ones.
type Outlier struct {
	eps        []outlierEndpoint
	all        uint64
	threshold  int64   // failures in a row that eject
	base       int64   // base ejection time, ns; also the slow start's length
	factor     float64 // LatencyFactor; 0: latency never ejects
	clock      clock   // now → the nanoseconds of until
	maxEjected int     // endpoints that may be ejected at once
	shadow     atomic.Bool
	// ejected marks the endpoints ejected or in slow start: a bit is set
	// by an ejection and cleared once the endpoint's slow start is over
	// (by Eligible) or by the next ejection's bookkeeping.
	ejected          atomic.Uint64
	ejections        atomic.Uint64
	latencyEjections atomic.Uint64
	wouldEject       atomic.Uint64
	skipped          atomic.Uint64
	mu               sync.Mutex // serialises ejections
	// lat are the endpoints' latency histograms, nil without
	// LatencyFactor; nextJudge (ns) is when the tails are next compared,
	// by whoever takes judgeMu.
	lat       []latencyHistogram
	nextJudge atomic.Int64
	judgeMu   sync.Mutex
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
	threshold := int64(s.Consecutive5xx)
	switch {
	case threshold > 0:
	case s.LatencyFactor > 0:
		threshold = math.MaxInt64
	default:
		threshold = outlierDefaultConsecutive
	}
	if s.EjectionTime <= 0 {
		s.EjectionTime = outlierDefaultEjection
	}
	if s.MaxEjectedPercent <= 0 {
		s.MaxEjectedPercent = outlierDefaultPercent
	}
	pct := min(s.MaxEjectedPercent, 100)
	o := &Outlier{
		eps:        make([]outlierEndpoint, n),
		all:        endpointMask(n),
		threshold:  threshold,
		base:       int64(s.EjectionTime),
		clock:      newClock(),
		maxEjected: max(n*pct/100, min(n, 1)),
	}
	if s.LatencyFactor > 0 {
		o.factor = s.LatencyFactor
		o.lat = make([]latencyHistogram, n)
		o.nextJudge.Store(int64(latencyInterval))
	}
	return o
}

// SetShadow switches the Outlier between shadow (true) and enforce mode
// (the default), keeping its state. In shadow mode ejections are decided
// and counted (WouldEject) as in enforce mode, but Available and Eligible
// leave every endpoint in; an ejection decided in shadow mode is enforced
// for the rest of its time once the mode is enforce. Safe for concurrent
// use; a nil Outlier ignores it.
func (o *Outlier) SetShadow(shadow bool) {
	if o != nil {
		o.shadow.Store(shadow)
	}
}

// Observe counts one attempt on endpoint i, ended at now after rtt with
// Outcome out, and reports whether this call ejected an endpoint (in
// shadow mode: decided an ejection it did not make): i, or, when the call
// makes the latency comparison, any. A Failure adds to the endpoint's
// consecutive failures, a Success resets them, Excluded (or the zero
// Outcome) counts for nothing. Reaching Consecutive5xx
// ejects the endpoint unless MaxEjectedPercent forbids it; either way the
// count starts again. With LatencyFactor, a Success's or a Failure's rtt
// goes into the endpoint's latency histogram, and once a second the call
// that finds the comparison due compares the tails (see the package doc).
// Outcomes of attempts on an endpoint while it is ejected (sent before
// the ejection, or in panic mode) are ignored. An i out of range is
// ignored.
func (o *Outlier) Observe(i int, now time.Time, rtt time.Duration, out Outcome) bool {
	if o == nil || uint(i) >= uint(len(o.eps)) || out != Success && out != Failure {
		return false
	}
	e := &o.eps[i]
	if o.ejected.Load()&(1<<i) != 0 && e.until.Load() > o.clock.nanos(now) {
		return false // ejected: converting now only for a marked endpoint
	}
	slow := o.lat != nil && o.observeLatency(i, o.clock.nanos(now), rtt)
	if out == Success {
		if e.fails.Load() != 0 { // a read keeps the line shared when healthy
			e.fails.Store(0)
		}
		return slow
	}
	return e.fails.Add(1) >= o.threshold && o.eject(i, o.clock.nanos(now)) || slow
}

// eject ejects endpoint i at ns if it is not already ejected and the cap
// allows it; in shadow mode it decides the same and counts WouldEject.
func (o *Outlier) eject(i int, ns int64) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	e := &o.eps[i]
	if o.ejected.Load()&(1<<i) != 0 && e.until.Load() > ns {
		return false // a concurrent failure got here first
	}
	e.fails.Store(0)
	if o.expireLocked(ns) >= o.maxEjected {
		o.skipped.Add(1)
		return false
	}
	e.times = o.multiplierLocked(e, ns)
	e.until.Store(outlierEnd(ns, o.base, e.times))
	o.ejected.Or(1 << i) // after until, so a reader seeing the bit sees it
	if o.lat != nil {
		o.lat[i].reset()
	}
	if o.shadow.Load() {
		o.wouldEject.Add(1)
	} else {
		o.ejections.Add(1)
	}
	return true
}

// expireLocked clears the bits of endpoints whose ejection and slow start
// are over at ns and returns the number still ejected.
func (o *Outlier) expireLocked(ns int64) int {
	live := uint64(0)
	for m := o.ejected.Load(); m != 0; m &= m - 1 {
		i := bits.TrailingZeros64(m)
		if o.eps[i].until.Load() > ns-o.base {
			live |= 1 << i
		}
	}
	o.ejected.And(live)
	return bits.OnesCount64(o.all &^ o.available(ns))
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

// Available is the set of endpoints not ejected at now, as a bitmask. It
// is 0 only if every endpoint is ejected, which Balancer.Pick treats as
// panic mode. In shadow mode every endpoint is available. A nil Outlier
// returns all bits set. Pick is given Eligible, which also applies slow
// start; Available is what /stats shows as ejected.
func (o *Outlier) Available(now time.Time) uint64 {
	if o == nil {
		return math.MaxUint64
	}
	if o.ejected.Load() == 0 || o.shadow.Load() {
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

// Ejections is the number of ejections made so far, for /stats: in
// enforce mode, for failures or latency.
func (o *Outlier) Ejections() uint64 {
	if o == nil {
		return 0
	}
	return o.ejections.Load()
}

// LatencyEjections is the number of ejections decided for latency so
// far (LatencyFactor), enforced or, in shadow mode, only counted.
func (o *Outlier) LatencyEjections() uint64 {
	if o == nil {
		return 0
	}
	return o.latencyEjections.Load()
}

// WouldEject is the number of ejections decided in shadow mode so far:
// what enforce mode would have ejected on the same traffic.
func (o *Outlier) WouldEject() uint64 {
	if o == nil {
		return 0
	}
	return o.wouldEject.Load()
}

// Skipped is the number of ejections refused so far because
// MaxEjectedPercent of the endpoints were already ejected, for /stats.
func (o *Outlier) Skipped() uint64 {
	if o == nil {
		return 0
	}
	return o.skipped.Load()
}
