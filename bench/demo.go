package bench

import (
	"context"
	"fmt"
	"io"
	"os/signal"
	"sort"
	"syscall"
	"time"
)

// Proxy starts tailguard in front of upstream (host:port) and returns its
// proxy and admin addresses, and a stop function that drains it and
// returns its exit error. main supplies it, so bench needs no proxy code.
type Proxy func(ctx context.Context, upstream string) (proxyAddr, adminAddr string, stop func() error, err error)

// demoPhases is the demo's load: a gentle rate, a rise, and back.
var demoPhases = []struct {
	rate float64
	d    time.Duration
}{{100, 5 * time.Second}, {400, 5 * time.Second}, {100, 5 * time.Second}}

// demoLatency is the embedded service: about 2 ms, with 3% stragglers at
// 80 ms, the tail that tailguard's per-route percentiles make visible.
var demoLatency = Latency{Median: 2 * time.Millisecond, Sigma: 0.3, StragglerShare: 0.03, Straggler: 80 * time.Millisecond}

// Demo starts an upstream with stragglers, tailguard in front of it and a
// bounded open-loop load through it; it prints where to look, a line a
// second, and the latency percentiles the client saw. It stops by itself
// after the phases (about 15 s) or on Ctrl-C.
func Demo(ctx context.Context, out io.Writer, start Proxy) error {
	ctx, stopSignals := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stopSignals()
	up, err := StartUpstream("127.0.0.1:0", demoLatency, 1)
	if err != nil {
		return fmt.Errorf("demo upstream: %w", err)
	}
	defer up.Close()
	proxyAddr, adminAddr, stop, err := start(ctx, up.Addr())
	if err != nil {
		return fmt.Errorf("demo proxy: %w", err)
	}
	fmt.Fprintf(out, "upstream  %s  (median %v, %.0f%% stragglers at %v)\n", up.Addr(), demoLatency.Median, demoLatency.StragglerShare*100, demoLatency.Straggler)
	fmt.Fprintf(out, "tailguard http://%s/  admin http://%s/readyz  http://%s/config\n", proxyAddr, adminAddr, adminAddr)
	total := newResult()
	for _, ph := range demoPhases {
		l := Load{URL: "http://" + proxyAddr + "/demo", Rate: ph.rate, Duration: ph.d, MaxInFlight: 256, Timeout: 5 * time.Second}
		res, err := l.Run(ctx, func(elapsed time.Duration, r *Result) {
			fmt.Fprintf(out, "rate %4.0f/s  t=%2.0fs  done %6d  p50 %7v  p99 %7v  errors %d\n",
				ph.rate, elapsed.Seconds(), r.Count(), r.Quantile(0.5), r.Quantile(0.99), r.Errors)
		})
		if res != nil {
			total.add(res)
		}
		if err != nil {
			break
		}
	}
	fmt.Fprintln(out)
	total.WriteTable(out)
	return stop()
}

func (r *Result) add(o *Result) {
	r.Latency.Merge(o.Latency)
	r.Errors += o.Errors
	for s, n := range o.Status {
		r.Status[s] += n
	}
}

// WriteTable prints the percentiles and status counts.
func (r *Result) WriteTable(out io.Writer) {
	fmt.Fprintf(out, "%-8s %10s\n", "requests", fmt.Sprint(r.Count()))
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999, 1} {
		fmt.Fprintf(out, "%-8s %10v\n", fmt.Sprintf("p%g", q*100), r.Quantile(q).Round(10*time.Microsecond))
	}
	codes := make([]int, 0, len(r.Status))
	for c := range r.Status {
		codes = append(codes, c)
	}
	sort.Ints(codes)
	for _, c := range codes {
		fmt.Fprintf(out, "status %d %8d\n", c, r.Status[c])
	}
	fmt.Fprintf(out, "%-8s %10d\n", "errors", r.Errors)
}
