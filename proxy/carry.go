package proxy

import (
	"reflect"

	"tailguard/config"
)

// What a reload keeps. DESIGN.md promises that per-route metrics (kept by
// the metrics registry, by route name) and breaker state survive a reload;
// tailguard also keeps what would be costly or wrong to lose: connection
// pools, learned latencies, adaptive limits, live hedge delays and budget
// windows. Each is kept only while its own settings are unchanged, so a
// changed setting always takes effect.

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

// unchangedUpstream returns t's upstream called name if its settings equal
// spec: then the new table shares it whole, connections and all.
func (t *Table) unchangedUpstream(name string, spec *config.Upstream) *Upstream {
	if u := t.upstream(name); u != nil && reflect.DeepEqual(u.spec, spec) {
		return u
	}
	return nil
}

// carry keeps prev's breaker, if the breaker's settings did not change.
func (u *Upstream) carry(prev *Upstream) {
	if prev != nil && u.breaker != nil && prev.breaker != nil &&
		reflect.DeepEqual(u.spec.Breaker, prev.spec.Breaker) {
		u.breaker = prev.breaker
		u.breakerRetryAfter = prev.breakerRetryAfter
	}
}

// carry keeps prev's admission (its limit, and the permits in flight),
// hedge delay and budget window, each if its settings did not change.
func (r *Route) carry(prev *Route) {
	if prev == nil {
		return
	}
	if r.admission != nil && prev.admission != nil && reflect.DeepEqual(r.spec.Shed, prev.spec.Shed) {
		r.admission = prev.admission
	}
	if r.hedge != nil && prev.hedge != nil && reflect.DeepEqual(r.spec.Hedge, prev.spec.Hedge) {
		r.hedge = prev.hedge
	}
	if r.budget != nil && prev.budget != nil {
		r.budget = prev.budget
	}
}
