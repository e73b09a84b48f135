package bench

import (
	"context"
	"fmt"
	"time"
)

// timeoutRoute is the timeout arm's route timeout.
const timeoutRoute = 250 * time.Millisecond

// clientTimeout is the generator's own timeout in the timeout scenario:
// without a route timeout, the only bound on a stalled request.
const clientTimeout = 2 * time.Second

// runTimeout sends a fixed rate at an upstream that never answers 2% of
// requests (the others take about 5 ms), through tailguard with a route
// timeout and without one. Each arm gets its own upstream, closed before
// tailguard stops, so that stalled requests end. -rate is requests a
// second (default 200), -duration each arm's time (default 10s).
func runTimeout(ctx context.Context, e *Env) (*Outcome, error) {
	rate, d := e.rate(200, 100), e.span(10*time.Second, time.Second)
	faults := Faults{StallShare: 0.02, Latency: Latency{Median: 5 * time.Millisecond, Sigma: 0.3}}
	t := &Table{
		Title: fmt.Sprintf("Timeout: 2%% of requests stall (others ~5 ms), %.0f/s open loop for %v per arm, client timeout %v",
			rate, d, clientTimeout),
		Columns: []string{"arm", "requests", "p50", "p99", "p99.9", "max", "2xx", "504 timeout", "client timeouts", "other",
			"stalled at upstream"},
	}
	out := &Outcome{Tables: []*Table{t}}
	for _, a := range []struct {
		label, route string
	}{{fmt.Sprintf("timeout %v", timeoutRoute), "timeout: " + timeoutRoute.String()}, {"no timeout", "timeout: 0s"}} {
		up, err := StartUpstream(UpstreamOptions{Faults: faults})
		if err != nil {
			return nil, err
		}
		l := openLoad(rate, d)
		l.Timeout = clientTimeout
		r, err := e.runArm(ctx, arm{label: a.label, cfg: proxyConfig{endpoints: []string{up.Addr()}, route: []string{a.route}},
			load: l, done: func() { _ = up.Close() }}, up)
		_ = up.Close()
		if err != nil {
			return nil, err
		}
		res := r.res
		ok, n504 := res.CountOf(Is2xx), res.CountOf(IsCause("timeout"))
		gaveUp := res.CountOf(func(c string) bool { return c == "error timeout" })
		t.add(a.label, countCell(res.Count()), msCell(res.Quantile(0.5)), msCell(res.Quantile(0.99)),
			msCell(res.Quantile(0.999)), msCell(res.Quantile(1)), countCell(ok), countCell(n504), countCell(gaveUp),
			countCell(res.Count()-ok-n504-gaveUp), countCell(up.Stats().Stalls))
		out.Series = append(out.Series, Series{Label: a.label, Points: spectrum(res.Latency)})
	}
	t.note("with a route timeout tailguard answers 504 (X-Tailguard-Error: timeout) at the deadline, so max ≈ %v; without one only the client's %v bounds a stalled request",
		timeoutRoute, clientTimeout)
	return out, nil
}
