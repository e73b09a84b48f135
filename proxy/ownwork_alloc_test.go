//go:build !race

package proxy

import "testing"

// TestOwnWorkAllocatesNothing: tailguard's own per-request work
// (BenchmarkOwnWork's steps) allocates nothing in steady state, for a
// client and an upstream that send Connection: keep-alive. (A header
// pass that handed back its scratch buffer cut short by the Connection
// values it had parsed left the pooled exchange with less room each
// time, and so allocated every few requests.)
func TestOwnWorkAllocatesNothing(t *testing.T) {
	w := newOwnWork(t)
	for name, step := range map[string]func(){"request": w.request, "response": w.response, "bookkeeping": w.bookkeeping, "clock": w.clock} {
		for range 1000 { // reach the steady state: a leak of room shows only after a while
			step()
		}
		if allocs := testing.AllocsPerRun(1000, step); allocs != 0 {
			t.Errorf("%s: allocs per run = %v, want 0", name, allocs)
		}
	}
}
