package resilience

import (
	"sync/atomic"
	"time"
)

// Defaults NewHedge applies to zero HedgeSettings fields.
const (
	// DefaultHedgePercentile is the service-time percentile a hedge waits
	// for when no delay is given: p95, so about 5% of requests are hedged.
	DefaultHedgePercentile = 0.95
	// DefaultHedgeMinSamples is how many samples a live percentile needs
	// before it is trusted.
	DefaultHedgeMinSamples = 100
)

// HedgeSettings configures a route's hedged requests (The Tail at Scale:
// after the delay, send the same request again and take the first good
// answer). Zero fields mean what each says; NewHedge normalises them.
type HedgeSettings struct {
	// Fixed is a fixed delay, always trusted and never clamped; 0 means
	// the delay follows Percentile of the route's live service time.
	Fixed time.Duration
	// Percentile, in (0, 1), is the service-time quantile the live delay
	// tracks (0.90, 0.95, 0.99); 0 or out of range means
	// DefaultHedgePercentile. Unused with Fixed.
	Percentile float64
	// MinDelay is the least live delay; 0 (or less) means no lower bound.
	MinDelay time.Duration
	// MaxDelay is the greatest live delay; 0 (or less) means no upper
	// bound. Below MinDelay it is raised to MinDelay.
	MaxDelay time.Duration
	// MaxExtra is how many extra attempts one request may get; 0 (or
	// less) means 1.
	MaxExtra int
	// Ratio is the share of the route's requests that hedges may add,
	// passed to Budget.TryExtra; 0 (or less) leaves only the budget's
	// per-second minimum.
	Ratio float64
	// MinSamples is how many samples a live percentile needs before it is
	// trusted; 0 (or less) means DefaultHedgeMinSamples.
	MinSamples int64
}

// Hedge holds a route's hedge delay: fixed, or a live percentile of the
// route's service time that the metrics tick feeds in through Observe.
// Until a percentile has been seen over enough samples there is no
// trusted delay and the route does not hedge: hedging on a guess would
// either double the load (delay too short) or do nothing. Hedge is safe
// for concurrent use; Delay is one atomic load.
type Hedge struct {
	delay atomic.Int64 // nanoseconds; hedgeUntrusted until trusted
	s     HedgeSettings
}

// hedgeUntrusted marks a Hedge that has no trusted delay yet.
const hedgeUntrusted = -1

// NewHedge builds a Hedge from s, normalising its zero fields as
// HedgeSettings documents.
func NewHedge(s HedgeSettings) *Hedge {
	if !(s.Percentile > 0 && s.Percentile < 1) {
		s.Percentile = DefaultHedgePercentile
	}
	s.MinDelay = max(s.MinDelay, 0)
	if s.MaxDelay > 0 {
		s.MaxDelay = max(s.MaxDelay, s.MinDelay)
	}
	if s.MaxExtra <= 0 {
		s.MaxExtra = 1
	}
	s.Ratio = max(s.Ratio, 0)
	if s.MinSamples <= 0 {
		s.MinSamples = DefaultHedgeMinSamples
	}
	h := &Hedge{s: s}
	h.delay.Store(hedgeUntrusted)
	if s.Fixed > 0 {
		h.delay.Store(int64(s.Fixed))
	}
	return h
}

// Delay returns how long to wait for an attempt before hedging it; false
// (with 0) means there is no trusted delay yet, so do not hedge. It is one
// atomic load.
func (h *Hedge) Delay() (time.Duration, bool) {
	d := h.delay.Load()
	if d == hedgeUntrusted {
		return 0, false
	}
	return time.Duration(d), true
}

// Observe feeds the route's live service-time percentile p, computed over
// samples requests, into the delay, clamped to [MinDelay, MaxDelay]. Call
// it from the metrics tick (about once a second), not per request. It is
// ignored with a Fixed delay, and below MinSamples, where the last trusted
// delay (if any) stays: a quiet second does not reset a good estimate.
func (h *Hedge) Observe(p time.Duration, samples int64) {
	if h.s.Fixed > 0 || samples < h.s.MinSamples {
		return
	}
	p = max(p, h.s.MinDelay)
	if h.s.MaxDelay > 0 {
		p = min(p, h.s.MaxDelay)
	}
	h.delay.Store(int64(p))
}

// Percentile returns the service-time quantile Observe expects, in (0, 1).
func (h *Hedge) Percentile() float64 { return h.s.Percentile }

// MaxExtra returns how many extra attempts one request may get, at least 1.
func (h *Hedge) MaxExtra() int { return h.s.MaxExtra }

// Ratio returns the share of requests hedges may add, for Budget.TryExtra.
func (h *Hedge) Ratio() float64 { return h.s.Ratio }
