package resilience

import (
	"math"
	"sync"
	"sync/atomic"
)

// HealthSettings are the decision half of an upstream's active health
// check (config `upstreams.*.health_check`); the probing itself (path,
// interval, timeout) is proxy's.
type HealthSettings struct {
	// UnhealthyThreshold is how many failed probes in a row mark a healthy
	// endpoint unhealthy. Zero or negative means 2: one lost probe (a GC
	// pause, a dropped packet) should not take an endpoint out, two in a
	// row are a pattern (Kubernetes' failureThreshold is 3, HAProxy's
	// fall 3; Envoy has no default).
	UnhealthyThreshold int
	// HealthyThreshold is how many passed probes in a row mark an
	// unhealthy endpoint healthy again. Zero or negative means 1: an
	// endpoint that answers is worth traffic at once, and passive outlier
	// detection still guards it if it relapses (Kubernetes'
	// successThreshold is 1; Envoy needs a single pass at startup).
	HealthyThreshold int
}

// A Health holds the health-check verdicts for one upstream's endpoints.
// proxy probes each endpoint and calls Report with each result; the
// request path reads Healthy, and /readyz reads AnyHealthy.
//
// All endpoints start healthy, so traffic flows before the first probe
// has answered and /readyz does not wait for a probe interval at startup
// (Envoy instead starts hosts unhealthy until their first pass); an
// endpoint that is in fact down is taken out after UnhealthyThreshold
// probes, and by Outlier sooner.
//
// A Health is safe for concurrent use. Healthy and AnyHealthy are one
// atomic load; Report, called at probe rate, takes a mutex. A Health must
// not be copied.
//
// A nil *Health is an upstream without `health_check:`: every endpoint is
// healthy and AnyHealthy is true, so /readyz does not depend on it.
type Health struct {
	down, up int           // thresholds
	healthy  atomic.Uint64 // bitmask; written under mu
	mu       sync.Mutex
	streak   []int // per endpoint: passes (> 0) or failures (< 0) in a row; mu
}

// NewHealth returns a Health over n endpoints, all healthy. Zero settings
// fields take their documented defaults. An n above MaxEndpoints is
// clamped to it; with n ≤ 0 nothing is ever healthy.
func NewHealth(s HealthSettings, n int) *Health {
	n = min(max(n, 0), MaxEndpoints)
	if s.UnhealthyThreshold <= 0 {
		s.UnhealthyThreshold = 2
	}
	if s.HealthyThreshold <= 0 {
		s.HealthyThreshold = 1
	}
	h := &Health{down: s.UnhealthyThreshold, up: s.HealthyThreshold, streak: make([]int, n)}
	h.healthy.Store(endpointMask(n))
	return h
}

// Report records one probe result for endpoint i and reports whether it
// changed the endpoint's health (for logging the transition). An i out of
// range is ignored.
func (h *Health) Report(i int, ok bool) (changed bool) {
	if h == nil || uint(i) >= uint(len(h.streak)) {
		return false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	s := healthStreak(h.streak[i], ok, h.down, h.up)
	h.streak[i] = s
	bit := uint64(1) << i
	isUp := h.healthy.Load()&bit != 0
	switch {
	case isUp && s <= -h.down:
		h.healthy.And(^bit)
		return true
	case !isUp && s >= h.up:
		h.healthy.Or(bit)
		return true
	}
	return false
}

// healthStreak extends a run of passes (> 0) or failures (< 0) by one
// probe result, kept within the thresholds so it never overflows.
func healthStreak(s int, ok bool, down, up int) int {
	if ok {
		return min(max(s, 0)+1, up)
	}
	return max(min(s, 0)-1, -down)
}

// Healthy is the set of healthy endpoints, a bitmask for Balancer.Pick
// (intersect it with Outlier.Available). A nil Health returns all bits
// set.
func (h *Health) Healthy() uint64 {
	if h == nil {
		return math.MaxUint64
	}
	return h.healthy.Load()
}

// AnyHealthy reports whether at least one endpoint is healthy, for
// /readyz.
func (h *Health) AnyHealthy() bool { return h == nil || h.healthy.Load() != 0 }
