package resilience

import (
	"cmp"
	"hash/maphash"
	"slices"
)

// DefaultMaxKeys is how many client keys a fair Admission or a
// RateLimiter tracks when its settings leave the bound at zero.
const DefaultMaxKeys = 10_000

// keyWays is the number of entries in one keyTable bucket: a key lives in
// the bucket its hash picks and nowhere else, so a lookup reads at most
// keyWays entries, one or two cache lines of hashes.
const keyWays = 8

// maxKeyName bounds the bytes of a key kept for display (the top keys in
// /stats); longer keys are told apart by their hash and shown truncated.
// An IPv6 address in 16 bytes and most API-key headers fit.
const maxKeyName = 48

// keyTable is a fixed-size table of per-key state: the bounded memory
// that fairness and rate limits keep per client key. It is set-associative
// like a CPU cache: a key's seeded hash picks one bucket of keyWays
// entries; a key absent from its bucket takes a free entry there or
// evicts the bucket's most idle one, as the owner's idle function judges.
// When every entry of the bucket is busy (state that eviction would
// lose), the key shares the table's overflow entry with every other such
// key: a client that sends a new key with each request ends up limited as
// one key, and memory never grows with what clients send. The table holds
// at most maxKeys keys and allocates nothing after construction.
//
// Keys are compared by their 64-bit hash alone; two keys colliding share
// an entry, with odds of about n²/2⁶⁵ for n keys. The hash is seeded per
// table (hash/maphash), so a client cannot aim keys at one bucket.
//
// A keyTable is not safe for concurrent use: its owner locks around it.
type keyTable[V any] struct {
	seed     maphash.Seed
	buckets  []keyBucket[V]
	max      int // keys tracked at most
	tracked  int
	overflow keyEntry[V]
	// idle reports whether an entry's state may be dropped at now, and
	// since when it is idle: eviction takes the idle entry idle longest.
	idle func(v *V, now int64) (ok bool, since int64)
}

type keyBucket[V any] [keyWays]keyEntry[V]

// keyEntry is one tracked key: its hash, its name for display, what
// happened to its requests since it was tracked, and its owner's state.
type keyEntry[V any] struct {
	hash     uint64 // 0: free
	admitted uint64
	refused  uint64
	name     [maxKeyName]byte
	nameLen  uint8
	v        V
}

// newKeyTable returns a table for at most maxKeys keys (at least 1) whose
// keys hash with seed and whose entries idle judges.
func newKeyTable[V any](maxKeys int, seed maphash.Seed, idle func(v *V, now int64) (bool, int64)) *keyTable[V] {
	maxKeys = max(maxKeys, 1)
	t := &keyTable[V]{
		seed:    seed,
		buckets: make([]keyBucket[V], (maxKeys+keyWays-1)/keyWays),
		max:     maxKeys,
		idle:    idle,
	}
	t.overflow.hash = 1
	t.overflow.nameLen = uint8(copy(t.overflow.name[:], overflowName))
	return t
}

// overflowName is how the overflow entry shows in the top keys.
const overflowName = "(overflow)"

// hash returns key's hash in this table, never 0 (0 marks a free entry).
func (t *keyTable[V]) hash(key []byte) uint64 {
	return keyHash(t.seed, key)
}

// keyHash is key's hash with seed, never 0. Its high 32 bits pick a
// key's bucket (bucketOf) and its low bits, above bit 0, a RateLimiter's
// shard, so the two choices are independent.
func keyHash(seed maphash.Seed, key []byte) uint64 {
	return maphash.Bytes(seed, key) | 1
}

// lookup returns the entry for key, whose hash is h, at now: its own,
// found or newly taken (fresh is then true and its state zero), or the
// overflow entry. It allocates nothing.
func (t *keyTable[V]) lookup(h uint64, key []byte, now int64) (e *keyEntry[V], fresh bool) {
	b := &t.buckets[bucketOf(h, len(t.buckets))]
	for i := range b {
		if b[i].hash == h {
			return &b[i], false // the common case: no entry is judged idle
		}
	}
	var free, victim *keyEntry[V]
	var victimSince int64
	for i := range b {
		e := &b[i]
		switch {
		case e.hash == 0:
			if free == nil {
				free = e
			}
		default:
			if ok, since := t.idle(&e.v, now); ok && (victim == nil || since < victimSince) {
				victim, victimSince = e, since
			}
		}
	}
	switch {
	case free != nil && t.tracked < t.max:
		t.tracked++
		e = free
	case victim != nil:
		e = victim
	default:
		return &t.overflow, false
	}
	*e = keyEntry[V]{hash: h}
	e.nameLen = uint8(copy(e.name[:], key))
	return e, true
}

// bucketOf maps h to one of n buckets by multiply-shift (Lemire's fast
// range): no division, and the high bits of h pick the bucket.
func bucketOf(h uint64, n int) uint64 {
	return (h >> 32) * uint64(n) >> 32
}

// KeyCount is one client key and what happened to its requests since it
// was last tracked: for the top keys in /stats.
type KeyCount struct {
	// Key is the key as the caller gave it (proxy gives a client's
	// address as text, or a header's value), at most 48 bytes of it;
	// "(overflow)" for the keys that found no room in the table.
	Key string
	// Admitted and Refused count the key's requests let through and
	// refused.
	Admitted, Refused uint64
}

// KeyStats are a key table's figures for /stats and /metrics.
type KeyStats struct {
	// Tracked is the number of keys with state now; MaxKeys bounds it.
	Tracked, MaxKeys int
	// TopAdmitted and TopRefused are the keys with the most admitted and
	// the most refused requests, at most n of each, most first; keys with
	// none are left out.
	TopAdmitted, TopRefused []KeyCount
}

// stats returns the table's figures with at most n top keys of each kind.
// It reads every entry: for the admin side, not the hot path.
func (t *keyTable[V]) stats(n int) KeyStats {
	s := KeyStats{Tracked: t.tracked, MaxKeys: t.max}
	var all []KeyCount
	add := func(e *keyEntry[V]) {
		if e.hash != 0 && (e.admitted > 0 || e.refused > 0) {
			all = append(all, KeyCount{Key: string(e.name[:e.nameLen]), Admitted: e.admitted, Refused: e.refused})
		}
	}
	for i := range t.buckets {
		for j := range t.buckets[i] {
			add(&t.buckets[i][j])
		}
	}
	add(&t.overflow)
	s.TopAdmitted = topKeys(all, n, func(k KeyCount) uint64 { return k.Admitted })
	s.TopRefused = topKeys(all, n, func(k KeyCount) uint64 { return k.Refused })
	return s
}

// topKeys returns the at most n keys of all with the largest non-zero by,
// largest first, ties by key.
func topKeys(all []KeyCount, n int, by func(KeyCount) uint64) []KeyCount {
	top := slices.DeleteFunc(slices.Clone(all), func(k KeyCount) bool { return by(k) == 0 })
	slices.SortFunc(top, func(a, b KeyCount) int {
		return cmp.Or(cmp.Compare(by(b), by(a)), cmp.Compare(a.Key, b.Key))
	})
	return top[:min(n, len(top))]
}
