package resilience

import (
	"errors"
	"sync"
	"testing"
	"time"
)

// breakerOutcome returns an fn for Breaker.Do that ends with o.
func breakerOutcome(o Outcome) func() Outcome { return func() Outcome { return o } }

// breakerLog records a breaker's transitions; onChange runs under the
// breaker's lock, from whichever goroutine caused the change.
type breakerLog struct {
	mu  sync.Mutex
	got []string
}

func (l *breakerLog) onChange(name string, from, to State) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.got = append(l.got, name+":"+from.String()+"→"+to.String())
}

func (l *breakerLog) check(t *testing.T, want ...string) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.got) != len(want) {
		t.Fatalf("transitions %q, want %q", l.got, want)
	}
	for i := range want {
		if l.got[i] != want[i] {
			t.Fatalf("transitions %q, want %q", l.got, want)
		}
	}
}

// breakerAwait polls until b reaches want, for at most two seconds.
func breakerAwait(t *testing.T, b *Breaker, want State) {
	t.Helper()
	for end := time.Now().Add(2 * time.Second); time.Now().Before(end); time.Sleep(time.Millisecond) {
		if b.State() == want {
			return
		}
	}
	t.Fatalf("breaker still %v after 2s, want %v", b.State(), want)
}

func TestBreakerTrips(t *testing.T) {
	const S, F, E = Success, Failure, Excluded
	consecutive := BreakerSettings{ConsecutiveFailures: 3, OpenTimeout: time.Hour}
	ratio := BreakerSettings{FailureRatio: 0.5, MinRequests: 4, OpenTimeout: time.Hour}
	tests := []struct {
		name     string
		s        BreakerSettings
		outcomes []Outcome
		want     State
	}{
		{"consecutive: two failures", consecutive, []Outcome{F, F}, Closed},
		{"consecutive: three failures", consecutive, []Outcome{F, F, F}, Open},
		{"consecutive: a success resets", consecutive, []Outcome{F, F, S, F, F}, Closed},
		{"consecutive: excluded counts for nothing", consecutive, []Outcome{F, F, E, E, F}, Open},
		{"consecutive: only excluded", consecutive, []Outcome{E, E, E, E, E}, Closed},
		{"consecutive: invalid outcome counts for nothing", consecutive, []Outcome{F, F, 0, 9, F}, Open},
		{"ratio: below MinRequests", ratio, []Outcome{F, F, F}, Closed},
		{"ratio: at MinRequests and ratio", ratio, []Outcome{S, F, S, F}, Open},
		{"ratio: under ratio", ratio, []Outcome{S, S, S, F, S, F}, Closed},
		{"ratio: excluded are not counted", ratio, []Outcome{F, E, E, E, E, F}, Closed},
		{"ratio: excluded do not dilute", ratio, []Outcome{S, E, E, F, E, S, F}, Open},
		{"ratio: 3 of 10 meets 0.3", BreakerSettings{FailureRatio: 0.3, MinRequests: 10, OpenTimeout: time.Hour},
			[]Outcome{S, S, S, S, S, S, S, F, F, F}, Open},
		{"ratio: no minimum", BreakerSettings{FailureRatio: 1}, []Outcome{F}, Open},
		{"either trigger", BreakerSettings{ConsecutiveFailures: 2, FailureRatio: 0.9, MinRequests: 100}, []Outcome{S, F, F}, Open},
		{"no trigger never opens", BreakerSettings{}, []Outcome{F, F, F, F, F, F, F, F}, Closed},
	}
	for _, tt := range tests {
		var log breakerLog
		b := NewBreaker("app", tt.s, log.onChange)
		for i, o := range tt.outcomes {
			got, err := b.Do(breakerOutcome(o))
			if err != nil || got != o {
				t.Fatalf("%s: Do #%d = %v, %v; want %v, nil", tt.name, i, got, err, o)
			}
		}
		if got := b.State(); got != tt.want {
			t.Errorf("%s: state %v, want %v", tt.name, got, tt.want)
		}
		if tt.want == Open {
			log.check(t, "app:closed→open")
		}
	}
}

// TestBreakerRatioInFlight: requests still in flight do not dilute the
// failure ratio (gobreaker's Requests counts them; the ratio does not).
func TestBreakerRatioInFlight(t *testing.T) {
	b := NewBreaker("app", BreakerSettings{FailureRatio: 0.5, MinRequests: 2, OpenTimeout: time.Hour}, nil)
	entered, release := make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	for range 5 {
		wg.Go(func() {
			b.Do(func() Outcome {
				entered <- struct{}{}
				<-release
				return Failure
			})
		})
	}
	for range 5 {
		<-entered
	}
	b.Do(breakerOutcome(Failure))
	b.Do(breakerOutcome(Failure))
	state := b.State()
	close(release)
	wg.Wait()
	if state != Open {
		t.Errorf("2 of 2 completed failed, 5 in flight: %v, want open", state)
	}
}

func TestBreakerOpenRefuses(t *testing.T) {
	b := NewBreaker("app", BreakerSettings{ConsecutiveFailures: 1, OpenTimeout: time.Hour}, nil)
	if _, err := b.Do(breakerOutcome(Failure)); err != nil {
		t.Fatal(err)
	}
	called := false
	out, err := b.Do(func() Outcome { called = true; return Success })
	if !errors.Is(err, ErrOpen) || out != 0 || called {
		t.Errorf("open: Do = %v, %v, fn called %v; want 0, ErrOpen, not called", out, err, called)
	}
	if b.State() != Open || b.Probing() {
		t.Errorf("state %v, probing %v; want open, false", b.State(), b.Probing())
	}
}

// TestBreakerHalfOpen runs real transitions: OpenTimeout of a few ms, then
// bounded polling.
func TestBreakerHalfOpen(t *testing.T) {
	const probes = 2
	s := BreakerSettings{ConsecutiveFailures: 1, OpenTimeout: 5 * time.Millisecond, HalfOpenRequests: probes}
	var log breakerLog
	b := NewBreaker("app", s, log.onChange)
	b.Do(breakerOutcome(Failure))
	breakerAwait(t, b, HalfOpen)
	if !b.Probing() {
		t.Fatal("half-open but not Probing")
	}

	// Exactly `probes` requests get through; the rest are refused.
	entered, release := make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	for range probes {
		wg.Go(func() {
			out, err := b.Do(func() Outcome {
				if !b.Probing() {
					t.Error("a probe's fn: Probing false")
				}
				entered <- struct{}{}
				<-release
				return Success
			})
			if err != nil || out != Success {
				t.Errorf("probe: Do = %v, %v", out, err)
			}
		})
	}
	for range probes {
		<-entered
	}
	called := false
	if _, err := b.Do(func() Outcome { called = true; return Success }); !errors.Is(err, ErrOpen) || called {
		t.Errorf("probe %d: err %v, fn called %v; want ErrOpen, not called", probes+1, err, called)
	}
	close(release)
	wg.Wait()

	if b.State() != Closed || b.Probing() {
		t.Errorf("after %d good probes: %v, probing %v; want closed", probes, b.State(), b.Probing())
	}
	log.check(t, "app:closed→open", "app:open→half_open", "app:half_open→closed")
}

func TestBreakerProbeFailureReopens(t *testing.T) {
	s := BreakerSettings{ConsecutiveFailures: 1, OpenTimeout: 5 * time.Millisecond, HalfOpenRequests: 3}
	var log breakerLog
	b := NewBreaker("app", s, log.onChange)
	b.Do(breakerOutcome(Failure))
	breakerAwait(t, b, HalfOpen)
	b.Do(breakerOutcome(Success))
	b.Do(breakerOutcome(Failure))
	if b.State() != Open {
		t.Errorf("after a failed probe: %v, want open", b.State())
	}
	log.check(t, "app:closed→open", "app:open→half_open", "app:half_open→open")
}

// TestBreakerExcludedProbe: a probe that never reached the upstream frees
// its slot and decides nothing.
func TestBreakerExcludedProbe(t *testing.T) {
	s := BreakerSettings{ConsecutiveFailures: 1, OpenTimeout: 5 * time.Millisecond}
	b := NewBreaker("app", s, nil)
	b.Do(breakerOutcome(Failure))
	breakerAwait(t, b, HalfOpen)
	for range 3 {
		if _, err := b.Do(breakerOutcome(Excluded)); err != nil {
			t.Fatalf("excluded probe: %v", err)
		}
	}
	if b.State() != HalfOpen {
		t.Fatalf("after excluded probes: %v, want half_open", b.State())
	}
	b.Do(breakerOutcome(Success))
	if b.State() != Closed {
		t.Errorf("after a good probe: %v, want closed", b.State())
	}
}

// TestBreakerInterval: counts of the closed state are cleared each
// Interval (a real transition of a few ms).
func TestBreakerInterval(t *testing.T) {
	b := NewBreaker("app", BreakerSettings{ConsecutiveFailures: 3, Interval: 5 * time.Millisecond}, nil)
	b.Do(breakerOutcome(Failure))
	b.Do(breakerOutcome(Failure))
	time.Sleep(15 * time.Millisecond)
	b.Do(breakerOutcome(Failure))
	if b.State() != Closed {
		t.Errorf("failures split across intervals opened the breaker")
	}
}

func TestBreakerPanicCountsAsFailure(t *testing.T) {
	b := NewBreaker("app", BreakerSettings{ConsecutiveFailures: 1, OpenTimeout: time.Hour}, nil)
	func() {
		defer func() {
			if recover() == nil {
				t.Error("panic in fn was swallowed")
			}
		}()
		b.Do(func() Outcome { panic("boom") })
	}()
	if b.State() != Open {
		t.Errorf("after a panic: %v, want open", b.State())
	}
}

func TestStateString(t *testing.T) {
	for s, want := range map[State]string{Closed: "closed", HalfOpen: "half_open", Open: "open", 9: "unknown"} {
		if s.String() != want {
			t.Errorf("State(%d).String() = %q, want %q", s, s.String(), want)
		}
	}
	if b := NewBreaker("users", BreakerSettings{}, nil); b.State() != Closed {
		t.Errorf("new breaker: %v, want closed", b.State())
	}
}

// BenchmarkBreakerDo: a closed breaker counting successes; every call takes
// gobreaker's mutex twice (before and after fn) and reads the clock twice,
// so expect it not to scale with cores. go test -run=^$ -bench=BreakerDo
// -cpu 1,2 (bigger machines: -cpu 1,4,16).
func BenchmarkBreakerDo(b *testing.B) {
	br := NewBreaker("app", BreakerSettings{ConsecutiveFailures: 5, FailureRatio: 0.5, MinRequests: 20, Interval: 10 * time.Second}, nil)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		n := 0
		for pb.Next() {
			_, _ = br.Do(func() Outcome { n++; return Success })
		}
	})
}

// BenchmarkBreakerDoOpen: the refusal path the proxy answers 503 from.
func BenchmarkBreakerDoOpen(b *testing.B) {
	br := NewBreaker("app", BreakerSettings{ConsecutiveFailures: 1, OpenTimeout: time.Hour}, nil)
	br.Do(breakerOutcome(Failure))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			_, _ = br.Do(breakerOutcome(Success))
		}
	})
}

// deferred lets one request through b with its outcome deferred, as the
// proxy does for a streamed response, and returns its Ticket.
func deferred(t *testing.T, b *Breaker) Ticket {
	t.Helper()
	var tk Ticket
	out, err := b.Do(func() Outcome { tk = b.Defer(); return Excluded })
	if err != nil || out != Excluded {
		t.Fatalf("Do = %v, %v; want Excluded, nil", out, err)
	}
	return tk
}

// TestBreakerSettle (issue 16): outcomes deferred past Do count when
// settled, in the state their request was let through in, and for nothing
// once the breaker has changed state since.
func TestBreakerSettle(t *testing.T) {
	consecutive := BreakerSettings{ConsecutiveFailures: 3, OpenTimeout: time.Hour}
	tests := []struct {
		name string
		s    BreakerSettings
		run  func(t *testing.T, b *Breaker)
		want State
	}{
		{"three deferred failures open it", consecutive, func(t *testing.T, b *Breaker) {
			tks := []Ticket{deferred(t, b), deferred(t, b), deferred(t, b)}
			if b.State() != Closed {
				t.Fatalf("before settling: %v, want closed", b.State())
			}
			for _, tk := range tks {
				b.Settle(tk, Failure)
			}
		}, Open},
		{"a deferred success breaks the run", consecutive, func(t *testing.T, b *Breaker) {
			b.Do(breakerOutcome(Failure))
			b.Do(breakerOutcome(Failure))
			b.Settle(deferred(t, b), Success)
			b.Do(breakerOutcome(Failure))
		}, Closed},
		{"ratio over settled outcomes", BreakerSettings{FailureRatio: 0.5, MinRequests: 4, OpenTimeout: time.Hour},
			func(t *testing.T, b *Breaker) {
				tks := []Ticket{deferred(t, b), deferred(t, b), deferred(t, b), deferred(t, b)}
				b.Settle(tks[0], Success)
				b.Settle(tks[1], Success)
				b.Settle(tks[2], Failure)
				b.Settle(tks[3], Failure)
			}, Open},
		{"a zero ticket counts nothing", BreakerSettings{ConsecutiveFailures: 1, OpenTimeout: time.Hour},
			func(t *testing.T, b *Breaker) { b.Settle(Ticket{}, Failure) }, Closed},
		{"an outcome from before the breaker opened counts for nothing",
			BreakerSettings{ConsecutiveFailures: 1, OpenTimeout: 5 * time.Millisecond},
			func(t *testing.T, b *Breaker) {
				tk := deferred(t, b)
				b.Do(breakerOutcome(Failure))
				breakerAwait(t, b, HalfOpen)
				b.Settle(tk, Failure) // a probe's failure would reopen it
			}, HalfOpen},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := NewBreaker("app", tt.s, nil)
			tt.run(t, b)
			if got := b.State(); got != tt.want {
				t.Errorf("state %v, want %v", got, tt.want)
			}
		})
	}
}
