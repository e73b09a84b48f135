package bench

import (
	"sync"
	"time"
)

// recorder collects a run's outcomes from its workers, and hands a
// progress callback the totals and the last second's share.
type recorder struct {
	mu       sync.Mutex
	total    *Result
	interval *Result // nil without progress
	start    time.Time
}

func newRecorder(progress bool) *recorder {
	r := &recorder{total: newResult(), start: time.Now()}
	if progress {
		r.interval = newResult()
	}
	return r
}

func (r *recorder) record(class string, lat time.Duration, calls int) {
	r.mu.Lock()
	r.total.record(class, lat, calls)
	if r.interval != nil {
		r.interval.record(class, lat, calls)
	}
	r.mu.Unlock()
}

// report calls fn about once a second until the returned stop is called;
// stop waits for the last call to return. A nil fn does nothing.
func (r *recorder) report(fn func(Progress)) (stop func()) {
	if fn == nil {
		return func() {}
	}
	done, exited := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(exited)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case now := <-t.C:
				r.tick(fn, now)
			}
		}
	}()
	return func() { close(done); <-exited }
}

// tick hands fn copies, so that workers are never held up by it.
func (r *recorder) tick(fn func(Progress), now time.Time) {
	last := newResult()
	r.mu.Lock()
	total := newResult()
	total.add(r.total)
	last, r.interval = r.interval, last
	r.mu.Unlock()
	fn(Progress{Elapsed: now.Sub(r.start), Total: total, Last: last})
}
