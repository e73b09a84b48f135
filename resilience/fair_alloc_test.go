//go:build !race

package resilience

import (
	"testing"
	"time"
)

// Allocation claims of fair admission and rate limits. The race detector
// allocates, hence the build tag.

func TestFairAdmissionAllocs(t *testing.T) {
	a := NewAdmission(AdmissionSettings{MaxConcurrency: 64, Queue: 8, QueueTimeout: time.Second, Fair: true})
	keys := [][]byte{[]byte("10.0.0.1"), []byte("10.0.0.2"), nil}
	i := 0
	if n := testing.AllocsPerRun(1000, func() {
		p, err := a.AdmitKey(admT0, time.Time{}, Default, keys[i%len(keys)])
		if err != nil {
			t.Fatal(err)
		}
		p.Release(time.Millisecond, true)
		i++
	}); n != 0 {
		t.Errorf("%v allocs per admit and release, want 0", n)
	}
}

func TestRateLimiterAllocs(t *testing.T) {
	l := NewRateLimiter(RateLimitSettings{Rate: 100, Burst: 10})
	key := []byte("10.0.0.1")
	if n := testing.AllocsPerRun(1000, func() { l.Allow(key, rlT0) }); n != 0 {
		t.Errorf("%v allocs per Allow, want 0", n)
	}
}
