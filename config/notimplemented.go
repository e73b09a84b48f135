package config

// notImplemented rejects keys whose behaviour is not built yet, so that a
// config never silently does less than it says. Their values are still
// range-checked by Validate; as each feature lands, delete its line here.
func notImplemented(c *Config, r *report) {
	const msg = "not implemented yet"
	for _, n := range sortedNames(c.Upstreams) {
		u, p := c.Upstreams[n], joinPath("upstreams", n)
		if u == nil {
			continue
		}
		r.check(u.Breaker == nil, p+".breaker", msg)
		r.check(u.Outlier == nil, p+".outlier", msg)
		r.check(u.HealthCheck == nil, p+".health_check", msg)
		r.check(u.Balance != "p2c" && u.Balance != "least_request", p+".balance", "%s: %s (use round_robin)", u.Balance, msg)
	}
	for i, rt := range c.Routes {
		if rt == nil {
			continue
		}
		p := "routes" + index(i)
		r.check(rt.PerTryTimeout == 0, p+".per_try_timeout", msg)
		r.check(rt.Retry == nil, p+".retry", msg)
		r.check(rt.Hedge == nil, p+".hedge", msg)
		r.check(rt.Shed == nil, p+".shed", msg)
		r.check(rt.SLO == nil, p+".slo", msg)
		r.check(!rt.ServerTiming, p+".server_timing", msg)
	}
}
