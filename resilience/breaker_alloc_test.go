//go:build !race

package resilience

import (
	"testing"
	"time"
)

// TestBreakerDoAllocs holds Breaker.Do to its promise: a closed breaker
// allocates nothing, with a closure that captures the caller's state as
// the proxy's does. (The race detector's instrumentation allocates, hence
// the build tag.)
func TestBreakerDoAllocs(t *testing.T) {
	b := NewBreaker("app", BreakerSettings{ConsecutiveFailures: 5, FailureRatio: 0.5, MinRequests: 20, Interval: 10 * time.Second}, nil)
	x := &struct{ tries int }{}
	for _, o := range []Outcome{Success, Excluded} {
		if n := testing.AllocsPerRun(1000, func() {
			_, _ = b.Do(func() Outcome { x.tries++; return o })
		}); n != 0 {
			t.Errorf("Do (closed, %d): %v allocs, want 0", o, n)
		}
	}
}
