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
		o.Observe(k%8, now, Failure)
		o.Observe(k%8, now, Failure) // ejects, if not ejected already
		o.Observe((k+1)%8, now, Success)
		_ = o.Available(now) & h.Healthy()
	})
	if got != 0 {
		t.Errorf("Observe: %v allocs, want 0", got)
	}
	if o.Ejections() == 0 {
		t.Error("no ejection happened: the ejecting path was not measured")
	}
}
