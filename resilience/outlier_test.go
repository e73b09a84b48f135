package resilience

import (
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// outlierFail sends k Failures to endpoint i at now and returns how many
// of them ejected it.
func outlierFail(o *Outlier, i int, now time.Time, k int) int {
	ejected := 0
	for range k {
		if o.Observe(i, now, 0, Failure) {
			ejected++
		}
	}
	return ejected
}

func TestOutlierObserve(t *testing.T) {
	const F, S, E, zero = Failure, Success, Excluded, Outcome(0)
	tests := []struct {
		name string
		give []Outcome
		want int // index in give of the call that ejects; -1: none
	}{
		{"three failures eject", []Outcome{F, F, F}, 2},
		{"two do not", []Outcome{F, F}, -1},
		{"a success in between resets", []Outcome{F, F, S, F, F}, -1},
		{"then the third in a row ejects", []Outcome{F, F, S, F, F, F}, 5},
		{"excluded neither counts nor resets", []Outcome{F, E, F, E, E, F}, 5},
		{"the zero outcome counts for nothing", []Outcome{F, zero, F, zero, F}, 4},
		{"failures while ejected are ignored", []Outcome{F, F, F, F, F, F, F}, 2},
	}
	for _, tt := range tests {
		o := NewOutlier(OutlierSettings{Consecutive5xx: 3, MaxEjectedPercent: 100}, 2)
		now := balancerAt(o.clock, 0)
		for k, out := range tt.give {
			if got := o.Observe(0, now, 0, out); got != (k == tt.want) {
				t.Errorf("%s: Observe #%d (%v) = %v", tt.name, k, out, got)
			}
		}
		wantMask, wantN := uint64(0b11), 0
		if tt.want >= 0 {
			wantMask, wantN = 0b10, 1
		}
		if got := o.Available(now); got != wantMask {
			t.Errorf("%s: Available = %b, want %b", tt.name, got, wantMask)
		}
		if got := o.Ejected(now); got != wantN {
			t.Errorf("%s: Ejected = %d, want %d", tt.name, got, wantN)
		}
	}
}

// TestOutlierEjectionTime ejects endpoint 0 again each time its previous
// ejection ends (plus quiet), and checks how long each one lasts.
func TestOutlierEjectionTime(t *testing.T) {
	const base = 30 * time.Second
	tests := []struct {
		name  string
		quiet []time.Duration // time back in service before each ejection
		want  []int           // its length in multiples of base
	}{
		{"first lasts the base time", []time.Duration{0}, []int{1}},
		{"back to back they grow", []time.Duration{0, 0, 0}, []int{1, 2, 3}},
		{"capped at 10×", make([]time.Duration, 12), []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 10, 10}},
		{"one base time quiet forgives one", []time.Duration{0, 0, base}, []int{1, 2, 2}},
		{"less than one forgives none", []time.Duration{0, 0, base - 1}, []int{1, 2, 3}},
		{"a long quiet forgives all", []time.Duration{0, 0, 0, time.Hour}, []int{1, 2, 3, 1}},
	}
	for _, tt := range tests {
		o := NewOutlier(OutlierSettings{Consecutive5xx: 2, EjectionTime: base, MaxEjectedPercent: 50}, 2)
		now := balancerAt(o.clock, 0)
		for k, q := range tt.quiet {
			now = now.Add(q)
			if outlierFail(o, 0, now, 2) != 1 {
				t.Fatalf("%s: ejection #%d did not happen", tt.name, k)
			}
			end := now.Add(time.Duration(tt.want[k]) * base)
			before := end.Add(-1)
			if o.Available(before) != 0b10 || o.Available(end) != 0b11 {
				t.Errorf("%s: ejection #%d: Available(end-1ns) = %b, Available(end) = %b; want it to last %d×",
					tt.name, k, o.Available(before), o.Available(end), tt.want[k])
			}
			now = end
		}
	}
}

// TestOutlierIgnoresEjected: failures on an ejected endpoint (attempts
// sent before the ejection, or in panic mode) neither lengthen it nor
// count toward the next one.
func TestOutlierIgnoresEjected(t *testing.T) {
	o := NewOutlier(OutlierSettings{Consecutive5xx: 3, EjectionTime: time.Second}, 1)
	if outlierFail(o, 0, balancerAt(o.clock, 0), 3) != 1 || outlierFail(o, 0, balancerAt(o.clock, time.Second-1), 10) != 0 {
		t.Fatal("want one ejection, then nothing while ejected")
	}
	back := balancerAt(o.clock, time.Second)
	if o.Available(back) != 1 || outlierFail(o, 0, back, 2) != 0 || outlierFail(o, 0, back, 1) != 1 {
		t.Error("want back at 1 s, and ejected again only by 3 new failures")
	}
}

func TestOutlierMaxEjectedPercent(t *testing.T) {
	tests := []struct {
		name    string
		n, pct  int
		wantMax int
	}{
		{"2 endpoints, 50%", 2, 50, 1},
		{"2 endpoints, 100%", 2, 100, 2},
		{"10 endpoints, 30%", 10, 30, 3},
		{"10 endpoints, 0 means 10%", 10, 0, 1},
		{"3 endpoints, 10%: one may always go", 3, 10, 1},
		{"1 endpoint: it may go (panic mode keeps it in use)", 1, 10, 1},
		{"above 100 means 100", 4, 250, 4},
		{"64 endpoints, 50%", 64, 50, 32},
	}
	for _, tt := range tests {
		o := NewOutlier(OutlierSettings{Consecutive5xx: 1, MaxEjectedPercent: tt.pct}, tt.n)
		now := balancerAt(o.clock, 0)
		for i := range tt.n {
			o.Observe(i, now, 0, Failure)
		}
		if got := o.Ejected(now); got != tt.wantMax {
			t.Errorf("%s: Ejected = %d, want %d", tt.name, got, tt.wantMax)
		}
		if got := o.Skipped(); got != uint64(tt.n-tt.wantMax) {
			t.Errorf("%s: Skipped = %d, want %d", tt.name, got, tt.n-tt.wantMax)
		}
		if got, want := o.Available(now), endpointMask(tt.n)&^endpointMask(tt.wantMax); got != want {
			t.Errorf("%s: Available = %b, want %b", tt.name, got, want)
		}
	}
}

func TestOutlierCapFreedByExpiry(t *testing.T) {
	o := NewOutlier(OutlierSettings{Consecutive5xx: 2, EjectionTime: time.Second, MaxEjectedPercent: 50}, 2)
	now := balancerAt(o.clock, 0)
	if outlierFail(o, 0, now, 2) != 1 {
		t.Fatal("endpoint 0 not ejected")
	}
	if outlierFail(o, 1, now, 2) != 0 || o.Skipped() != 1 {
		t.Fatalf("endpoint 1 ejected past the cap (skipped %d)", o.Skipped())
	}
	later := balancerAt(o.clock, time.Second)
	if outlierFail(o, 1, later, 2) != 1 {
		t.Fatal("endpoint 1 not ejected once 0's ejection ended")
	}
	if got := o.Available(later); got != 0b01 {
		t.Errorf("Available = %b, want 01", got)
	}
	if got := o.Ejections(); got != 2 {
		t.Errorf("Ejections = %d, want 2", got)
	}
}

func TestOutlierEdges(t *testing.T) {
	o := NewOutlier(OutlierSettings{}, 0)
	now := balancerAt(o.clock, 0)
	if o.Observe(0, now, 0, Failure) || o.Available(now) != 0 || o.Ejected(now) != 0 {
		t.Error("n = 0: want nothing observed, available or ejected")
	}
	var none *Outlier
	if none.Observe(0, now, 0, Failure) || none.Available(now) != math.MaxUint64 ||
		none.Ejected(now) != 0 || none.Ejections() != 0 || none.Skipped() != 0 {
		t.Error("nil Outlier: want nothing ejected, every endpoint available")
	}
	o = NewOutlier(OutlierSettings{Consecutive5xx: 1, EjectionTime: math.MaxInt64, MaxEjectedPercent: 100}, 100)
	now = balancerAt(o.clock, 0)
	for _, i := range []int{-1, 64, math.MaxInt} {
		if o.Observe(i, now, 0, Failure) {
			t.Errorf("Observe(%d) ejected", i)
		}
	}
	// The end of the ejection saturates; two centuries later (past the
	// monotonic reading's range: compared by wall clock) it still holds.
	if !o.Observe(63, now, 0, Failure) || o.Available(now.Add(200*365*24*time.Hour)) != math.MaxUint64>>1 {
		t.Error("endpoint 63 with a huge ejection time: want ejected until the end of time")
	}
	d := NewOutlier(OutlierSettings{}, 1)
	now = balancerAt(d.clock, 0)
	if outlierFail(d, 0, now, 4) != 0 || outlierFail(d, 0, now, 1) != 1 {
		t.Error("zero settings: want the 5th failure to eject")
	}
	if d.Available(balancerAt(d.clock, 30*time.Second-1)) != 0 || d.Available(balancerAt(d.clock, 30*time.Second)) != 1 {
		t.Error("zero settings: want a 30 s ejection")
	}
}

// outlierHammer runs Observe from 8 goroutines over 8 endpoints, time
// moving by step per call, mostly failures; check runs after each call.
func outlierHammer(o *Outlier, step time.Duration, check func(now time.Time)) {
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for k := range 3000 {
				now := balancerAt(o.clock, time.Duration(k)*step)
				out := Failure
				if k%17 == g {
					out = Success
				}
				o.Observe((g+k)%8, now, 0, out)
				check(now)
			}
		})
	}
	wg.Wait()
}

// TestOutlierConcurrent: run it with -race. With ejections that outlast
// the test, the cap must hold at every moment, not only at the end; with
// short ones, expiries race with ejections and all end in time.
func TestOutlierConcurrent(t *testing.T) {
	o := NewOutlier(OutlierSettings{Consecutive5xx: 3, EjectionTime: time.Hour, MaxEjectedPercent: 50}, 8)
	var worst atomic.Int64
	outlierHammer(o, 10*time.Microsecond, func(now time.Time) {
		if e := int64(o.Ejected(now)); e > worst.Load() {
			worst.Store(e)
		}
	})
	if w := worst.Load(); w != 4 {
		t.Errorf("at most %d endpoints ejected at once, want the cap, 4", w)
	}
	if o.Ejections() != 4 || o.Skipped() == 0 {
		t.Errorf("ejections %d, skipped %d: want 4 and some", o.Ejections(), o.Skipped())
	}

	o = NewOutlier(OutlierSettings{Consecutive5xx: 3, EjectionTime: time.Millisecond, MaxEjectedPercent: 50}, 8)
	outlierHammer(o, 10*time.Microsecond, func(now time.Time) { o.Available(now) })
	later := balancerAt(o.clock, time.Hour)
	if o.Ejections() <= 4 || o.Ejected(later) != 0 {
		t.Errorf("ejections %d, ejected an hour later %d: want > 4 and 0", o.Ejections(), o.Ejected(later))
	}
}

// BenchmarkOutlierObserve observes mostly successes with time moving 1 µs
// per call, in steps as BenchmarkBalancer's.
func BenchmarkOutlierObserve(b *testing.B) {
	o := NewOutlier(OutlierSettings{}, 8)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		now, k := balancerAt(o.clock, 0), 0
		for pb.Next() {
			if k%benchStep == 0 {
				now = now.Add(benchStep * time.Microsecond)
			}
			k++
			out := Success
			if k%4 == 0 {
				out = Failure
			}
			o.Observe(k%8, now, 0, out)
			o.Available(now)
		}
	})
}
