package proxy

import (
	"tailguard/config"
	"time"

	"tailguard/resilience"
)

// What a reload keeps. DESIGN.md promises that per-route metrics (kept by
// the metrics registry, by route name) and breaker state survive a reload;
// tailguard also keeps what would be costly or wrong to lose: connection
// pools, learned latencies, adaptive limits, live hedge delays and budget
// windows. Each is kept only while its own settings are unchanged, so a
// changed setting always takes effect.
//
// Settings are plain values compared with ==: every run-time object keeps
// the settings it was built from (Upstream.settings, Route.policies), and
// Build compares them with the new config's before building anything.
//
//	upstream                 kept whole if its upstreamSettings are equal
//	upstream's breaker       kept if the upstream is rebuilt with equal breaker settings
//	route's admission        kept if its AdmissionSettings are equal
//	route's hedge delay      kept if its HedgeSettings are equal
//	route's budget window    kept if the old and new route both retry or hedge
//	route's rate limiter     kept, with every client's state, if its RateLimitSettings and key are equal
//
// A route itself is always rebuilt (it is cheap); the kept parts are
// shared by the old and new route while requests drain from the old.
//
// A policy's mode (enforce or shadow) is not a setting in this sense:
// switching it keeps the policy and its state. The breaker's and the
// outlier detection's modes are switched in place on the upstream kept
// (upstreamModes, Upstream.setModes); a route's retry and hedge modes are
// fields of the rebuilt route, beside the hedge delay and budget kept.

// optional is a settings value that may be absent: a policy not
// configured. Unlike a pointer it compares by value with ==, so two
// absent policies are equal, and two present ones are equal when their
// settings are. The zero value is absent.
type optional[T comparable] struct {
	set bool
	v   T
}

// some returns v, present.
func some[T comparable](v T) optional[T] { return optional[T]{set: true, v: v} }

// upstreamSettings is everything an Upstream is built from, as one
// comparable value.
type upstreamSettings struct {
	// endpoints are the host:port addresses, in order (endpoint i is bit i
	// of the balancer's sets), joined by endpointSep. A string keeps the
	// struct comparable with == whatever the number of endpoints, where a
	// slice would not be and a [MaxEndpoints]string array would copy a
	// kilobyte per comparison.
	endpoints      string
	balance        resilience.Policy
	maxConns       int // per endpoint
	connectTimeout time.Duration
	breaker        optional[resilience.BreakerSettings]
	outlier        optional[resilience.OutlierSettings]
	health         optional[healthCheck]
	tls            optional[config.UpstreamTLS]
}

// endpointSep joins upstreamSettings.endpoints: config validates every
// endpoint as host:port, which never holds a comma, so the join is
// unambiguous.
const endpointSep = ","

// healthCheck is how an upstream's endpoints are probed.
type healthCheck struct {
	path              string
	interval, timeout time.Duration
}

// routePolicies are the settings a route's policies are built from.
type routePolicies struct {
	retry     optional[resilience.RetrySettings]
	hedge     optional[resilience.HedgeSettings]
	admission optional[resilience.AdmissionSettings]
	rateLimit optional[resilience.RateLimitSettings]
}

// upstream returns the upstream called name in t, or nil (also for a nil t).
func (t *Table) upstream(name string) *Upstream {
	if t == nil {
		return nil
	}
	return t.upstreams[name]
}

// route returns the route called name in t, or nil.
func (t *Table) route(name string) *Route {
	if t == nil {
		return nil
	}
	for _, r := range t.routes {
		if r.name == name {
			return r
		}
	}
	return nil
}

// shared returns u if it was built from s, else nil; u may be nil. The new
// table then shares u whole, connections and all.
func (u *Upstream) shared(s upstreamSettings) *Upstream {
	if u == nil || u.settings != s {
		return nil
	}
	return u
}

// carriedBreaker returns u's breaker if it was built from b, else nil; u
// may be nil.
func (u *Upstream) carriedBreaker(b optional[resilience.BreakerSettings]) *resilience.Breaker {
	if u == nil || !b.set || u.settings.breaker != b {
		return nil
	}
	return u.breaker
}

// carriedAdmission returns r's admission (its limit, and the permits in
// flight) if it was built from s, else nil; r may be nil.
func (r *Route) carriedAdmission(s optional[resilience.AdmissionSettings]) *resilience.Admission {
	if r == nil || !s.set || r.policies.admission != s {
		return nil
	}
	return r.admission
}

// carriedHedge returns r's hedge (its live delay) if it was built from s,
// else nil; r may be nil.
func (r *Route) carriedHedge(s optional[resilience.HedgeSettings]) *resilience.Hedge {
	if r == nil || !s.set || r.policies.hedge != s {
		return nil
	}
	return r.hedge
}

// carriedBudget returns r's budget window, or nil if r has none; r may be
// nil. A budget has no settings of its own (its window and minimum are
// constants), and the ratios that draw on it are the retry's and the
// hedge's.
func (r *Route) carriedBudget() *resilience.Budget {
	if r == nil {
		return nil
	}
	return r.budget
}
