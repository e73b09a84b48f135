package proxy

import (
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

// TestOutlierEjection: an endpoint answering 5xx is ejected and traffic
// goes to the other one until its ejection time has passed; then it comes
// back, on a share of the picks that grows over its slow start.
func TestOutlierEjection(t *testing.T) {
	bad := startCounted(t, func(_ int64, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(502) })
	good := startCounted(t, func(_ int64, w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "ok") })
	addr := startProxy(t, `
listen: "127.0.0.1:0"
upstreams:
  app:
    endpoints: ["%s", "%s"]
    balance: round_robin
    outlier: {consecutive_5xx: 2, ejection_time: 300ms, max_ejected_percent: 50}
routes: [{name: api, match: {path_prefix: /}, upstream: app}]
`, bad.addr, good.addr)
	for range 6 {
		do(t, addr, "GET", "/", "")
	}
	ejected := bad.n.Load()
	if ejected != 2 {
		t.Fatalf("the bad endpoint got %d requests before ejection, want 2", ejected)
	}
	for range 10 {
		if status, _, _ := do(t, addr, "GET", "/", ""); status != 200 {
			t.Fatalf("status %d while the bad endpoint is ejected", status)
		}
	}
	if n := bad.n.Load(); n != ejected {
		t.Fatalf("the ejected endpoint got %d more requests", n-ejected)
	}
	time.Sleep(350 * time.Millisecond)
	for range 100 {
		if do(t, addr, "GET", "/", ""); bad.n.Load() != ejected {
			break
		}
	}
	if bad.n.Load() == ejected {
		t.Error("the endpoint never returned after its ejection time")
	}
}

// TestP2CAvoidsStraggler: with one endpoint 200× slower, power of two
// choices over peak-EWMA latency sends it a small share. (At 50× a loaded
// machine's stalls of the fast endpoint sometimes made the two look
// alike.)
func TestP2CAvoidsStraggler(t *testing.T) {
	slow := startCounted(t, func(_ int64, w http.ResponseWriter, _ *http.Request) {
		time.Sleep(200 * time.Millisecond)
		fmt.Fprint(w, "slow")
	})
	fast := startCounted(t, func(_ int64, w http.ResponseWriter, _ *http.Request) {
		time.Sleep(time.Millisecond)
		fmt.Fprint(w, "fast")
	})
	addr := startProxy(t, `
listen: "127.0.0.1:0"
upstreams: {app: {endpoints: ["%s", "%s"], balance: p2c}}
routes: [{name: api, match: {path_prefix: /}, upstream: app}]
`, slow.addr, fast.addr)
	for range 100 {
		do(t, addr, "GET", "/", "")
	}
	if n := slow.n.Load(); n > 10 {
		t.Errorf("the slow endpoint got %d of 100 requests", n)
	}
}

// TestHealthChecks: an endpoint failing its health check gets no traffic,
// and with none healthy the server is not ready.
func TestHealthChecks(t *testing.T) {
	var sick atomic.Bool
	sick.Store(true)
	a := startCounted(t, func(_ int64, w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" && sick.Load() {
			w.WriteHeader(503)
			return
		}
		fmt.Fprint(w, "a")
	})
	b := startCounted(t, func(_ int64, w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "b") })
	srv, addr := startServer(t, `
listen: "127.0.0.1:0"
upstreams:
  app:
    endpoints: ["%s", "%s"]
    balance: round_robin
    health_check: {path: /healthz, interval: 20ms, timeout: 20ms}
routes: [{name: api, match: {path_prefix: /api}, upstream: app}]
`, a.addr, b.addr)
	waitFor(t, "endpoint a marked unhealthy", func() bool {
		for range 4 {
			if _, body, _ := do(t, addr, "GET", "/api", ""); body == "a" {
				return false
			}
		}
		return true
	})
	if !srv.Ready() {
		t.Error("not ready with one healthy endpoint")
	}
	sick.Store(false)
	waitFor(t, "endpoint a back", func() bool { _, body, _ := do(t, addr, "GET", "/api", ""); return body == "a" })
}
