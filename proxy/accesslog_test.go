package proxy

import (
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
