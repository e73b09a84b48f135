package resilience

import (
	"errors"
	"testing"
	"time"
)

// TestBreakerShadow: a shadow breaker runs the same state machine on the
// same outcomes as an enforcing one, refuses nothing, reports
// ErrWouldReject where the other refuses, and never reports Probing; the
// outcomes of requests it would have refused are not counted.
func TestBreakerShadow(t *testing.T) {
	s := BreakerSettings{ConsecutiveFailures: 2, OpenTimeout: time.Hour}
	shadow, enforce := NewBreaker("s", s, nil), NewBreaker("e", s, nil)
	shadow.SetShadow(true)
	if !shadow.Shadow() || enforce.Shadow() {
		t.Fatal("Shadow does not report the mode set")
	}
	give := []Outcome{Success, Failure, Failure, Success, Success, Failure}
	for k, o := range give {
		called := false
		fn := func() Outcome { called = true; return o }
		eout, eerr := enforce.Do(fn)
		ecalled := called
		called = false
		sout, serr := shadow.Do(fn)
		if !called || sout != o {
			t.Fatalf("#%d: shadow Do = %v, fn called %v; want %v, called", k, sout, called, o)
		}
		if (eerr == nil) != (serr == nil) || errors.Is(eerr, ErrOpen) != errors.Is(serr, ErrWouldReject) {
			t.Errorf("#%d: enforce %v (called %v, %v), shadow %v: want the same decision", k, eerr, ecalled, eout, serr)
		}
		if shadow.State() != enforce.State() {
			t.Errorf("#%d: shadow %v, enforce %v", k, shadow.State(), enforce.State())
		}
	}
	if shadow.State() != Open {
		t.Fatalf("state %v, want open after two failures in a row", shadow.State())
	}
	// Half-open in shadow: the probe goes as usual, Probing stays false.
	fast := NewBreaker("h", BreakerSettings{ConsecutiveFailures: 1, OpenTimeout: 5 * time.Millisecond}, nil)
	fast.SetShadow(true)
	fast.Do(breakerOutcome(Failure))
	breakerAwait(t, fast, HalfOpen)
	if _, err := fast.Do(func() Outcome {
		if fast.Probing() {
			t.Error("shadow probe: Probing true")
		}
		return Success
	}); err != nil {
		t.Errorf("shadow probe: %v", err)
	}
	if fast.State() != Closed {
		t.Errorf("after a good probe: %v, want closed", fast.State())
	}
	// Back to enforce, state kept: the open breaker refuses.
	shadow.SetShadow(false)
	if _, err := shadow.Do(breakerOutcome(Success)); !errors.Is(err, ErrOpen) {
		t.Errorf("switched to enforce while open: %v, want ErrOpen", err)
	}
}

// TestBudgetShadowExtras: shadow extras are bounded as real ones would be,
// counting the real ones, and never take from what TryExtra allows.
func TestBudgetShadowExtras(t *testing.T) {
	b := NewBudget(10*time.Second, 0)
	now := budgetAt(b, 0)
	budgetDeposit(b, now, 100) // ratio 0.2: 20 extras
	shadow := 0
	for shadow < 100 && b.TryShadowExtra(now, 0.2) {
		shadow++
	}
	if shadow != 20 {
		t.Errorf("%d shadow extras allowed, want 20", shadow)
	}
	if got := budgetDrain(b, now, 0.2, 100); got != 20 {
		t.Errorf("%d real extras after the shadow ones, want all 20", got)
	}
	if b.TryShadowExtra(now, 0.2) {
		t.Error("a shadow extra beyond what the real ones left")
	}
	later := budgetAt(b, 10*time.Second)
	if b.TryShadowExtra(later, 0.2) {
		t.Error("a shadow extra with the window's requests gone")
	}
}
