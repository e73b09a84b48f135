package resilience

import (
	"math"
	"sync/atomic"
	"time"
)

// gradientLimit is the adaptive concurrency limit's algorithm, a gradient
// controller on round-trip time in the manner of Netflix
// concurrency-limits' Gradient2 and Envoy's adaptive concurrency filter.
// Once per window (one Update, about a second) it compares the window's
// mean RTT, short, with a long-term baseline:
//
//	gradient = clamp(baseline / short, 0.5, 1)
//	target   = limit × gradient + sqrt(limit)   // headroom: a small queue upstream
//	limit   += (target − limit) × smoothing, within [min, max]
//
// So the limit grows by about sqrt(limit)/2 a window while RTT stays at
// the baseline, and falls by up to a quarter a window as RTT rises above
// it. An upstream that serves C requests at once answers L > C in flight
// with RTT about baseline × L/C, so the limit settles a little above
// C + sqrt(C) (below C + 2.5 sqrt(C), as a test checks): enough queued
// upstream that no worker idles between requests, little enough that a
// request waits there a fraction of a service time. (A
// tolerance above 1, as Gradient2's 1.5, lets the limit settle at 1.5 C +
// sqrt: service time half again as long for every request, for no more
// throughput; the headroom already absorbs RTT noise.) It does not grow
// while the route uses less than half of it (the mean concurrency of the
// window's samples, sum of RTT / window length, is below limit/2): an
// idle route has learnt nothing about a higher limit.
//
// The baseline is an asymmetric moving average of the window means: it
// follows a faster window at once (half the gap per window, like
// Gradient2's long-RTT decay) and a slower one over about a minute (1/64
// of the gap per window, and at most 1/64 of itself, so that one wild
// window cannot double it), so that a service that really got slower is
// eventually accepted as such while a burst of queueing is not. A window
// with fewer than gradientMinSamples samples changes nothing: too few to
// tell noise from a trend, and an idle route must not lose its limit.
//
// Under a standing overload the route runs at its limit, every window's
// RTT sits a little above the baseline (the headroom's queue), and the
// slow rise would drift the baseline, and with it the limit, upward for
// as long as the overload lasts. So every probeEvery such windows (busy,
// RTT above the baseline), one window is a probe that enforces limit −
// 2 sqrt(limit), but never less than two thirds of it: for C of 16 and
// more that is below the C + sqrt(C) the limit settles at, so the
// upstream's queue empties, the window's RTT is the service time again,
// and the baseline falls back to it. This is BBR's ProbeRTT, gently: the
// baseline is never measured by cutting the limit to its minimum, as
// Envoy's minRTT probe does at the cost of 503 bursts; a probe costs at
// most a third of one window's throughput in ten, and only while the
// route is saturated (shedding anyway). For a smaller C the third does
// not empty the upstream's queue and the drift is only bounded: over
// five minutes of modelled overload the limit of a 4-worker upstream
// stays at 11–15, against up to 28 without probes (the test logs both).
//
// gradientLimit is not safe for concurrent use; Admission.Update owns it.
type gradientLimit struct {
	limit    float64
	baseline float64 // ns; 0 until the first counted window
	min, max float64
	// standing counts the busy windows with RTT above the baseline since
	// the last probe; probing is set for the window after the
	// probeEvery-th.
	standing int
	probing  bool
}

const (
	gradientMinSamples = 5
	gradientSmoothing  = 0.5
	baselineFall       = 0.5
	baselineRise       = 1.0 / 64
	probeEvery         = 10
)

// newGradientLimit returns the algorithm's state, normalised as
// AdmissionSettings documents.
func newGradientLimit(lo, hi, initial int) gradientLimit {
	lo = max(lo, 1)
	if hi <= 0 {
		hi = math.MaxInt32
	}
	hi = max(hi, lo)
	if initial <= 0 {
		initial = lo
	}
	return gradientLimit{limit: float64(min(max(initial, lo), hi)), min: float64(lo), max: float64(hi)}
}

// rttWindow is what one window's samples add up to.
type rttWindow struct {
	sum   time.Duration // of the samples' RTT
	count int64
	span  time.Duration // the window's length
}

// next runs one step of the algorithm on a window's samples.
func (g *gradientLimit) next(w rttWindow) {
	g.probing = false
	if w.count < gradientMinSamples || w.span <= 0 {
		return
	}
	short := float64(w.sum) / float64(w.count)
	if g.baseline == 0 {
		g.baseline = short
	}
	gradient := min(max(g.baseline/short, 0.5), 1)
	target := g.limit*gradient + math.Sqrt(g.limit)
	busy := float64(w.sum)/float64(w.span) >= g.limit/2
	if !busy {
		target = min(target, g.limit)
	}
	g.limit = min(max(g.limit+(target-g.limit)*gradientSmoothing, g.min), g.max)
	if short < g.baseline {
		g.baseline += (short - g.baseline) * baselineFall
		return
	}
	g.baseline += min(short-g.baseline, g.baseline) * baselineRise
	if busy && short > g.baseline {
		if g.standing++; g.standing >= probeEvery {
			g.standing, g.probing = 0, true
		}
	}
}

// current returns the limit to enforce in the coming window, as a whole
// number of requests: lower in a probe window.
func (g *gradientLimit) current() int64 {
	l := g.limit
	if g.probing {
		l = max(l-2*math.Sqrt(l), l*2/3, g.min)
	}
	return int64(math.Round(l))
}

// rttSamples accumulates one window's RTT samples with atomics, so that
// Release never takes a lock. Update swaps both sums out; a sample that
// races with the swap may land in the next window, which is harmless.
type rttSamples struct {
	sum, count atomic.Int64
}

func (s *rttSamples) add(rtt time.Duration) {
	s.sum.Add(int64(rtt))
	s.count.Add(1)
}

func (s *rttSamples) take() (sum time.Duration, count int64) {
	return time.Duration(s.sum.Swap(0)), s.count.Swap(0)
}

// updateLimit closes the current window at now and runs the algorithm on
// it. The first call only opens a window: samples from before it have no
// known span and are discarded.
func (a *Admission) updateLimit(now time.Time) {
	a.algMu.Lock()
	defer a.algMu.Unlock()
	a.epoch.Add(1)
	sum, count := a.rtt.take()
	if !a.lastUpdate.IsZero() {
		a.grad.next(rttWindow{sum: sum, count: count, span: now.Sub(a.lastUpdate)})
		a.limit.Store(a.grad.current())
	}
	a.lastUpdate = now
}
