package resilience

import (
	"errors"
	"testing"
	"time"
)

// CoDel tests drive the discipline with injected times a minute apart, so
// the real timers (at most the target, a minute) never fire.
const (
	admTarget   = time.Minute
	admInterval = 2 * time.Minute
)

func newCoDelAdmission() *Admission {
	return NewAdmission(AdmissionSettings{
		MaxConcurrency: 1, Queue: 8, QueueTimeout: admLong,
		CoDelTarget: admTarget, CoDelInterval: admInterval,
	})
}

func TestAdmissionCoDelStandingQueueTurnsLIFO(t *testing.T) {
	a := newCoDelAdmission()
	hold := mustAdmit(t, a, admT0, Default)
	w1 := admQueue(t, a, admT0, Default)
	// w1's wait went above the target at 1m; at 2m30s that is 1m30s ago.
	w2 := admQueue(t, a, admAt(150*time.Second), Default)
	a.Update(admAt(179 * time.Second))
	if a.q.lifo.Load() {
		t.Fatal("LIFO before the interval")
	}
	a.Update(admAt(180 * time.Second)) // above target for the whole interval
	if !a.q.lifo.Load() {
		t.Fatal("still FIFO after a standing queue for the interval")
	}
	if r := admRecv(t, w1); !errors.Is(r.err, ErrShed) {
		t.Fatalf("w1, waiting 3m > target: err %v, want ErrShed", r.err)
	}
	admPending(t, w2, "w2 (waiting 30s < target)")
	w3 := admQueue(t, a, admAt(190*time.Second), Default)
	w4 := admQueue(t, a, admAt(200*time.Second), Default)
	if _, err := a.Admit(admAt(210*time.Second), time.Time{}, Sheddable); !errors.Is(err, ErrShed) {
		t.Fatalf("sheddable into a standing queue: err %v, want ErrShed", err)
	}
	// Newest first: w4, w3, then w2.
	held := hold
	for i, ch := range []<-chan admResult{w4, w3, w2} {
		held.Release(0, false)
		r := admRecv(t, ch)
		if r.err != nil {
			t.Fatalf("LIFO waiter %d: %v", i, r.err)
		}
		held = r.p
	}
	held.Release(0, false) // a free slot, nobody waiting: drained
	// w1 was dropped at 3m, beyond the target: the queue stands until an
	// interval without such a drop has passed, at 5m.
	a.Update(admAt(299 * time.Second))
	if !a.q.lifo.Load() {
		t.Fatal("FIFO again within an interval of the last drop beyond the target")
	}
	a.Update(admAt(300 * time.Second))
	if a.q.lifo.Load() {
		t.Fatal("still LIFO after an interval without a drop beyond the target")
	}
	if a.Shed(Default) != 1 || a.Shed(Sheddable) != 1 || a.InFlight() != 0 {
		t.Errorf("shed default %d, sheddable %d, in flight %d", a.Shed(Default), a.Shed(Sheddable), a.InFlight())
	}
	admFIFOOrder(t, a, admAt(310*time.Second))
}

// admFIFOOrder checks that a's queue serves in arrival order at now.
func admFIFOOrder(t *testing.T, a *Admission, now time.Time) {
	t.Helper()
	hold := mustAdmit(t, a, now, Default)
	x1 := admQueue(t, a, now, Default)
	x2 := admQueue(t, a, now.Add(time.Second), Default)
	hold.Release(0, false)
	r := admRecv(t, x1)
	admPending(t, x2, "x2")
	r.p.Release(0, false)
	admRecv(t, x2).p.Release(0, false)
}

func TestAdmissionCoDelBurstStaysFIFO(t *testing.T) {
	a := newCoDelAdmission()
	hold := mustAdmit(t, a, admT0, Default)
	w1 := admQueue(t, a, admT0, Default)
	w2 := admQueue(t, a, admAt(90*time.Second), Default) // w1 above target since 1m
	hold.Release(0, false)
	r1 := admRecv(t, w1)
	r1.p.Release(0, false)
	r2 := admRecv(t, w2)
	// The queue emptied within the interval: the next observation starts
	// afresh, however late it is.
	w3 := admQueue(t, a, admAt(300*time.Second), Default)
	a.Update(admAt(301 * time.Second))
	if a.q.lifo.Load() || !a.q.aboveSince.IsZero() {
		t.Fatalf("lifo %v, above target since %v: want a fresh FIFO queue", a.q.lifo.Load(), a.q.aboveSince)
	}
	r2.p.Release(0, false)
	admRecv(t, w3).p.Release(0, false)
	if a.InFlight() != 0 || a.Shed(Default) != 0 {
		t.Errorf("in flight %d, shed %d", a.InFlight(), a.Shed(Default))
	}
}

// TestAdmissionCoDelOverflowStandsAtOnce checks that an arrival refused
// by a full queue turns it LIFO before the interval is out, but only once
// the oldest waiter is beyond the target: a full queue of fresh waiters
// is a burst.
func TestAdmissionCoDelOverflowStandsAtOnce(t *testing.T) {
	a := NewAdmission(AdmissionSettings{
		MaxConcurrency: 1, Queue: 2, QueueTimeout: admLong,
		CoDelTarget: admTarget, CoDelInterval: admInterval,
	})
	hold := mustAdmit(t, a, admT0, Default)
	w1 := admQueue(t, a, admT0, Default)
	w2 := admQueue(t, a, admAt(10*time.Second), Default)
	for _, c := range []struct {
		at   time.Duration
		lifo bool
	}{
		{30 * time.Second, false}, // full, but w1 has waited 30s < target
		{70 * time.Second, true},  // full, w1 70s > target: within the interval
	} {
		if _, err := a.Admit(admAt(c.at), time.Time{}, Default); !errors.Is(err, ErrShed) {
			t.Fatalf("arrival at %v into a full queue: err %v, want ErrShed", c.at, err)
		}
		if a.q.lifo.Load() != c.lifo {
			t.Fatalf("after the refusal at %v: lifo %v, want %v", c.at, a.q.lifo.Load(), c.lifo)
		}
	}
	if r := admRecv(t, w1); !errors.Is(r.err, ErrShed) {
		t.Fatalf("w1, waiting 70s > target when the queue stood: err %v, want ErrShed", r.err)
	}
	admPending(t, w2, "w2 (waiting 60s, not beyond the target)")
	hold.Release(0, false)
	admRecv(t, w2).p.Release(0, false)
	if a.InFlight() != 0 || a.Shed(Default) != 3 {
		t.Errorf("in flight %d, shed %d, want 0 and 3", a.InFlight(), a.Shed(Default))
	}
}

// TestAdmissionCoDelCutsWaits checks that a standing queue bounds a new
// waiter's wait by the target, not the queue timeout: with a 1ms target
// the waiter is refused although the queue timeout is an hour. Its drop
// keeps the queue standing for an interval.
func TestAdmissionCoDelCutsWaits(t *testing.T) {
	a := NewAdmission(AdmissionSettings{
		MaxConcurrency: 1, Queue: 8, QueueTimeout: admLong,
		CoDelTarget: time.Millisecond, CoDelInterval: time.Second,
	})
	hold := mustAdmit(t, a, admT0, Default)
	a.q.lifo.Store(true) // as if it had turned LIFO at admT0
	a.q.lastAbove = admT0
	if _, err := a.Admit(admT0, time.Time{}, Critical); !errors.Is(err, ErrShed) {
		t.Fatalf("err %v, want ErrShed after the target", err)
	}
	hold.Release(0, false)
	dropped := admT0.Add(time.Millisecond)
	for _, c := range []struct {
		at   time.Time
		lifo bool
	}{
		{dropped.Add(time.Second - time.Nanosecond), true},
		{dropped.Add(time.Second), false},
	} {
		a.Update(c.at)
		if a.q.lifo.Load() != c.lifo {
			t.Errorf("at drop+%v: lifo %v, want %v", c.at.Sub(dropped), a.q.lifo.Load(), c.lifo)
		}
	}
	if a.InFlight() != 0 {
		t.Errorf("in flight %d after draining", a.InFlight())
	}
}

func TestWaiterList(t *testing.T) {
	for _, link := range []int{queueLink, keyLink} {
		var l waiterList
		w := [3]admissionWaiter{}
		for i := range w {
			l.pushBack(&w[i], link)
		}
		l.remove(&w[1], link)
		if l.n != 2 || l.front != &w[0] || l.back != &w[2] || w[0].links[link].next != &w[2] || w[2].links[link].prev != &w[0] {
			t.Fatalf("link %d: remove from the middle", link)
		}
		if w[0].links[1-link] != (waiterLinks{}) {
			t.Fatalf("link %d: the other link was written", link)
		}
		l.remove(&w[0], link)
		l.remove(&w[2], link)
		if l.n != 0 || l.front != nil || l.back != nil {
			t.Fatalf("link %d: remove to empty", link)
		}
	}
}
