package proxy

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/zap"

	"tailguard/config"
	"tailguard/metrics"
	"tailguard/resilience"
)

// config validates upstreams against config.MaxEndpoints; the balancer,
// outlier detection and health checks hold resilience.MaxEndpoints. Build
// relies on the two being one limit.
func TestMaxEndpointsAgree(t *testing.T) {
	if config.MaxEndpoints != resilience.MaxEndpoints {
		t.Errorf("config.MaxEndpoints = %d, resilience.MaxEndpoints = %d", config.MaxEndpoints, resilience.MaxEndpoints)
	}
}

// configFiles are the config files in the repository: the examples that
// ship, and the test data of the config, proxy and end-to-end tests. Some
// are invalid on purpose.
func configFiles(t testing.TB) []string {
	t.Helper()
	var files []string
	for _, pattern := range []string{"../config/examples/*.yaml", "../config/testdata/*.yaml", "../testdata/*.yaml"} {
		m, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	if len(files) < 8 {
		t.Fatalf("found only %d config files: %q", len(files), files)
	}
	return files
}

// buildChecked builds cfg, failing t if Build refuses a validated config,
// then rebuilds it over itself, as a reload of an unchanged file does:
// every upstream must then be shared and every route keep its policies.
func buildChecked(t *testing.T, cfg *config.Config) {
	t.Helper()
	reg := metrics.NewRegistry(metrics.RegistryOptions{})
	tbl, err := Build(cfg, reg, zap.NewNop(), nil)
	if err != nil {
		t.Fatalf("Build refused a validated config: %v", err)
	}
	again, err := Build(cfg, reg, zap.NewNop(), tbl)
	if err != nil {
		t.Fatalf("Build refused a validated config over itself: %v", err)
	}
	for name, u := range tbl.upstreams {
		if again.upstreams[name] != u {
			t.Errorf("upstream %q: rebuilt from unchanged settings", name)
		}
	}
	for i, r := range tbl.routes {
		n := again.routes[i]
		if n.admission != r.admission || n.hedge != r.hedge || n.budget != r.budget {
			t.Errorf("route %q: a policy was rebuilt from unchanged settings", r.name)
		}
	}
}

// TestBuildEveryConfigFile: Build accepts every config file that
// validates, and every example validates.
func TestBuildEveryConfigFile(t *testing.T) {
	for _, name := range configFiles(t) {
		t.Run(filepath.ToSlash(name), func(t *testing.T) {
			cfg, err := config.Load(name)
			if err != nil {
				if filepath.Base(filepath.Dir(name)) == "examples" {
					t.Fatalf("an example does not validate: %v", err)
				}
				t.Skip("invalid on purpose")
			}
			buildChecked(t, cfg)
		})
	}
}

// FuzzBuild checks Build's promise on configs near the repository's: any
// YAML that config.Parse accepts builds, and builds again over itself.
func FuzzBuild(f *testing.F) {
	for _, name := range configFiles(f) {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		fmt.Sprintf(reloadBase, "127.0.0.1:1", "2s"),
		"upstreams: {app: {endpoints: ['127.0.0.1:1'], balance: least_request}}\n" +
			"routes: [{name: a, upstream: app, retry: {attempts: 3, on: [timeout, '429', '599']}}]\n",
		"upstreams: {app: {endpoints: ['127.0.0.1:1', '127.0.0.1:2'], balance: round_robin, outlier: {consecutive_5xx: 1, ejection_time: 1s}}}\n" +
			"routes: [{name: a, upstream: app, shed: {max_concurrency: 3, queue: 0, priority_default: sheddable, mode: shadow}}]\n",
		"upstreams: {app: {endpoints: ['127.0.0.1:1'], breaker: {failure_ratio: 0.5, min_requests: 10, interval: 10s}}}\n" +
			"routes: [{name: a, upstream: app, hedge: {delay: 20ms, max_extra: 7, budget: 0}, shed: {max_concurrency: adaptive, priority_default: critical}}]\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := config.Parse("fuzz.yaml", data)
		if err != nil {
			return
		}
		buildChecked(t, cfg)
	})
}

// TestBuildMapsVocabulary checks each config word against the run-time
// value Build makes of it.
func TestBuildMapsVocabulary(t *testing.T) {
	tests := []struct {
		name     string
		upstream string // the upstream's extra keys
		route    string // the route's extra keys
		check    func(*Upstream, *Route) bool
	}{
		{"balance absent", "", "",
			func(u *Upstream, _ *Route) bool { return u.settings.balance == resilience.P2C }},
		{"balance p2c", "balance: p2c", "",
			func(u *Upstream, _ *Route) bool { return u.settings.balance == resilience.P2C }},
		{"balance round_robin", "balance: round_robin", "",
			func(u *Upstream, _ *Route) bool { return u.settings.balance == resilience.RoundRobin }},
		{"balance least_request", "balance: least_request", "",
			func(u *Upstream, _ *Route) bool { return u.settings.balance == resilience.LeastRequest }},
		{"retry.on reasons", "", "retry: {attempts: 2, on: [connect_failure, reset, timeout]}",
			func(_ *Upstream, r *Route) bool {
				on := r.policies.retry.v.On
				return on.Matches(0, resilience.ConnectFailure) && on.Matches(0, resilience.Reset) &&
					on.Matches(0, resilience.Timeout) && !on.Matches(0, resilience.BadResponse) && !on.Matches(503, resilience.ReasonNone)
			}},
		{"retry.on statuses", "", "retry: {attempts: 2, on: ['400', '503', '599']}",
			func(_ *Upstream, r *Route) bool {
				on := r.policies.retry.v.On
				return on.Matches(400, resilience.ReasonNone) && on.Matches(503, resilience.ReasonNone) &&
					on.Matches(599, resilience.ReasonNone) && !on.Matches(502, resilience.ReasonNone) && !on.Matches(0, resilience.Reset)
			}},
		{"retry.on empty", "", "retry: {attempts: 2}",
			func(_ *Upstream, r *Route) bool { return r.policies.retry.v.On == resilience.RetryOn{} }},
		{"priority_default absent", "", "shed: {max_concurrency: 1}",
			func(_ *Upstream, r *Route) bool { return r.priorityDefault == resilience.Default }},
		{"priority_default critical", "", "shed: {max_concurrency: 1, priority_default: critical}",
			func(_ *Upstream, r *Route) bool { return r.priorityDefault == resilience.Critical }},
		{"priority_default sheddable", "", "shed: {max_concurrency: 1, priority_default: sheddable}",
			func(_ *Upstream, r *Route) bool { return r.priorityDefault == resilience.Sheddable }},
		{"mode absent", "", "shed: {max_concurrency: 1}",
			func(_ *Upstream, r *Route) bool { return !r.policies.admission.v.Shadow }},
		{"mode enforce", "", "shed: {max_concurrency: 1, mode: enforce}",
			func(_ *Upstream, r *Route) bool { return !r.policies.admission.v.Shadow }},
		{"mode shadow", "", "shed: {max_concurrency: 1, mode: shadow}",
			func(_ *Upstream, r *Route) bool { return r.policies.admission.v.Shadow }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := mustParse(t, "upstreams:\n  app:\n    endpoints: ['127.0.0.1:1']\n    %s\nroutes:\n  - name: r\n    upstream: app\n    %s\n",
				tt.upstream, tt.route)
			tbl, err := Build(cfg, metrics.NewRegistry(metrics.RegistryOptions{}), zap.NewNop(), nil)
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(tbl.upstreams["app"], tbl.routes[0]) {
				t.Errorf("upstream %+v\nroute policies %+v, priority default %v", tbl.upstreams["app"].settings, tbl.routes[0].policies, tbl.routes[0].priorityDefault)
			}
		})
	}
}
