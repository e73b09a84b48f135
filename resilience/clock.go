package resilience

import "time"

// A clock turns the instants a type is given into int64 nanoseconds since
// origin, the moment the type was built, so that it can keep instants in
// atomic words. Each Balancer, Outlier and Budget has its own: no epoch is
// shared across types or packages, and callers only ever hold time.Time.
//
// Converting reads no clock. When both instants carry a monotonic reading
// (time.Now(), and values derived from it with Add), now.Sub(origin)
// subtracts those and is immune to wall-clock steps; an instant without
// one (from time.Unix or time.Date, or after Round, Truncate, UTC or In)
// is compared by wall clock instead. An instant before origin reads as
// negative nanoseconds.
type clock struct{ origin time.Time }

// newClock returns a clock whose origin is the current instant.
func newClock() clock { return clock{origin: time.Now()} }

// nanos is now in nanoseconds since the clock's origin, negative before
// it and saturating at about ±292 years (time.Time.Sub's bounds).
func (c clock) nanos(now time.Time) int64 { return int64(now.Sub(c.origin)) }
