package resilience

import (
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestAdmissionStress admits and releases from many goroutines with a
// small limit, a queue, CoDel, priorities, deadlines and concurrent
// Updates, on the real clock. Run it with -race. In flight never exceeds
// the limit (the fixed one, or the adaptive one's ceiling; shadow mode
// bounds nothing), every request ends admitted or refused and counted,
// and everything returns to zero; the package's TestMain checks that no
// goroutine is left.
func TestAdmissionStress(t *testing.T) {
	const workers = 16
	for _, tc := range []struct {
		s       AdmissionSettings
		ceiling int // the most requests ever in flight
	}{
		{AdmissionSettings{MaxConcurrency: 3, Queue: 4, QueueTimeout: time.Millisecond,
			CoDelTarget: 100 * time.Microsecond, CoDelInterval: 500 * time.Microsecond}, 3},
		{AdmissionSettings{Adaptive: true, LimitMin: 2, LimitMax: 6, LimitInitial: 3, Queue: 8,
			QueueTimeout: 2 * time.Millisecond, CoDelTarget: 200 * time.Microsecond, CoDelInterval: time.Millisecond}, 6},
		{AdmissionSettings{MaxConcurrency: 3, Queue: 4, QueueTimeout: time.Millisecond, Shadow: true}, workers},
	} {
		admStress(t, NewAdmission(tc.s), workers, tc.ceiling)
	}
}

func admStress(t *testing.T, a *Admission, workers, ceiling int) {
	const rounds = 300
	a.SetServiceP50(20 * time.Microsecond)
	var admitted, shed, over atomic.Int64
	stop := make(chan struct{})
	var upkeep sync.WaitGroup
	upkeep.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Microsecond):
				a.Update(time.Now())
			}
		}
	})
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range rounds {
				now := time.Now()
				deadline := time.Time{}
				if i%3 == 0 {
					deadline = now.Add(time.Duration(i%7) * 100 * time.Microsecond)
				}
				p, err := a.Admit(now, deadline, Priority((w+i)%numPriorities))
				if errors.Is(err, ErrShed) {
					shed.Add(1)
					continue
				}
				if n := a.InFlight(); n > ceiling || n < 1 {
					over.Add(1)
				}
				admitted.Add(1)
				runtime.Gosched()
				p.Release(time.Since(now), i%5 != 0)
			}
		})
	}
	wg.Wait()
	close(stop)
	upkeep.Wait()
	a.Update(time.Now())
	if over.Load() != 0 {
		t.Errorf("in flight out of bounds %d times", over.Load())
	}
	total := a.Shed(Critical) + a.Shed(Default) + a.Shed(Sheddable)
	if a.cfg.shadow {
		shed.Store(int64(total)) // counted, not refused
		admitted.Add(-shed.Load())
	}
	if admitted.Load()+shed.Load() != int64(workers*rounds) || uint64(shed.Load()) != total {
		t.Errorf("admitted %d + shed %d != %d, or counted shed %d", admitted.Load(), shed.Load(), workers*rounds, total)
	}
	if a.InFlight() != 0 || a.Queued() != 0 || a.q.n != 0 {
		t.Errorf("in flight %d, queued %d (list %d) at the end", a.InFlight(), a.Queued(), a.q.n)
	}
	t.Logf("admitted %d, shed %d (critical %d, default %d, sheddable %d), limit %d",
		admitted.Load(), shed.Load(), a.Shed(Critical), a.Shed(Default), a.Shed(Sheddable), a.Limit())
}
