package metrics

import (
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// A Metric names one of the four durations recorded per request.
type Metric uint8

// The metrics, as defined in the package doc. They index arrays, so they
// start at zero.
const (
	Queue    Metric = iota // arrival → admission
	Service                // the winning attempt's upstream time
	Response               // arrival → response handed back
	Overhead               // Response − Queue − Service
	numMetrics
)

var metricNames = [numMetrics]string{"queue", "service", "response", "overhead"}

// String returns the metric's name as /stats shows it.
func (m Metric) String() string { return metricNames[m] }

// A Snapshot is a route's record over one window, merged from the
// recorder's slices at the last tick. It is a copy: reading it takes no
// lock and blocks no recording. Concurrent reads are safe; a Snapshot
// handed to RouteConfig.OnTick is reused by the next tick, so it must not
// be kept after OnTick returns.
type Snapshot struct {
	seconds float64 // the span the window covers
	c       counters
	h       [numMetrics]*hdr.Histogram // all nil for a counters-only view
}

func newSnapshot(digits int, histograms bool) *Snapshot {
	s := &Snapshot{}
	if histograms {
		for m := range s.h {
			s.h[m] = newHistogram(digits)
		}
	}
	return s
}

func (s *Snapshot) reset() {
	for _, h := range s.h {
		if h != nil {
			h.Reset()
		}
	}
	s.c = counters{}
}

// view returns a new snapshot of window k; with histograms unless k is
// counters-only or histograms is false.
func (rt *Route) view(k window, histograms bool) *Snapshot {
	s := newSnapshot(rt.digits, histograms && k != win1h)
	rt.fill(s, k)
	return s
}

// fill empties s and merges window k into it.
func (rt *Route) fill(s *Snapshot, k window) {
	s.reset()
	rt.mu.RLock()
	defer rt.mu.RUnlock()
	rt.win.mergeInto(s, k)
}

// Quantile returns metric m's q-quantile (q in [0, 1], 0.99 for p99) in
// the window, at the histogram's precision (microseconds, and the
// significant digits of the Registry); 0 if nothing was recorded.
func (s *Snapshot) Quantile(m Metric, q float64) time.Duration {
	if s.h[m] == nil {
		return 0
	}
	return time.Duration(s.h[m].ValueAtQuantile(q*100)) * time.Microsecond
}

// Count returns the number of requests in the window. Service may have
// fewer values (see Samples): it is recorded only when an attempt was made.
func (s *Snapshot) Count() int64 { return s.c.requests }

// Samples returns how many values of metric m the window holds: what its
// quantiles rest on.
func (s *Snapshot) Samples(m Metric) int64 {
	if s.h[m] == nil {
		return 0
	}
	return s.h[m].TotalCount()
}

// max returns metric m's largest value in the window; 0 if none.
func (s *Snapshot) max(m Metric) time.Duration {
	if s.h[m] == nil || s.h[m].TotalCount() == 0 {
		return 0
	}
	return time.Duration(s.h[m].Max()) * time.Microsecond
}

// rps is the window's request rate: requests over the seconds it covers.
func (s *Snapshot) rps() float64 {
	if s.seconds <= 0 {
		return 0
	}
	return float64(s.c.requests) / s.seconds
}
