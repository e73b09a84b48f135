package bench

import "sync/atomic"

// UpstreamStats counts what an Upstream saw, so that a scenario can tell
// how many requests tailguard really sent (hedges, retries) and whether
// any got through while a breaker was open.
type UpstreamStats struct {
	// Requests is every request that arrived.
	Requests int64 `json:"requests"`
	// Answered got a 200, Errors an injected error status, Resets a TCP
	// RST, Stalls no answer, Strays stray bytes after their 200 (they
	// count in Answered too), Refused a 503 because the queue was full.
	Answered int64 `json:"answered"`
	Errors   int64 `json:"errors"`
	Resets   int64 `json:"resets"`
	Stalls   int64 `json:"stalls"`
	Strays   int64 `json:"strays"`
	Refused  int64 `json:"refused"`
	// Busy is the requests holding a worker now, Queued those waiting
	// for one.
	Busy   int64 `json:"busy"`
	Queued int64 `json:"queued"`
}

// upstreamStats is UpstreamStats as live atomics.
type upstreamStats struct {
	requests, answered, errors, resets, stalls, strays, refused atomic.Int64
	busy, queued                                                atomic.Int64
}

// Stats returns the counts so far.
func (u *Upstream) Stats() UpstreamStats {
	s := &u.stats
	return UpstreamStats{
		Requests: s.requests.Load(), Answered: s.answered.Load(), Errors: s.errors.Load(),
		Resets: s.resets.Load(), Stalls: s.stalls.Load(), Strays: s.strays.Load(), Refused: s.refused.Load(),
		Busy: s.busy.Load(), Queued: s.queued.Load(),
	}
}
