package bench

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// Faults is what an Upstream does to each request: how long it takes and
// how it misbehaves. The shares are probabilities of exclusive fates,
// decided by one draw per request (so they add up; keep their sum <= 1).
// The zero value answers 200 at once with a small body. Faults can be replaced at run time (Upstream.SetFaults, or
// PUT /faults on the upstream's admin port).
type Faults struct {
	// Latency is the service time, spent holding a worker.
	Latency Latency `json:"latency"`
	// ErrorShare of requests are answered ErrorStatus after their
	// service time.
	ErrorShare float64 `json:"error_share,omitempty"`
	// ErrorStatus is the status of an injected error; 0 means 500.
	ErrorStatus int `json:"error_status,omitempty"`
	// ResetShare of requests get their connection reset (TCP RST) after
	// their service time, with no response.
	ResetShare float64 `json:"reset_share,omitempty"`
	// StallShare of requests are never answered: they hold their worker
	// and connection until the client gives up or the upstream closes.
	StallShare float64 `json:"stall_share,omitempty"`
	// StrayShare of responses are followed by stray bytes on the
	// keep-alive connection, which a proxy that pools the connection
	// would read as the next request's response (response desync). The
	// connection is closed a moment later.
	StrayShare float64 `json:"stray_share,omitempty"`
	// BodyBytes is the size of a 200 body; 0 means a small JSON body.
	BodyBytes int `json:"body_bytes,omitempty"`
	// BodyRate, in bytes a second, makes 200 bodies trickle out (a slow
	// body); 0 means all at once.
	BodyRate int `json:"body_rate,omitempty"`
	// Paths override the whole of Faults for requests whose path starts
	// with the key; the longest matching key wins. Overrides do not nest.
	Paths map[string]*Faults `json:"paths,omitempty"`
}

// maxBodyBytes bounds BodyBytes: an upstream for benchmarks, not a file
// server.
const maxBodyBytes = 64 << 20

// Validate reports settings that make no sense.
func (f *Faults) Validate() error {
	if err := f.Latency.Validate(); err != nil {
		return err
	}
	for _, s := range []float64{f.ErrorShare, f.ResetShare, f.StallShare, f.StrayShare} {
		if s < 0 || s > 1 {
			return fmt.Errorf("faults: share %v not in [0, 1]", s)
		}
	}
	switch {
	case f.ErrorStatus != 0 && (f.ErrorStatus < 100 || f.ErrorStatus > 599):
		return fmt.Errorf("faults: error status %d", f.ErrorStatus)
	case f.BodyBytes < 0 || f.BodyBytes > maxBodyBytes || f.BodyRate < 0:
		return fmt.Errorf("faults: body bytes must be in [0, %d] and body rate >= 0", maxBodyBytes)
	}
	for p, o := range f.Paths {
		if !strings.HasPrefix(p, "/") || o == nil || len(o.Paths) > 0 {
			return fmt.Errorf("faults: path override %q: want /prefix with faults of its own and no paths", p)
		}
		if err := o.Validate(); err != nil {
			return fmt.Errorf("faults: path %q: %w", p, err)
		}
	}
	return nil
}

// forPath returns the faults that apply to path.
func (f *Faults) forPath(path []byte) *Faults {
	best, n := f, -1
	for p, o := range f.Paths {
		if len(p) > n && strings.HasPrefix(string(path), p) {
			best, n = o, len(p)
		}
	}
	return best
}

// fate is what happens to one request, drawn at its arrival.
type fate int

const (
	answer fate = iota
	fail        // ErrorStatus
	reset       // TCP RST, no response
	stall       // no response, ever
	stray       // a response, then stray bytes
)

// plan is one request's draw: its service time and its fate.
type plan struct {
	service time.Duration
	fate    fate
}

// draw decides one request's plan. The shares are checked in a fixed
// order so that a seed gives the same sequence of plans.
func (f *Faults) draw(r *rand.Rand) plan {
	p := plan{service: f.Latency.Sample(r)}
	u := r.Float64()
	for _, c := range []struct {
		share float64
		fate  fate
	}{{f.StallShare, stall}, {f.ResetShare, reset}, {f.ErrorShare, fail}, {f.StrayShare, stray}} {
		if u < c.share {
			p.fate = c.fate
			return p
		}
		u -= c.share
	}
	return p
}
