package proxy

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"tailguard/config"
	"tailguard/metrics"
	"tailguard/proxy/internal/cause"
	"tailguard/proxy/internal/client"
	"tailguard/resilience"
)

// Build turns a validated config into a routing table. It is the one place
// where config becomes run-time objects and where the packages are wired
// together: every per-route and per-upstream object a request needs exists
// before the first request. Routes are registered with reg, whose
// per-route state is kept by route name; log receives breaker state
// changes.
//
// prev, the table being replaced (nil at start), lends what a reload must
// keep (see carry.go): upstreams whose settings did not change, with their
// connections, breakers and balancer state; breakers, admission limits,
// hedge delays and budgets whose settings did not change.
func Build(cfg *config.Config, reg *metrics.Registry, log *zap.Logger, prev *Table) (*Table, error) {
	t := &Table{
		byHost:    make(map[string]*hostRoutes),
		upstreams: make(map[string]*Upstream, len(cfg.Upstreams)),
	}
	for name, uc := range cfg.Upstreams {
		if u := prev.unchangedUpstream(name, uc); u != nil {
			t.upstreams[name] = u
			continue
		}
		u, err := buildUpstream(name, uc, log)
		if err != nil {
			return nil, fmt.Errorf("upstream %q: %w", name, err)
		}
		u.carry(prev.upstream(name))
		t.upstreams[name] = u
	}
	regRoutes := make([]metrics.RouteConfig, 0, len(cfg.Routes))
	for i, rc := range cfg.Routes {
		r, err := buildRoute(cfg, rc, t.upstreams[rc.Upstream])
		if err != nil {
			return nil, fmt.Errorf("routes[%d] %q: %w", i, rc.Name, err)
		}
		r.carry(prev.route(rc.Name))
		t.routes = append(t.routes, r)
		t.hedgeWorkers += r.hedgeWorkers()
		hr := &t.anyHost
		if h := strings.Trim(strings.ToLower(rc.Match.Host), "[]"); h != "" {
			if hr = t.byHost[h]; hr == nil {
				hr = &hostRoutes{}
				t.byHost[h] = hr
			}
		}
		hr.add(rc.Match.PathPrefix, r)
		regRoutes = append(regRoutes, r.metricsConfig(rc))
	}
	reg.Configure(regRoutes)
	for _, r := range t.routes {
		r.metrics = reg.Route(r.name)
	}
	return t, nil
}

func buildUpstream(name string, uc *config.Upstream, log *zap.Logger) (*Upstream, error) {
	n := len(uc.Endpoints)
	if n == 0 || n > resilience.MaxEndpoints {
		return nil, fmt.Errorf("%d endpoints (1 to %d)", n, resilience.MaxEndpoints)
	}
	policy, err := resilience.ParsePolicy(uc.Balance)
	if err != nil {
		return nil, err
	}
	u := &Upstream{spec: uc, balancer: resilience.NewBalancer(policy, n, 0)}
	for _, addr := range uc.Endpoints {
		u.endpoints = append(u.endpoints, client.NewEndpoint(addr, uc.MaxConnections, uc.ConnectTimeout.D()))
	}
	if o := uc.Outlier; o != nil {
		u.outlier = resilience.NewOutlier(resilience.OutlierSettings{
			Consecutive5xx:    o.Consecutive5xx,
			EjectionTime:      o.EjectionTime.D(),
			MaxEjectedPercent: o.MaxEjectedPercent,
		}, n)
	}
	if h := uc.HealthCheck; h != nil {
		u.health = resilience.NewHealth(resilience.HealthSettings{}, n)
		u.probe = client.NewProber(u.endpoints, h.Path, h.Interval.D(), h.Timeout.D(), u.health)
	}
	if b := uc.Breaker; b != nil {
		u.breaker = resilience.NewBreaker(name, resilience.BreakerSettings{
			ConsecutiveFailures: uint32(b.ConsecutiveFailures),
			FailureRatio:        b.FailureRatio,
			MinRequests:         uint32(b.MinRequests),
			Interval:            b.Interval.D(),
			OpenTimeout:         b.OpenTimeout.D(),
			HalfOpenRequests:    uint32(b.HalfOpenRequests),
		}, func(name string, from, to resilience.State) {
			log.Warn("breaker state changed", zap.String("upstream", name),
				zap.Stringer("from", from), zap.Stringer("to", to))
		})
		open := b.OpenTimeout.D()
		if open <= 0 {
			open = resilience.DefaultOpenTimeout
		}
		u.breakerRetryAfter = retryAfter(open)
	}
	return u, nil
}

func buildRoute(cfg *config.Config, rc *config.Route, u *Upstream) (*Route, error) {
	if u == nil {
		return nil, fmt.Errorf("unknown upstream %q", rc.Upstream)
	}
	r := &Route{
		spec:            rc,
		name:            rc.Name,
		methods:         rc.Match.Methods,
		upstream:        u,
		maxBody:         cfg.Limits.MaxBodyBytes.Int64(),
		errors:          cause.NewBodies(rc.Name),
		perTry:          rc.PerTryTimeout.D(),
		serverTiming:    rc.ServerTiming,
		deadlineHeader:  cfg.DeadlineHeader,
		requestHeaders:  newHeaderRules(rc.RequestHeaders),
		responseHeaders: newHeaderRules(rc.ResponseHeaders),
	}
	for _, c := range cfg.TrustedProxies {
		r.trustedProxies = append(r.trustedProxies, c.Prefix())
	}
	if rc.Timeout != nil {
		r.timeout = rc.Timeout.D()
	}
	if rc.MaxBodyBytes != nil {
		if r.maxBody = rc.MaxBodyBytes.Int64(); r.maxBody == 0 {
			r.maxBody = -1
		}
	}
	if rc.Retry != nil {
		on, err := resilience.ParseRetryOn(rc.Retry.On)
		if err != nil {
			return nil, fmt.Errorf("retry: %w", err)
		}
		r.retry = resilience.NewRetry(resilience.RetrySettings{
			Attempts: rc.Retry.Attempts - 1, // config counts the first attempt
			On:       on,
			Backoff:  rc.Retry.Backoff.D(),
			Ratio:    rc.Retry.Budget,
		})
	}
	if h := rc.Hedge; h != nil {
		r.hedge = resilience.NewHedge(resilience.HedgeSettings{
			Fixed:      h.Delay.Fixed,
			Percentile: h.Delay.Percentile,
			MinDelay:   h.MinDelay.D(),
			MaxDelay:   h.MaxDelay.D(),
			MaxExtra:   h.MaxExtra,
			Ratio:      h.Budget,
		})
	}
	if r.retry != nil || r.hedge != nil {
		r.budget = resilience.NewBudget(resilience.DefaultBudgetWindow, resilience.DefaultMinExtrasPerSecond)
	}
	if sh := rc.Shed; sh != nil {
		if err := r.buildShed(sh); err != nil {
			return nil, fmt.Errorf("shed: %w", err)
		}
	}
	return r, nil
}

func (r *Route) buildShed(sh *config.Shed) error {
	r.admission = resilience.NewAdmission(resilience.AdmissionSettings{
		MaxConcurrency: sh.MaxConcurrency.N,
		Adaptive:       sh.MaxConcurrency.Adaptive,
		LimitMin:       sh.Limit.Min,
		LimitMax:       sh.Limit.Max,
		LimitInitial:   sh.Limit.Initial,
		Queue:          sh.Queue,
		QueueTimeout:   sh.QueueTimeout.D(),
		CoDelTarget:    sh.CoDel.Target.D(),
		CoDelInterval:  sh.CoDel.Interval.D(),
		Shadow:         sh.Mode == "shadow",
	})
	r.shed = shedAnswer{status: sh.Status, retryAfter: []byte("1")}
	r.priorityHeader = sh.PriorityHeader
	p, ok := resilience.ParsePriority([]byte(sh.PriorityDefault))
	if !ok {
		return fmt.Errorf("priority_default %q", sh.PriorityDefault)
	}
	r.priorityDefault = p
	return nil
}

// hedgeWorkers bounds the hedge workers the route may keep busy: its
// attempts in flight at once (the primary and max_extra hedges) times the
// requests it may have in flight.
func (r *Route) hedgeWorkers() int {
	if r.hedge == nil {
		return 0
	}
	inFlight := r.upstream.endpoints[0].MaxConns() * len(r.upstream.endpoints)
	if r.admission != nil && r.admission.Limit() > 0 {
		inFlight = r.admission.Limit()
	}
	return (1 + r.hedge.MaxExtra()) * inFlight
}

// metricsConfig is what the metrics registry needs to know about the
// route: its SLO, its live gauges, and the tick that feeds the hedge delay
// and the admission's service-time estimate and limit.
func (r *Route) metricsConfig(rc *config.Route) metrics.RouteConfig {
	mc := metrics.RouteConfig{Name: r.name, Gauges: r.gauges}
	if s := rc.SLO; s != nil {
		mc.SLO = &metrics.SLO{Latency: s.Latency.D(), LatencyTarget: s.LatencyTarget, Availability: s.Availability}
	}
	if r.hedge != nil || r.admission != nil {
		mc.OnTick = r.tick
	}
	return mc
}

// tick runs once a second, off the hot path, with the route's last 10 s.
// The service-time quantiles rest on the requests that made an attempt,
// not on all requests: a window of shed or breaker-refused requests has
// none, and its quantiles (0) must not be trusted.
func (r *Route) tick(s *metrics.Snapshot) {
	samples := s.Samples(metrics.Service)
	if r.hedge != nil {
		r.hedge.Observe(s.Quantile(metrics.Service, r.hedge.Percentile()), samples)
	}
	if a := r.admission; a != nil {
		if samples > 0 {
			a.SetServiceP50(s.Quantile(metrics.Service, 0.5))
		}
		a.Update(time.Now())
	}
}

// gauges is the route's live state for /stats and /metrics.
func (r *Route) gauges() metrics.Gauges {
	var g metrics.Gauges
	if b := r.upstream.breaker; b != nil {
		g.Breaker = b.State().String()
	}
	if a := r.admission; a != nil {
		g.ConcurrencyLimit, g.InFlight, g.Queued = a.Limit(), a.InFlight(), a.Queued()
		g.ShedByPriority = make(map[string]uint64, 3)
		for _, p := range []resilience.Priority{resilience.Critical, resilience.Default, resilience.Sheddable} {
			g.ShedByPriority[p.String()] = a.Shed(p)
		}
	}
	return g
}

// retryAfter is a Retry-After value for d: whole seconds, rounded up.
func retryAfter(d time.Duration) []byte {
	return strconv.AppendInt(nil, int64(math.Ceil(d.Seconds())), 10)
}

// start begins the table's background work: health checks (those of
// upstreams carried over from an earlier table already run).
func (t *Table) start() {
	for _, u := range t.upstreams {
		u.probe.Start()
	}
}

// stop ends the table's background work, waits for it, and closes idle
// upstream connections: the process is stopping.
func (t *Table) stop() { t.retire(nil) }

// retire stops what t runs and next does not share: the health checks and
// idle connections of upstreams next did not carry over. Requests under
// way finish on the routes they matched; their connections close when
// they return to pools nobody uses.
func (t *Table) retire(next *Table) {
	for name, u := range t.upstreams {
		if next != nil && next.upstreams[name] == u {
			continue
		}
		u.probe.Close()
		u.closeIdle()
	}
}
