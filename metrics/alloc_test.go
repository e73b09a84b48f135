//go:build !race

package metrics

import (
	"testing"
	"time"
)

// TestRecordAllocatesNothing guards the hot path: Record allocates
// nothing, whatever the sample.
func TestRecordAllocatesNothing(t *testing.T) {
	reg, _ := newTestRegistry(t, RouteConfig{Name: "api", SLO: &SLO{Latency: time.Millisecond}})
	rt := reg.Route("api")
	samples := []Sample{
		ok(3 * time.Millisecond),
		{Queue: time.Hour * 2, Response: -time.Second, Status: 503, Flags: Shed | TimedOut, Retries: 2, Hedges: 1},
		{Status: 0},
	}
	var i uint64
	if n := testing.AllocsPerRun(1000, func() {
		i++
		rt.Record(i, samples[i%uint64(len(samples))])
	}); n != 0 {
		t.Errorf("Record: %v allocs, want 0", n)
	}
}
