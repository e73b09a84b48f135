package resilience

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// fairModel drives a fair Admission through enterLocked and Release, with
// no goroutines and no timers: waiters are granted or refused only by
// arrivals and releases, so every decision can be checked against the
// state it was taken in.
type fairModel struct {
	t       *testing.T
	a       *Admission
	held    []heldPermit
	waiting []*admissionWaiter
	now     time.Time
	// refused and admitted count each key's requests.
	refused, admitted map[string]int
}

type heldPermit struct {
	key string
	p   Permit
}

func newFairModel(t *testing.T, s AdmissionSettings) *fairModel {
	s.Fair = true
	return &fairModel{t: t, a: NewAdmission(s), now: admT0, refused: map[string]int{}, admitted: map[string]int{}}
}

// usages returns each key's usage (in flight plus waiting), and whether it
// has waiters that a request of priority p may displace (of p's priority
// or lower), by key name.
func (m *fairModel) usages(p Priority) (use map[string]int, waits map[string]bool) {
	use, waits = map[string]int{}, map[string]bool{}
	for _, k := range m.a.q.fair.active {
		for r := priorityRank[p]; r < numPriorities; r++ {
			waits[keyName(k)] = waits[keyName(k)] || k.v.waiting[r].n > 0
		}
	}
	for i := range m.a.q.fair.t.buckets {
		for j := range m.a.q.fair.t.buckets[i] {
			if k := &m.a.q.fair.t.buckets[i][j]; k.hash != 0 {
				use[keyName(k)] = usage(k)
			}
		}
	}
	return use, waits
}

func keyName(k *fairKey) string { return string(k.name[:k.nameLen]) }

// arrive sends a request of key and checks the decision: a refusal for
// want of room only when no key using more than one more than key has a
// waiter to give up, and an eviction only of such a key's waiter.
func (m *fairModel) arrive(key string, p Priority) {
	m.t.Helper()
	use, waits := m.usages(p)
	a := m.a
	a.mu.Lock()
	k := a.q.fair.key(a.q.fair.hash([]byte(key)), []byte(key), m.now)
	w, _, err := a.enterLocked(m.now, time.Time{}, p, k)
	a.mu.Unlock()
	switch {
	case err != nil:
		m.refused[key]++
		for other, u := range use {
			if other != key && waits[other] && u > use[key]+1 {
				m.t.Fatalf("%s (usage %d) refused while %s (usage %d) has waiters", key, use[key], other, u)
			}
		}
	case w == nil:
		m.admitted[key]++
		m.held = append(m.held, heldPermit{key, a.permit(k)})
	default:
		m.waiting = append(m.waiting, w)
	}
	_, all := m.usages(Critical)
	m.collect(func(victim string) {
		// Without CoDel every refusal of a waiter is an eviction for the
		// arrival; with it, sweeps drop waiters too.
		if !m.a.cfg.codel() && victim != key && use[victim] <= use[key]+1 {
			m.t.Fatalf("%s's waiter (usage %d) evicted for %s (usage %d)", victim, use[victim], key, use[key])
		}
		for other, u := range use {
			if other != victim && all[other] && u > use[victim]+1 {
				m.t.Fatalf("%s's waiter (usage %d) refused while %s (usage %d) has waiters", victim, use[victim], other, u)
			}
		}
	})
}

// release ends the i-th request in flight and checks that the slot went
// to a waiting key holding fewest slots.
func (m *fairModel) release(i int) {
	m.t.Helper()
	_, waits := m.usages(Critical)
	inflight := map[string]int{}
	for _, k := range m.a.q.fair.active {
		inflight[keyName(k)] = k.v.inflight
	}
	h := m.held[i]
	m.held = append(m.held[:i], m.held[i+1:]...)
	h.p.Release(0, false)
	if waits[h.key] {
		inflight[h.key]--
	}
	m.collect(func(string) { m.t.Fatal("a release refused a waiter") })
	if len(m.held) == 0 {
		return
	}
	got := m.held[len(m.held)-1]
	if !waits[got.key] {
		return // nobody waited, or the slot went to no waiter
	}
	for other, n := range inflight {
		if n < inflight[got.key] {
			m.t.Fatalf("slot went to %s (%d in flight) while %s (%d in flight) waited", got.key, inflight[got.key], other, n)
		}
	}
}

// collect moves the waiters that have left the queue: granted to held,
// refused to the counts, calling evicted with the key of each refused.
func (m *fairModel) collect(evicted func(key string)) {
	rest := m.waiting[:0]
	for _, w := range m.waiting {
		select {
		case <-w.ready:
		default:
			rest = append(rest, w)
			continue
		}
		key := keyName(w.key)
		if w.state == waiterGranted {
			m.admitted[key]++
			m.held = append(m.held, heldPermit{key, m.a.permit(w.key)})
		} else {
			m.refused[key]++
			evicted(key)
		}
	}
	m.waiting = rest
}

// TestFairAdmissionModel is the promise as a model test: a key
// using less than its share is never refused while a key using more is
// waiting. A flood sends 80% of the arrivals, two polite keys 5% each,
// at about the rate slots free, and the slot that frees is any one in
// flight, at random; every decision is checked against the state it was
// taken in (arrive, release). The polite keys, asking for a tenth of the
// capacity each against a third as their share, are refused only when
// chance has them holding as much as the flood (under 1% of their
// requests, 5% with CoDel).
//
// With CoDel on, the queue stands under the flood and sweeps drop waiters
// past the target: the flood's, never a polite key's while it uses less.
func TestFairAdmissionModel(t *testing.T) {
	for _, codel := range []bool{false, true} {
		for seed := range uint64(5) {
			t.Run(fmt.Sprintf("codel=%v/%d", codel, seed), func(t *testing.T) {
				fairModelRun(t, seed, codel)
			})
		}
	}
}

func fairModelRun(t *testing.T, seed uint64, codel bool) {
	s := AdmissionSettings{MaxConcurrency: 4, Queue: 8, QueueTimeout: time.Hour, MaxKeys: 64}
	if codel {
		s.CoDelTarget, s.CoDelInterval = 5*time.Millisecond, 100*time.Millisecond
	}
	m := newFairModel(t, s)
	rng := rand.New(rand.NewPCG(seed, 18))
	for range 20_000 {
		m.now = m.now.Add(time.Millisecond)
		switch x := rng.Float64(); {
		case x < 0.5 && len(m.held) > 0:
			m.release(rng.IntN(len(m.held)))
		case x < 0.9:
			m.arrive("flood", Default)
		case x < 0.95:
			m.arrive("polite-1", Default)
		default:
			m.arrive("polite-2", Default)
		}
	}
	// Chance, not the flood, has the polite keys holding as much as the
	// flood now and then; more often with CoDel, whose sweeps thin the
	// flood's backlog.
	polite, tolerated := m.admitted["polite-1"]+m.admitted["polite-2"], 100
	if codel {
		tolerated = 20
	}
	if m.refused["polite-1"]+m.refused["polite-2"] > polite/tolerated || m.refused["flood"] < polite/10 {
		t.Errorf("refused %v, admitted %v: want the flood refused, the polite keys almost never", m.refused, m.admitted)
	}
	t.Logf("admitted %v, refused %v", m.admitted, m.refused)
}

// TestFairAdmissionSharesSlots: with every key backlogged, slots go to the
// key holding fewest, so the limit ends split evenly.
func TestFairAdmissionSharesSlots(t *testing.T) {
	m := newFairModel(t, AdmissionSettings{MaxConcurrency: 6, Queue: 60, QueueTimeout: time.Hour})
	for range 6 {
		m.arrive("a", Default) // a takes every slot
	}
	for range 10 {
		m.arrive("a", Default)
		m.arrive("b", Default)
		m.arrive("c", Default)
	}
	for range 4 { // a's first four finish
		for i, h := range m.held {
			if h.key == "a" {
				m.release(i)
				break
			}
		}
	}
	in := map[string]int{}
	for _, h := range m.held {
		in[h.key]++
	}
	if in["a"] != 2 || in["b"] != 2 || in["c"] != 2 {
		t.Errorf("in flight by key %v, want 2 each", in)
	}
}

// TestFairAdmissionPriorityFirst: priorities still come first; a Critical
// waiter of the heaviest key is served before a Default waiter of a
// lighter one, and its queue place is not taken by a Default arrival.
func TestFairAdmissionPriorityFirst(t *testing.T) {
	m := newFairModel(t, AdmissionSettings{MaxConcurrency: 1, Queue: 2, QueueTimeout: time.Hour})
	m.arrive("flood", Default)
	m.arrive("flood", Critical)
	m.arrive("polite", Default)
	m.arrive("other", Default) // queue full; flood's only waiter is Critical
	if m.refused["other"] != 1 {
		t.Fatalf("refused %v: the Default arrival should not take a Critical place", m.refused)
	}
	m.release(0)
	if got := m.held[len(m.held)-1]; got.key != "flood" {
		t.Errorf("slot went to %s, want flood's Critical waiter", got.key)
	}
}

// TestFairAdmissionLIFOWithinKey: while the queue stands, a key's newest
// waiter is served first.
func TestFairAdmissionLIFOWithinKey(t *testing.T) {
	m := newFairModel(t, AdmissionSettings{MaxConcurrency: 1, Queue: 4, QueueTimeout: time.Hour})
	m.arrive("a", Default)
	m.arrive("b", Default)
	first := m.waiting[0]
	m.arrive("b", Default)
	m.a.q.lifo.Store(true)
	m.release(0)
	if len(m.waiting) != 1 || m.waiting[0] != first {
		t.Error("the oldest waiter of b was served first while the queue stood")
	}
}

// TestFairAdmissionKeysBounded: 1,000,000 distinct keys through a fair
// admission keep its table at its bound.
func TestFairAdmissionKeysBounded(t *testing.T) {
	a := NewAdmission(AdmissionSettings{MaxConcurrency: 8, Fair: true, MaxKeys: 1000})
	key := make([]byte, 4)
	for i := range 1_000_000 {
		key[0], key[1], key[2], key[3] = byte(i), byte(i>>8), byte(i>>16), byte(i>>24)
		p, err := a.AdmitKey(admT0, time.Time{}, Default, key)
		if err != nil {
			t.Fatal(err)
		}
		p.Release(0, false)
	}
	s, ok := a.KeyStats(5)
	if !ok || s.Tracked != 1000 || s.MaxKeys != 1000 || len(s.TopAdmitted) != 5 {
		t.Errorf("stats %+v, ok %v: want 1000 tracked and 5 top keys", s, ok)
	}
}

// TestFairAdmissionGoroutines runs the real waiting path: a flooded route
// still serves a polite key's request before the flood's waiters.
func TestFairAdmissionGoroutines(t *testing.T) {
	a := NewAdmission(AdmissionSettings{MaxConcurrency: 1, Queue: 2, QueueTimeout: admLong, Fair: true})
	hold, err := a.AdmitKey(admT0, time.Time{}, Default, []byte("flood"))
	if err != nil {
		t.Fatal(err)
	}
	f1 := admQueueKey(t, a, "flood")
	f2 := admQueueKey(t, a, "flood")
	polite := admAsync2(a, "polite")
	if r := admRecv(t, f2); !errors.Is(r.err, ErrShed) {
		t.Fatalf("the flood's newest waiter was not evicted for the polite key: %v", r.err)
	}
	admEventually(t, "polite queued", func() bool { return a.Queued() == 2 })
	hold.Release(0, false)
	r := admRecv(t, polite)
	if r.err != nil {
		t.Fatalf("polite: %v", r.err)
	}
	r.p.Release(0, false)
	if r := admRecv(t, f1); r.err != nil {
		t.Fatalf("flood: %v", r.err)
	} else {
		r.p.Release(0, false)
	}
	if a.InFlight() != 0 || a.Queued() != 0 {
		t.Errorf("in flight %d, queued %d after all released", a.InFlight(), a.Queued())
	}
}

func admAsync2(a *Admission, key string) <-chan admResult {
	ch := make(chan admResult, 1)
	go func() {
		pm, err := a.AdmitKey(admT0, time.Time{}, Default, []byte(key))
		ch <- admResult{pm, err}
	}()
	return ch
}

func admQueueKey(t *testing.T, a *Admission, key string) <-chan admResult {
	t.Helper()
	want := a.Queued() + 1
	ch := admAsync2(a, key)
	admEventually(t, "queued", func() bool { return a.Queued() == want })
	return ch
}
