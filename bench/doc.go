// Package bench reproduces tailguard's claims: an upstream with a latency
// distribution and stragglers, an open-loop load generator that measures
// latency from each request's intended start (so coordinated omission
// cannot hide queueing), and the demo that puts them on either side of
// tailguard.
package bench
