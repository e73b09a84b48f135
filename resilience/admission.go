package resilience

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// ErrShed is returned by Admission.Admit when a request is refused: the
// queue is full, its wait ran out (queue timeout, CoDel drop), its
// remaining deadline is too short to be served, its priority is shed, or
// a higher-priority request took its queue place. proxy answers it with
// 503 (or 429) and X-Tailguard-Error: shed, without contacting the
// upstream.
var ErrShed = errors.New("resilience: request shed")

// AdmissionSettings configure an Admission. Zero values are safe: the
// zero AdmissionSettings admit everything, like the zero Admission.
type AdmissionSettings struct {
	// MaxConcurrency is the fixed limit on requests in flight; <= 0 means
	// no limit. Ignored when Adaptive.
	MaxConcurrency int
	// Adaptive lets the limit follow the upstream's round-trip time (see
	// Update), within [LimitMin, LimitMax], starting at LimitInitial.
	Adaptive bool
	// LimitMin is the adaptive limit's floor; < 1 means 1.
	LimitMin int
	// LimitMax is the adaptive limit's ceiling; <= 0 means none, and a
	// value below LimitMin means LimitMin.
	LimitMax int
	// LimitInitial is where the adaptive limit starts, clamped to
	// [LimitMin, LimitMax]; <= 0 means LimitMin.
	LimitInitial int
	// Queue is how many requests may wait for a slot; <= 0 means no
	// queue: at the limit a request is refused at once.
	Queue int
	// QueueTimeout bounds one request's wait; <= 0 disables the queue.
	QueueTimeout time.Duration
	// CoDelTarget and CoDelInterval drive the queue discipline (see
	// Admission): once the oldest waiter's wait has stayed above
	// CoDelTarget for CoDelInterval, the queue serves the newest first
	// and no request waits longer than CoDelTarget, until no waiter has
	// needed that long for CoDelInterval. Either <= 0 keeps the queue FIFO
	// always.
	CoDelTarget, CoDelInterval time.Duration
	// Shadow counts what would be refused and refuses nothing: for tuning
	// a route before enforcing. Shadow counts are blind to Fair.
	Shadow bool
	// Fair shares the limit and the queue among client keys while the
	// route is saturated (see AdmitKey and fair.go), tracking at most
	// MaxKeys keys; MaxKeys <= 0 means DefaultMaxKeys.
	Fair    bool
	MaxKeys int
}

// admissionConfig is AdmissionSettings normalised; fixed after NewAdmission.
type admissionConfig struct {
	queue            int
	queueTimeout     time.Duration
	target, interval time.Duration // CoDel; off unless both > 0
	adaptive, shadow bool
}

// codel reports whether the CoDel discipline is on.
func (c *admissionConfig) codel() bool { return c.target > 0 && c.interval > 0 }

// Admission bounds a route's requests in flight and the time a request may
// wait for a slot; the requests it refuses get ErrShed. It is the only
// place a request waits in tailguard, and the time spent in Admit is the
// route's queueing latency.
//
// Below the limit, with nobody waiting, Admit takes a slot with atomics
// only. At the limit a request may wait in a bounded queue. The queue is
// FIFO while it drains; when it stands (CoDel: the oldest waiter's wait
// stayed above CoDelTarget for CoDelInterval) it turns LIFO until a
// CoDelInterval passes with no waiter dropped for waiting CoDelTarget, as
// in Facebook's "Fail at Scale": the newest waiter, whose client is still
// waiting, is served first, waits are cut to CoDelTarget and older
// waiters are dropped, so that a backlog costs the refused few instead of
// delaying everyone past their deadlines. See admissionQueue for the
// mechanism.
//
// Priorities never let a request exceed the limit. They act on the queue:
//   - waiters are served Critical first, then Default, then Sheddable;
//   - a full queue makes room for an arrival by refusing a waiter of
//     strictly lower priority, the one that would be served last;
//   - Sheddable requests may not queue once the queue is half full or
//     standing.
//
// A request is refused at once, rather than left to fail later, when its
// deadline leaves no more than the expected wait plus the route's median
// service time (SetServiceP50), or when the expected wait exceeds the
// longest it may wait. The expected wait is 0 below the limit; at the
// limit it is the number of waiters that would be served before the
// request, plus one, times p50 / limit.
//
// An Admission is safe for concurrent use and must not be copied. The
// zero value, and a nil *Admission, admit everything (Limit is 0: none).
type Admission struct {
	// Written by every Admit and Release.
	inflight atomic.Int64
	queued   atomic.Int64 // waiters, plus arrivals deciding under mu
	rtt      rttSamples
	_        [64]byte // keep the read-mostly fields below off this line

	limit atomic.Int64  // 0: none
	p50   atomic.Int64  // median service time, ns
	epoch atomic.Uint32 // limit windows so far; see Permit.Release
	cfg   admissionConfig
	shed  [numPriorities]atomic.Uint64

	mu sync.Mutex // guards q
	q  admissionQueue

	algMu      sync.Mutex // guards grad and lastUpdate; taken by Update only
	grad       gradientLimit
	lastUpdate time.Time
}

// NewAdmission returns an Admission with settings s, normalised as
// AdmissionSettings documents.
func NewAdmission(s AdmissionSettings) *Admission {
	a := &Admission{cfg: admissionConfig{
		queue:        max(s.Queue, 0),
		queueTimeout: s.QueueTimeout,
		target:       s.CoDelTarget,
		interval:     s.CoDelInterval,
		adaptive:     s.Adaptive,
		shadow:       s.Shadow,
	}}
	if s.Fair && !s.Shadow {
		a.q.fair = newFairKeys(s.MaxKeys)
	}
	if s.Adaptive {
		a.grad = newGradientLimit(s.LimitMin, s.LimitMax, s.LimitInitial)
		a.limit.Store(a.grad.current())
	} else {
		a.limit.Store(int64(max(s.MaxConcurrency, 0)))
	}
	return a
}

// Admit returns a Permit for a slot, or ErrShed. now is the current time,
// when the request starts to wait (its arrival, if nothing took time
// since), and deadline the time by which it must be answered (zero:
// none); p is its priority. At the limit it waits in the queue for at most
// min(QueueTimeout, deadline − now − p50), and for at most CoDelTarget
// while the queue stands. In shadow mode it never refuses nor waits, and
// counts the refusals it would have made.
//
// Below the limit it costs a few atomic operations and allocates nothing;
// waiting allocates nothing in steady state either.
func (a *Admission) Admit(now, deadline time.Time, p Priority) (Permit, error) {
	return a.AdmitKey(now, deadline, p, nil)
}

// AdmitKey is Admit for a request of the client key key (its client's
// address, say, or a header's value; nil or empty: the key of requests
// without one). Only a fair Admission uses the key: it counts each key's
// requests in flight and waiting, serves the waiting key that holds
// fewest slots first, and makes room in a full queue at the expense of
// the key that holds most (see fair.go). It allocates nothing; key is not
// retained.
func (a *Admission) AdmitKey(now, deadline time.Time, p Priority, key []byte) (Permit, error) {
	if a == nil {
		return Permit{}, nil
	}
	p = p.valid()
	if a.cfg.shadow {
		return a.admitShadow(now, deadline, p), nil
	}
	if a.q.fair != nil {
		return a.admitFair(now, deadline, p, key)
	}
	if a.tooLate(now, deadline) {
		return Permit{}, a.refuse(p)
	}
	// While the queue stands, every arrival takes the slow path: it
	// observes the queue, so LIFO ends promptly once the overload does.
	if a.queued.Load() == 0 && !a.q.lifo.Load() && a.tryAcquire() {
		return a.permit(nil), nil
	}
	return a.admitSlow(now, deadline, p)
}

// admitFair is AdmitKey for a fair Admission: every request takes the
// lock, to count per key.
func (a *Admission) admitFair(now, deadline time.Time, p Priority, key []byte) (Permit, error) {
	h := a.q.fair.hash(key) // outside the lock every admission takes
	a.mu.Lock()
	k := a.q.fair.key(h, key, now)
	if a.tooLate(now, deadline) {
		refuseKey(k)
		a.mu.Unlock()
		return Permit{}, a.refuse(p)
	}
	return a.enter(now, deadline, p, k)
}

// tooLate reports whether the deadline leaves no more than the median
// service time.
func (a *Admission) tooLate(now, deadline time.Time) bool {
	return !deadline.IsZero() && deadline.Sub(now) <= time.Duration(a.p50.Load())
}

// tryAcquire takes a slot if one is free.
func (a *Admission) tryAcquire() bool {
	for {
		n, limit := a.inflight.Load(), a.limit.Load()
		if limit > 0 && n >= limit {
			return false
		}
		if a.inflight.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// permit returns a Permit for a slot taken for a request of key k (nil
// unless fair).
func (a *Admission) permit(k *fairKey) Permit { return Permit{a: a, epoch: a.epoch.Load(), key: k} }

// refuse counts a refusal of priority p and returns ErrShed.
func (a *Admission) refuse(p Priority) error {
	a.shed[p].Add(1)
	return ErrShed
}

// SetServiceP50 sets the route's median service time, which deadline-aware
// refusals and expected waits use; <= 0 means unknown (no prediction).
// Call it off the hot path, about once a second.
func (a *Admission) SetServiceP50(d time.Duration) {
	if a != nil {
		a.p50.Store(int64(max(d, 0)))
	}
}

// Update runs the periodic upkeep, about once a second, off the hot path:
// the adaptive limit's step (see gradientLimit) and the queue discipline's
// CoDel state, dropping stale waiters and serving waiters that a raised
// limit lets in. now is the current time. Admit and Release never wait
// for Update's algorithm.
func (a *Admission) Update(now time.Time) {
	if a == nil {
		return
	}
	if a.cfg.adaptive {
		a.updateLimit(now)
	}
	a.mu.Lock()
	a.observeLocked(now)
	a.dispatchLocked()
	a.mu.Unlock()
}

// Saturated reports whether the route is at its limit or has requests
// waiting: no moment to add load, a hedge say, to its upstream. A nil
// Admission, or one without a limit, is never saturated.
func (a *Admission) Saturated() bool {
	if a == nil {
		return false
	}
	limit := a.limit.Load()
	return a.queued.Load() > 0 || limit > 0 && a.inflight.Load() >= limit
}

// Limit returns the current concurrency limit; 0 means none.
func (a *Admission) Limit() int {
	if a == nil {
		return 0
	}
	return int(a.limit.Load())
}

// InFlight returns the requests holding a Permit. Releasing a Permit twice
// is a bug that shows here: the count ends below its true value.
func (a *Admission) InFlight() int {
	if a == nil {
		return 0
	}
	return int(a.inflight.Load())
}

// Queued returns the requests waiting for a slot. In shadow mode it is the
// would-be queue: requests in flight beyond the limit, at most Queue.
func (a *Admission) Queued() int {
	if a == nil {
		return 0
	}
	if a.cfg.shadow {
		return int(min(max(a.inflight.Load()-a.limit.Load(), 0), int64(a.cfg.queue)))
	}
	return int(a.queued.Load())
}

// Shed returns the requests of priority p refused so far (in shadow mode:
// that would have been refused); 0 for an unknown priority.
func (a *Admission) Shed(p Priority) uint64 {
	if a == nil || p >= numPriorities {
		return 0
	}
	return a.shed[p].Load()
}

// A Permit is one admitted request's slot. It is a value: admitting and
// releasing allocate nothing. The zero Permit holds no slot.
type Permit struct {
	a     *Admission
	key   *fairKey // the request's key in a fair Admission; nil otherwise
	epoch uint32   // the limit window the request was admitted in
}

// Release frees the slot and, unless sample is false or rtt <= 0, feeds
// rtt, the upstream round-trip time of the request's attempt, to the
// adaptive limit. Pass sample=false for what does not measure the
// upstream: requests that never reached it, health checks. A sample from a
// request admitted before the previous Update is stale and discarded.
//
// Call Release exactly once per Permit (releasing a copy counts twice).
// Releasing the zero Permit does nothing.
func (p Permit) Release(rtt time.Duration, sample bool) {
	a := p.a
	if a == nil {
		return
	}
	if sample && rtt > 0 && a.cfg.adaptive && a.epoch.Load()-p.epoch <= 1 {
		a.rtt.add(rtt)
	}
	if p.key != nil {
		// A key in flight is never evicted, so p.key is still its entry.
		a.mu.Lock()
		p.key.v.inflight--
		a.inflight.Add(-1)
		a.dispatchLocked()
		a.mu.Unlock()
		return
	}
	a.inflight.Add(-1)
	// The decrement comes before this load, and a waiter announces itself
	// in queued before its last tryAcquire: one of the two sees the other,
	// so a freed slot is never missed.
	if a.queued.Load() > 0 {
		a.mu.Lock()
		a.dispatchLocked()
		a.mu.Unlock()
	}
}
