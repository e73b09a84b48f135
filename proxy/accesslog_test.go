package proxy

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// TestAccessLogOncePerRequest: with log.access: all, every request is
// logged exactly once, whether the upstream answered it or tailguard did
// (here a shed, after one request that holds the only slot).
func TestAccessLogOncePerRequest(t *testing.T) {
	up, release := startHolding(t)
	core, logs := observer.New(zap.InfoLevel)
	_, addr := startLoggingServer(t, zap.New(core), `
listen: "127.0.0.1:0"
log: {access: all}
upstreams: {app: {endpoints: ["%s"]}}
routes:
  - {name: api, match: {path_prefix: /}, upstream: app, shed: {max_concurrency: 1, queue: 0}}
`, up.addr)
	held := holdSlot(t, addr, up)
	if status, _, _ := do(t, addr, "GET", "/shed", ""); status != 503 {
		t.Fatalf("status %d, want 503 shed", status)
	}
	release()
	held()
	for _, c := range []struct {
		msg  string
		want int
	}{{"request", 1}, {"request failed", 1}} {
		if n := logs.FilterMessage(c.msg).Len(); n != c.want {
			t.Errorf("%d %q lines, want %d; all: %v", n, c.msg, c.want, logs.All())
		}
	}
}

// TestAccessLogErrors: with log.access: errors (the default), a request
// that got a 5xx from the upstream is logged as failed, as one tailguard
// answered itself is (here: no route); a 2xx or a 4xx from the upstream
// is not logged. With off, nothing is.
func TestAccessLogErrors(t *testing.T) {
	up := startCounted(t, func(_ int64, w http.ResponseWriter, r *http.Request) {
		var status int
		_, _ = fmt.Sscan(strings.TrimPrefix(r.URL.Path, "/api/"), &status)
		w.WriteHeader(status)
	})
	for _, tt := range []struct {
		mode string
		want []int // the statuses logged, in order
	}{
		{"errors", []int{502, 503, 404}},
		{"off", nil},
	} {
		t.Run(tt.mode, func(t *testing.T) {
			core, logs := observer.New(zap.InfoLevel)
			_, addr := startLoggingServer(t, zap.New(core), `
listen: "127.0.0.1:0"
log: {access: `+tt.mode+`}
upstreams: {app: {endpoints: ["%s"]}}
routes: [{name: api, match: {path_prefix: /api/}, upstream: app}]
`, up.addr)
			for _, path := range []string{"/api/200", "/api/404", "/api/502", "/api/503", "/nowhere"} {
				do(t, addr, "GET", path, "")
			}
			var got []int
			for _, e := range logs.All() {
				if e.Message != "request failed" || e.Level != zap.WarnLevel {
					t.Errorf("logged %q at %s", e.Message, e.Level)
				}
				f := e.ContextMap()
				got = append(got, int(f["status"].(int64)))
				_, hasCause := f["error"]
				if route := f["route"]; hasCause != (route == "") {
					t.Errorf("route %q with error field %v: only tailguard's own answers carry one", route, f["error"])
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("logged statuses %v, want %v", got, tt.want)
			}
		})
	}
}
