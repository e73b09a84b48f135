package resilience

import (
	"sync"
	"sync/atomic"
	"time"
)

// admissionQueue holds an Admission's waiters, one list per priority
// rank, each oldest first. It is guarded by Admission.mu.
//
// The discipline is CoDel's standing-queue test driving Facebook's
// adaptive LIFO, in the smallest form that is correct with an injected
// clock. Each arrival that finds the route at its limit, and each Update,
// observes the queue at its time. Once the oldest waiter's wait has been
// above target at every observation for interval, or at once if an
// arrival finds the queue overflowing while its oldest waiter's wait is
// above target, the queue is standing: lifo is set, waits are cut to
// target and waiters already older are dropped. It stands until a whole
// interval passes in which no waiter waited beyond target (none was
// dropped for it): LIFO service then keeps up, and the queue turns FIFO
// again. A queue that drains within the interval was a burst, not
// overload, and stays FIFO.
//
// The exit needs that interval of calm, not merely an empty queue: under
// overload the drops themselves empty the queue for a moment now and
// then, and turning FIFO there let each new backlog wait the full queue
// timeout for another interval.
type admissionQueue struct {
	byRank [numPriorities]waiterList
	n      int
	// fair is the per-key state of a fair Admission; nil otherwise.
	fair *fairKeys
	// aboveSince is when the oldest waiter's wait went above target, as
	// far as observations tell; zero while it is not.
	aboveSince time.Time
	// lastAbove is, while lifo is set, the last time a waiter was dropped
	// after waiting at least target.
	lastAbove time.Time
	// lifo is written under Admission.mu and read without it by Admit's
	// fast path, which a standing queue closes.
	lifo atomic.Bool
}

// admissionWaiter is one request waiting in an admissionQueue. Waiters
// are pooled with their channel and timer, so waiting allocates nothing
// in steady state.
type admissionWaiter struct {
	// links are the waiter's places in two lists: its priority's
	// (queueLink) and, with fair admission, its key's (keyLink).
	links [2]waiterLinks
	ready chan struct{} // capacity 1: receives once the waiter has left the queue
	timer *time.Timer   // stopped while pooled
	since time.Time     // arrival, by the caller's clock
	key   *fairKey      // nil unless the Admission is fair
	prio  Priority
	state waiterState
}

// waiterLinks are a waiter's neighbours in one waiterList.
type waiterLinks struct{ prev, next *admissionWaiter }

// The lists a waiter is in: see admissionWaiter.links.
const (
	queueLink = 0
	keyLink   = 1
)

// waiterState is how a waiter left the queue. It is written under
// Admission.mu before ready is signalled.
type waiterState uint8

const (
	waiterWaiting waiterState = iota
	waiterGranted             // given a slot
	waiterDropped             // refused: timed out, evicted or dropped by CoDel
)

var admissionWaiters = sync.Pool{New: func() any {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &admissionWaiter{ready: make(chan struct{}, 1), timer: t}
}}

// admitSlow is Admit at the limit, or with others waiting.
func (a *Admission) admitSlow(now, deadline time.Time, p Priority) (Permit, error) {
	a.mu.Lock()
	return a.enter(now, deadline, p, nil)
}

// enter admits, refuses or queues an arrival of priority p and key k (nil
// unless fair), with a.mu held; it unlocks a.mu, then waits if queued.
func (a *Admission) enter(now, deadline time.Time, p Priority, k *fairKey) (Permit, error) {
	w, wait, err := a.enterLocked(now, deadline, p, k)
	a.mu.Unlock()
	switch {
	case err != nil:
		return Permit{}, a.refuse(p)
	case w == nil:
		return a.permit(k), nil
	}
	return a.await(w, wait)
}

// enterLocked decides an arrival of priority p and key k: a slot at once
// (nil waiter, nil error), a refusal (ErrShed), or a place in the queue,
// as w, to wait there for at most wait. It counts the key's admission or
// refusal, not the priority's refusal (the caller does), and waits for
// nothing: a model of the queue can drive it without goroutines.
func (a *Admission) enterLocked(now, deadline time.Time, p Priority, k *fairKey) (w *admissionWaiter, wait time.Duration, err error) {
	a.queued.Add(1) // announce before the last try; see Permit.Release
	a.observeLocked(now)
	a.dispatchLocked()
	if a.q.n == 0 && a.tryAcquire() {
		a.queued.Add(-1)
		a.q.fair.grant(k)
		return nil, 0, nil
	}
	wait, ok := a.placeLocked(now, deadline, p, k)
	if !ok {
		a.queued.Add(-1)
		refuseKey(k)
		return nil, 0, ErrShed
	}
	w = admissionWaiters.Get().(*admissionWaiter)
	w.since, w.prio, w.key, w.state = now, p, k, waiterWaiting
	a.q.push(w)
	return w, wait, nil
}

// placeLocked decides whether an arrival of priority p and key k (nil
// unless fair) may queue and for how long, making room by eviction if the
// queue is full.
func (a *Admission) placeLocked(now, deadline time.Time, p Priority, k *fairKey) (time.Duration, bool) {
	room := a.cfg.queue
	lifo := a.q.lifo.Load()
	if p == Sheddable {
		if lifo {
			return 0, false
		}
		room /= 2
	}
	wait := a.waitBound(now, deadline, lifo && !a.q.fair.top().light(k))
	if wait <= 0 {
		return 0, false
	}
	expected := a.expectedWait(a.q.ahead(p, k))
	if expected > wait || a.q.n >= room && !a.evictLocked(p, k) {
		if expected > a.cfg.queueTimeout || a.q.n >= a.cfg.queue {
			a.overflowLocked(now)
		}
		return 0, false
	}
	return wait, true
}

// waitBound is the longest an arrival may wait: QueueTimeout, CoDelTarget
// while the queue stands, and what the deadline leaves after the median
// service time.
func (a *Admission) waitBound(now, deadline time.Time, standing bool) time.Duration {
	wait := a.cfg.queueTimeout
	if standing {
		wait = min(wait, a.cfg.target)
	}
	if !deadline.IsZero() {
		wait = min(wait, deadline.Sub(now)-time.Duration(a.p50.Load()))
	}
	return wait
}

// expectedWait predicts the wait of a request served after ahead others:
// slots free at about limit / p50 per unit of time. It is 0 while p50 is
// unknown.
func (a *Admission) expectedWait(ahead int) time.Duration {
	limit := max(a.limit.Load(), 1)
	return time.Duration(a.p50.Load() * int64(ahead+1) / limit)
}

// await waits for w to be granted a slot, dropped, or to time out.
func (a *Admission) await(w *admissionWaiter, wait time.Duration) (Permit, error) {
	w.timer.Reset(wait)
	select {
	case <-w.ready:
		w.timer.Stop()
	case <-w.timer.C:
		a.mu.Lock()
		if w.state == waiterWaiting {
			a.dropLocked(w, w.since.Add(wait))
		}
		a.mu.Unlock()
		<-w.ready
	}
	granted, p, k := w.state == waiterGranted, w.prio, w.key
	w.key = nil
	admissionWaiters.Put(w)
	if granted {
		return a.permit(k), nil
	}
	return Permit{}, a.refuse(p)
}

// dispatchLocked gives free slots to waiters, in service order.
func (a *Admission) dispatchLocked() {
	for a.q.n > 0 && a.tryAcquire() {
		a.leaveLocked(a.q.next(), waiterGranted)
	}
}

// evictLocked makes room for an arrival of priority p and key k (nil
// unless fair): it refuses the waiter of strictly lower priority than p
// that would be served last or, with fair admission, the waiter of p's
// priority that the key using most beyond k's usage would be served last,
// and reports whether there was one.
func (a *Admission) evictLocked(p Priority, k *fairKey) bool {
	for r := numPriorities - 1; r > int(priorityRank[p]); r-- {
		if l := &a.q.byRank[r]; l.n > 0 {
			a.leaveLocked(a.q.last(l), waiterDropped)
			return true
		}
	}
	if k != nil {
		if v := a.q.fair.heavier(k, priorityRank[p]); v != nil {
			a.leaveLocked(a.q.last(&v.v.waiting[priorityRank[p]]), waiterDropped)
			return true
		}
	}
	return false
}

// observeLocked is CoDel's test, run at now (see admissionQueue).
func (a *Admission) observeLocked(now time.Time) {
	if !a.cfg.codel() {
		return
	}
	if a.q.lifo.Load() {
		a.sweepLocked(now)
		if now.Sub(a.q.lastAbove) >= a.cfg.interval {
			a.q.lifo.Store(false)
		}
		return
	}
	o := a.q.oldest()
	if o == nil || now.Sub(o.since) <= a.cfg.target {
		a.q.aboveSince = time.Time{}
		return
	}
	if a.q.aboveSince.IsZero() {
		a.q.aboveSince = o.since.Add(a.cfg.target)
	}
	if now.Sub(a.q.aboveSince) >= a.cfg.interval {
		a.standLocked(now)
	}
}

// overflowLocked is CoDel's test for an arrival refused at now because
// the queue holds more than it can serve within the queue timeout (it is
// full, or the expected wait is longer). If the oldest waiter has also
// waited beyond the target, the backlog is not a burst being absorbed:
// the queue stands at once rather than after an interval in which every
// request served would wait up to the queue timeout.
func (a *Admission) overflowLocked(now time.Time) {
	if !a.cfg.codel() || a.q.lifo.Load() {
		return
	}
	if o := a.q.oldest(); o != nil && now.Sub(o.since) > a.cfg.target {
		a.standLocked(now)
	}
}

// standLocked turns the queue LIFO at now and drops the waiters already
// beyond the target.
func (a *Admission) standLocked(now time.Time) {
	a.q.lifo.Store(true)
	a.q.aboveSince = time.Time{}
	a.q.lastAbove = now
	a.sweepLocked(now)
}

// sweepLocked drops the waiters that have waited longer than the target,
// but for those of a key using less than another as the sweep begins
// (see usageTop.light).
func (a *Admission) sweepLocked(now time.Time) {
	top := a.q.fair.top()
	for r := range a.q.byRank {
		for w := a.q.byRank[r].front; w != nil && now.Sub(w.since) > a.cfg.target; {
			next := w.links[queueLink].next
			if !top.light(w.key) {
				a.dropLocked(w, now)
			}
			w = next
		}
	}
}

// dropLocked refuses w at now, which counts as a wait beyond the target
// if it waited that long.
func (a *Admission) dropLocked(w *admissionWaiter, now time.Time) {
	if a.cfg.codel() && now.Sub(w.since) >= a.cfg.target && now.After(a.q.lastAbove) {
		a.q.lastAbove = now
	}
	a.leaveLocked(w, waiterDropped)
}

// leaveLocked takes w out of the queue as st and wakes it.
func (a *Admission) leaveLocked(w *admissionWaiter, st waiterState) {
	a.q.remove(w)
	a.queued.Add(-1)
	if st == waiterGranted {
		a.q.fair.grant(w.key)
	} else {
		refuseKey(w.key)
	}
	w.state = st
	w.ready <- struct{}{}
}

// push appends w to its priority's list, and to its key's.
func (q *admissionQueue) push(w *admissionWaiter) {
	q.byRank[priorityRank[w.prio]].pushBack(w, queueLink)
	q.n++
	if w.key != nil {
		q.fair.push(w)
	}
}

// remove takes w out of its priority's list, and out of its key's.
func (q *admissionQueue) remove(w *admissionWaiter) {
	q.byRank[priorityRank[w.prio]].remove(w, queueLink)
	q.n--
	if w.key != nil {
		q.fair.remove(w)
	}
}

// next returns the waiter to serve first: highest priority; with fair
// admission, of the key using least (see fairKeys.next); then oldest
// (FIFO) or newest (LIFO); nil if none.
func (q *admissionQueue) next() *admissionWaiter {
	for r := range q.byRank {
		l := &q.byRank[r]
		if l.n == 0 {
			continue
		}
		if q.fair != nil {
			l = &q.fair.next(uint8(r)).v.waiting[r]
		}
		if q.lifo.Load() {
			return l.back
		}
		return l.front
	}
	return nil
}

// last returns the waiter of l that would be served last.
func (q *admissionQueue) last(l *waiterList) *admissionWaiter {
	if q.lifo.Load() {
		return l.front
	}
	return l.back
}

// oldest returns the waiter that has waited longest, or nil.
func (q *admissionQueue) oldest() *admissionWaiter {
	var o *admissionWaiter
	for r := range q.byRank {
		if f := q.byRank[r].front; f != nil && (o == nil || f.since.Before(o.since)) {
			o = f
		}
	}
	return o
}

// ahead returns how many waiters would be served before an arrival of
// priority p and key k (nil unless fair): all of higher priority, and in
// FIFO order those of p too; with fair admission, of those of p, about as
// many per waiting key as k has waiting already (see fairKeys.ahead).
func (q *admissionQueue) ahead(p Priority, k *fairKey) int {
	r := int(priorityRank[p])
	n := 0
	for i := range r {
		n += q.byRank[i].n
	}
	switch {
	case q.lifo.Load():
	case k != nil:
		n += q.fair.ahead(k, uint8(r), q.byRank[r].n)
	default:
		n += q.byRank[r].n
	}
	return n
}

// waiterList is an intrusive doubly linked list of waiters through one of
// their links (queueLink, keyLink), so queueing and leaving from anywhere
// cost O(1) and allocate nothing.
type waiterList struct {
	front, back *admissionWaiter
	n           int
}

func (l *waiterList) pushBack(w *admissionWaiter, link int) {
	w.links[link] = waiterLinks{prev: l.back}
	if l.back != nil {
		l.back.links[link].next = w
	} else {
		l.front = w
	}
	l.back = w
	l.n++
}

func (l *waiterList) remove(w *admissionWaiter, link int) {
	ln := &w.links[link]
	if ln.prev != nil {
		ln.prev.links[link].next = ln.next
	} else {
		l.front = ln.next
	}
	if ln.next != nil {
		ln.next.links[link].prev = ln.prev
	} else {
		l.back = ln.prev
	}
	*ln = waiterLinks{}
	l.n--
}
