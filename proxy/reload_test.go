package proxy

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"

	"go.uber.org/zap"

	"tailguard/config"
	"tailguard/metrics"
)

func mustParse(t *testing.T, yaml string, args ...any) *config.Config {
	t.Helper()
	cfg, err := config.Parse("reload.yaml", []byte(fmt.Sprintf(yaml, args...)))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

const reloadBase = `
listen: "127.0.0.1:0"
upstreams:
  app:
    endpoints: ["%s"]
    breaker: {consecutive_failures: 2, open_timeout: 1m}
routes:
  - name: api
    match: {path_prefix: /}
    upstream: app
    timeout: %s
    shed: {max_concurrency: adaptive}
    hedge: {delay: p95, max_extra: 1}
`

// TestReloadCarriesState: a reload keeps what did not change (the
// upstream's pool and breaker, the route's admission and hedge state, the
// metrics) and applies what did.
func TestReloadCarriesState(t *testing.T) {
	up := startCounted(t, func(_ int64, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(500) })
	reg := metrics.NewRegistry(metrics.RegistryOptions{})
	s, err := NewServer(mustParse(t, reloadBase, up.addr, "2s"), reg, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer s.table.Load().stop()
	before := s.table.Load()
	u0, r0 := before.upstreams["app"], before.routes[0]

	if err := s.Reload(mustParse(t, reloadBase, up.addr, "3s")); err != nil {
		t.Fatal(err)
	}
	after := s.table.Load()
	u1, r1 := after.upstreams["app"], after.routes[0]
	if u1 != u0 {
		t.Error("an unchanged upstream was rebuilt (its connections lost)")
	}
	if r1 == r0 || r1.timeout != 3e9 {
		t.Errorf("the changed timeout did not take effect: %v", r1.timeout)
	}
	if r1.admission != r0.admission || r1.hedge != r0.hedge || r1.metrics != r0.metrics {
		t.Error("admission, hedge or metrics state was not carried over")
	}

	// A changed endpoint list rebuilds the upstream but keeps its breaker.
	other := startCounted(t, func(_ int64, w http.ResponseWriter, _ *http.Request) {})
	if err := s.Reload(mustParse(t, strings.Replace(reloadBase, `["%s"]`, `["%s", "%s"]`, 1), up.addr, other.addr, "3s")); err != nil {
		t.Fatal(err)
	}
	u2 := s.table.Load().upstreams["app"]
	if u2 == u1 || u2.breaker != u1.breaker {
		t.Error("a changed upstream must be rebuilt, keeping its breaker")
	}
}

func TestReloadRefusesListenerChanges(t *testing.T) {
	up := startCounted(t, func(_ int64, w http.ResponseWriter, _ *http.Request) {})
	s, err := NewServer(mustParse(t, reloadBase, up.addr, "2s"), metrics.NewRegistry(metrics.RegistryOptions{}), zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer s.table.Load().stop()
	before := s.table.Load()
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()
	changed := strings.Replace(reloadBase, `listen: "127.0.0.1:0"`, `listen: "`+ln.Addr().String()+`"
limits: {max_body_bytes: 1MiB}`, 1)
	err = s.Reload(mustParse(t, changed, up.addr, "5s"))
	if err == nil || !strings.Contains(err.Error(), "listen: changing it needs a restart") ||
		!strings.Contains(err.Error(), "limits: changing it needs a restart") {
		t.Fatalf("err = %v", err)
	}
	if s.table.Load() != before {
		t.Error("a refused reload replaced the table")
	}
}
