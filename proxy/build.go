package proxy

import (
	"fmt"
	"math"
	"slices"
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
// Build works in two steps: config becomes settings values (upstreamSettings,
// routePolicies), comparable with ==, and settings become run-time objects.
// prev, the table being replaced (nil at start), lends what a reload must
// keep (see carry.go): an upstream whose settings did not change is shared
// whole, with its connections, balancer state, breaker and health checks; a
// breaker, admission, hedge delay or budget whose settings did not change
// is kept. What is kept is decided before anything is built, so nothing is
// built to be thrown away.
//
// Every config value Validate accepts has a meaning here, so Build does not
// fail on a validated config. It returns an error only for one that would
// not validate (a route naming an unknown upstream, an upstream without
// endpoints or with more than resilience.MaxEndpoints), or when a file an
// upstream's TLS names no longer reads as it did when it was validated.
func Build(cfg *config.Config, reg *metrics.Registry, log *zap.Logger, prev *Table) (*Table, error) {
	t := &Table{
		byHost:    make(map[string]*hostRoutes),
		upstreams: make(map[string]*Upstream, len(cfg.Upstreams)),
	}
	for name, uc := range cfg.Upstreams {
		if n := len(uc.Endpoints); n == 0 || n > resilience.MaxEndpoints {
			return nil, fmt.Errorf("upstream %q: %d endpoints (1 to %d)", name, n, resilience.MaxEndpoints)
		}
		u, err := buildUpstream(name, upstreamSettingsOf(uc), prev.upstream(name), log)
		if err != nil {
			return nil, fmt.Errorf("upstreams.%s.tls: %w", name, err)
		}
		u.setModes(upstreamModesOf(uc))
		t.upstreams[name] = u
	}
	regRoutes := make([]metrics.RouteConfig, 0, len(cfg.Routes))
	for i, rc := range cfg.Routes {
		u := t.upstreams[rc.Upstream]
		if u == nil {
			return nil, fmt.Errorf("routes[%d] %q: unknown upstream %q", i, rc.Name, rc.Upstream)
		}
		r := buildRoute(cfg, rc, u, prev.route(rc.Name))
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

// buildUpstream returns the upstream for settings s: prev, the running
// upstream of that name (nil if none), when it was built from the same
// settings, else a new one that keeps prev's breaker if the breaker's
// settings did not change.
func buildUpstream(name string, s upstreamSettings, prev *Upstream, log *zap.Logger) (*Upstream, error) {
	if u := prev.shared(s); u != nil {
		return u, nil
	}
	tc, err := upstreamTLS(s.tls)
	if err != nil {
		return nil, err
	}
	addrs := strings.Split(s.endpoints, endpointSep)
	u := &Upstream{settings: s, balancer: resilience.NewBalancer(s.balance, len(addrs), 0),
		attempts: make([]endpointAttempts, len(addrs))}
	for _, addr := range addrs {
		u.endpoints = append(u.endpoints, client.NewEndpoint(addr, s.maxConns, s.connectTimeout, tc))
	}
	if s.outlier.set {
		u.outlier = resilience.NewOutlier(s.outlier.v, len(addrs))
	}
	if h := s.health; h.set {
		u.health = resilience.NewHealth(resilience.HealthSettings{}, len(addrs))
		u.probe = client.NewProber(u.endpoints, h.v.path, h.v.interval, h.v.timeout, u.health)
	}
	if b := s.breaker; b.set {
		u.breaker = prev.carriedBreaker(b)
		if u.breaker == nil {
			var br *resilience.Breaker // shadow: its transitions refuse nothing, which the log says
			br = resilience.NewBreaker(name, b.v, func(name string, from, to resilience.State) {
				log.Warn("breaker state changed", zap.String("upstream", name),
					zap.Stringer("from", from), zap.Stringer("to", to), zap.Bool("shadow", br.Shadow()))
			})
			u.breaker = br
		}
		open := b.v.OpenTimeout
		if open <= 0 {
			open = resilience.DefaultOpenTimeout
		}
		u.breakerRetryAfter = retryAfter(open)
	}
	return u, nil
}

// buildRoute builds the route rc on upstream u. prev, the running route of
// that name (nil if none), lends its admission, hedge and budget where
// their settings did not change.
func buildRoute(cfg *config.Config, rc *config.Route, u *Upstream, prev *Route) *Route {
	p := routePoliciesOf(rc)
	r := &Route{
		policies:        p,
		name:            rc.Name,
		methods:         rc.Match.Methods,
		upstream:        u,
		maxBody:         cfg.Limits.MaxBodyBytes.Int64(),
		errors:          cause.NewBodies(rc.Name),
		perTry:          rc.PerTryTimeout.D(),
		serverTiming:    rc.ServerTiming,
		deadlineHeader:  cfg.DeadlineHeader,
		websocket:       slices.Contains(rc.Upgrades, config.UpgradeWebSocket),
		bufferRequests:  rc.Buffering.Request.On(),
		bufferResponses: rc.Buffering.Response.On(),
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
	if p.retry.set {
		r.retry = resilience.NewRetry(p.retry.v)
		r.retryShadow = rc.Retry.Mode == config.ModeShadow
	}
	if p.hedge.set {
		if r.hedge = prev.carriedHedge(p.hedge); r.hedge == nil {
			r.hedge = resilience.NewHedge(p.hedge.v)
		}
		r.hedgeShadow = rc.Hedge.Mode == config.ModeShadow
	}
	if p.retry.set || p.hedge.set {
		if r.budget = prev.carriedBudget(); r.budget == nil {
			r.budget = resilience.NewBudget(resilience.DefaultBudgetWindow, resilience.DefaultMinExtrasPerSecond)
		}
	}
	if sh := rc.Shed; sh != nil {
		if r.admission = prev.carriedAdmission(p.admission); r.admission == nil {
			r.admission = resilience.NewAdmission(p.admission.v)
		}
		r.shed = shedAnswer{status: sh.Status, retryAfter: []byte("1")}
		r.priorityHeader = sh.PriorityHeader
		r.priorityDefault = priority(sh.PriorityDefault)
	}
	r.buildFairness(rc, prev)
	return r
}

// hedgeWorkers bounds the hedge workers the route may keep busy: its
// attempts in flight at once (the primary and max_extra hedges) times the
// requests it may have in flight; none for a hedge in shadow mode, which
// sends nothing on a worker.
func (r *Route) hedgeWorkers() int {
	if r.hedge == nil || r.hedgeShadow {
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
	mc := metrics.RouteConfig{Name: r.name, Gauges: r.gauges, SLO: SLO(rc.SLO)}
	if r.hedge != nil || r.admission != nil {
		mc.OnTick = r.tick
	}
	return mc
}

// SLO returns a route's objectives as package metrics takes them (nil
// for nil): for the registry, and for the rules of "tailguard slo rules".
func SLO(s *config.SLO) *metrics.SLO {
	if s == nil {
		return nil
	}
	return &metrics.SLO{Latency: s.Latency.D(), LatencyTarget: s.LatencyTarget, Availability: s.Availability, Period: s.Period.D()}
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
	g.Fair, g.RateLimit = r.keyGauges()
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
