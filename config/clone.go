package config

import (
	"maps"
	"slices"
)

// Redacted returns a copy of c that is safe to show, for the admin /config
// endpoint and logs: AdminToken, when set, reads "REDACTED". c is not
// changed and shares nothing mutable with the copy.
func (c *Config) Redacted() *Config {
	cp := c.clone()
	if cp.AdminToken != "" {
		cp.AdminToken = "REDACTED"
	}
	return cp
}

// clone returns a deep copy of c; the source locations are shared, as
// they are never changed in place.
func (c *Config) clone() *Config {
	cp := *c
	cp.TrustedProxies = slices.Clone(c.TrustedProxies)
	cp.TLS = clonePtr(c.TLS)
	if c.Upstreams != nil {
		cp.Upstreams = make(map[string]*Upstream, len(c.Upstreams))
		for name, u := range c.Upstreams {
			cp.Upstreams[name] = u.clone()
		}
	}
	if c.Routes != nil {
		cp.Routes = make([]*Route, len(c.Routes))
		for i, r := range c.Routes {
			cp.Routes[i] = r.clone()
		}
	}
	return &cp
}

func (u *Upstream) clone() *Upstream {
	if u == nil {
		return nil
	}
	cp := *u
	cp.Endpoints = slices.Clone(u.Endpoints)
	cp.Breaker = clonePtr(u.Breaker)
	cp.Outlier = clonePtr(u.Outlier)
	cp.HealthCheck = clonePtr(u.HealthCheck)
	cp.TLS = clonePtr(u.TLS)
	return &cp
}

func (r *Route) clone() *Route {
	if r == nil {
		return nil
	}
	cp := *r
	cp.Match.Methods = slices.Clone(r.Match.Methods)
	cp.Timeout = clonePtr(r.Timeout)
	cp.MaxBodyBytes = clonePtr(r.MaxBodyBytes)
	cp.Retry = clonePtr(r.Retry)
	cp.Hedge = clonePtr(r.Hedge)
	cp.Shed = clonePtr(r.Shed)
	if cp.Shed != nil {
		cp.Shed.FairBy = clonePtr(r.Shed.FairBy)
	}
	cp.RateLimit = clonePtr(r.RateLimit)
	cp.SLO = clonePtr(r.SLO)
	cp.Upgrades = slices.Clone(r.Upgrades)
	cp.RequestHeaders = r.RequestHeaders.clone()
	cp.ResponseHeaders = r.ResponseHeaders.clone()
	return &cp
}

func (h *HeaderRules) clone() *HeaderRules {
	if h == nil {
		return nil
	}
	return &HeaderRules{Set: maps.Clone(h.Set), Remove: slices.Clone(h.Remove)}
}

// clonePtr returns a pointer to a copy of *p, or nil.
func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}
