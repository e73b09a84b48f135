package proxy

import (
	"strings"
	"testing"

	"go.uber.org/zap"

	"tailguard/metrics"
)

// carryBase is the config each carry case edits: an upstream with a
// breaker, and a route with every policy a reload may carry.
const carryBase = `
upstreams:
  app:
    endpoints: ["127.0.0.1:1"]
    breaker: {consecutive_failures: 2}
routes:
  - name: api
    upstream: app
    timeout: 2s
    retry: {attempts: 2, on: [reset]}
    hedge: {delay: p95}
    shed: {max_concurrency: adaptive}
`

// fate is what a reload does to one run-time object.
type fate int

const (
	kept    fate = iota // the new table holds the old object
	rebuilt             // the new table holds a new object
	absent              // the new table holds none
)

func (f fate) String() string { return [...]string{"kept", "rebuilt", "absent"}[f] }

// fateOf tells what became of old in next.
func fateOf[T any](old, next *T) fate {
	switch {
	case next == nil:
		return absent
	case next == old:
		return kept
	}
	return rebuilt
}

// TestCarry builds carryBase, then a copy with edits over it, as a reload
// does, and checks which objects the new table kept.
func TestCarry(t *testing.T) {
	type fates struct{ upstream, breaker, admission, hedge, budget fate }
	all := fates{kept, kept, kept, kept, kept}
	tests := []struct {
		name  string
		edits []string // old, new, old, new, ... replaced in carryBase
		want  fates
	}{
		{"nothing changed", nil, all},
		{"route timeout", []string{"timeout: 2s", "timeout: 3s"}, all},
		{"retry settings", []string{"attempts: 2", "attempts: 3"}, all},
		{"retry.on", []string{"on: [reset]", "on: [reset, '503']"}, all},
		{"endpoints", []string{`["127.0.0.1:1"]`, `["127.0.0.1:1", "127.0.0.1:2"]`},
			fates{rebuilt, kept, kept, kept, kept}},
		{"endpoint order", []string{`["127.0.0.1:1"]`, `["127.0.0.1:2", "127.0.0.1:1"]`},
			fates{rebuilt, kept, kept, kept, kept}},
		{"balance", []string{"breaker:", "balance: round_robin\n    breaker:"},
			fates{rebuilt, kept, kept, kept, kept}},
		{"balance written as its default", []string{"breaker:", "balance: p2c\n    breaker:"}, all},
		{"connect timeout", []string{"breaker:", "connect_timeout: 2s\n    breaker:"},
			fates{rebuilt, kept, kept, kept, kept}},
		{"outlier added", []string{"breaker:", "outlier: {consecutive_5xx: 3, ejection_time: 1s}\n    breaker:"},
			fates{rebuilt, kept, kept, kept, kept}},
		{"health check added", []string{"breaker:", "health_check: {path: /h, interval: 1s, timeout: 1s}\n    breaker:"},
			fates{rebuilt, kept, kept, kept, kept}},
		{"breaker settings", []string{"consecutive_failures: 2", "consecutive_failures: 3"},
			fates{rebuilt, rebuilt, kept, kept, kept}},
		{"breaker mode: switched in place", []string{"consecutive_failures: 2", "consecutive_failures: 2, mode: shadow"}, all},
		{"hedge mode: switched in place", []string{"delay: p95", "delay: p95, mode: shadow"}, all},
		{"retry mode: switched in place", []string{"on: [reset]", "on: [reset], mode: shadow"}, all},
		{"breaker default written out", []string{"consecutive_failures: 2", "consecutive_failures: 2, open_timeout: 5s"}, all},
		{"breaker removed", []string{"breaker: {consecutive_failures: 2}", "max_connections: 512"},
			fates{rebuilt, absent, kept, kept, kept}},
		{"upstream renamed", []string{"  app:", "  app2:", "upstream: app", "upstream: app2"},
			fates{rebuilt, rebuilt, kept, kept, kept}},
		{"shed limit", []string{"max_concurrency: adaptive", "max_concurrency: 8"},
			fates{kept, kept, rebuilt, kept, kept}},
		{"shed mode", []string{"max_concurrency: adaptive", "max_concurrency: adaptive, mode: shadow"},
			fates{kept, kept, rebuilt, kept, kept}},
		{"shed status: not an admission setting", []string{"max_concurrency: adaptive", "max_concurrency: adaptive, status: 429"}, all},
		{"shed priority: not an admission setting", []string{"max_concurrency: adaptive", "max_concurrency: adaptive, priority_default: critical"}, all},
		{"shed removed", []string{"    shed: {max_concurrency: adaptive}\n", ""},
			fates{kept, kept, absent, kept, kept}},
		{"hedge delay", []string{"delay: p95", "delay: p99"},
			fates{kept, kept, kept, rebuilt, kept}},
		{"hedge removed, retry left", []string{"    hedge: {delay: p95}\n", ""},
			fates{kept, kept, kept, absent, kept}},
		{"retry and hedge removed", []string{"    hedge: {delay: p95}\n", "", "    retry: {attempts: 2, on: [reset]}\n", ""},
			fates{kept, kept, kept, absent, absent}},
		{"route renamed", []string{"name: api", "name: api2"},
			fates{kept, kept, rebuilt, rebuilt, rebuilt}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			next := carryBase
			for i := 0; i+1 < len(tt.edits); i += 2 {
				if !strings.Contains(next, tt.edits[i]) {
					t.Fatalf("edit %q: not in the config", tt.edits[i])
				}
				next = strings.ReplaceAll(next, tt.edits[i], tt.edits[i+1])
			}
			reg := metrics.NewRegistry(metrics.RegistryOptions{})
			before, err := Build(mustParse(t, carryBase), reg, zap.NewNop(), nil)
			if err != nil {
				t.Fatal(err)
			}
			cfg := mustParse(t, "%s", next)
			after, err := Build(cfg, reg, zap.NewNop(), before)
			if err != nil {
				t.Fatal(err)
			}
			u0, r0 := before.upstreams["app"], before.routes[0]
			r1 := after.routes[0]
			u1 := r1.upstream
			got := fates{
				upstream:  fateOf(u0, u1),
				breaker:   fateOf(u0.breaker, u1.breaker),
				admission: fateOf(r0.admission, r1.admission),
				hedge:     fateOf(r0.hedge, r1.hedge),
				budget:    fateOf(r0.budget, r1.budget),
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
			if r1 == r0 {
				t.Error("the route was not rebuilt")
			}
			rc := cfg.Routes[0]
			if u1.settings != upstreamSettingsOf(cfg.Upstreams[rc.Upstream]) || r1.policies != routePoliciesOf(rc) {
				t.Error("the new table does not hold the new settings")
			}
		})
	}
}
