package resilience

import (
	"fmt"
	"math"
	"math/bits"
	"math/rand/v2"
	"sync/atomic"
	"time"
)

// MaxEndpoints is the most endpoints a Balancer, an Outlier or a Health
// tracks: a set of endpoints is a uint64 bitmask (bit i is endpoint i).
// Constructors clamp a larger count to it, so config validation must
// reject an upstream with more endpoints: config.MaxEndpoints, which
// proxy's tests hold equal to it (config imports no internal package).
const MaxEndpoints = 64

// A Policy is how a Balancer chooses among an upstream's endpoints. The
// zero value is P2C, DESIGN's default (`balance: p2c`).
type Policy uint8

const (
	// P2C is the power of two choices over peak-EWMA latency ×
	// (outstanding+1), Finagle's "P2C + peak EWMA" and Linkerd's default:
	// it steers away from slow and busy endpoints without a global scan.
	P2C Policy = iota
	// RoundRobin rotates through the available endpoints in turn.
	RoundRobin
	// LeastRequest prefers the endpoint with the fewest outstanding
	// attempts: the power of two choices over outstanding counts, as
	// Envoy's least_request does (exact when two endpoints are available).
	LeastRequest
)

// String returns the policy's config name.
func (p Policy) String() string {
	switch p {
	case P2C:
		return "p2c"
	case RoundRobin:
		return "round_robin"
	case LeastRequest:
		return "least_request"
	}
	return fmt.Sprintf("Policy(%d)", uint8(p))
}

const (
	// balancerDefaultDecay is the peak-EWMA time constant when none is
	// given: Finagle's and Linkerd's 10 s.
	balancerDefaultDecay = 10 * time.Second
	// p2cPenalty is the cost of an endpoint that has attempts outstanding
	// but has never answered (Finagle's PeakEwma penalty, Long.MaxValue>>16
	// ns ≈ 39 h): it gets no second attempt before the first answers,
	// unless every candidate is in the same state.
	p2cPenalty = 1 << 47
)

// A Balancer chooses the endpoint for each attempt of one upstream, and
// learns from each attempt's outstanding count and round-trip time.
//
// A Balancer is safe for concurrent use. Pick, Start and Done allocate
// nothing and take no lock: they are a few atomic operations on the
// chosen endpoints, whose counters sit on separate cache lines. Concurrent
// callers see each other's updates a moment late; the policies are
// heuristics and stay correct in aggregate. P2C's random choices come from
// math/rand/v2's runtime source, which is per thread and lock-free. A
// Balancer must not be copied; the zero value has no endpoints.
//
// Times (now) are instants from time.Now() (see the package doc): the
// Balancer keeps them as nanoseconds since it was built.
type Balancer struct {
	eps    []balancerEndpoint
	all    uint64  // bit i set for every endpoint
	tau    float64 // peak-EWMA time constant, ns
	clock  clock   // now → the nanoseconds stamped in peak-EWMA words
	policy Policy
	_      [64]byte // keep next off the cache line of the read-only fields
	next   atomic.Uint64
}

// balancerEndpoint is one endpoint's counters, padded to a cache line so
// that attempts on different endpoints do not contend.
type balancerEndpoint struct {
	outstanding atomic.Int64
	ewma        atomic.Uint64 // a peakEWMA word
	_           [48]byte
}

// NewBalancer returns a Balancer over n endpoints numbered 0..n-1. An n
// above MaxEndpoints is clamped to it; with n ≤ 0 Pick returns -1. decay
// is the peak-EWMA time constant; zero or negative means 10 s. An unknown
// Policy value balances as P2C.
func NewBalancer(p Policy, n int, decay time.Duration) *Balancer {
	n = min(max(n, 0), MaxEndpoints)
	if decay <= 0 {
		decay = balancerDefaultDecay
	}
	return &Balancer{
		eps:    make([]balancerEndpoint, n),
		all:    endpointMask(n),
		tau:    float64(decay),
		clock:  newClock(),
		policy: p,
	}
}

// endpointMask is the set of endpoints 0..n-1, for 0 ≤ n ≤ 64.
func endpointMask(n int) uint64 {
	if n >= 64 {
		return math.MaxUint64
	}
	return 1<<n - 1
}

// Pick chooses the endpoint for the next attempt among available (a
// bitmask; bits at or above n are ignored). If no endpoint is available it
// chooses among all of them (panic mode, as Envoy does when every host is
// ejected or unhealthy: some traffic beats none). It avoids endpoint avoid
// when another candidate exists; -1 avoids nothing (a hedge passes the
// primary's endpoint to go elsewhere). It returns -1 only when the
// Balancer has no endpoints. now is used by P2C to decay latencies.
//
// Pick does not count the attempt: call Start once it is sent.
func (b *Balancer) Pick(now time.Time, available uint64, avoid int) int {
	m := b.candidates(available, avoid)
	c := bits.OnesCount64(m)
	switch {
	case c == 0:
		return -1
	case c == 1:
		return bits.TrailingZeros64(m)
	case b.policy == RoundRobin:
		return b.nth(m, int((b.next.Add(1)-1)%uint64(c)))
	}
	// Two distinct candidates, uniformly: x in [0,c), y in [0,c) \ {x}.
	r := rand.Uint64()
	x := int(uint64(uint32(r)) * uint64(c) >> 32)
	y := int((r >> 32) * uint64(c-1) >> 32)
	if y >= x {
		y++
	}
	i, j := b.nth(m, x), b.nth(m, y)
	if b.policy == LeastRequest {
		if b.Outstanding(j) < b.Outstanding(i) {
			return j
		}
		return i
	}
	ns := b.clock.nanos(now) // P2C alone needs the time: to decay latencies
	if b.cost(j, ns) < b.cost(i, ns) {
		return j
	}
	return i
}

// candidates applies panic mode and avoid to the available set.
func (b *Balancer) candidates(available uint64, avoid int) uint64 {
	m := available & b.all
	if m == 0 {
		m = b.all
	}
	if uint(avoid) < 64 {
		if rest := m &^ (1 << uint(avoid)); rest != 0 {
			m = rest
		}
	}
	return m
}

// nth returns the index of the k-th (from 0) endpoint in m.
func (b *Balancer) nth(m uint64, k int) int {
	if m == b.all {
		return k // nothing excluded: the k-th endpoint is endpoint k
	}
	for ; k > 0; k-- {
		m &= m - 1
	}
	return bits.TrailingZeros64(m)
}

// Start records that an attempt to endpoint i began. Every Start must be
// followed by exactly one Done for the same endpoint. An i out of range is
// ignored.
func (b *Balancer) Start(i int) {
	if uint(i) < uint(len(b.eps)) {
		b.eps[i].outstanding.Add(1)
	}
}

// Done records that an attempt to endpoint i ended after rtt, whatever its
// outcome, and folds rtt into the endpoint's peak EWMA: a sample above
// the estimate replaces it at once (the "peak"); one below moves it
// toward the sample with weight 1 − e^(−Δ/decay), Δ being the time since
// the endpoint's previous sample. An endpoint that fails fast therefore
// looks cheap; Outlier is what takes it out. An i out of range is ignored.
func (b *Balancer) Done(i int, now time.Time, rtt time.Duration) {
	if uint(i) >= uint(len(b.eps)) {
		return
	}
	e := &b.eps[i]
	e.outstanding.Add(-1)
	r := float64(max(rtt, 1)) // zero would read as "no sample"
	ns := b.clock.nanos(now)
	for {
		old := e.ewma.Load()
		if e.ewma.CompareAndSwap(old, peakFold(old, ns, r, b.tau)) {
			return
		}
	}
}

// Cost is endpoint i's P2C cost at now, in nanoseconds: its peak-EWMA
// latency (Latency) × (outstanding+1). An endpoint with no sample yet costs
// 0 when idle, so a new endpoint gets traffic at once, and
// 2^47 + outstanding while its first attempts are out, so it is not flooded
// before it has answered once (Finagle's rule). The estimate is kept for
// every policy, so Cost is a meaningful /stats gauge for each. An i out of
// range costs 0.
func (b *Balancer) Cost(i int, now time.Time) float64 {
	return b.cost(i, b.clock.nanos(now))
}

// cost is Cost at ns on b.clock.
func (b *Balancer) cost(i int, ns int64) float64 {
	if uint(i) >= uint(len(b.eps)) {
		return 0
	}
	out := b.Outstanding(i)
	lat := peakRead(b.eps[i].ewma.Load(), ns, b.tau)
	if lat == 0 {
		if out == 0 {
			return 0
		}
		return p2cPenalty + float64(out)
	}
	return lat * float64(out+1)
}

// Latency is endpoint i's peak-EWMA round-trip estimate at now: the
// estimate after its last sample, decayed toward zero by e^(−Δ/decay) for
// the time Δ since. The decay is what lets P2C try again an endpoint it
// stopped picking because it was slow. Zero means no sample yet (or i out
// of range).
func (b *Balancer) Latency(i int, now time.Time) time.Duration {
	if uint(i) >= uint(len(b.eps)) {
		return 0
	}
	return time.Duration(peakRead(b.eps[i].ewma.Load(), b.clock.nanos(now), b.tau))
}

// Outstanding is the number of attempts to endpoint i started and not
// yet done (0 if i is out of range; never negative, even after an
// unmatched Done).
func (b *Balancer) Outstanding(i int) int64 {
	if uint(i) >= uint(len(b.eps)) {
		return 0
	}
	return max(b.eps[i].outstanding.Load(), 0)
}

// A peak-EWMA word holds an endpoint's latency estimate and the time of its
// last update, so that one CAS changes both together: the high 32 bits are
// the estimate in nanoseconds as a float32 (0: no sample yet), the low 32
// bits the update time in ticks of 2^peakTickShift ns (≈1.05 ms) on the
// Balancer's clock. Ticks wrap every 52 days; an elapsed time is read as a
// signed 32-bit count of ticks (0 if negative), so only an endpoint left
// untouched for 26 days or more can be misread, and then as not yet
// decayed. Elapsed ticks
// telescope, so the coarse stamp does not change the total weight given
// to samples over time.
const peakTickShift = 20

// peakLatency is the estimate stored in w, in nanoseconds.
func peakLatency(w uint64) float64 {
	return float64(math.Float32frombits(uint32(w >> 32)))
}

// peakElapsed is the time from w's stamp to ns, in nanoseconds, ≥ 0.
func peakElapsed(w uint64, ns int64) float64 {
	d := int32(uint32(ns>>peakTickShift) - uint32(w))
	return float64(max(d, 0)) * (1 << peakTickShift)
}

// peakRead is w's estimate decayed toward zero to ns, with time
// constant tau. Finagle and Linkerd store this decay on every read; here
// reads write nothing, so Pick does not bounce cache lines and the cost
// does not depend on how often it is read.
func peakRead(w uint64, ns int64, tau float64) float64 {
	lat := peakLatency(w)
	if d := peakElapsed(w, ns); d > 0 && lat > 0 { // a busy endpoint's common case: same tick
		lat *= math.Exp(-d / tau)
	}
	return lat
}

// peakFold returns w with the sample rtt (in nanoseconds, > 0) folded in
// at ns.
func peakFold(w uint64, ns int64, rtt, tau float64) uint64 {
	if lat := peakLatency(w); rtt <= lat {
		keep := 1.0
		if d := peakElapsed(w, ns); d > 0 {
			keep = math.Exp(-d / tau)
		}
		rtt = lat*keep + rtt*(1-keep)
	}
	return uint64(math.Float32bits(float32(rtt)))<<32 | uint64(uint32(ns>>peakTickShift))
}
