package metrics

import (
	"testing"
	"time"
)

// TestWindowsRoll records one request before the first tick (so the tick
// at t=1s drains it into second 1) and follows it through the windows as
// the injected clock advances one tick a second.
func TestWindowsRoll(t *testing.T) {
	reg, clock := newTestRegistry(t, RouteConfig{Name: "api"})
	start := clock.Now()
	rt := reg.Route("api")
	rt.Record(7, ok(10*time.Millisecond))

	tests := []struct {
		at                       int // seconds since start
		in10s, in1m, in5m, inAll int64
	}{
		{1, 1, 1, 1, 1},
		{10, 1, 1, 1, 1},  // the 10s window at t=10 is seconds 1..10
		{11, 0, 1, 1, 1},  // ... and at t=11 seconds 2..11
		{59, 0, 1, 1, 1},  // 1m at t=59: the 10 s slots of seconds 0..59
		{60, 0, 0, 1, 1},  // 1m at t=60: seconds 10..60
		{299, 0, 0, 1, 1}, // 5m at t=299: seconds 0..299
		{300, 0, 0, 0, 1},
	}
	sec := 0
	for _, tt := range tests {
		for sec < tt.at {
			sec++
			reg.Tick(clock.set(start, time.Duration(sec)*time.Second))
		}
		for k, want := range map[window]int64{win10s: tt.in10s, win1m: tt.in1m, win5m: tt.in5m, winAll: tt.inAll} {
			s := rt.view(k, true)
			if s.Count() != want || s.h[Response].TotalCount() != want {
				t.Errorf("t=%ds %s: count %d, histogram %d, want %d", tt.at, k, s.Count(), s.h[Response].TotalCount(), want)
			}
		}
	}
}

// TestWindowCoverage checks the span each window covers, which rps
// divides by: capped by the route's age, and for 1m and 5m the newest
// ten-second slot is still filling.
func TestWindowCoverage(t *testing.T) {
	tests := []struct {
		at   time.Duration
		k    window
		want time.Duration
	}{
		{0, win10s, 0},
		{5 * time.Second, win10s, 5 * time.Second},
		{25 * time.Second, win10s, 10 * time.Second},
		{25 * time.Second, win1m, 25 * time.Second},
		{59 * time.Second, win1m, 59 * time.Second}, // capped by age
		{60 * time.Second, win1m, 51 * time.Second},
		{75 * time.Second, win1m, 56 * time.Second},
		{1000 * time.Second, win5m, 291 * time.Second},
		{4000 * time.Second, win1h, 3581 * time.Second},
		{90500 * time.Millisecond, winAll, 90500 * time.Millisecond},
	}
	for _, tt := range tests {
		reg, clock := newTestRegistry(t, RouteConfig{Name: "api"})
		reg.Tick(clock.set(clock.Now(), tt.at))
		if got := reg.Route("api").view(tt.k, false).seconds; got != tt.want.Seconds() {
			t.Errorf("%s at %v covers %vs, want %v", tt.k, tt.at, got, tt.want)
		}
	}
}

// TestSkippedSecondsStayEmpty checks that a long pause between ticks
// leaves no stale slot in a window.
func TestSkippedSecondsStayEmpty(t *testing.T) {
	reg, clock := newTestRegistry(t, RouteConfig{Name: "api"})
	start := clock.Now()
	rt := reg.Route("api")
	rt.Record(1, ok(time.Millisecond))
	reg.Tick(clock.set(start, 3*time.Second))
	rt.Record(1, ok(time.Millisecond))
	rt.Record(2, ok(time.Millisecond))
	reg.Tick(clock.set(start, 13*time.Second)) // ten-second slot 1, one ring turn of seconds later
	if got := rt.view(win10s, true).Count(); got != 2 {
		t.Errorf("10s window after the pause: %d requests, want 2", got)
	}
	if got := rt.view(win1m, true).Count(); got != 3 {
		t.Errorf("1m window: %d requests, want 3", got)
	}
}

// TestBurnRate1hUsesMinutes checks that the hour's burn rate comes from
// the per-minute counters and forgets a minute an hour later.
func TestBurnRate1hUsesMinutes(t *testing.T) {
	slo := &SLO{Availability: 0.99}
	reg, clock := newTestRegistry(t, RouteConfig{Name: "api", SLO: slo})
	start := clock.Now()
	rt := reg.Route("api")
	record := func(n, failed int) {
		for i := range n {
			s := ok(time.Millisecond)
			if i < failed {
				s.Status = 503
			}
			rt.Record(uint64(i), s)
		}
	}
	burn := func() (float64, float64) {
		return slo.burnRate(&rt.view(win5m, false).c), slo.burnRate(&rt.view(win1h, false).c)
	}
	record(100, 10)
	reg.Tick(clock.set(start, time.Second))
	record(100, 0)
	reg.Tick(clock.set(start, 10*time.Minute))
	if b5, b1h := burn(); b5 != 0 || !near(b1h, 0.05/0.01) {
		t.Errorf("at 10m: burn rates 5m %v, 1h %v; want 0, 5", b5, b1h)
	}
	reg.Tick(clock.set(start, time.Hour))
	if _, b1h := burn(); b1h != 0 {
		t.Errorf("at 1h: burn rate 1h %v, want 0 (minute 0 has left the hour)", b1h)
	}
}

func near(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 }
