package proxy

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"tailguard/metrics"
)

// listenerErrors reads the listener's refusals back through the stats
// getter, by cause.
func listenerErrors(s *Server) map[string]uint64 {
	m := map[string]uint64{}
	for _, e := range s.gauges().Listener.Errors {
		m[e.Cause] = e.Count
	}
	return m
}

// TestListenerErrors provokes each refusal before routing with raw
// requests and reads it back, counted once under its cause and nowhere
// else; the open connections are counted, refused ones not.
func TestListenerErrors(t *testing.T) {
	up := startRaw(t, replyOK)
	srv, addr := startServer(t, `
listen: "127.0.0.1:0"
limits: {max_connections: 3, read_header_timeout: 200ms}
upstreams: {app: {endpoints: ["%s"]}}
routes: [{name: api, match: {host: known.example, path_prefix: /}, upstream: app}]
`, up.addr())
	const host = "Host: known.example\r\nConnection: close\r\n"
	tests := []struct {
		name, raw, cause, status string
	}{
		{"edge check", "GET / HTTP/2.0\r\n" + host + "\r\n", "bad_request", "400"},
		{"unparsable", "GET / HTTP/1.1\r\nHost known.example\r\n\r\n", "bad_request", "400"},
		{"no route", "GET / HTTP/1.1\r\nHost: other.example\r\nConnection: close\r\n\r\n", "no_route", "404"},
		{"header timeout", "GET / HTTP/1.1\r\nHost: known.example\r\n", "header_timeout", "408"},
		{"head too large", "GET / HTTP/1.1\r\n" + host + "X-Big: " + strings.Repeat("a", 20<<10) + "\r\n\r\n", "headers_too_large", "431"},
		{"too many headers", "GET / HTTP/1.1\r\n" + host + strings.Repeat("X-N: v\r\n", 101) + "\r\n", "too_many_headers", "431"},
		{"uri too long", "GET /" + strings.Repeat("a", 9<<10) + " HTTP/1.1\r\n" + host + "\r\n", "uri_too_long", "414"},
		{"uri too long, 100-continue", "POST /" + strings.Repeat("a", 9<<10) + " HTTP/1.1\r\n" + host +
			"Expect: 100-continue\r\nContent-Length: 5\r\n\r\n", "uri_too_long", "414"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := listenerErrors(srv)
			resp := rawRequest(t, addr, tt.raw)
			if !strings.HasPrefix(resp, "HTTP/1.1 "+tt.status+" ") {
				t.Fatalf("response %.80q, want %s", resp, tt.status)
			}
			assertOneMore(t, before, listenerErrors(srv), tt.cause)
		})
	}

	t.Run("connection limit", func(t *testing.T) {
		before := listenerErrors(srv)
		var held []*keptConn
		for range 3 {
			c := dialKept(t, addr)
			if status := c.do(t, "GET / HTTP/1.1\r\nHost: known.example\r\n\r\n"); status != 200 {
				t.Fatalf("connection under the cap: status %d", status)
			}
			held = append(held, c)
		}
		waitFor(t, "3 connections open", func() bool { return srv.gauges().Listener.Connections == 3 })
		if resp := rawRequest(t, addr, "GET / HTTP/1.1\r\n"+host+"\r\n"); !strings.HasPrefix(resp, "HTTP/1.1 503 ") {
			t.Fatalf("connection over the cap: %.80q", resp)
		}
		assertOneMore(t, before, listenerErrors(srv), "connection_limit")
		if n := srv.gauges().Listener.Connections; n != 3 {
			t.Errorf("%d connections open after a refusal, want 3", n)
		}
		for _, c := range held {
			c.Close()
		}
		waitFor(t, "no connection open", func() bool { return srv.gauges().Listener.Connections == 0 })
	})
}

// assertOneMore checks that after counts cause once more than before, and
// every other cause as often; every listener cause is reported.
func assertOneMore(t *testing.T, before, after map[string]uint64, cause string) {
	t.Helper()
	for _, c := range []string{"bad_request", "no_route", "header_timeout", "headers_too_large",
		"too_many_headers", "uri_too_long", "connection_limit"} {
		if _, ok := after[c]; !ok {
			t.Errorf("%s: not reported", c)
		}
	}
	for c, n := range after {
		want := before[c]
		if c == cause {
			want++
		}
		if n != want {
			t.Errorf("%s: %d refusals, want %d", c, n, want)
		}
	}
}

// TestEndpointGauges: an endpoint ejected by outlier detection, one
// failing its health check, and an upstream whose breaker opened, read
// back through the stats getter, and once through /stats.
func TestEndpointGauges(t *testing.T) {
	bad := startCounted(t, func(_ int64, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(502) })
	good := startCounted(t, func(_ int64, w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "ok") })
	sick := startCounted(t, func(_ int64, w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			w.WriteHeader(503)
		}
	})
	srv, addr := startServer(t, `
listen: "127.0.0.1:0"
upstreams:
  app:
    endpoints: ["%s", "%s"]
    balance: round_robin
    outlier: {consecutive_5xx: 2, ejection_time: 1m, max_ejected_percent: 50}
  checked:
    endpoints: ["%s", "%s"]
    health_check: {path: /healthz, interval: 20ms, timeout: 20ms}
  flaky:
    endpoints: ["%s"]
    breaker: {consecutive_failures: 2, open_timeout: 1m, half_open_requests: 1}
routes:
  - {name: app, match: {path_prefix: /app}, upstream: app}
  - {name: checked, match: {path_prefix: /checked}, upstream: checked}
  - {name: flaky, match: {path_prefix: /flaky}, upstream: flaky}
`, bad.addr, good.addr, sick.addr, good.addr, bad.addr)
	for range 6 { // round robin: bad, good, bad (ejected now), then good only
		do(t, addr, "GET", "/app", "")
	}
	for range 3 { // two 502s open the breaker; the third is refused
		do(t, addr, "GET", "/flaky", "")
	}
	waitFor(t, "the sick endpoint failing its health check", func() bool {
		return !upstreamGauges(t, srv, "checked").Endpoints[0].Healthy
	})

	app, checked, flaky := upstreamGauges(t, srv, "app"), upstreamGauges(t, srv, "checked"), upstreamGauges(t, srv, "flaky")
	tests := []struct {
		name string
		got  metrics.EndpointGauges
		want metrics.EndpointGauges // LatencyEWMA: only whether it is set
	}{
		{"ejected", app.Endpoints[0], metrics.EndpointGauges{Address: bad.addr, Healthy: true, Ejected: true, Requests: 2, Failures: 2, LatencyEWMA: 1}},
		{"serving", app.Endpoints[1], metrics.EndpointGauges{Address: good.addr, Healthy: true, Requests: 4, LatencyEWMA: 1}},
		{"unhealthy", checked.Endpoints[0], metrics.EndpointGauges{Address: sick.addr}},
		{"healthy", checked.Endpoints[1], metrics.EndpointGauges{Address: good.addr, Healthy: true}},
		{"behind an open breaker", flaky.Endpoints[0], metrics.EndpointGauges{Address: bad.addr, Healthy: true, Requests: 2, Failures: 2, LatencyEWMA: 1}},
	}
	for _, tt := range tests {
		got := tt.got
		if got.LatencyEWMA > 0 {
			got.LatencyEWMA = 1
		}
		if got != tt.want {
			t.Errorf("%s: %+v, want %+v", tt.name, got, tt.want)
		}
	}
	if app.Breaker != "" || flaky.Breaker != "open" {
		t.Errorf("breakers: app %q flaky %q, want none and open", app.Breaker, flaky.Breaker)
	}

	// The same figures reach /stats through the registry's getter.
	admin := metrics.NewAdmin(metrics.AdminOptions{Ready: func() bool { return true }, Config: func() any { return nil }, Stats: srv.reg})
	rec := httptest.NewRecorder()
	admin.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/stats", nil))
	var doc struct {
		Upstreams []struct {
			Name      string `json:"name"`
			Breaker   string `json:"breaker"`
			Endpoints []struct {
				Address  string `json:"address"`
				Ejected  bool   `json:"ejected"`
				Requests uint64 `json:"requests"`
			} `json:"endpoints"`
		} `json:"upstreams"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Upstreams) != 3 || doc.Upstreams[0].Name != "app" || doc.Upstreams[2].Breaker != "open" ||
		!doc.Upstreams[0].Endpoints[0].Ejected || doc.Upstreams[0].Endpoints[1].Requests != 4 {
		t.Errorf("/stats upstreams: %+v", doc.Upstreams)
	}
}

// upstreamGauges returns the named upstream's figures from the stats
// getter.
func upstreamGauges(t *testing.T, s *Server, name string) metrics.UpstreamGauges {
	t.Helper()
	for _, u := range s.gauges().Upstreams {
		if u.Name == name {
			return u
		}
	}
	t.Fatalf("upstream %q not reported", name)
	return metrics.UpstreamGauges{}
}

// TestEndpointGaugesAcrossReload: the figures are read from the current
// table, so an upstream a reload leaves unchanged keeps its counts, and
// one it changes starts afresh (and one it drops is gone).
func TestEndpointGaugesAcrossReload(t *testing.T) {
	up := startCounted(t, func(_ int64, w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "ok") })
	const yaml = `
listen: "127.0.0.1:0"
upstreams:
  kept: {endpoints: ["%s"]}
  changed: {endpoints: ["%s"], max_connections: %d}
routes:
  - {name: kept, match: {path_prefix: /kept}, upstream: kept}
  - {name: changed, match: {path_prefix: /changed}, upstream: changed}
`
	srv, addr := startServer(t, yaml, up.addr, up.addr, 10)
	do(t, addr, "GET", "/kept", "")
	do(t, addr, "GET", "/changed", "")
	if err := srv.Reload(mustParse(t, yaml, up.addr, up.addr, 20)); err != nil {
		t.Fatal(err)
	}
	if n := upstreamGauges(t, srv, "kept").Endpoints[0].Requests; n != 1 {
		t.Errorf("unchanged upstream: %d requests after the reload, want 1", n)
	}
	if n := upstreamGauges(t, srv, "changed").Endpoints[0].Requests; n != 0 {
		t.Errorf("changed upstream: %d requests after the reload, want 0", n)
	}
}
