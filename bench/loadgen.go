package bench

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"iter"
	"net/url"
	"sync"
	"time"
)

// Load is one run of the load generator.
//
// In open loop (the default) request i is due at start + i/Rate, whatever
// happened to earlier requests, and its latency is measured from that
// intended time. A target that stalls therefore shows its stall in the
// percentiles instead of slowing the generator down (no coordinated
// omission). In closed loop, Connections workers send back to back, as
// fast as the target answers: the way to find its maximum throughput, not
// its latency.
//
// A run stops by itself: after Count requests or Duration of sending,
// whichever comes first (at least one must be set), then waits at most
// Timeout for the requests in flight.
type Load struct {
	// URL is the target, http://host:port/path or https://host:port/path.
	// Only the URL given is ever contacted.
	URL string
	// CAFile is the PEM CA that an https:// target's certificate must be
	// signed by (default: the system's roots); Insecure accepts any
	// certificate instead. Either way the generator offers no session
	// cache, so it never resumes a TLS session: every new connection is a
	// full handshake, as a benchmark of handshakes needs.
	CAFile   string
	Insecure bool
	// Curves, if set, are the key exchanges offered, in order (Go's
	// names: X25519MLKEM768, X25519, P256…); default Go's, which put the
	// post-quantum hybrid first.
	Curves []tls.CurveID
	// NoKeepAlive sends every request with Connection: close, so that
	// each opens a connection of its own (over https, a full handshake):
	// the cost of connections rather than of requests.
	NoKeepAlive bool
	// Method defaults to GET; Body is sent with it (nil: none).
	Method string
	Body   []byte
	// Headers are added to every request, e.g. X-Priority: sheddable.
	Headers []Header
	// Rate is requests per second, in open loop.
	Rate float64
	// Phases, if set, replace Rate and Duration with a rate that changes:
	// each phase sends at its rate for its duration, one after another,
	// on one schedule and one set of connections.
	Phases []Phase
	// Closed selects closed loop; Rate is then ignored.
	Closed bool
	// Count bounds the requests sent; 0 means no count bound.
	Count int64
	// Duration bounds the time spent sending; 0 means no time bound.
	Duration time.Duration
	// Connections is the most requests in flight (and connections) in
	// open loop, and the number of workers in closed loop. Default 64.
	// In open loop, due requests that find all of them busy wait, and
	// the wait counts in their latency.
	Connections int
	// Timeout bounds one request. Default 5s.
	Timeout time.Duration
	// Fanout makes each request N parallel calls to URL; the request
	// ends when the last call does (tail latency amplification).
	// Default 1.
	Fanout int
	// Progress, if not nil, is called about once a second from a
	// goroutine of its own, so that a slow callback never delays a send.
	Progress func(Progress)
}

// Phase is a stretch of an open-loop run at one rate.
type Phase struct {
	Rate     float64
	Duration time.Duration
}

// Header is one request header.
type Header struct{ Name, Value string }

// Progress is a run's state at a progress tick. Its Results belong to
// the generator and are valid only during the callback.
type Progress struct {
	// Elapsed is the time since the run started.
	Elapsed time.Duration
	// Total is everything so far; Last is the requests completed since
	// the previous tick.
	Total, Last *Result
}

// defaults returns l with its zero fields defaulted, or an error.
func (l Load) defaults() (Load, error) {
	u, err := url.Parse(l.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return l, fmt.Errorf("load target %q: want http(s)://host:port/path", l.URL)
	}
	l.Method = cmp.Or(l.Method, "GET")
	l.Connections = cmpOrInt(l.Connections, 64)
	l.Fanout = cmpOrInt(l.Fanout, 1)
	if l.Timeout <= 0 {
		l.Timeout = 5 * time.Second
	}
	switch {
	case l.Count < 0 || l.Duration < 0:
		return l, errors.New("load: count and duration must be >= 0")
	case len(l.Phases) > 0:
		return l, l.checkPhases()
	case l.Count == 0 && l.Duration == 0:
		return l, errors.New("load: set a count or a duration (or both): a run must stop by itself")
	case !l.Closed && l.Rate <= 0:
		return l, errors.New("load: open loop needs a rate > 0")
	}
	return l, nil
}

func (l Load) checkPhases() error {
	if l.Closed {
		return errors.New("load: phases are for open loop")
	}
	for _, p := range l.Phases {
		if p.Rate <= 0 || p.Duration <= 0 {
			return errors.New("load: a phase needs a rate and a duration > 0")
		}
	}
	return nil
}

// Run sends the load until its bounds or ctx end it, and returns what it
// measured. On ctx's end it returns the partial Result and ctx.Err().
func (l Load) Run(ctx context.Context) (*Result, error) {
	l, err := l.defaults()
	if err != nil {
		return nil, err
	}
	c, err := newCaller(l)
	if err != nil {
		return nil, err
	}
	defer c.close()
	c.connect(ctx)
	rec := newRecorder(l.Progress != nil)
	stopProgress := rec.report(l.Progress)
	start := time.Now()
	if l.Closed {
		runClosed(ctx, l, c.do, rec, start)
	} else {
		runOpen(ctx, l, c, rec, start)
	}
	stopProgress()
	res := rec.total
	res.Elapsed = time.Since(start)
	return res, ctx.Err()
}

// runOpen schedules requests at their intended times and hands each to an
// idle worker, starting one more, up to Connections, when none is idle.
// Workers start on demand, not all at once: a thousand goroutines and
// connections born in the run's first milliseconds stall the generator
// itself for tens of milliseconds on a small machine, and that stall
// would be charged to the target's first requests.
func runOpen(ctx context.Context, l Load, c *caller, rec *recorder, start time.Time) {
	due := make(chan time.Time)
	var wg sync.WaitGroup
	work := func(at time.Time) {
		for ok := true; ok; at, ok = <-due {
			class, calls := c.do()
			rec.record(class, time.Since(at), calls)
		}
	}
	workers := 0
	hand := func(at time.Time) bool {
		select {
		case due <- at:
			return true
		default:
		}
		if workers < l.Connections {
			workers++
			wg.Go(func() { work(at) })
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case due <- at:
			return true
		}
	}
	schedule(ctx, start, l.intended(), hand)
	close(due)
	wg.Wait()
}

// intended yields each request's intended start, as an offset from the
// run's start: i/rate through each phase in turn, Count at most.
func (l Load) intended() iter.Seq[time.Duration] {
	phases := l.Phases
	if len(phases) == 0 {
		phases = []Phase{{Rate: l.Rate, Duration: l.Duration}}
	}
	return func(yield func(time.Duration) bool) {
		var sent int64
		var base time.Duration
		for _, p := range phases {
			n := int64(p.Duration.Seconds() * p.Rate)
			if p.Duration == 0 {
				n = l.Count // bounded by count alone
			}
			for i := range n {
				if l.Count > 0 && sent == l.Count || !yield(base+time.Duration(float64(i)*float64(time.Second)/p.Rate)) {
					return
				}
				sent++
			}
			base += p.Duration
		}
	}
}

// openCount is how many requests an open-loop run sends.
func openCount(l Load) int64 {
	var n int64
	for range l.intended() {
		n++
	}
	return n
}

// schedule hands out the intended start times, until done, ctx ends or
// hand refuses. A send that is late (all workers busy) is still handed
// its intended time, so its wait counts.
func schedule(ctx context.Context, start time.Time, intended iter.Seq[time.Duration], hand func(time.Time) bool) {
	for off := range intended {
		at := start.Add(off)
		if !sleepUntil(ctx, at) || !hand(at) {
			return
		}
	}
}

func cmpOrInt(n, def int) int {
	if n <= 0 {
		return def
	}
	return n
}
