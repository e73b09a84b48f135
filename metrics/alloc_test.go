//go:build !race

package metrics

import (
	"testing"
	"time"
)

// TestRecordAllocatesNothing guards the hot path: Record allocates
// nothing, whatever the sample, with or without an exemplar's id.
func TestRecordAllocatesNothing(t *testing.T) {
	reg, _ := newTestRegistry(t, RouteConfig{Name: "api", SLO: &SLO{Latency: time.Millisecond}})
	rt := reg.Route("api")
	samples := []Sample{
		ok(3 * time.Millisecond),
		{Queue: time.Hour * 2, Response: -time.Second, Status: 503, Flags: Shed | TimedOut, Retries: 2, Hedges: 1},
		{Status: 0},
		{Response: 3 * time.Millisecond, Status: 200, TraceID: []byte("4bf92f3577b34da6a3ce929d0e0e4736"), RequestID: []byte("req-1")},
		{Response: 40 * time.Second, Status: 200, RequestID: []byte("0af7651916cd43dd8448eb211c80319c")},
		{Response: time.Millisecond, Status: 200, RequestID: make([]byte, 2*maxExemplarID)}, // too long: not kept
	}
	var i uint64
	if n := testing.AllocsPerRun(1000, func() {
		i++
		rt.Record(i, samples[i%uint64(len(samples))])
	}); n != 0 {
		t.Errorf("Record: %v allocs, want 0", n)
	}
}
