package bench

import (
	"context"
	"fmt"
	"time"
)

// hedgeRoute is issue 4's hedge: at the route's live p95 service time,
// clamped to [2ms, 500ms], one extra attempt.
const hedgeRoute = "hedge: {delay: p95, min_delay: 2ms, max_delay: 500ms, max_extra: 1}"

// stragglers is issue 4's upstream: about 1 ms, and 3% of requests
// delayed to 100 ms.
var stragglers = Latency{Median: time.Millisecond, Sigma: 0.2, StragglerShare: 0.03, Straggler: 100 * time.Millisecond}

// hedgePair starts two endpoints with latency lat and returns them with
// the two arms' configs: plain (a 2 s timeout) and the same with
// hedgeRoute. closeUps stops the endpoints.
func hedgePair(lat Latency) (ups []*Upstream, closeUps func(), plain, hedged proxyConfig, err error) {
	ups, closeUps, err = startUpstreams(2, UpstreamOptions{Faults: Faults{Latency: lat}})
	if err != nil {
		return nil, nil, plain, hedged, err
	}
	plain = proxyConfig{endpoints: addrs(ups), route: []string{"timeout: 2s"}}
	hedged = plain
	hedged.route = append([]string{hedgeRoute}, plain.route...)
	return ups, closeUps, plain, hedged, nil
}

// runHedging compares hedging at p95 with no hedging against two
// endpoints with stragglers, then both again without stragglers for the
// cost of handing requests to the hedge workers. -rate is requests a
// second (default 1000), -duration each arm's measured time (default 15s).
func runHedging(ctx context.Context, e *Env) (*Outcome, error) {
	rate, d := e.rate(1000, 200), e.span(15*time.Second, 1500*time.Millisecond)
	warm := openLoad(rate, e.fixed(3*time.Second, time.Second))
	ups, closeUps, plain, hedged, err := hedgePair(stragglers)
	if err != nil {
		return nil, err
	}
	defer closeUps()

	var runs []*armResult
	for _, a := range []arm{
		{label: "no hedge", cfg: plain, warm: warm, load: openLoad(rate, d)},
		{label: "hedge p95", cfg: hedged, warm: warm, load: openLoad(rate, d)},
	} {
		r, err := e.runArm(ctx, a, ups...)
		if err != nil {
			return nil, err
		}
		runs = append(runs, r)
	}
	out := &Outcome{Tables: []*Table{hedgingTable(rate, d, runs[0], runs[1])}, Series: []Series{
		{Label: "no hedge", Points: spectrum(runs[0].res.Latency)},
		{Label: "hedge p95", Points: spectrum(runs[1].res.Latency)},
	}}
	handoff, err := e.handoffCost(ctx, ups, plain, hedged, rate, warm, max(d/3, time.Second))
	if err != nil {
		return nil, err
	}
	out.Tables = append(out.Tables, handoff)
	return out, nil
}

// hedgingTable compares the two arms' response times and upstream load.
func hedgingTable(rate float64, d time.Duration, off, on *armResult) *Table {
	t := &Table{
		Title:   fmt.Sprintf("Hedging: two endpoints, 3%% of requests 100 ms (others ~1 ms), %.0f/s open loop for %v per arm", rate, d),
		Columns: []string{"arm", "requests", "p50", "p90", "p99", "p99.9", "max", "upstream load", "hedges sent", "hedges won", "non-2xx"},
	}
	for _, r := range []struct {
		name string
		a    *armResult
	}{{"no hedge", off}, {"hedge p95", on}} {
		res := r.a.res
		t.add(r.name, countCell(res.Count()), msCell(res.Quantile(0.5)), msCell(res.Quantile(0.9)),
			msCell(res.Quantile(0.99)), msCell(res.Quantile(0.999)), msCell(res.Quantile(1)),
			ratioCell(float64(r.a.upstream), float64(res.Count())), countCell(r.a.hedges), countCell(r.a.hedgesWon),
			countCell(res.Count()-res.CountOf(Is2xx)))
	}
	q := func(a *armResult, p float64) float64 { return float64(a.res.Quantile(p)) }
	t.add("no hedge ÷ hedge", blank, ratioCell(q(off, 0.5), q(on, 0.5)), ratioCell(q(off, 0.9), q(on, 0.9)),
		ratioCell(q(off, 0.99), q(on, 0.99)), ratioCell(q(off, 0.999), q(on, 0.999)), ratioCell(q(off, 1), q(on, 1)),
		blank, blank, blank, blank)
	extra := float64(on.upstream)/float64(max(on.res.Count(), 1)) - 1
	p99x := q(off, 0.99) / max(q(on, 0.99), 1)
	t.note("upstream load is requests the two upstreams saw ÷ requests sent; route `%s`", hedgeRoute)
	t.note("with max_extra 1 about 3%% × 3%% = 0.09%% of requests straggle on both attempts, which bounds what hedging can do for p99.9; a p95 delay also hedges about 5%% of requests, which the default 5%% hedge budget caps")
	t.note("issue 4 target: p99 at least 10× lower with at most 6%% extra requests; got %.1f× lower with %+.1f%% requests: %s",
		p99x, extra*100, metOrNot(p99x >= 10 && extra <= 0.06))
	return t
}

// handoffCost measures what hedging costs when nothing straggles: every
// request of a hedged route goes through the hedge workers.
func (e *Env) handoffCost(ctx context.Context, ups []*Upstream, plain, hedged proxyConfig, rate float64, warm Load, d time.Duration) (*Table, error) {
	for _, u := range ups {
		f := u.Faults()
		f.Latency.StragglerShare = 0
		if err := u.SetFaults(f); err != nil {
			return nil, err
		}
	}
	t := &Table{
		Title:   fmt.Sprintf("Hedge hand-off cost: no stragglers, %.0f/s open loop for %v per arm", rate, d),
		Columns: []string{"arm", "requests", "p50", "p99", "p99.9", "hedges sent"},
	}
	var p50 []time.Duration
	for _, a := range []arm{
		{label: "no hedge", cfg: plain, warm: warm, load: openLoad(rate, d)},
		{label: "hedge p95 (configured)", cfg: hedged, warm: warm, load: openLoad(rate, d)},
	} {
		r, err := e.runArm(ctx, a, ups...)
		if err != nil {
			return nil, err
		}
		t.add(a.label, countCell(r.res.Count()), msCell(r.res.Quantile(0.5)), msCell(r.res.Quantile(0.99)),
			msCell(r.res.Quantile(0.999)), countCell(r.hedges))
		p50 = append(p50, r.res.Quantile(0.5))
	}
	t.note("p50 with hedging configured minus without: %+.0f µs (client-side, includes run-to-run noise)",
		float64(p50[1]-p50[0])/float64(time.Microsecond))
	return t, nil
}

func metOrNot(ok bool) string {
	if ok {
		return "met"
	}
	return "not met"
}
