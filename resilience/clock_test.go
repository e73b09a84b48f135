package resilience

import (
	"math"
	"testing"
	"time"
)

// at is the instant d after c's origin: how tests write the instants they
// once wrote as int64 nanoseconds, landing exactly where those did.
func (c clock) at(d time.Duration) time.Time { return c.origin.Add(d) }

// benchStep is how many operations a benchmark runs per step of its
// clock: time.Time.Add per operation would cost more than some of the
// operations measured, where the int64 nanoseconds benchmarks once
// advanced cost nothing.
const benchStep = 64

func TestClockNanos(t *testing.T) {
	c := newClock()
	tests := []struct {
		name string
		give time.Time
		want int64
	}{
		{"origin", c.origin, 0},
		{"after", c.at(1500 * time.Millisecond), int64(1500 * time.Millisecond)},
		{"before: negative", c.at(-time.Second), -int64(time.Second)},
		{"54 years on", c.at(1_700_000_000 * time.Second), 1_700_000_000 * int64(time.Second)},
		{"no monotonic reading: by wall clock", c.origin.Round(0).Add(time.Minute), int64(time.Minute)},
		{"saturates", c.origin.Add(math.MaxInt64).Add(math.MaxInt64), math.MaxInt64},
	}
	for _, tt := range tests {
		if got := c.nanos(tt.give); got != tt.want {
			t.Errorf("%s: nanos = %d, want %d", tt.name, got, tt.want)
		}
	}
}
