package proxy

import (
	"fmt"
	"strings"

	"tailguard/config"
)

// Build turns a validated config into a routing table. It is the one place
// where config becomes run-time objects: every per-route and per-upstream
// object a request needs exists before the first request.
func Build(cfg *config.Config) (*Table, error) {
	t := &Table{
		byHost:    make(map[string]*hostRoutes),
		upstreams: make(map[string]*Upstream, len(cfg.Upstreams)),
	}
	for name, uc := range cfg.Upstreams {
		if len(uc.Endpoints) == 0 {
			return nil, fmt.Errorf("upstream %q: no endpoints", name)
		}
		u := &Upstream{name: name}
		for _, addr := range uc.Endpoints {
			u.endpoints = append(u.endpoints, newEndpoint(addr, uc.MaxConnections, uc.ConnectTimeout.D()))
		}
		t.upstreams[name] = u
	}
	for i, rc := range cfg.Routes {
		u := t.upstreams[rc.Upstream]
		if u == nil {
			return nil, fmt.Errorf("routes[%d] %q: unknown upstream %q", i, rc.Name, rc.Upstream)
		}
		r := &Route{
			name:     rc.Name,
			methods:  rc.Match.Methods,
			upstream: u,
			maxBody:  cfg.Limits.MaxBodyBytes.Int64(),
			errors:   newErrorBodies(rc.Name),
		}
		if rc.Timeout != nil {
			r.timeout = rc.Timeout.D()
		}
		if rc.MaxBodyBytes != nil {
			r.maxBody = rc.MaxBodyBytes.Int64()
			if r.maxBody == 0 {
				r.maxBody = -1
			}
		}
		t.routes = append(t.routes, r)
		hr := &t.anyHost
		if h := strings.Trim(strings.ToLower(rc.Match.Host), "[]"); h != "" {
			if hr = t.byHost[h]; hr == nil {
				hr = &hostRoutes{}
				t.byHost[h] = hr
			}
		}
		hr.add(rc.Match.PathPrefix, r)
	}
	return t, nil
}

// Routes lists the table's routes in config order.
func (t *Table) Routes() []*Route { return t.routes }

// closeIdle closes idle upstream connections of every upstream.
func (t *Table) closeIdle() {
	for _, u := range t.upstreams {
		u.closeIdle()
	}
}
