package resilience

import (
	"math/bits"
	"slices"
	"sync/atomic"
	"time"
)

// Latency-induced probation (OutlierSettings.LatencyFactor): the
// constants of the algorithm the package doc describes.
const (
	// latencyQuantile is the tail an endpoint is judged by: p99, the
	// percentile a route's SLO and its users feel first.
	latencyQuantile = 0.99
	// latencyMinSamples is the least (decayed) number of samples an
	// endpoint's histogram must hold to be judged, or to count as a peer:
	// fewer cannot tell a p99 from the maximum of a handful.
	latencyMinSamples = 100
	// latencyMinTail is the least tail that can eject: below it, a ratio
	// says nothing a client would notice (1 ms against 0.3 ms is a factor
	// of three and no gray failure).
	latencyMinTail = 10 * time.Millisecond
	// latencyInterval is how often the tails are compared. Samples decay
	// by latencyKeep at each comparison, so a histogram holds about the
	// last 1/(1 − latencyKeep) = 4 intervals of traffic.
	latencyInterval = time.Second
	latencyKeepNum  = 3 // latencyKeep = 3/4
	latencyKeepDen  = 4
)

// latencyBuckets is the number of buckets of a latencyHistogram: 8 exact
// microsecond buckets, then 8 per power of two up to 2^27 µs (134 s), a
// relative width of at most 1/8.
const latencyBuckets = 8 + 24*8

// A latencyHistogram counts one endpoint's attempt round trips in
// log-linear buckets with atomic adds: recording is one atomic add on the
// endpoint's own counters and never allocates. Counts decay (tail) each
// interval instead of being reset, so the window slides and an endpoint
// is judged on its last few seconds, or its last samples if it gets few.
// A sample racing with decay may be decayed once more or not at all:
// harmless for a tail estimate.
type latencyHistogram struct {
	counts [latencyBuckets]atomic.Uint32
}

// latencyBucket returns the bucket of round trip rtt.
func latencyBucket(rtt time.Duration) int {
	us := uint64(max(rtt, 0) / time.Microsecond)
	if us < 8 {
		return int(us)
	}
	e := bits.Len64(us) - 1 // ≥ 3
	if e >= 27 {
		return latencyBuckets - 1
	}
	return (e-2)*8 + int(us>>(e-3)&7)
}

// latencyBucketTop returns the upper end of bucket i: every round trip
// counted in it is below.
func latencyBucketTop(i int) time.Duration {
	if i < 8 {
		return time.Duration(i+1) * time.Microsecond
	}
	e, sub := i/8+2, i%8
	return time.Duration((8+sub+1)<<(e-3)) * time.Microsecond
}

// add counts one round trip.
func (h *latencyHistogram) add(rtt time.Duration) { h.counts[latencyBucket(rtt)].Add(1) }

// tail returns the histogram's latencyQuantile (as its bucket's upper
// end) and its number of samples. If they are enough to be judged
// (latencyMinSamples), it then decays every count to 3/4 of itself,
// rounded down, so that a lone old sample disappears; if not, it keeps
// them. So an endpoint that gets little traffic, as a slow one does
// under P2C, is judged on its last samples however long they took to
// come, instead of never reaching the minimum.
func (h *latencyHistogram) tail() (time.Duration, uint64) {
	var n uint64
	for i := range h.counts {
		n += uint64(h.counts[i].Load())
	}
	rank, seen, q := uint64(float64(n)*latencyQuantile), uint64(0), time.Duration(0)
	for i := range h.counts {
		c := &h.counts[i]
		v := c.Load()
		if v == 0 {
			continue
		}
		if seen += uint64(v); q == 0 && seen > rank {
			q = latencyBucketTop(i)
		}
		for n >= latencyMinSamples && !c.CompareAndSwap(v, v*latencyKeepNum/latencyKeepDen) {
			v = c.Load()
		}
	}
	return q, n
}

// reset empties the histogram: an ejected endpoint comes back with no
// history, and must show its tail again on fresh samples.
func (h *latencyHistogram) reset() {
	for i := range h.counts {
		h.counts[i].Store(0)
	}
}

// observeLatency records endpoint i's round trip and, once an interval
// has passed since the last comparison, compares the tails; it reports
// whether that ejected an endpoint. The comparison is made by whoever
// takes judgeMu first: the others go on.
func (o *Outlier) observeLatency(i int, ns int64, rtt time.Duration) bool {
	o.lat[i].add(rtt)
	if ns < o.nextJudge.Load() || !o.judgeMu.TryLock() {
		return false
	}
	defer o.judgeMu.Unlock()
	if ns < o.nextJudge.Load() {
		return false // judged by another caller meanwhile
	}
	o.nextJudge.Store(ns + int64(latencyInterval))
	return o.judgeLatency(ns)
}

// judgeLatency compares each judged endpoint's tail with the median of
// its peers' tails (the lower median for an even number of peers) and
// ejects those at or above LatencyFactor times it and at least
// latencyMinTail. An endpoint is judged, and counts as a peer, when it is
// not ejected and its histogram holds latencyMinSamples. It allocates
// nothing: the tails live in arrays on the stack. It reports whether it
// ejected an endpoint.
func (o *Outlier) judgeLatency(ns int64) (ejected bool) {
	var tails, sorted [MaxEndpoints]time.Duration
	k := 0
	out := o.all &^ o.available(ns)
	for i := range o.eps {
		q, n := o.lat[i].tail()
		if out&(1<<i) == 0 && n >= latencyMinSamples {
			tails[i], sorted[k] = q, q
			k++
		}
	}
	if k < 2 {
		return false
	}
	s := sorted[:k]
	slices.Sort(s)
	for i, q := range tails[:len(o.eps)] {
		if q < latencyMinTail {
			continue // not judged (0), or too fast to matter
		}
		if float64(q) >= o.factor*float64(peerMedian(s, q)) && o.eject(i, ns) {
			o.latencyEjections.Add(1)
			ejected = true
		}
	}
	return ejected
}

// peerMedian returns the lower median of sorted (ascending, at least two
// values) with one instance of own left out: the median of an endpoint's
// peers.
func peerMedian(sorted []time.Duration, own time.Duration) time.Duration {
	p, _ := slices.BinarySearch(sorted, own) // own's first position
	m := (len(sorted) - 2) / 2               // the median's index among the others
	if m < p {
		return sorted[m]
	}
	return sorted[m+1]
}
