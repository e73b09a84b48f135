package resilience

import (
	"hash/maphash"
	"math"
	"sync"
	"time"
)

// RateLimitSettings configure a RateLimiter.
type RateLimitSettings struct {
	// Rate is the requests per second each key may make in the long run;
	// <= 0 means no limit, and a rate below MinRate is MinRate.
	Rate float64
	// Burst is how many requests a key that has been quiet may make at
	// once; < 1 means 1, and more than MaxBurst means MaxBurst.
	Burst int
	// MaxKeys bounds the keys tracked at once; <= 0 means DefaultMaxKeys.
	MaxKeys int
}

// Bounds of RateLimitSettings, which keep a key's state in an int64 of
// nanoseconds: at most a burst of MaxBurst requests earned back over
// 1/MinRate seconds each.
const (
	MinRate  = 0.001
	MaxBurst = 1_000_000
)

// RateLimiter limits each client key to a rate, with a burst, by the
// generic cell rate algorithm (GCRA, ITU-T I.371's virtual scheduling):
// per key it keeps one instant, the theoretical arrival time tat of the
// next request if the key sent at exactly Rate. A request at now is
// allowed when max(tat, now) + interval − now ≤ Burst × interval, and
// then tat becomes max(tat, now) + interval. It is a token bucket without
// the refill arithmetic: one int64 per key, no float on the hot path,
// exact to the nanosecond (a refused request changes nothing).
//
// Keys live in a bounded table (see keyTable): a key whose tat has passed
// holds nothing a fresh key would not, so it is evicted first and
// eviction loses nothing; keys still in debt are kept, and a new key that
// finds its bucket full of them is limited together with every other
// such key, as one. A flood of distinct keys therefore gets one key's
// rate, not one rate per key, and memory stays at MaxKeys entries.
//
// The table is split into shards, each with its own lock, so requests of
// different keys rarely contend. A RateLimiter is safe for concurrent use;
// the zero value and a nil *RateLimiter allow everything.
type RateLimiter struct {
	clock     clock
	seed      maphash.Seed
	interval  int64 // ns between requests at Rate
	tolerance int64 // Burst × interval
	burst     int
	shards    []rateShard
}

// rateShards is the number of independently locked parts of a
// RateLimiter's table.
const rateShards = 16

type rateShard struct {
	mu sync.Mutex
	t  *keyTable[rateState]
	_  [48]byte // keep neighbouring shards' locks off one cache line
}

// rateState is a key's theoretical arrival time, in the limiter's clock.
type rateState struct{ tat int64 }

// NewRateLimiter returns a RateLimiter with settings s, normalised as
// RateLimitSettings documents. A Rate <= 0 allows everything.
func NewRateLimiter(s RateLimitSettings) *RateLimiter {
	if !(s.Rate > 0) {
		return nil
	}
	l := &RateLimiter{
		clock:    newClock(),
		seed:     maphash.MakeSeed(),
		interval: max(int64(math.Round(float64(time.Second)/max(s.Rate, MinRate))), 1),
		burst:    min(max(s.Burst, 1), MaxBurst),
	}
	l.tolerance = int64(l.burst) * l.interval
	maxKeys := s.MaxKeys
	if maxKeys <= 0 {
		maxKeys = DefaultMaxKeys
	}
	n := min(rateShards, maxKeys)
	l.shards = make([]rateShard, n)
	for i := range l.shards {
		share := maxKeys / n
		if i < maxKeys%n {
			share++
		}
		l.shards[i].t = newKeyTable(share, l.seed, rateIdle)
		l.shards[i].t.overflow.v.tat = math.MinInt64 / 2 // never used: no debt
	}
	return l
}

// rateIdle: a key whose tat has passed may be dropped; the longest
// past is the most idle.
func rateIdle(s *rateState, now int64) (bool, int64) { return s.tat <= now, s.tat }

// A RateDecision is what RateLimiter.Allow decided for one request, with
// what the IETF RateLimit header reports.
type RateDecision struct {
	// Allowed is false when the request is over the key's rate.
	Allowed bool
	// Remaining is how many more requests the key could make at once
	// now.
	Remaining int
	// Reset is how long until the key's full burst is available again.
	Reset time.Duration
	// RetryAfter is, for a refused request, how long until one would be
	// allowed; 0 when allowed.
	RetryAfter time.Duration
}

// Allow decides whether a request of key at now is within the key's rate,
// and counts it as made if it is. It allocates nothing.
func (l *RateLimiter) Allow(key []byte, now time.Time) RateDecision {
	if l == nil {
		return RateDecision{Allowed: true}
	}
	t := l.clock.nanos(now)
	h := keyHash(l.seed, key)
	sh := &l.shards[(h>>1)%uint64(len(l.shards))]
	sh.mu.Lock()
	e, fresh := sh.t.lookup(h, key, t)
	if fresh {
		e.v.tat = t
	}
	d := l.decide(&e.v, t)
	if d.Allowed {
		e.admitted++
	} else {
		e.refused++
	}
	sh.mu.Unlock()
	return d
}

// decide is GCRA's step for one key's state at t.
func (l *RateLimiter) decide(s *rateState, t int64) RateDecision {
	tat := max(s.tat, t)
	next := tat + l.interval
	if ahead := next - t; ahead > l.tolerance {
		return RateDecision{Reset: time.Duration(tat - t), RetryAfter: time.Duration(ahead - l.tolerance)}
	}
	s.tat = next
	return RateDecision{
		Allowed:   true,
		Remaining: int((t + l.tolerance - next) / l.interval),
		Reset:     time.Duration(next - t),
	}
}

// Burst returns the requests a quiet key may make at once: the quota the
// RateLimit-Policy header states.
func (l *RateLimiter) Burst() int {
	if l == nil {
		return 0
	}
	return l.burst
}

// Window returns the time a key takes to earn its whole burst back: the
// quota's window.
func (l *RateLimiter) Window() time.Duration {
	if l == nil {
		return 0
	}
	return time.Duration(l.tolerance)
}

// Stats returns the keys tracked and at most n top keys by requests
// allowed and refused. It locks each shard in turn and reads all its
// entries: for the admin side, about once per scrape.
func (l *RateLimiter) Stats(n int) KeyStats {
	if l == nil {
		return KeyStats{}
	}
	var all KeyStats
	for i := range l.shards {
		sh := &l.shards[i]
		sh.mu.Lock()
		s := sh.t.stats(n)
		sh.mu.Unlock()
		all.Tracked += s.Tracked
		all.MaxKeys += s.MaxKeys
		all.TopAdmitted = append(all.TopAdmitted, s.TopAdmitted...)
		all.TopRefused = append(all.TopRefused, s.TopRefused...)
	}
	all.TopAdmitted = topKeys(all.TopAdmitted, n, func(k KeyCount) uint64 { return k.Admitted })
	all.TopRefused = topKeys(all.TopRefused, n, func(k KeyCount) uint64 { return k.Refused })
	return all
}
