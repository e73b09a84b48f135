//go:build !race

package resilience

import (
	"errors"
	"testing"
	"time"
)

// Allocation claims of the admission hot path. The race detector
// allocates, hence the build tag.

func TestAdmissionFastPathAllocs(t *testing.T) {
	for name, a := range map[string]*Admission{
		"fixed":    NewAdmission(AdmissionSettings{MaxConcurrency: 64, Queue: 8, QueueTimeout: time.Second}),
		"adaptive": newAdaptive(),
		"shadow":   NewAdmission(AdmissionSettings{MaxConcurrency: 1, Queue: 8, QueueTimeout: time.Second, Shadow: true}),
		"zero":     {},
	} {
		a.SetServiceP50(time.Millisecond)
		deadline := admAt(time.Second)
		allocs := testing.AllocsPerRun(1000, func() {
			p, err := a.Admit(admT0, deadline, Default)
			if err != nil {
				t.Fatal(err)
			}
			p.Release(time.Millisecond, true)
		})
		if allocs != 0 {
			t.Errorf("%s: %v allocs per admit and release, want 0", name, allocs)
		}
	}
}

// TestAdmissionSlowPathAllocs measures the slow path in steady state:
// refused at once, waiting until the queue timeout, and waiting until a
// release hands the slot over (to a long-lived helper goroutine).
func TestAdmissionSlowPathAllocs(t *testing.T) {
	a := NewAdmission(AdmissionSettings{MaxConcurrency: 1, Queue: 1, QueueTimeout: 20 * time.Microsecond})
	hold := mustAdmit(t, a, admT0, Default)
	if n := testing.AllocsPerRun(100, func() {
		if _, err := a.Admit(admT0, time.Time{}, Default); !errors.Is(err, ErrShed) {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("timed out in the queue: %v allocs, want 0", n)
	}
	a.cfg.queue = 0
	if n := testing.AllocsPerRun(100, func() { a.Admit(admT0, time.Time{}, Default) }); n != 0 {
		t.Errorf("refused at once: %v allocs, want 0", n)
	}

	a.cfg.queue, a.cfg.queueTimeout = 1, admLong
	start, done := make(chan struct{}), make(chan admResult)
	go func() {
		for range start {
			p, err := a.Admit(admT0, time.Time{}, Critical)
			done <- admResult{p, err}
		}
	}()
	defer close(start)
	if n := testing.AllocsPerRun(100, func() {
		start <- struct{}{}
		for a.Queued() == 0 {
			time.Sleep(time.Microsecond)
		}
		hold.Release(0, false)
		r := <-done
		if r.err != nil {
			t.Fatal(r.err)
		}
		hold = r.p
	}); n != 0 {
		t.Errorf("granted from the queue: %v allocs, want 0", n)
	}
	hold.Release(0, false)
}

func TestParsePriorityAllocs(t *testing.T) {
	v := []byte("CRITICAL")
	if n := testing.AllocsPerRun(100, func() { ParsePriority(v) }); n != 0 {
		t.Errorf("%v allocs, want 0", n)
	}
}
