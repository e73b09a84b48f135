package bench

import (
	"context"
	"errors"
	"time"
)

// arm is one side of a comparison, through an in-process tailguard.
type arm struct {
	label string
	cfg   proxyConfig
	// warm, if it has a duration, runs first and is not measured: it
	// fills the windows that hedge delays and adaptive limits learn from.
	warm Load
	load Load
	// done, if not nil, runs after the load and before tailguard stops
	// (to release what tailguard still waits for).
	done func()
}

// armResult is what an arm measured.
type armResult struct {
	res *Result
	// upstream is the requests the upstreams saw while the load ran.
	upstream int64
	// hedges, shed and breakerRejects are tailguard's counts while the
	// load ran, from its admin /stats.
	hedges, hedgesWon, shed, breakerRejects int64
	// serverP99 is tailguard's own response-time p99 over its last 10 s
	// (admin /stats), without the client and the loopback around it.
	serverP99 time.Duration
}

// runArm starts tailguard for a, warms it up, runs the load against it
// and stops it. ups are the upstreams whose requests are counted.
func (e *Env) runArm(ctx context.Context, a arm, ups ...*Upstream) (r *armResult, err error) {
	p, err := e.startProxy(ctx, a.cfg)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, p.stop()) }()
	var warmed int64
	if a.warm.Duration > 0 {
		a.warm.URL = p.url()
		w, err := a.warm.Run(ctx)
		if err != nil {
			return nil, err
		}
		warmed = w.Count()
	}
	before, sb := upstreamRequests(ups), settledStats(ctx, p.admin, warmed)
	a.load.URL = p.url()
	e.logf("%s: %s", a.label, describeLoad(a.load))
	res, err := e.load(ctx, a.label, a.load)
	if err != nil {
		return nil, err
	}
	sa, last := settledStats(ctx, p.admin, warmed+res.Count()), statsOrZero(ctx, p.admin, "10s")
	if a.done != nil {
		a.done()
	}
	return &armResult{
		res: res, upstream: upstreamRequests(ups) - before, serverP99: msDur(last.LatencyMS.Response.P99),
		hedges: sa.Hedges.Sent - sb.Hedges.Sent, hedgesWon: sa.Hedges.Won - sb.Hedges.Won,
		shed: sa.Shed - sb.Shed, breakerRejects: sa.BreakerRejects - sb.BreakerRejects,
	}, nil
}

// settledStats reads tailguard's stats since it started once they hold
// all n requests sent so far (its windows take them in once a second),
// or after 3 s; zero if it cannot read them.
func settledStats(ctx context.Context, admin string, n int64) *routeStats {
	s := statsOrZero(ctx, admin, "all")
	for deadline := time.Now().Add(3 * time.Second); s.Requests < n && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		s = statsOrZero(ctx, admin, "all")
	}
	return s
}

// statsOrZero reads tailguard's stats over window; zero if it cannot.
func statsOrZero(ctx context.Context, admin, window string) *routeStats {
	s, err := fetchStats(ctx, admin, window)
	if err != nil {
		return &routeStats{}
	}
	return s
}

// upstreamRequests is the requests ups have seen, together.
func upstreamRequests(ups []*Upstream) int64 {
	var n int64
	for _, u := range ups {
		n += u.Stats().Requests
	}
	return n
}

// startUpstreams starts n upstreams with faults f and seeds 1…n.
func startUpstreams(n int, o UpstreamOptions) ([]*Upstream, func(), error) {
	var ups []*Upstream
	closeAll := func() {
		for _, u := range ups {
			_ = u.Close()
		}
	}
	for i := range n {
		o.Seed = uint64(i + 1)
		u, err := StartUpstream(o)
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		ups = append(ups, u)
	}
	return ups, closeAll, nil
}

func addrs(ups []*Upstream) []string {
	a := make([]string, len(ups))
	for i, u := range ups {
		a[i] = u.Addr()
	}
	return a
}

// openLoad is an open-loop load at rate for d.
func openLoad(rate float64, d time.Duration) Load {
	return Load{Rate: rate, Duration: d, Connections: 256, Timeout: 5 * time.Second}
}

// waitIdle waits until ups have nothing in service or queued (the
// backlog of an overload drained), for at most limit.
func waitIdle(ctx context.Context, ups []*Upstream, limit time.Duration) {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		idle := true
		for _, u := range ups {
			s := u.Stats()
			idle = idle && s.Busy == 0 && s.Queued == 0
		}
		if idle {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}
