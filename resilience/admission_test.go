package resilience

import (
	"errors"
	"testing"
	"time"
)

// admT0 is the injected clock's origin for admission tests.
var admT0 = time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)

func admAt(d time.Duration) time.Time { return admT0.Add(d) }

// admResult is what an Admit running in a goroutine returned.
type admResult struct {
	p   Permit
	err error
}

// admAsync runs Admit in a goroutine and returns where its result goes.
// The caller must receive it, so that no goroutine outlives the test.
func admAsync(a *Admission, now, deadline time.Time, p Priority) <-chan admResult {
	ch := make(chan admResult, 1)
	go func() {
		pm, err := a.Admit(now, deadline, p)
		ch <- admResult{pm, err}
	}()
	return ch
}

// admEventually polls cond until it holds, failing after a generous bound:
// only a bug makes it wait long, so this asserts no timing.
func admEventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(50 * time.Microsecond)
	}
}

// admQueue starts an Admit at now and waits until it is queued.
func admQueue(t *testing.T, a *Admission, now time.Time, p Priority) <-chan admResult {
	t.Helper()
	want := a.Queued() + 1
	ch := admAsync(a, now, time.Time{}, p)
	admEventually(t, "queued", func() bool { return a.Queued() == want })
	return ch
}

// admRecv returns ch's result, failing if none comes.
func admRecv(t *testing.T, ch <-chan admResult) admResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("Admit did not return")
		return admResult{}
	}
}

// admPending fails if ch already has a result.
func admPending(t *testing.T, ch <-chan admResult, name string) {
	t.Helper()
	select {
	case r := <-ch:
		t.Fatalf("%s returned early: %+v", name, r)
	default:
	}
}

// mustAdmit admits at once or fails.
func mustAdmit(t *testing.T, a *Admission, now time.Time, p Priority) Permit {
	t.Helper()
	pm, err := a.Admit(now, time.Time{}, p)
	if err != nil {
		t.Fatalf("Admit(%v): %v", p, err)
	}
	return pm
}

// admLong is a wait no test reaches: a test that wrongly waits that long
// fails by its own timeout instead of passing.
const admLong = time.Hour

func TestAdmissionZeroValueAdmitsEverything(t *testing.T) {
	var a Admission
	var held []Permit
	for range 1000 {
		held = append(held, mustAdmit(t, &a, admT0, Sheddable))
	}
	if a.InFlight() != 1000 || a.Limit() != 0 || a.Queued() != 0 {
		t.Errorf("in flight %d, limit %d, queued %d", a.InFlight(), a.Limit(), a.Queued())
	}
	for _, p := range held {
		p.Release(time.Millisecond, true)
	}
	a.Update(admT0)
	if a.InFlight() != 0 {
		t.Errorf("in flight %d after release", a.InFlight())
	}

	var none *Admission
	p, err := none.Admit(admT0, admT0, Critical)
	p.Release(time.Second, true)
	none.Update(admT0)
	none.SetServiceP50(time.Second)
	if err != nil || none.Limit() != 0 || none.InFlight() != 0 || none.Queued() != 0 || none.Shed(Default) != 0 {
		t.Errorf("nil Admission: err %v", err)
	}
	if a := NewAdmission(AdmissionSettings{}); a.Limit() != 0 {
		t.Errorf("zero settings: limit %d, want none", a.Limit())
	}
}

func TestAdmissionFixedLimitFIFO(t *testing.T) {
	a := NewAdmission(AdmissionSettings{MaxConcurrency: 2, Queue: 2, QueueTimeout: admLong})
	p1 := mustAdmit(t, a, admT0, Default)
	p2 := mustAdmit(t, a, admT0, Default)
	b := admQueue(t, a, admAt(1*time.Millisecond), Default)
	c := admQueue(t, a, admAt(2*time.Millisecond), Default)
	if _, err := a.Admit(admAt(3*time.Millisecond), time.Time{}, Default); !errors.Is(err, ErrShed) {
		t.Fatalf("queue full: err %v, want ErrShed", err)
	}
	p1.Release(0, false)
	rb := admRecv(t, b)
	if rb.err != nil {
		t.Fatalf("b: %v", rb.err)
	}
	admPending(t, c, "c")
	p2.Release(0, false)
	rc := admRecv(t, c)
	if rc.err != nil {
		t.Fatalf("c: %v", rc.err)
	}
	if a.InFlight() != 2 || a.Queued() != 0 || a.Shed(Default) != 1 {
		t.Errorf("in flight %d, queued %d, shed %d", a.InFlight(), a.Queued(), a.Shed(Default))
	}
	rb.p.Release(0, false)
	rc.p.Release(0, false)
	if a.InFlight() != 0 {
		t.Errorf("in flight %d at the end", a.InFlight())
	}
}

func TestAdmissionNoQueue(t *testing.T) {
	for _, s := range []AdmissionSettings{
		{MaxConcurrency: 1},
		{MaxConcurrency: 1, Queue: 5},                // no timeout: no queue
		{MaxConcurrency: 1, QueueTimeout: time.Hour}, // no room: no queue
	} {
		a := NewAdmission(s)
		p := mustAdmit(t, a, admT0, Critical)
		if _, err := a.Admit(admT0, time.Time{}, Critical); !errors.Is(err, ErrShed) {
			t.Errorf("%+v: err %v, want ErrShed", s, err)
		}
		p.Release(0, false)
		mustAdmit(t, a, admT0, Default).Release(0, false)
	}
}

func TestAdmissionQueueTimeout(t *testing.T) {
	a := NewAdmission(AdmissionSettings{MaxConcurrency: 1, Queue: 1, QueueTimeout: time.Millisecond})
	p := mustAdmit(t, a, admT0, Default)
	if _, err := a.Admit(admT0, time.Time{}, Default); !errors.Is(err, ErrShed) {
		t.Fatalf("err %v, want ErrShed after the queue timeout", err)
	}
	if a.Queued() != 0 || a.InFlight() != 1 || a.Shed(Default) != 1 {
		t.Errorf("queued %d, in flight %d, shed %d", a.Queued(), a.InFlight(), a.Shed(Default))
	}
	p.Release(0, false)
	mustAdmit(t, a, admT0, Default).Release(0, false)
}

func TestAdmissionDeadline(t *testing.T) {
	a := NewAdmission(AdmissionSettings{MaxConcurrency: 1, Queue: 4, QueueTimeout: 3 * admLong})
	a.SetServiceP50(admLong)
	tests := []struct {
		name   string
		budget time.Duration // deadline − now
		full   bool          // the slot is taken
		shed   bool
	}{
		{"no deadline, free slot", 0, false, false},
		{"room for p50", admLong + time.Second, false, false},
		{"less than p50 left", admLong - time.Second, false, true},
		{"expired", -time.Second, false, true},
		// At the limit the expected wait is 1 × p50 / 1: the request needs
		// 2 × p50 in all, and is refused at once rather than left to wait
		// (a wrong wait would outlast the test).
		{"queue: less than wait + p50 left", 2*admLong - time.Second, true, true},
	}
	for _, tt := range tests {
		var hold Permit
		if tt.full {
			hold = mustAdmit(t, a, admT0, Critical)
		}
		deadline := time.Time{}
		if tt.budget != 0 {
			deadline = admT0.Add(tt.budget)
		}
		p, err := a.Admit(admT0, deadline, Default)
		if shed := errors.Is(err, ErrShed); shed != tt.shed {
			t.Errorf("%s: err %v, want shed %v", tt.name, err, tt.shed)
		}
		p.Release(0, false)
		hold.Release(0, false)
	}
	if a.InFlight() != 0 || a.Shed(Default) != 3 {
		t.Errorf("in flight %d, shed %d", a.InFlight(), a.Shed(Default))
	}
}

// TestAdmissionDeadlineQueues checks that a deadline leaving room for the
// expected wait plus p50 queues, and waits no longer than the deadline
// allows: here the wait bound, deadline − now − p50, is a millisecond.
func TestAdmissionDeadlineQueues(t *testing.T) {
	a := NewAdmission(AdmissionSettings{MaxConcurrency: 1, Queue: 4, QueueTimeout: admLong})
	a.SetServiceP50(time.Millisecond / 2)
	hold := mustAdmit(t, a, admT0, Default)
	_, err := a.Admit(admT0, admAt(1500*time.Microsecond), Default)
	if !errors.Is(err, ErrShed) || a.Queued() != 0 {
		t.Errorf("err %v, queued %d: want ErrShed once the deadline's wait ran out", err, a.Queued())
	}
	hold.Release(0, false)
}

func TestAdmissionPriorities(t *testing.T) {
	a := NewAdmission(AdmissionSettings{MaxConcurrency: 1, Queue: 4, QueueTimeout: admLong})
	hold := mustAdmit(t, a, admT0, Sheddable)
	s1 := admQueue(t, a, admT0, Sheddable) // queue below half: may wait
	d1 := admQueue(t, a, admT0, Default)
	d2 := admQueue(t, a, admT0, Default)
	if _, err := a.Admit(admT0, time.Time{}, Sheddable); !errors.Is(err, ErrShed) {
		t.Fatalf("sheddable with the queue half full: err %v, want ErrShed", err)
	}
	c1 := admQueue(t, a, admT0, Critical)
	// Full: a critical arrival takes the place of the sheddable waiter.
	c2 := admAsync(a, admT0, time.Time{}, Critical)
	if r := admRecv(t, s1); !errors.Is(r.err, ErrShed) {
		t.Fatalf("evicted sheddable: err %v, want ErrShed", r.err)
	}
	admEventually(t, "c2 queued", func() bool { return a.Queued() == 4 })
	// Full of default and critical: a default arrival has no one to evict.
	if _, err := a.Admit(admT0, time.Time{}, Default); !errors.Is(err, ErrShed) {
		t.Fatalf("default with the queue full: err %v, want ErrShed", err)
	}
	// Service order: critical first, then default, each FIFO.
	held := hold
	for i, ch := range []<-chan admResult{c1, c2, d1, d2} {
		held.Release(0, false)
		r := admRecv(t, ch)
		if r.err != nil {
			t.Fatalf("waiter %d: %v", i, r.err)
		}
		held = r.p
	}
	held.Release(0, false)
	got := [numPriorities]uint64{a.Shed(Critical), a.Shed(Default), a.Shed(Sheddable)}
	if want := [numPriorities]uint64{0, 1, 2}; got != want {
		t.Errorf("shed critical/default/sheddable = %v, want %v", got, want)
	}
	if a.InFlight() != 0 || a.Queued() != 0 {
		t.Errorf("in flight %d, queued %d", a.InFlight(), a.Queued())
	}
}

// TestAdmissionInvalidPriority checks that an unknown priority counts as
// Default rather than indexing out of range.
func TestAdmissionInvalidPriority(t *testing.T) {
	a := NewAdmission(AdmissionSettings{MaxConcurrency: 1})
	hold := mustAdmit(t, a, admT0, 200)
	if _, err := a.Admit(admT0, time.Time{}, 200); !errors.Is(err, ErrShed) {
		t.Fatalf("err %v", err)
	}
	if a.Shed(Default) != 1 || a.Shed(200) != 0 {
		t.Errorf("shed default %d, shed(200) %d", a.Shed(Default), a.Shed(200))
	}
	hold.Release(0, false)
}

// TestAdmissionDoubleRelease shows how a Permit released twice is caught:
// InFlight ends below zero, which every test here checks against.
func TestAdmissionDoubleRelease(t *testing.T) {
	a := NewAdmission(AdmissionSettings{MaxConcurrency: 4})
	p := mustAdmit(t, a, admT0, Default)
	p.Release(0, false)
	p.Release(0, false)
	if a.InFlight() != -1 {
		t.Errorf("in flight %d after a double release, want -1", a.InFlight())
	}
}

func TestAdmissionShadow(t *testing.T) {
	a := NewAdmission(AdmissionSettings{MaxConcurrency: 2, Queue: 4, QueueTimeout: admLong, Shadow: true})
	a.SetServiceP50(time.Millisecond)
	// The would-be queue is the requests in flight beyond the limit,
	// priority-blind: step i has i requests ahead of it.
	steps := []struct {
		p        Priority
		deadline time.Duration // from now; 0: none
		shed     bool
	}{
		{Default, 0, false},
		{Sheddable, time.Microsecond, true},       // below the limit, but less than p50 left
		{Sheddable, 0, false},                     // 0 waiting < 4/2
		{Sheddable, 0, false},                     // 1 waiting < 4/2
		{Sheddable, 0, true},                      // 2 waiting: half full
		{Critical, 2500 * time.Microsecond, true}, // expected wait 4×1ms/2 > 2.5ms − p50
		{Critical, 0, true},                       // 4 waiting: full
		{Default, 0, true},
	}
	var held []Permit
	for i, s := range steps {
		deadline := time.Time{}
		if s.deadline != 0 {
			deadline = admT0.Add(s.deadline)
		}
		before := a.Shed(s.p)
		pm, err := a.Admit(admT0, deadline, s.p)
		if err != nil {
			t.Fatalf("step %d: shadow refused: %v", i, err)
		}
		if counted := a.Shed(s.p) > before; counted != s.shed {
			t.Errorf("step %d (%v): counted %v, want %v", i, s.p, counted, s.shed)
		}
		held = append(held, pm)
	}
	if a.InFlight() != 8 || a.Queued() != 4 {
		t.Errorf("in flight %d, would-be queued %d", a.InFlight(), a.Queued())
	}
	for _, p := range held {
		p.Release(0, false)
	}
	if a.InFlight() != 0 || a.Queued() != 0 {
		t.Errorf("in flight %d, queued %d at the end", a.InFlight(), a.Queued())
	}
}

// TestAdmissionSaturated: saturated at the limit or with a waiter, never
// without a limit.
func TestAdmissionSaturated(t *testing.T) {
	var none *Admission
	unlimited := NewAdmission(AdmissionSettings{})
	a := NewAdmission(AdmissionSettings{MaxConcurrency: 2, Queue: 4, QueueTimeout: admLong})
	check := func(what string, a *Admission, want bool) {
		t.Helper()
		if got := a.Saturated(); got != want {
			t.Errorf("%s: saturated %v, want %v", what, got, want)
		}
	}
	check("nil", none, false)
	mustAdmit(t, unlimited, admT0, Default)
	check("no limit", unlimited, false)
	p1 := mustAdmit(t, a, admT0, Default)
	check("below the limit", a, false)
	p2 := mustAdmit(t, a, admT0, Default)
	check("at the limit", a, true)
	p1.Release(0, false)
	check("below the limit again", a, false)
	mustAdmit(t, a, admT0, Default)
	w := admQueue(t, a, admT0, Default)
	p2.Release(0, false)
	admRecv(t, w)
	check("at the limit, the waiter served", a, true)
}
