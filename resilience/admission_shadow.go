package resilience

import "time"

// admitShadow admits at once and counts the refusal that enforce mode
// would make at arrival. Nothing waits in shadow mode, so the queue is
// virtual: the requests in flight beyond the limit stand for the waiters,
// priority-blind, and a wait that would run out (queue timeout, deadline)
// is predicted from the expected wait instead of observed. CoDel, which
// needs real waiters, is not simulated.
func (a *Admission) admitShadow(now, deadline time.Time, p Priority) Permit {
	ahead := a.inflight.Add(1) - 1
	if a.wouldShed(now, deadline, p, ahead) {
		a.shed[p].Add(1)
	}
	return a.permit(nil)
}

// wouldShed reports whether an arrival of priority p with ahead requests
// in flight before it would be refused in enforce mode.
func (a *Admission) wouldShed(now, deadline time.Time, p Priority, ahead int64) bool {
	if a.tooLate(now, deadline) {
		return true
	}
	limit := a.limit.Load()
	if limit <= 0 || ahead < limit {
		return false
	}
	waiting, room := ahead-limit, int64(a.cfg.queue)
	if p == Sheddable {
		room /= 2
	}
	wait := a.waitBound(now, deadline, false)
	return waiting >= room || wait <= 0 || a.expectedWait(int(waiting)) > wait
}
