package proxy

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"tailguard/resilience"
)

// An attempt is one hedged-path try: its own copy of the request and its
// own response, run by a hedge worker so that the handler stays free to
// send a hedge when the delay passes. Attempts are pooled; the handler
// releases the ones it reads, the exchange the ones nobody read.
type attempt struct {
	x        *exchange
	req      fasthttp.Request
	resp     fasthttp.Response
	avoid    int
	hedge    bool
	endpoint atomic.Int32 // set by the worker once it picked one
	start    time.Time
	end      time.Time
	err      error
	res      round
	scratch  []byte
}

var attemptPool = sync.Pool{New: func() any { return new(attempt) }}

// newAttempt copies the request for an attempt of x. It takes a reference
// on x, which the worker drops when the attempt has reported.
func (x *exchange) newAttempt(avoid int, hedge bool) *attempt {
	a := attemptPool.Get().(*attempt)
	a.x, a.avoid, a.hedge = x, avoid, hedge
	a.endpoint.Store(-1)
	x.ctx.Request.CopyTo(&a.req)
	x.hold()
	return a
}

// dropAttempt undoes newAttempt for an attempt that never ran.
func (x *exchange) dropAttempt(a *attempt) {
	releaseAttempt(a)
	x.release()
}

func releaseAttempt(a *attempt) {
	a.req.Reset()
	a.resp.Reset() // closes a body stream the attempt still owns
	a.x, a.err, a.res = nil, nil, round{}
	a.start, a.end = time.Time{}, time.Time{}
	a.scratch = a.scratch[:0]
	attemptPool.Put(a)
}

// run makes the attempt, reports it on the exchange's results and lets go
// of the exchange. It runs on a hedge worker.
func (a *attempt) run() {
	x := a.x
	u := x.route.upstream
	a.start = time.Now()
	i := u.pick(a.start, a.avoid)
	a.endpoint.Store(int32(i))
	deadline := resilience.PerTry(a.start, x.deadline, x.route.perTry)
	a.scratch = x.route.setDeadlineHeader(&a.req.Header, a.start, deadline, a.scratch)
	a.err = u.endpoints[i].roundTrip(&a.req, &a.resp, a.start, deadline)
	a.end = time.Now()
	a.res = u.settle(i, a.start, a.end, a.resp.StatusCode(), a.err)
	x.results <- a // never blocks: room for maxParallelAttempts
	x.release()
}

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
		a.run()
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

// close stops idle workers and waits for busy ones to finish their
// attempt (bounded by its per-try deadline).
func (w *workers) close() {
	close(w.stop)
	w.wg.Wait()
}
