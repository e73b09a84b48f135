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
//	headroom = sqrt(limit) if gradient = 1, else sqrt(limit) / 2
//	target   = limit × gradient + headroom   // a small queue upstream
//	limit   += (target − limit) × smoothing, within [min, max]
//
// So the limit grows by about sqrt(limit)/2 a window while RTT stays at
// the baseline, and falls by up to a quarter a window as RTT rises above
// it. An upstream that serves C requests at once answers L > C in flight
// with RTT about baseline × L/C, so gradient = C/L and the limit settles
// where L = C + sqrt(L)/2, a little above C + sqrt(C)/2: within C +
// max(2, sqrt(C)) for every C from 2 to 256, as a model test checks.
// That is enough queued upstream that no worker idles between requests,
// and little enough that a request waits there a fraction of a service
// time. The headroom is halved once RTT shows a queue (issue 17): with
// the whole sqrt(limit) the limit settled near C + sqrt(C) plus the
// baseline's drift, and a 4-worker upstream kept 7–10 requests queued of
// its own, waiting two service times that tailguard did not see as
// queueing. The full headroom is kept while RTT is at the baseline, so a
// route still finds a higher limit as fast as before. (A tolerance above
// 1, as Gradient2's 1.5, lets the limit settle at 1.5 C + sqrt: service
// time half again as long for every request, for no more throughput; the
// headroom already absorbs RTT noise.) It does not grow while the route
// uses less than half of it (the mean concurrency of the window's
// samples, sum of RTT / window length, is below limit/2): an idle route
// has learnt nothing about a higher limit.
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
// sqrt(limit), but never less than half of it: below the C + sqrt(C)/2
// the limit settles at, so the upstream's queue empties and the window's
// RTT is the service time again. A probe window measures the baseline
// and nothing else: a faster mean replaces the baseline outright (not
// half the gap), and the limit does not move, since a window run below
// the limit on purpose says nothing about where the limit should be (its
// RTT at the baseline would otherwise read as room to grow by the full
// headroom). This is BBR's ProbeRTT, gently: the baseline is never
// measured by cutting the limit to its minimum, as Envoy's minRTT probe
// does at the cost of 503 bursts; a probe costs about sqrt(limit) slots
// for one window in ten, and only while the route is saturated (shedding
// anyway). For a small C the floor of one half, not the two thirds of
// earlier versions, is what lets the probe reach C at all: with two
// thirds a 4-worker upstream's probes never emptied its queue, and its
// limit drifted to 11–15.
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
	probe := g.probing
	g.probing = false
	if w.count < gradientMinSamples || w.span <= 0 {
		return
	}
	short := float64(w.sum) / float64(w.count)
	if g.baseline == 0 {
		g.baseline = short
	}
	if probe {
		g.baseline = min(g.baseline, short)
		return
	}
	gradient := min(max(g.baseline/short, 0.5), 1)
	headroom := math.Sqrt(g.limit)
	if gradient < 1 {
		headroom /= 2
	}
	target := g.limit*gradient + headroom
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
		l = max(l-math.Sqrt(l), l/2, g.min)
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
