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

// TestBreakerSettleAllocs: deferring an outcome past Do and settling it
// later allocates nothing, so a streamed response costs the breaker no
// allocation.
func TestBreakerSettleAllocs(t *testing.T) {
	b := NewBreaker("app", BreakerSettings{ConsecutiveFailures: 5, FailureRatio: 0.5, MinRequests: 20, Interval: 10 * time.Second}, nil)
	var tk Ticket
	if n := testing.AllocsPerRun(1000, func() {
		_, _ = b.Do(func() Outcome { tk = b.Defer(); return Excluded })
		b.Settle(tk, Success)
	}); n != 0 {
		t.Errorf("Do, Defer, Settle: %v allocs, want 0", n)
	}
}

// TestShadowAllocs: the shadow paths allocate nothing either: a shadow
// breaker that would refuse, and a shadow budget withdrawal.
func TestShadowAllocs(t *testing.T) {
	b := NewBreaker("app", BreakerSettings{ConsecutiveFailures: 1, OpenTimeout: time.Hour}, nil)
	b.SetShadow(true)
	b.Do(func() Outcome { return Failure })
	x := &struct{ tries int }{}
	if n := testing.AllocsPerRun(1000, func() {
		_, _ = b.Do(func() Outcome { x.tries++; return Success })
	}); n != 0 {
		t.Errorf("Do (shadow, would reject): %v allocs, want 0", n)
	}
	bg := NewBudget(10*time.Second, 10)
	now := time.Now()
	if n := testing.AllocsPerRun(100, func() {
		bg.Request(now)
		_ = bg.TryShadowExtra(now, 0.2)
	}); n != 0 {
		t.Errorf("TryShadowExtra: %v allocs, want 0", n)
	}
}
