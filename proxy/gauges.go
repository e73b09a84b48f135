package proxy

import (
	"slices"
	"time"

	"tailguard/metrics"
	"tailguard/proxy/internal/cause"
)

// gauges are the server's figures outside routes, for /stats and /metrics:
// the client listener's, the buffers', and the endpoints of the current
// table's upstreams. The registry calls it at scrape time (it is the getter given
// to metrics.Registry.SetServerGauges); it allocates, the hot path does
// not: the path only bumps the atomics read here.
func (s *Server) gauges() metrics.ServerGauges {
	f := s.spool.Figures()
	g := metrics.ServerGauges{Listener: s.listenerGauges(), Buffers: metrics.BufferGauges{
		MemoryBytes: f.MemoryBytes, DiskBytes: f.DiskBytes, Spills: f.Spills, Fallbacks: f.Fallbacks,
	}}
	t := s.table.Load()
	names := make([]string, 0, len(t.upstreams))
	for name := range t.upstreams {
		names = append(names, name)
	}
	slices.Sort(names)
	now := time.Now()
	for _, name := range names {
		g.Upstreams = append(g.Upstreams, t.upstreams[name].gauges(name, now))
	}
	return g
}

// listenerGauges are the client connections open now and the refusals
// before routing: every cause DESIGN.md lists for the listener, and any
// other counted (a body too large for fasthttp to read, which no route
// saw).
func (s *Server) listenerGauges() metrics.ListenerGauges {
	l := metrics.ListenerGauges{Connections: s.clients.Open(), Parked: s.clients.Parked()}
	for _, c := range cause.BeforeRouting {
		l.Errors = append(l.Errors, metrics.CauseCount{Cause: c.String(), Count: s.clients.Refused(c)})
	}
	s.clients.EachRefused(func(c cause.Cause, n uint64) {
		if n > 0 && !slices.Contains(cause.BeforeRouting[:], c) {
			l.Errors = append(l.Errors, metrics.CauseCount{Cause: c.String(), Count: n})
		}
	})
	return l
}

// gauges is the upstream's live state at now: its breaker, its outlier
// detection's counts, and each endpoint as the balancer, outlier
// detection and health checks see it.
func (u *Upstream) gauges(name string, now time.Time) metrics.UpstreamGauges {
	g := metrics.UpstreamGauges{Name: name, Endpoints: make([]metrics.EndpointGauges, len(u.endpoints)),
		Ejections: u.outlier.Ejections(), LatencyEjections: u.outlier.LatencyEjections(), WouldEject: u.outlier.WouldEject()}
	if u.breaker != nil {
		g.Breaker = u.breaker.State().String()
	}
	healthy, available := u.health.Healthy(), u.outlier.Available(now)
	for i, e := range u.endpoints {
		g.Endpoints[i] = metrics.EndpointGauges{
			Address:     e.Addr(),
			Healthy:     healthy&(1<<i) != 0,
			Ejected:     available&(1<<i) == 0,
			Outstanding: u.balancer.Outstanding(i),
			LatencyEWMA: u.balancer.Latency(i, now),
			Requests:    u.attempts[i].sent.Load(),
			Failures:    u.attempts[i].failed.Load(),
		}
	}
	return g
}
