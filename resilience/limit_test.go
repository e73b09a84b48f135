package resilience

import (
	"math"
	"testing"
	"time"
)

// gradWindow is a window of n samples of rtt each, over one second.
func gradWindow(n int64, rtt time.Duration) rttWindow {
	return rttWindow{sum: time.Duration(n) * rtt, count: n, span: time.Second}
}

// gradBusy is a window whose samples keep `busy` requests in flight on
// average for the second.
func gradBusy(busy float64, rtt time.Duration) rttWindow {
	return gradWindow(int64(busy*float64(time.Second)/float64(rtt)), rtt)
}

func TestNewGradientLimit(t *testing.T) {
	tests := []struct {
		lo, hi, initial int
		want            gradientLimit
	}{
		{4, 1000, 20, gradientLimit{limit: 20, min: 4, max: 1000}},
		{0, 0, 0, gradientLimit{limit: 1, min: 1, max: math.MaxInt32}},
		{10, 5, 0, gradientLimit{limit: 10, min: 10, max: 10}},
		{4, 1000, 2000, gradientLimit{limit: 1000, min: 4, max: 1000}},
		{4, 1000, 2, gradientLimit{limit: 4, min: 4, max: 1000}},
	}
	for _, tt := range tests {
		if got := newGradientLimit(tt.lo, tt.hi, tt.initial); got != tt.want {
			t.Errorf("newGradientLimit(%d, %d, %d) = %+v, want %+v", tt.lo, tt.hi, tt.initial, got, tt.want)
		}
	}
}

// TestGradientLimitSteps runs the algorithm on explicit windows, from a
// limit of 100 with a 10ms baseline.
func TestGradientLimitSteps(t *testing.T) {
	const base = 10 * time.Millisecond
	tests := []struct {
		name   string
		window rttWindow
		want   float64 // the limit after one step
	}{
		// gradient 1: +sqrt(100) × smoothing.
		{"at baseline, busy", gradBusy(100, base), 105},
		{"faster than the baseline, busy", gradBusy(100, base/2), 105},
		// gradient 10 / 12.5 = 0.8, half the headroom: 100 + (80 + 5 − 100)/2.
		{"RTT 1.25×", gradBusy(100, 12500*time.Microsecond), 92.5},
		// gradient 0.5: 100 + (50 + 5 − 100)/2.
		{"RTT 2×", gradBusy(100, 2*base), 77.5},
		{"RTT 10×, gradient clamped", gradBusy(100, 10*base), 77.5},
		{"at baseline, app-limited", gradBusy(40, base), 100},
		{"RTT 1.25×, app-limited", gradBusy(40, 12500*time.Microsecond), 92.5},
		{"too few samples", gradWindow(gradientMinSamples-1, 10*base), 100},
		{"no span", rttWindow{sum: time.Second, count: 100}, 100},
	}
	for _, tt := range tests {
		g := gradientLimit{limit: 100, baseline: float64(base), min: 4, max: 1000}
		g.next(tt.window)
		if math.Abs(g.limit-tt.want) > 1e-9 {
			t.Errorf("%s: limit %v, want %v", tt.name, g.limit, tt.want)
		}
	}
}

func TestGradientLimitBaseline(t *testing.T) {
	g := newGradientLimit(4, 1000, 20)
	g.next(gradWindow(gradientMinSamples-1, time.Millisecond))
	if g.baseline != 0 {
		t.Fatalf("baseline %v from too few samples", g.baseline)
	}
	g.next(gradBusy(20, 10*time.Millisecond))
	if g.baseline != float64(10*time.Millisecond) {
		t.Fatalf("first baseline %v, want the first window's mean", time.Duration(g.baseline))
	}
	g.next(gradBusy(20, 6*time.Millisecond)) // faster: half the gap at once
	if g.baseline != float64(8*time.Millisecond) {
		t.Errorf("baseline %v after a faster window, want 8ms", time.Duration(g.baseline))
	}
	g.next(gradBusy(20, 12*time.Millisecond)) // slower: 1/64 of the gap
	if g.baseline != float64(8*time.Millisecond+62500) {
		t.Errorf("baseline %v after a slower window, want 8.0625ms", time.Duration(g.baseline))
	}
	g.next(gradBusy(20, time.Second)) // far slower: 1/64 of itself at most
	if g.baseline != float64(8*time.Millisecond+62500)*(1+baselineRise) {
		t.Errorf("baseline %v after a window 100× slower, want 8.19ms", time.Duration(g.baseline))
	}
}

// TestGradientLimitConverges runs many windows: rising RTT drives the
// limit down to its floor, RTT back at the baseline with the route busy
// drives it up to its ceiling, and it never leaves [min, max].
func TestGradientLimitConverges(t *testing.T) {
	const base = 10 * time.Millisecond
	g := newGradientLimit(20, 60, 40)
	g.next(gradBusy(40, base))
	prev := g.limit
	for i := range 12 {
		g.next(gradBusy(g.limit, 4*base))
		if g.limit > prev || g.limit < g.min {
			t.Fatalf("window %d, RTT 4×: limit %v after %v", i, g.limit, prev)
		}
		prev = g.limit
	}
	if g.limit != g.min {
		t.Errorf("limit %v after RTT 4× for 12 windows, want the floor %v", g.limit, g.min)
	}
	for i := range 40 {
		g.next(gradBusy(g.limit, base))
		if g.limit < prev || g.limit > g.max {
			t.Fatalf("window %d, RTT at baseline: limit %v after %v", i, g.limit, prev)
		}
		prev = g.limit
	}
	if g.limit != g.max {
		t.Errorf("limit %v after RTT at baseline for 40 windows, want the ceiling %v", g.limit, g.max)
	}
}

// settleModel runs the algorithm for 300 one-second windows against a
// model of a saturated upstream of c workers and a fixed service time,
// whose RTT is the service time up to c in flight and grows in
// proportion beyond. It returns the range of the limit over the last 180
// windows, probe windows aside. With probes false the probe never fires
// (its count is reset before every window), to show what it prevents.
func settleModel(c float64, initial int, probes bool) (lo, hi float64) {
	const service = 10 * time.Millisecond
	g := newGradientLimit(1, 1000, initial)
	g.next(gradBusy(c/2, service)) // the baseline, from a quiet window
	lo, hi = math.Inf(1), math.Inf(-1)
	for i := range 300 {
		if !probes {
			g.standing = 0
		}
		inflight := float64(g.current())
		g.next(gradBusy(inflight, time.Duration(float64(service)*max(1, inflight/c))))
		if i >= 120 && !g.probing {
			lo, hi = min(lo, g.limit), max(hi, g.limit)
		}
	}
	return lo, hi
}

// TestGradientLimitSettlesNearUpstreamConcurrency checks, over five
// minutes of modelled overload (settleModel), that the limit settles
// between C and C + max(2, sqrt(C)) for every C from 2 to 256, from below
// and from far above, and stays there: above, every request would wait
// upstream for a large part of a service time; below, workers idle.
// Without probes the baseline's slow rise drifts the limit past that
// bound, which the probes prevent. `go test -run GradientLimitSettles -v
// ./resilience/` prints every range.
func TestGradientLimitSettlesNearUpstreamConcurrency(t *testing.T) {
	for _, c := range []float64{2, 3, 4, 6, 8, 12, 16, 32, 64, 128, 256} {
		bound := c + max(2, math.Sqrt(c))
		for _, initial := range []int{4, 1000} {
			lo, hi := settleModel(c, initial, true)
			_, drift := settleModel(c, initial, false)
			t.Logf("C = %v, from %d: limit %.1f–%.1f with probes (bound %.1f), up to %.1f without", c, initial, lo, hi, bound, drift)
			if lo < c || hi > bound {
				t.Errorf("C = %v, from %d: limit %.1f–%.1f, want within [%v, %.1f]", c, initial, lo, hi, c, bound)
			}
			if drift <= bound {
				t.Errorf("C = %v, from %d: without probes the limit stayed within %.1f: the probes are not what bounds it", c, initial, bound)
			}
		}
	}
}

// TestGradientLimitProbes checks the probe schedule: after probeEvery busy
// windows with RTT above the baseline, one window enforces limit −
// sqrt(limit); windows at the baseline or app-limited never lead to one.
func TestGradientLimitProbes(t *testing.T) {
	const base = 10 * time.Millisecond
	for _, tt := range []struct {
		name   string
		window rttWindow
		probe  bool
	}{
		{"busy, RTT above the baseline", gradBusy(100, 2*base), true},
		{"busy, RTT at the baseline", gradBusy(100, base), false},
		{"app-limited, RTT above the baseline", gradBusy(10, 2*base), false},
	} {
		g := gradientLimit{limit: 100, baseline: float64(base), min: 4, max: 1000}
		for i := 1; i <= probeEvery; i++ {
			g.next(tt.window)
			g.limit = 100 // hold the limit; only the schedule is tested
			if want := tt.probe && i == probeEvery; g.probing != want {
				t.Fatalf("%s, window %d: probing %v, want %v", tt.name, i, g.probing, want)
			}
		}
		if want := int64(100); !tt.probe && g.current() != want {
			t.Errorf("%s: current %d, want %d", tt.name, g.current(), want)
		}
		if want := int64(90); tt.probe && g.current() != want {
			t.Errorf("%s: probe enforces %d, want 100 − sqrt(100) = %d", tt.name, g.current(), want)
		}
		g.next(tt.window)
		if g.probing {
			t.Errorf("%s: two probes in a row", tt.name)
		}
	}
}

// TestGradientLimitProbeWindow checks what a probe window's samples do:
// a faster mean replaces the baseline outright and the limit stays where
// it was, whatever the window's RTT says about room to grow.
func TestGradientLimitProbeWindow(t *testing.T) {
	const base = 10 * time.Millisecond
	for _, tt := range []struct {
		name         string
		rtt          time.Duration
		wantBaseline time.Duration
	}{
		{"queue emptied: faster than the baseline", 8 * time.Millisecond, 8 * time.Millisecond},
		{"queue not emptied: slower than the baseline", 15 * time.Millisecond, base},
	} {
		g := gradientLimit{limit: 100, baseline: float64(base), min: 4, max: 1000, probing: true}
		g.next(gradBusy(90, tt.rtt))
		if g.limit != 100 {
			t.Errorf("%s: limit %v after a probe window, want 100", tt.name, g.limit)
		}
		if g.baseline != float64(tt.wantBaseline) {
			t.Errorf("%s: baseline %v, want %v", tt.name, time.Duration(g.baseline), tt.wantBaseline)
		}
		if g.probing {
			t.Errorf("%s: still probing", tt.name)
		}
	}
}

func newAdaptive() *Admission {
	return NewAdmission(AdmissionSettings{Adaptive: true, LimitMin: 4, LimitMax: 1000, LimitInitial: 20})
}

// TestAdmissionAdaptiveSamples checks which samples reach the algorithm:
// excluded ones and stale ones (admitted before the previous Update) do
// not.
func TestAdmissionAdaptiveSamples(t *testing.T) {
	a := newAdaptive()
	old := mustAdmit(t, a, admT0, Default)
	a.Update(admT0) // opens the first window
	prev := mustAdmit(t, a, admT0, Default)
	a.Update(admAt(time.Second))
	cur := mustAdmit(t, a, admT0, Default)
	excluded := mustAdmit(t, a, admT0, Default)
	zero := mustAdmit(t, a, admT0, Default)

	old.Release(time.Millisecond, true)       // stale: discarded
	prev.Release(2*time.Millisecond, true)    // previous window: counted
	cur.Release(4*time.Millisecond, true)     // counted
	excluded.Release(time.Millisecond, false) // not a sample
	zero.Release(0, true)                     // not a sample
	if sum, n := a.rtt.take(); n != 2 || sum != 6*time.Millisecond {
		t.Errorf("window holds %d samples summing %v, want 2 summing 6ms", n, sum)
	}
	if a.InFlight() != 0 {
		t.Errorf("in flight %d", a.InFlight())
	}
}

// TestAdmissionAdaptiveLimit drives an adaptive Admission through windows
// in which every slot is used, with injected times and RTTs.
func TestAdmissionAdaptiveLimit(t *testing.T) {
	a := newAdaptive()
	now := admT0
	a.Update(now)
	window := func(rtt time.Duration) int {
		// Fill every slot, hold it for the whole second (busy = limit).
		held := make([]Permit, a.Limit())
		for i := range held {
			held[i] = mustAdmit(t, a, now, Default)
		}
		if _, err := a.Admit(now, time.Time{}, Default); err == nil {
			t.Fatal("admitted beyond the limit")
		}
		for _, p := range held {
			p.Release(rtt, true)
		}
		// Pad the window with samples so the mean is rtt and busy is high.
		for range int(time.Second/rtt) * len(held) {
			p := mustAdmit(t, a, now, Default)
			p.Release(rtt, true)
		}
		now = now.Add(time.Second)
		a.Update(now)
		return a.Limit()
	}
	start := a.Limit()
	window(10 * time.Millisecond) // sets the baseline
	up := window(10 * time.Millisecond)
	if up <= start {
		t.Fatalf("limit %d after busy windows at the baseline, want above %d", up, start)
	}
	down := window(40 * time.Millisecond)
	if down >= up {
		t.Errorf("limit %d after RTT 4×, want below %d", down, up)
	}
	fixed := NewAdmission(AdmissionSettings{MaxConcurrency: 7})
	fixed.Update(now)
	if fixed.Limit() != 7 {
		t.Errorf("fixed limit moved to %d", fixed.Limit())
	}
}
