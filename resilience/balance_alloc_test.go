//go:build !race

package resilience

import (
	"testing"
	"time"
)

// TestBalancerAllocs: the per-attempt calls allocate nothing.
func TestBalancerAllocs(t *testing.T) {
	for _, p := range []Policy{P2C, RoundRobin, LeastRequest} {
		b := NewBalancer(p, 8, 0)
		now := balancerAt(b.clock, 0)
		got := testing.AllocsPerRun(1000, func() {
			now = now.Add(time.Microsecond)
			i := b.Pick(now, 0b10110111, 1)
			b.Start(i)
			b.Done(i, now, time.Millisecond)
			b.Cost(i, now)
		})
		if got != 0 {
			t.Errorf("%v: Pick+Start+Done: %v allocs, want 0", p, got)
		}
	}
}
