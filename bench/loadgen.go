package bench

import (
	"context"
	"fmt"
	"net/url"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/valyala/fasthttp"
)

// Load is one open-loop run: request i is due at start + i/Rate, whatever
// happened to earlier requests, and its latency is measured from that
// intended time. A target that stalls therefore shows its stall in the
// percentiles instead of slowing the generator down (no coordinated
// omission).
type Load struct {
	// URL is the request target, http://host:port/path.
	URL string
	// Rate is requests per second; Duration bounds the run.
	Rate     float64
	Duration time.Duration
	// MaxInFlight bounds concurrent requests. When all are busy, due
	// requests wait, and the wait counts in their latency.
	MaxInFlight int
	// Timeout bounds one request.
	Timeout time.Duration
}

// Result is what a run measured.
type Result struct {
	// Latency in microseconds, from each request's intended start.
	Latency *hdrhistogram.Histogram
	Status  map[int]int
	Errors  int
}

func newResult() *Result {
	return &Result{Latency: hdrhistogram.New(1, int64(time.Minute/time.Microsecond), 3), Status: map[int]int{}}
}

// Count is the number of requests completed (answered or failed).
func (r *Result) Count() int64 { return r.Latency.TotalCount() }

// Quantile is the latency at q (0 < q <= 1).
func (r *Result) Quantile(q float64) time.Duration {
	return time.Duration(r.Latency.ValueAtQuantile(q*100)) * time.Microsecond
}

// Run sends the load until Duration ends or ctx is done, calling tick
// (if not nil) about once a second with the results so far. The Result
// passed to tick must not be kept.
func (l Load) Run(ctx context.Context, tick func(elapsed time.Duration, sofar *Result)) (*Result, error) {
	u, err := url.Parse(l.URL)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return nil, fmt.Errorf("load target %q: want http://host:port/path", l.URL)
	}
	if l.Rate <= 0 || l.Duration <= 0 || l.MaxInFlight <= 0 {
		return nil, fmt.Errorf("load: rate, duration and max in-flight must be > 0")
	}
	client := &fasthttp.HostClient{Addr: u.Host, MaxConns: l.MaxInFlight, MaxIdemponentCallAttempts: 1}
	defer client.CloseIdleConnections()

	var mu sync.Mutex
	res := newResult()
	due := make(chan time.Time, l.MaxInFlight)
	var wg sync.WaitGroup
	for range l.MaxInFlight {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			req.SetRequestURI(l.URL)
			for at := range due {
				err := client.DoTimeout(req, resp, l.Timeout)
				lat := time.Since(at)
				mu.Lock()
				_ = res.Latency.RecordValue(lat.Microseconds())
				if err != nil {
					res.Errors++
				} else {
					res.Status[resp.StatusCode()]++
				}
				mu.Unlock()
			}
		}()
	}
	start := time.Now()
	schedule(ctx, start, l.Rate, l.Duration, due, func(elapsed time.Duration) {
		if tick != nil {
			mu.Lock()
			tick(elapsed, res)
			mu.Unlock()
		}
	})
	close(due)
	wg.Wait()
	return res, ctx.Err()
}

// schedule hands out intended start times at rate until d has passed or
// ctx is done, and calls tick once a second.
func schedule(ctx context.Context, start time.Time, rate float64, d time.Duration, due chan<- time.Time, tick func(time.Duration)) {
	interval := time.Duration(float64(time.Second) / rate)
	nextTick := start.Add(time.Second)
	for i := 0; ; i++ {
		at := start.Add(time.Duration(i) * interval)
		if at.Sub(start) >= d {
			return
		}
		if wait := time.Until(at); wait > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
		}
		if !at.Before(nextTick) {
			tick(at.Sub(start))
			nextTick = nextTick.Add(time.Second)
		}
		select {
		case <-ctx.Done():
			return
		case due <- at:
		}
	}
}
