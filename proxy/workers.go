package proxy

import (
	"sync"
	"sync/atomic"
	"time"
)

// workers is the pool of goroutines that run hedged-path attempts. It
// grows on demand up to its cap, and a worker idle for workerIdle exits,
// so an idle proxy holds no workers and a busy one reuses them: a hedged
// request starts no goroutine in steady state. When every worker is busy
// and the cap is reached, run refuses and the request is not hedged.
type workers struct {
	jobs    chan *attempt
	max     atomic.Int64
	running atomic.Int64
	stop    chan struct{}
	closed  sync.Once
	wg      sync.WaitGroup
}

const workerIdle = 10 * time.Second

func newWorkers() *workers {
	return &workers{jobs: make(chan *attempt), stop: make(chan struct{})}
}

// setMax sets the cap on workers; it applies to workers started later.
func (w *workers) setMax(n int) { w.max.Store(int64(n)) }

// run hands a to an idle worker, or starts one, and reports whether a
// will run.
func (w *workers) run(a *attempt) bool {
	select {
	case w.jobs <- a:
		return true
	default:
	}
	for {
		n := w.running.Load()
		if n >= w.max.Load() {
			return false
		}
		if w.running.CompareAndSwap(n, n+1) {
			break
		}
	}
	w.wg.Add(1)
	go w.loop(a)
	return true
}

func (w *workers) loop(a *attempt) {
	defer w.wg.Done()
	defer w.running.Add(-1)
	idle := time.NewTimer(workerIdle)
	defer idle.Stop()
	for {
		a.runOnWorker()
		idle.Reset(workerIdle)
		select {
		case a = <-w.jobs:
		case <-idle.C:
			return
		case <-w.stop:
			return
		}
	}
}

// runOnWorker makes a hedged-path attempt, reports it on its exchange's
// results and lets go of the exchange.
func (a *attempt) runOnWorker() {
	x := a.x // a belongs to the handler once reported
	a.run()
	x.results <- a // never blocks: room for maxParallelAttempts
	x.release()
}

// close stops idle workers and waits for busy ones to finish their
// attempt (bounded by its per-try deadline). Only the first call stops.
func (w *workers) close() {
	w.closed.Do(func() { close(w.stop) })
	w.wg.Wait()
}
