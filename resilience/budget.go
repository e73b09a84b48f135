package resilience

import (
	"sync/atomic"
	"time"
)

// DefaultMinExtrasPerSecond is the extra attempts per second a Budget
// allows whatever the load, so that a quiet route can still retry: 10,
// Finagle's minRetriesPerSec.
const DefaultMinExtrasPerSecond = 10

// DefaultBudgetWindow is the window a Budget counts over when given none.
const DefaultBudgetWindow = 10 * time.Second

// budgetMaxWindow bounds the window: a longer one reacts too slowly to an
// outage and makes every TryExtra scan more buckets.
const budgetMaxWindow = time.Minute

// Budget caps a route's extra attempts, retries and hedges together, as a
// share of the requests it admitted in a sliding window: an extra is
// allowed if, counting it, extras in the window ≤ max(minPerSecond ×
// window seconds, ratio × requests in the window).
//
// This is what stops retry storms. When an upstream is down every request
// fails and would be retried Attempts times; with a budget, the extras are
// at most ratio × load (plus a small constant), so an outage never
// multiplies the load on the upstream, and attempts already in flight
// simply finish. Retries and hedges each pass their own ratio, so with
// hedge.budget 0.05 and retry.budget 0.2 hedges stop first while retries
// may still go.
//
// The window is bucketed per second. Each bucket holds two words that pack
// the second they count (high 32 bits) with the count (low 32 bits), so a
// bucket is claimed for a new second and counted in one atomic operation:
// no mutex, no allocation. Budget is safe for concurrent use; the bound is
// exact among callers in the same second.
//
// Times (now) are instants from time.Now() (see the package doc). Seconds
// are counted from the moment the Budget was built; an instant before it
// counts in its first second.
type Budget struct {
	buckets []budgetBucket
	floor   uint64 // minPerSecond × window seconds
	clock   clock  // now → the second a bucket counts
}

// budgetBucket counts one second; see Budget. shadowExtras are the
// extras shadow-mode policies would have sent (TryShadowExtra).
type budgetBucket struct {
	requests     atomic.Uint64
	extras       atomic.Uint64
	shadowExtras atomic.Uint64
}

// NewBudget returns a Budget over window (0 or less: DefaultBudgetWindow;
// rounded up to whole seconds, at most a minute) that always allows
// minPerSecond extras per second (0 or less: none, the ratio alone
// decides; callers normally pass DefaultMinExtrasPerSecond).
func NewBudget(window time.Duration, minPerSecond int) *Budget {
	if window <= 0 {
		window = DefaultBudgetWindow
	}
	n := int((min(window, budgetMaxWindow) + time.Second - 1) / time.Second)
	return &Budget{
		buckets: make([]budgetBucket, n),
		floor:   uint64(max(minPerSecond, 0)) * uint64(n),
		clock:   newClock(),
	}
}

// Request deposits one admitted client request at now. Call it once per
// request, before any extra attempt is asked for.
func (b *Budget) Request(now time.Time) {
	sec := b.second(now)
	w := &b.buckets[b.index(sec)].requests
	for {
		old := w.Load()
		if uint32(old>>32) == sec {
			w.Add(1)
			return
		}
		if w.CompareAndSwap(old, uint64(sec)<<32|1) {
			return
		}
	}
}

// TryExtra withdraws one extra attempt at now if, counting it, the
// window's extras stay within max(minPerSecond × window seconds, ratio ×
// requests in the window); it reports whether the attempt may go. A
// refused extra costs nothing. It does not allocate.
func (b *Budget) TryExtra(now time.Time, ratio float64) bool {
	sec := b.second(now)
	i := b.index(sec)
	cur := &b.buckets[i].extras
	requests, others := b.sum(sec, i)
	allowed := max(b.floor, budgetShare(ratio, requests))
	for {
		old := cur.Load()
		c := b.count(old, sec)
		if others+c+1 > allowed {
			return false
		}
		if cur.CompareAndSwap(old, uint64(sec)<<32|(c+1)) {
			return true
		}
	}
}

// TryShadowExtra is TryExtra for a policy in shadow mode: it decides as
// TryExtra would if the shadow extras had been sent, counting them and
// the real ones against the window's allowance, and withdraws the extra
// from a shadow account that TryExtra never sees. So a shadow policy's
// would-be extras are bounded as enforce mode would bound them, and an
// enforced policy sharing the budget (a retry beside a shadow hedge) gets
// exactly what it would get without the shadow one. It does not allocate.
func (b *Budget) TryShadowExtra(now time.Time, ratio float64) bool {
	sec := b.second(now)
	i := b.index(sec)
	cur := &b.buckets[i].shadowExtras
	requests, extras := b.sum(sec, -1)
	var shadow uint64
	for k := range b.buckets {
		if k != i {
			shadow += b.count(b.buckets[k].shadowExtras.Load(), sec)
		}
	}
	allowed := max(b.floor, budgetShare(ratio, requests))
	for {
		old := cur.Load()
		c := b.count(old, sec)
		if extras+shadow+c+1 > allowed {
			return false
		}
		if cur.CompareAndSwap(old, uint64(sec)<<32|(c+1)) {
			return true
		}
	}
}

// Counts returns the requests and extras in the window ending at now.
func (b *Budget) Counts(now time.Time) (requests, extras uint64) {
	return b.sum(b.second(now), -1)
}

// sum adds up the window's buckets as seen in second sec, leaving out the
// extras of bucket skip (TryExtra counts that one itself, atomically).
func (b *Budget) sum(sec uint32, skip int) (requests, extras uint64) {
	for i := range b.buckets {
		requests += b.count(b.buckets[i].requests.Load(), sec)
		if i != skip {
			extras += b.count(b.buckets[i].extras.Load(), sec)
		}
	}
	return requests, extras
}

// count returns a bucket word's count if the second it holds is within the
// window ending at sec, else 0. The subtraction wraps, so a word from a
// later second (a caller with a newer clock) counts as outside.
func (b *Budget) count(word uint64, sec uint32) uint64 {
	if sec-uint32(word>>32) >= uint32(len(b.buckets)) {
		return 0
	}
	return word & (1<<32 - 1)
}

// index returns the index of the bucket that counts second sec.
func (b *Budget) index(sec uint32) int {
	return int(sec % uint32(len(b.buckets)))
}

// second is the second, counted from the Budget's construction, that
// now falls in: what a bucket records. An instant before construction is
// in second 0, so that a negative time cannot make the count wrap. Only
// differences within a window are compared, so truncation to 32 bits
// matters once, 136 years in, for one window.
func (b *Budget) second(now time.Time) uint32 {
	return uint32(max(b.clock.nanos(now), 0) / int64(time.Second))
}

// budgetShare returns how many extras ratio allows over requests, rounded
// down. The tiny epsilon keeps products like 0.29×100 = 28.999…96 at 29;
// a NaN or negative ratio allows none.
func budgetShare(ratio float64, requests uint64) uint64 {
	v := ratio*float64(requests) + 1e-9
	if !(v >= 1) {
		return 0
	}
	return uint64(v)
}
