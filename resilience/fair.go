package resilience

import (
	"hash/maphash"
	"time"
)

// Fair admission (AdmissionSettings.Fair) shares a saturated route among
// client keys, so that a flooding client waits behind itself, not in
// front of others.
//
// The resource shared is the concurrency limit: slots, held for a service
// time the admission cannot know in advance. So the share is counted in
// what a key holds, not in what it was sent: a key's usage is its requests
// in flight plus its requests waiting. Whenever a slot frees, it goes to
// the waiting key with the fewest requests in flight (ties: the key
// granted a slot least recently, which is round robin among equals). This is
// deficit round robin with the slot as the unit of work and the deficit
// measured, not credited: a key that holds long slots is charged for
// every moment it holds them, which DRR's per-request quantum or
// start-time fair queuing's virtual finish times would have to guess from
// a request's cost before it runs. It needs no virtual clock and no
// per-key credit to decay, and with all keys backlogged it converges to
// limit / keys slots each, max-min fair: a key that asks for less than
// its share gets all it asks for, and the rest is split among the others.
//
// The queue is shared the same way: a full queue makes room for an
// arrival of key k by refusing the waiter (of k's priority) that the key
// using most would be served last, if that key's usage exceeds k's by
// more than one; otherwise the arrival is refused. So a key using less
// than another is never refused for want of room while the other has a
// waiter to give up, and no key can fill the queue against the others.
//
// Fairness works within the existing order: priorities come first (a
// Critical waiter of any key is served before a Default one), and within
// a key the queue discipline stays FIFO or CoDel's LIFO. A standing
// queue's cut (waits bounded by CoDel's target, older waiters dropped)
// applies to the keys that hold most, not to a key using less than
// another that waits (see usageTop.light): otherwise a polite key's waiter, which
// a slot would reach in a moment, was dropped for the flood's backlog
// (half of its requests in the noisy-neighbor scenario). Requests without
// a key share one key. Per-key state is bounded (keyTable): a key is
// tracked while it has requests in flight or waiting, and an idle key's
// entry may be taken by a new one; keys that find no room share the
// table's overflow entry.
//
// The price: every Admit and Release of a fair Admission takes its lock
// to count per key (no lock-free fast path), and choosing the next key
// scans the keys with waiters, at most Queue of them.

// fairKey is one client key's entry in a fair Admission's table.
type fairKey = keyEntry[fairState]

// fairState is one key's share of a fair Admission, guarded by
// Admission.mu.
type fairState struct {
	inflight int
	queued   int
	waiting  [numPriorities]waiterList // its waiters, by priority rank
	active   int                       // its index in fairKeys.active + 1; 0: no waiters
	served   uint64                    // fairKeys.served when it last got a slot (round robin among equals)
	last     int64                     // its last arrival, by fairKeys.clock
}

// fairKeys is a fair Admission's per-key state, guarded by Admission.mu.
type fairKeys struct {
	t      *keyTable[fairState]
	clock  clock
	active []*fairKey // the keys with waiters, in no order
	served uint64     // slots granted so far
}

func newFairKeys(maxKeys int) *fairKeys {
	if maxKeys <= 0 {
		maxKeys = DefaultMaxKeys
	}
	return &fairKeys{t: newKeyTable(maxKeys, maphash.MakeSeed(), fairIdle), clock: newClock()}
}

// fairIdle: a key with nothing in flight or waiting may be dropped; the
// one that arrived longest ago is the most idle.
func fairIdle(s *fairState, _ int64) (bool, int64) {
	return s.inflight == 0 && s.queued == 0, s.last
}

// hash is key's hash in f's table, for key.
func (f *fairKeys) hash(key []byte) uint64 { return f.t.hash(key) }

// key returns the entry of the key whose bytes are key and hash h
// (hash), arriving at now.
func (f *fairKeys) key(h uint64, key []byte, now time.Time) *fairKey {
	t := f.clock.nanos(now)
	k, _ := f.t.lookup(h, key, t)
	k.v.last = t
	return k
}

// grant counts a slot given to a request of k (nil: not fair, and f may
// be nil too).
func (f *fairKeys) grant(k *fairKey) {
	if k != nil {
		k.v.inflight++
		k.admitted++
		f.served++
		k.v.served = f.served
	}
}

// refuseKey counts a refusal of a request of k (nil: not fair).
func refuseKey(k *fairKey) {
	if k != nil {
		k.refused++
	}
}

// push adds w to its key's waiters.
func (f *fairKeys) push(w *admissionWaiter) {
	k := w.key
	k.v.waiting[priorityRank[w.prio]].pushBack(w, keyLink)
	if k.v.queued++; k.v.active == 0 {
		f.active = append(f.active, k)
		k.v.active = len(f.active)
	}
}

// remove takes w out of its key's waiters.
func (f *fairKeys) remove(w *admissionWaiter) {
	k := w.key
	k.v.waiting[priorityRank[w.prio]].remove(w, keyLink)
	if k.v.queued--; k.v.queued == 0 {
		i, last := k.v.active-1, len(f.active)-1
		f.active[i] = f.active[last]
		f.active[i].v.active = i + 1
		f.active[last] = nil
		f.active = f.active[:last]
		k.v.active = 0
	}
}

// next returns the key to serve at priority rank r, which has waiters:
// of the keys with waiters there, the one with the fewest requests in
// flight, and of those the one granted a slot least recently.
func (f *fairKeys) next(r uint8) *fairKey {
	var best *fairKey
	for _, k := range f.active {
		if k.v.waiting[r].n == 0 {
			continue
		}
		if best == nil || k.v.inflight < best.v.inflight ||
			k.v.inflight == best.v.inflight && k.v.served < best.v.served {
			best = k
		}
	}
	return best
}

// heavier returns the key with waiters at priority rank r whose usage (in
// flight plus waiting) is the largest, if it exceeds k's by more than
// one: the key that should give up a queue place to an arrival of k.
// (By exactly one, the exchange would only swap which key is ahead.)
func (f *fairKeys) heavier(k *fairKey, r uint8) *fairKey {
	var heaviest *fairKey
	for _, v := range f.active {
		if v != k && v.v.waiting[r].n > 0 && (heaviest == nil || usage(v) > usage(heaviest)) {
			heaviest = v
		}
	}
	if heaviest == nil || usage(heaviest) <= usage(k)+1 {
		return nil
	}
	return heaviest
}

// usageTop is the two largest usages among the keys with waiters, and
// the key with the largest: what light needs, read once before a sweep
// changes them.
type usageTop struct {
	key           *fairKey
	first, second int
}

// top returns the keys' usageTop now; f may be nil (not fair).
func (f *fairKeys) top() usageTop {
	var t usageTop
	if f == nil {
		return t
	}
	for _, k := range f.active {
		switch u := usage(k); {
		case t.key == nil || u > t.first:
			t = usageTop{key: k, first: u, second: t.first}
		case u > t.second:
			t.second = u
		}
	}
	return t
}

// light reports whether k (nil: not fair) uses less than some other key
// with waiters, by more than one, as t saw them. A standing queue's cut
// (CoDel: waits bounded by the target, older waiters dropped) is for the
// keys that make the queue stand, not for one below its share: refusing
// such a key's waiter while a heavier key waits would break the promise
// fair admission makes. Its waiters keep the queue timeout.
func (t usageTop) light(k *fairKey) bool {
	if k == nil {
		return false
	}
	other := t.first
	if k == t.key {
		other = t.second
	}
	return other > usage(k)+1
}

// usage is what a key holds of the route: requests in flight and waiting.
func usage(k *fairKey) int { return k.v.inflight + k.v.queued }

// ahead estimates how many of the n waiters at priority rank r are served
// before an arrival of k in FIFO order: the keys take turns, so about as
// many of each waiting key as k has waiting already. A key with none
// waiting is counted as next, although a key holding more slots than the
// others waits for their waiters first: the estimate refuses no arrival
// that fairness would serve soon.
func (f *fairKeys) ahead(k *fairKey, r uint8, n int) int {
	return min(n, k.v.waiting[r].n*len(f.active))
}

// KeyStats returns a fair Admission's keys tracked and at most n top keys
// by requests admitted and refused; ok is false if the Admission is not
// fair. It holds the admission's lock while it reads every entry: for the
// admin side, about once per scrape.
func (a *Admission) KeyStats(n int) (s KeyStats, ok bool) {
	if a == nil || a.q.fair == nil {
		return KeyStats{}, false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.q.fair.t.stats(n), true
}
