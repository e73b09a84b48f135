package proxy

import (
	"fmt"
	"net/http"
	"testing"
)

// startHolding is an upstream that answers "ok" at once, except to
// requests for /hold, which wait until release is called.
func startHolding(t *testing.T) (up *counted, release func()) {
	hold := make(chan struct{})
	up = startCounted(t, func(_ int64, w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hold" {
			<-hold
		}
		fmt.Fprint(w, "ok")
	})
	return up, func() { close(hold) }
}

// holdSlot sends GET /hold through addr in the background and returns once
// up has it; the function it returns waits for the answer.
func holdSlot(t *testing.T, addr string, up *counted) (wait func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		do(t, addr, "GET", "/hold", "")
	}()
	waitFor(t, "the held request", func() bool { return up.n.Load() == 1 })
	return func() { <-done }
}

// TestShed: at the limit with no queue, a request is refused at once with
// the route's status and Retry-After, and never reaches the upstream;
// critical requests pass where sheddable ones are refused.
func TestShed(t *testing.T) {
	up, release := startHolding(t)
	srv, addr := startServer(t, `
listen: "127.0.0.1:0"
upstreams: {app: {endpoints: ["%s"]}}
routes:
  - name: api
    match: {path_prefix: /}
    upstream: app
    shed: {max_concurrency: 1, queue: 0, status: 429, priority_header: X-Priority}
`, up.addr)
	held := holdSlot(t, addr, up)
	status, _, h := do(t, addr, "GET", "/x", "")
	if status != 429 || h.Get("X-Tailguard-Error") != "shed" || h.Get("Retry-After") == "" {
		t.Errorf("got %d %v, want 429 shed with Retry-After", status, h)
	}
	if n := up.n.Load(); n != 1 {
		t.Errorf("a shed request reached the upstream")
	}
	if _, _, h := do(t, addr, "GET", "/x", "", "X-Priority", "sheddable"); h.Get("X-Tailguard-Error") != "shed" {
		t.Errorf("a sheddable request at the limit was not shed")
	}
	g := srv.table.Load().routes[0].gauges()
	if g.ShedByPriority["default"] != 1 || g.ShedByPriority["sheddable"] != 1 || g.ShedByPriority["critical"] != 0 {
		t.Errorf("sheds by priority = %v, want default 1, sheddable 1", g.ShedByPriority)
	}
	release()
	held()
	if status, _, _ := do(t, addr, "GET", "/x", "", "X-Priority", "critical"); status != 200 {
		t.Errorf("critical request after release: %d", status)
	}
}
