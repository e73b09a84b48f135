package config

// validateUpstreams checks every upstream and its optional policies.
func (c *Config) validateUpstreams(r *report) {
	if len(c.Upstreams) == 0 {
		r.add("upstreams", "at least one upstream is required")
		return
	}
	for _, n := range sortedNames(c.Upstreams) {
		p := joinPath("upstreams", n)
		if msg := nameProblem(n); msg != "" {
			r.add(p, "upstream name %s", msg)
		}
		u := c.Upstreams[n]
		if u == nil {
			r.add(p, "must not be empty: endpoints are required")
			continue
		}
		validateUpstream(r, p, u)
	}
}

func validateUpstream(r *report, p string, u *Upstream) {
	r.check(len(u.Endpoints) > 0, p+".endpoints", "at least one endpoint is required")
	r.check(len(u.Endpoints) <= MaxEndpoints, p+".endpoints", "at most %d endpoints", MaxEndpoints)
	seen := map[string]bool{}
	for i, e := range u.Endpoints {
		ep := p + ".endpoints" + index(i)
		if msg := hostPortProblem(e, 1, false); msg != "" {
			r.add(ep, "invalid endpoint %q: %s", e, msg)
		}
		r.check(!seen[e], ep, "duplicate endpoint %q", e)
		seen[e] = true
	}
	r.check(known(u.Balance, balanceWords), p+".balance", "unknown value %v", u.Balance)
	r.check(u.MaxConnections > 0, p+".max_connections", "must be > 0")
	validateUpstreamTLS(r, p+".tls", u.TLS)
	r.check(u.ConnectTimeout > 0, p+".connect_timeout", "must be > 0")
	if u.Breaker != nil {
		validateBreaker(r, p+".breaker", u.Breaker)
	}
	if u.Outlier != nil {
		validateOutlier(r, p+".outlier", u.Outlier)
	}
	if u.HealthCheck != nil {
		validateHealthCheck(r, p+".health_check", u.HealthCheck)
	}
}

func validateBreaker(r *report, p string, b *Breaker) {
	r.check(b.ConsecutiveFailures >= 0, p+".consecutive_failures", "must be >= 0")
	r.check(b.FailureRatio == 0 || b.FailureRatio > 0 && b.FailureRatio <= 1, p+".failure_ratio",
		"must be in (0, 1]")
	r.check(b.ConsecutiveFailures > 0 || b.FailureRatio != 0, p,
		"set consecutive_failures or failure_ratio, or the breaker never opens")
	r.check(b.MinRequests >= 0, p+".min_requests", "must be >= 0")
	r.check(b.Interval >= 0, p+".interval", "must be >= 0")
	r.check(b.OpenTimeout > 0, p+".open_timeout", "must be > 0")
	r.check(b.HalfOpenRequests >= 1, p+".half_open_requests", "must be >= 1")
	r.check(known(b.Mode, modeWords), p+".mode", "unknown value %v", b.Mode)
}

// validateOutlier checks outlier detection. consecutive_5xx is required
// unless latency_factor is set: latency alone may eject.
func validateOutlier(r *report, p string, o *Outlier) {
	latency := o.LatencyFactor != 0
	r.check(o.Consecutive5xx > 0 || latency && !r.written(p+".consecutive_5xx", o.Consecutive5xx != 0),
		p+".consecutive_5xx", "must be > 0")
	r.check(o.LatencyFactor == 0 || o.LatencyFactor > 1, p+".latency_factor",
		"must be > 1: an endpoint is ejected when its tail latency is at least this many times its peers'")
	r.check(known(o.Mode, modeWords), p+".mode", "unknown value %v", o.Mode)
	r.check(o.EjectionTime > 0, p+".ejection_time", "must be > 0")
	r.check(o.MaxEjectedPercent >= 1 && o.MaxEjectedPercent <= 100, p+".max_ejected_percent",
		"must be from 1 to 100")
}

func validateHealthCheck(r *report, p string, h *HealthCheck) {
	r.check(len(h.Path) > 0 && h.Path[0] == '/', p+".path", "must start with /")
	r.check(h.Interval > 0, p+".interval", "must be > 0")
	r.check(h.Timeout > 0, p+".timeout", "must be > 0")
	r.check(h.Timeout <= h.Interval || h.Interval <= 0, p+".timeout", "must be <= interval (%v)", h.Interval)
}
