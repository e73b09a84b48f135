package resilience

import (
	"testing"
	"time"
)

func TestRetryOnWith(t *testing.T) {
	tests := []struct {
		name    string
		give    RetryOn
		status  int
		why     Reason
		matches bool
	}{
		{"a reason", RetryOn{}.WithReason(Reset), 0, Reset, true},
		{"another reason", RetryOn{}.WithReason(Reset), 0, Timeout, false},
		{"lowest status", RetryOn{}.WithStatus(400), 400, ReasonNone, true},
		{"highest status", RetryOn{}.WithStatus(599), 599, ReasonNone, true},
		{"a neighbour status", RetryOn{}.WithStatus(503), 502, ReasonNone, false},
	}
	for _, tt := range tests {
		if got := tt.give.Matches(tt.status, tt.why); got != tt.matches {
			t.Errorf("%s: Matches(%d, %d) = %v, want %v", tt.name, tt.status, tt.why, got, tt.matches)
		}
	}
	for _, status := range []int{-1, 0, 200, 399, 600, 1000} {
		if o := (RetryOn{}).WithStatus(status); o != (RetryOn{}) {
			t.Errorf("WithStatus(%d) added a status outside 400-599", status)
		}
	}
	a := (RetryOn{}).WithReason(Reset).WithStatus(503)
	if b := (RetryOn{}).WithStatus(503).WithReason(Reset).WithReason(Reset); a != b {
		t.Error("the same set built in another order or with a repeat compares unequal")
	}
	if a == (RetryOn{}).WithReason(Reset).WithStatus(502) {
		t.Error("different sets compare equal")
	}
}

// retryOnOf builds a RetryOn from reasons and statuses.
func retryOnOf(reasons []Reason, statuses ...int) RetryOn {
	var o RetryOn
	for _, why := range reasons {
		o = o.WithReason(why)
	}
	for _, s := range statuses {
		o = o.WithStatus(s)
	}
	return o
}

func TestRetryOnMatches(t *testing.T) {
	o := retryOnOf([]Reason{ConnectFailure, Timeout}, 502, 503, 429)
	tests := []struct {
		status int
		why    Reason
		want   bool
	}{
		{502, ReasonNone, true},
		{503, ReasonNone, true},
		{429, ReasonNone, true},
		{500, ReasonNone, false},
		{504, ReasonNone, false},
		{200, ReasonNone, false},
		{0, ReasonNone, false},
		{-1, ReasonNone, false},
		{1000, ReasonNone, false},
		{0, ConnectFailure, true},
		{0, Timeout, true},
		{0, Reset, false},
		{0, BadResponse, false},
		{0, Refused, false},
		{502, Reset, false}, // a reason wins over a stray status
		{0, Reason(200), false},
	}
	for _, tt := range tests {
		if got := o.Matches(tt.status, tt.why); got != tt.want {
			t.Errorf("Matches(%d, %d) = %v, want %v", tt.status, tt.why, got, tt.want)
		}
	}
	if (RetryOn{}).Matches(503, ReasonNone) || (RetryOn{}).Matches(0, Reset) {
		t.Error("the zero RetryOn matched something")
	}
}

func TestRetryNext(t *testing.T) {
	on := retryOnOf([]Reason{ConnectFailure, Reset}, 503)
	var none time.Time
	now := deadlineAt(0)
	tests := []struct {
		name     string
		s        RetrySettings
		try      int
		status   int
		why      Reason
		deadline time.Time
		want     bool
	}{
		{"first retry", RetrySettings{Attempts: 2, On: on}, 0, 503, ReasonNone, none, true},
		{"second retry", RetrySettings{Attempts: 2, On: on}, 1, 0, Reset, none, true},
		{"attempts exhausted", RetrySettings{Attempts: 2, On: on}, 2, 503, ReasonNone, none, false},
		{"no attempts", RetrySettings{On: on}, 0, 503, ReasonNone, none, false},
		{"negative attempts", RetrySettings{Attempts: -3, On: on}, 0, 503, ReasonNone, none, false},
		{"negative try", RetrySettings{Attempts: 2, On: on}, -1, 503, ReasonNone, none, false},
		{"status not in On", RetrySettings{Attempts: 2, On: on}, 0, 500, ReasonNone, none, false},
		{"success", RetrySettings{Attempts: 2, On: on}, 0, 200, ReasonNone, none, false},
		{"reason not in On", RetrySettings{Attempts: 2, On: on}, 0, 0, Timeout, none, false},
		{"zero backoff before deadline", RetrySettings{Attempts: 2, On: on}, 0, 503, ReasonNone, deadlineAt(1), true},
		{"deadline already passed", RetrySettings{Attempts: 2, On: on}, 0, 503, ReasonNone, deadlineAt(-1), false},
		{"deadline now", RetrySettings{Attempts: 2, On: on}, 0, 503, ReasonNone, now, false},
		// A 1 h cap against a deadline 1 ns away: only a draw of exactly 0
		// (odds 1 in 3.6e12) could go.
		{"backoff passes deadline", RetrySettings{Attempts: 2, On: on, Backoff: time.Hour}, 0, 503, ReasonNone, now.Add(1), false},
	}
	for _, tt := range tests {
		r := NewRetry(tt.s)
		for range 20 { // jitter: the answer must not depend on the draw
			d, ok := r.Next(tt.try, tt.status, tt.why, now, tt.deadline)
			if ok != tt.want || (!ok && d != 0) {
				t.Errorf("%s: Next = %v, %v; want ok=%v", tt.name, d, ok, tt.want)
				break
			}
		}
	}
}

// TestRetryNextDeadlineCut checks that a draw landing on or past the
// deadline is refused and every accepted one lands before it.
func TestRetryNextDeadlineCut(t *testing.T) {
	r := NewRetry(RetrySettings{Attempts: 1, On: retryOnOf([]Reason{Reset}), Backoff: 10 * time.Millisecond})
	now, deadline := deadlineAt(0), deadlineAt(5) // cap 10 ms, deadline 5 ms away
	var yes, no int
	for range 2000 {
		d, ok := r.Next(0, 0, Reset, now, deadline)
		if ok {
			yes++
			if !now.Add(d).Before(deadline) {
				t.Fatalf("accepted backoff %v reaches the deadline", d)
			}
		} else {
			no++
		}
	}
	if yes == 0 || no == 0 {
		t.Errorf("accepted %d, refused %d of 2000: want both (about half each)", yes, no)
	}
}

func TestRetryJitterBounds(t *testing.T) {
	tests := []struct {
		s    RetrySettings
		try  int
		want time.Duration // the cap
	}{
		{RetrySettings{Backoff: 25 * time.Millisecond}, 0, 25 * time.Millisecond},
		{RetrySettings{Backoff: 25 * time.Millisecond}, 1, 50 * time.Millisecond},
		{RetrySettings{Backoff: 25 * time.Millisecond}, 3, 200 * time.Millisecond},
		{RetrySettings{Backoff: 25 * time.Millisecond}, 4, 250 * time.Millisecond}, // 10× default cap
		{RetrySettings{Backoff: 25 * time.Millisecond}, 9, 250 * time.Millisecond},
		{RetrySettings{Backoff: 25 * time.Millisecond, MaxBackoff: 60 * time.Millisecond}, 2, 60 * time.Millisecond},
		{RetrySettings{Backoff: time.Hour}, 62, 10 * time.Hour}, // no overflow
		{RetrySettings{Backoff: 1 << 62, MaxBackoff: 1<<63 - 1}, 5, 1<<63 - 1},
		{RetrySettings{}, 3, 0},
	}
	for _, tt := range tests {
		tt.s.Attempts = tt.try + 1
		tt.s.On = retryOnOf([]Reason{Reset})
		r := NewRetry(tt.s)
		var hi time.Duration
		for range 2000 {
			d, ok := r.Next(tt.try, 0, Reset, deadlineAt(0), time.Time{})
			if !ok || d < 0 || d > tt.want {
				t.Fatalf("%+v try %d: Next = %v, %v; want within [0, %v]", tt.s, tt.try, d, ok, tt.want)
			}
			hi = max(hi, d)
		}
		if tt.want > 0 && hi < tt.want/2 {
			t.Errorf("%+v try %d: largest of 2000 draws %v, want near %v (full jitter)", tt.s, tt.try, hi, tt.want)
		}
	}
}

func TestIdempotent(t *testing.T) {
	tests := []struct {
		method string
		want   bool // without an Idempotency-Key; with one, always true
	}{
		{"GET", true},
		{"HEAD", true},
		{"OPTIONS", true},
		{"PUT", true},
		{"DELETE", true},
		{"POST", false},
		{"PATCH", false},
		{"CONNECT", false},
		{"TRACE", false},
		{"get", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := Idempotent([]byte(tt.method), false); got != tt.want {
			t.Errorf("Idempotent(%q, false) = %v, want %v", tt.method, got, tt.want)
		}
		if !Idempotent([]byte(tt.method), true) {
			t.Errorf("Idempotent(%q, true) = false, want true", tt.method)
		}
	}
}

func TestRetryAllocs(t *testing.T) {
	r := NewRetry(RetrySettings{Attempts: 2, On: retryOnOf(nil, 503), Backoff: time.Millisecond})
	m := []byte("GET")
	now, deadline := deadlineAt(0), deadlineAt(1000)
	if n := testing.AllocsPerRun(100, func() {
		_, _ = r.Next(0, 503, ReasonNone, now, deadline)
		_ = Idempotent(m, false)
	}); n != 0 {
		t.Errorf("Next+Idempotent: %v allocs, want 0", n)
	}
}

// BenchmarkRetryNext: go test -run=^$ -bench=RetryNext -cpu 1,2 (on
// bigger machines -cpu 1,4,16); Retry is read-only, so it should scale.
func BenchmarkRetryNext(b *testing.B) {
	r := NewRetry(RetrySettings{Attempts: 2, On: retryOnOf([]Reason{ConnectFailure}, 503), Backoff: 25 * time.Millisecond})
	now, deadline := deadlineAt(0), deadlineAt(2000)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			_, _ = r.Next(1, 503, ReasonNone, now, deadline)
		}
	})
}
