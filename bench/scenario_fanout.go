package bench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"
)

// fanoutLatency is the backend: about 1 ms, 1% of calls 50 ms.
var fanoutLatency = Latency{Median: time.Millisecond, Sigma: 0.2, StragglerShare: 0.01, Straggler: 50 * time.Millisecond}

// fanoutRun is one arm at one fan-out.
type fanoutRun struct {
	res      *Result
	upstream int64 // calls the upstreams saw
}

// runFanout shows tail latency amplification (DDIA): a request that
// fans out to N parallel backend calls is as slow as the slowest, so 1%
// slow calls make about 1−0.99^N of the requests slow. Each N runs
// through tailguard without hedging and with hedging at p95. -rate is
// backend calls a second (default 2000; a fan-out of N runs at rate/N
// requests a second), -duration each N's time per arm (default 8s).
func runFanout(ctx context.Context, e *Env) (*Outcome, error) {
	rate, d := e.rate(2000, 300), e.span(8*time.Second, time.Second)
	ns := []int{1, 10, 100}
	if e.Smoke {
		ns = ns[:2]
	}
	ups, closeUps, plain, hedged, err := hedgePair(fanoutLatency)
	if err != nil {
		return nil, err
	}
	defer closeUps()
	off, err := e.fanoutArm(ctx, "no hedge", plain, ups, rate, d, ns)
	if err != nil {
		return nil, err
	}
	on, err := e.fanoutArm(ctx, "hedge p95", hedged, ups, rate, d, ns)
	if err != nil {
		return nil, err
	}
	out := &Outcome{Tables: []*Table{fanoutTable(rate, d, ns, off, on)}}
	for i, n := range ns {
		out.Series = append(out.Series,
			Series{Label: fmt.Sprintf("N=%d no hedge", n), Points: spectrum(off[i].res.Latency)},
			Series{Label: fmt.Sprintf("N=%d hedge p95", n), Points: spectrum(on[i].res.Latency)})
	}
	return out, nil
}

// fanoutArm runs each fan-out through one tailguard.
func (e *Env) fanoutArm(ctx context.Context, label string, cfg proxyConfig, ups []*Upstream, rate float64, d time.Duration, ns []int) (runs []fanoutRun, err error) {
	p, err := e.startProxy(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, p.stop()) }()
	warm := openLoad(rate, e.fixed(2*time.Second, time.Second))
	warm.URL = p.url()
	if _, err := warm.Run(ctx); err != nil {
		return nil, err
	}
	for _, n := range ns {
		l := Load{URL: p.url(), Rate: rate / float64(n), Duration: d, Fanout: n, Connections: max(8, 512/n), Timeout: 5 * time.Second}
		e.logf("%s: fan-out %d, %s", label, n, describeLoad(l))
		before := upstreamRequests(ups)
		res, err := e.load(ctx, fmt.Sprintf("%s N=%d", label, n), l)
		if err != nil {
			return nil, err
		}
		runs = append(runs, fanoutRun{res: res, upstream: upstreamRequests(ups) - before})
	}
	return runs, nil
}

func fanoutTable(rate float64, d time.Duration, ns []int, off, on []fanoutRun) *Table {
	t := &Table{
		Title: fmt.Sprintf("Fan-out: each request makes N parallel calls through tailguard (1%% of calls 50 ms, others ~1 ms), %.0f calls/s for %v per N and arm",
			rate, d),
		Columns: []string{"N", "requests", "P(≥1 slow call)", "p50 no hedge", "p99 no hedge", "p99.9 no hedge",
			"p50 hedge", "p99 hedge", "p99.9 hedge", "p99 no hedge ÷ hedge", "extra calls (hedge)"},
	}
	for i, n := range ns {
		a, b := off[i].res, on[i].res
		t.add(fmt.Sprint(n), countCell(a.Count()), numCell(100*(1-math.Pow(1-fanoutLatency.StragglerShare, float64(n))), unitPercent),
			msCell(a.Quantile(0.5)), msCell(a.Quantile(0.99)), msCell(a.Quantile(0.999)),
			msCell(b.Quantile(0.5)), msCell(b.Quantile(0.99)), msCell(b.Quantile(0.999)),
			ratioCell(float64(a.Quantile(0.99)), float64(b.Quantile(0.99))),
			numCell(100*(float64(on[i].upstream)/float64(max(b.Calls, 1))-1), unitPercent))
	}
	t.note("P(≥1 slow call) is 1 − 0.99^N: the share of requests with at least one slow call, so the p99 (and then the p50) of a request tracks the backend's tail, not its median")
	t.note("hedge: route `%s`; extra calls = calls the upstreams saw ÷ calls sent − 1", hedgeRoute)
	t.note("requests per N are few at large N (rate ÷ N a second): p99.9 there is the slowest request or close to it")
	return t
}
