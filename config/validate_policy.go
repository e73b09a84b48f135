package config

import "time"

// validatePolicies range-checks a route's optional policies.
func validatePolicies(r *report, p string, rt *Route) {
	if rt.Retry != nil {
		validateRetry(r, p+".retry", rt.Retry)
	}
	if rt.Hedge != nil {
		validateHedge(r, p+".hedge", rt.Hedge)
	}
	if rt.Shed != nil {
		validateShed(r, p+".shed", rt.Shed)
	}
	if rt.SLO != nil {
		validateSLO(r, p+".slo", rt.SLO)
	}
	if rt.RateLimit != nil {
		validateRateLimit(r, p+".rate_limit", rt.RateLimit)
	}
}

func validateRetry(r *report, p string, rt *Retry) {
	r.check(rt.Attempts >= 1 && rt.Attempts <= 10, p+".attempts", "must be from 1 to 10")
	r.check(ratio(rt.Budget), p+".budget", "must be from 0 to 1")
	r.check(rt.Backoff >= 0, p+".backoff", "must be >= 0")
	r.check(known(rt.Mode, modeWords), p+".mode", "unknown value %v", rt.Mode)
}

func validateHedge(r *report, p string, h *Hedge) {
	r.check(h.Delay.Percentile != 0 || h.Delay.Fixed > 0, p+".delay",
		"must be > 0: a duration like 20ms, or p90, p95 or p99")
	r.check(h.MinDelay >= 0, p+".min_delay", "must be >= 0")
	r.check(h.MaxDelay >= 0, p+".max_delay", "must be >= 0")
	r.check(h.MaxDelay == 0 || h.MinDelay <= h.MaxDelay, p+".min_delay", "must be <= max_delay (%v)", h.MaxDelay)
	r.check(h.MaxExtra >= 1 && h.MaxExtra <= 7, p+".max_extra", "must be 1 to 7")
	r.check(ratio(h.Budget), p+".budget", "must be from 0 to 1")
	r.check(known(h.Mode, modeWords), p+".mode", "unknown value %v", h.Mode)
}

func validateShed(r *report, p string, s *Shed) {
	r.check(s.MaxConcurrency.Adaptive || s.MaxConcurrency.N > 0, p+".max_concurrency",
		`must be a positive integer or "adaptive"`)
	r.check(s.Queue >= 0, p+".queue", "must be >= 0")
	if s.Queue > 0 {
		r.check(s.QueueTimeout > 0, p+".queue_timeout", "must be > 0")
		validateCoDel(r, p+".codel", s.CoDel, s.QueueTimeout)
	} else {
		const msg = "applies only with a queue (queue > 0)"
		r.check(!r.written(p+".queue_timeout", s.QueueTimeout != 0), p+".queue_timeout", msg)
		r.check(!r.written(p+".codel", s.CoDel != ShedCoDel{}), p+".codel", msg)
	}
	r.check(s.PriorityHeader == "" || isToken(s.PriorityHeader), p+".priority_header",
		"invalid header name %q", s.PriorityHeader)
	r.check(known(s.PriorityDefault, priorityWords), p+".priority_default", "unknown value %v", s.PriorityDefault)
	r.check(known(s.Mode, modeWords), p+".mode", "unknown value %v", s.Mode)
	r.check(s.Status == 503 || s.Status == 429, p+".status", "must be 503 or 429")
	validateFairBy(r, p, s)
	if s.MaxConcurrency.Adaptive {
		validateShedLimit(r, p+".limit", s.Limit)
	} else {
		r.check(!r.written(p+".limit", s.Limit != ShedLimit{}), p+".limit",
			`applies only with max_concurrency: adaptive`)
	}
}

// validateCoDel checks the queue discipline's settings; queueTimeout > 0.
func validateCoDel(r *report, p string, c ShedCoDel, queueTimeout Duration) {
	r.check(c.Target > 0, p+".target", "must be > 0")
	r.check(c.Target <= 0 || c.Target < queueTimeout, p+".target",
		"must be less than queue_timeout (%v), or the queue never counts as standing", queueTimeout)
	r.check(c.Interval > 0, p+".interval", "must be > 0")
}

func validateShedLimit(r *report, p string, l ShedLimit) {
	r.check(l.Min >= 1, p+".min", "must be >= 1")
	if l.Max < l.Min {
		r.add(p+".max", "must be >= min (%d)", l.Min)
		return
	}
	r.check(l.Initial >= l.Min && l.Initial <= l.Max, p+".initial",
		"must be from min (%d) to max (%d)", l.Min, l.Max)
}

// written reports whether the key at path was given: in the file (even as
// an empty mapping or a zero), or, for a Config built in code, as a
// non-zero value.
func (r *report) written(path string, nonZero bool) bool {
	return nonZero || r.src.has(path)
}

func validateSLO(r *report, p string, s *SLO) {
	r.check(s.Latency >= 0, p+".latency", "must be >= 0")
	r.check(s.LatencyTarget == 0 || openRatio(s.LatencyTarget), p+".latency_target", "must be between 0 and 1, exclusive")
	r.check(s.Availability == 0 || openRatio(s.Availability), p+".availability", "must be between 0 and 1, exclusive")
	r.check((s.Latency == 0) == (s.LatencyTarget == 0), p, "set latency and latency_target together")
	r.check(s.Latency != 0 || s.Availability != 0, p, "set latency and latency_target, or availability")
	r.check(s.Period > 0 && s.Period.D()%time.Hour == 0, p+".period", "must be a whole number of hours (or days), like 720h or 30d")
}

// ratio reports whether v is in [0, 1]; NaN is not.
func ratio(v float64) bool { return v >= 0 && v <= 1 }

// openRatio reports whether v is in (0, 1).
func openRatio(v float64) bool { return v > 0 && v < 1 }
