//go:build !race

package resilience

import (
	"testing"
	"time"
)

// TestOutlierAllocs: Observe allocates nothing, ejecting included, nor do
// the per-request reads of Outlier and Health.
func TestOutlierAllocs(t *testing.T) {
	o := NewOutlier(OutlierSettings{Consecutive5xx: 2, EjectionTime: time.Millisecond, MaxEjectedPercent: 100}, 8)
	h := NewHealth(HealthSettings{}, 8)
	now, k := balancerAt(o.clock, 0), 0
	got := testing.AllocsPerRun(1000, func() {
		now = now.Add(time.Millisecond / 3)
		k++
		o.Observe(k%8, now, 0, Failure)
		o.Observe(k%8, now, 0, Failure) // ejects, if not ejected already
		o.Observe((k+1)%8, now, 0, Success)
		_ = o.Available(now) & h.Healthy()
	})
	if got != 0 {
		t.Errorf("Observe: %v allocs, want 0", got)
	}
	if o.Ejections() == 0 {
		t.Error("no ejection happened: the ejecting path was not measured")
	}
}

// TestOutlierLatencyAllocs: with LatencyFactor, Observe allocates nothing,
// the once-a-second comparison and a latency ejection included, nor does
// Eligible while an endpoint is in slow start.
func TestOutlierLatencyAllocs(t *testing.T) {
	o := NewOutlier(OutlierSettings{LatencyFactor: 3, EjectionTime: 2 * time.Second, MaxEjectedPercent: 100}, 8)
	now, k := balancerAt(o.clock, 0), 0
	got := testing.AllocsPerRun(5000, func() {
		now = now.Add(time.Millisecond)
		k++
		rtt := 2 * time.Millisecond
		if k%8 == 3 && k%40 < 8 {
			rtt = 150 * time.Millisecond
		}
		o.Observe(k%8, now, rtt, Success)
		_ = o.Eligible(now, 0b11111111)
	})
	if got != 0 {
		t.Errorf("Observe and Eligible: %v allocs, want 0", got)
	}
	if o.LatencyEjections() == 0 {
		t.Error("no latency ejection happened: the ejecting path was not measured")
	}
}
