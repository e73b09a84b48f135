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
//	gradient = clamp(tolerance × baseline / short, 0.5, 1)
//	target   = limit × gradient + sqrt(limit)   // headroom: a small queue upstream
//	limit   += (target − limit) × smoothing, within [min, max]
//
// So the limit grows by about sqrt(limit)/2 a window while RTT stays
// within tolerance (1.5×) of the baseline, and falls by up to a quarter a
// window as RTT rises beyond it, toward the level where the upstream
// stops queueing. It does not grow while the route uses less than half
// of it (the mean concurrency of the window's samples, sum of RTT / window
// length, is below limit/2): an idle route has learnt nothing about a
// higher limit.
//
// The baseline is never measured by cutting the limit to its minimum, as
// Envoy's minRTT probe does at the cost of 503 bursts. It is an asymmetric
// moving average of the window means: it follows a faster window at once
// (half the gap per window, like Gradient2's long-RTT decay) and a slower
// one over about a minute (1/64 of the gap per window), so that a service
// that really got slower is eventually accepted as such while a burst of
// queueing is not. The price is a slow drift up under overload lasting
// minutes. A window with fewer than gradientMinSamples samples changes
// nothing: too few to tell noise from a trend, and an idle route must not
// lose its limit.
//
// gradientLimit is not safe for concurrent use; Admission.Update owns it.
type gradientLimit struct {
	limit    float64
	baseline float64 // ns; 0 until the first counted window
	min, max float64
}

const (
	gradientTolerance  = 1.5
	gradientMinSamples = 5
	gradientSmoothing  = 0.5
	baselineFall       = 0.5
	baselineRise       = 1.0 / 64
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
	if w.count < gradientMinSamples || w.span <= 0 {
		return
	}
	short := float64(w.sum) / float64(w.count)
	if g.baseline == 0 {
		g.baseline = short
	}
	gradient := min(max(gradientTolerance*g.baseline/short, 0.5), 1)
	target := g.limit*gradient + math.Sqrt(g.limit)
	if busy := float64(w.sum) / float64(w.span); busy < g.limit/2 {
		target = min(target, g.limit)
	}
	g.limit = min(max(g.limit+(target-g.limit)*gradientSmoothing, g.min), g.max)
	alpha := baselineRise
	if short < g.baseline {
		alpha = baselineFall
	}
	g.baseline += (short - g.baseline) * alpha
}

// current returns the limit as a whole number of requests.
func (g *gradientLimit) current() int64 { return int64(math.Round(g.limit)) }

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
