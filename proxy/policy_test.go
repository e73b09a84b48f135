package proxy

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// counted is a net/http upstream that numbers the requests it receives and
// lets the test decide each answer.
type counted struct {
	n    atomic.Int64
	addr string
}

func startCounted(t *testing.T, h func(n int64, w http.ResponseWriter, r *http.Request)) *counted {
	c := &counted{}
	c.addr = startHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h(c.n.Add(1), w, r)
	}))
	return c
}

// do sends method path through addr and returns status, body and headers.
func do(t *testing.T, addr, method, path, body string, hdr ...string) (int, string, http.Header) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, "http://"+addr+path, rd)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func TestRetryIdempotentOnly(t *testing.T) {
	up := startCounted(t, func(n int64, w http.ResponseWriter, r *http.Request) {
		if n%2 == 1 {
			w.WriteHeader(503)
			fmt.Fprint(w, "busy")
			return
		}
		fmt.Fprint(w, "ok")
	})
	addr := startProxy(t, `
listen: "127.0.0.1:0"
upstreams: {app: {endpoints: ["%s"]}}
routes:
  - name: api
    match: {path_prefix: /}
    upstream: app
    retry: {attempts: 2, on: ["503"], backoff: 1ms}
`, up.addr)
	tests := []struct {
		method, idemKey string
		wantStatus      int
		wantBody        string
		wantRequests    int64
	}{
		{"GET", "", 200, "ok", 2},       // 503, retried, 200
		{"POST", "", 503, "busy", 1},    // never retried
		{"POST", "key-1", 200, "ok", 2}, // Idempotency-Key makes it retryable
		{"DELETE", "", 200, "ok", 2},
	}
	for _, tt := range tests {
		t.Run(tt.method+tt.idemKey, func(t *testing.T) {
			before := up.n.Load()
			if before%2 == 0 {
				// each case starts on an odd (failing) request
			} else {
				up.n.Add(1)
				before++
			}
			var hdr []string
			if tt.idemKey != "" {
				hdr = []string{"Idempotency-Key", tt.idemKey}
			}
			status, body, _ := do(t, addr, tt.method, "/x", "payload", hdr...)
			if status != tt.wantStatus || body != tt.wantBody {
				t.Errorf("got %d %q, want %d %q", status, body, tt.wantStatus, tt.wantBody)
			}
			if got := up.n.Load() - before; got != tt.wantRequests {
				t.Errorf("upstream saw %d requests, want %d", got, tt.wantRequests)
			}
		})
	}
}

// TestRetryAvoidsFailedEndpoint: a refused endpoint costs a retry, not the
// request, and the retry goes to the other endpoint.
func TestRetryAvoidsFailedEndpoint(t *testing.T) {
	up := startCounted(t, func(_ int64, w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "ok") })
	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	refused := closed.Addr().String()
	closed.Close()
	addr := startProxy(t, `
listen: "127.0.0.1:0"
upstreams: {app: {endpoints: ["%s", "%s"], balance: round_robin}}
routes:
  - name: api
    match: {path_prefix: /}
    upstream: app
    retry: {attempts: 2, on: [connect_failure]}
`, refused, up.addr)
	for i := range 10 {
		if status, body, _ := do(t, addr, "GET", "/", ""); status != 200 || body != "ok" {
			t.Fatalf("request %d: %d %q", i, status, body)
		}
	}
}

func TestBreakerOpensAndRecovers(t *testing.T) {
	var healthy atomic.Bool
	up := startCounted(t, func(_ int64, w http.ResponseWriter, _ *http.Request) {
		if !healthy.Load() {
			w.WriteHeader(500)
			return
		}
		fmt.Fprint(w, "ok")
	})
	addr := startProxy(t, `
listen: "127.0.0.1:0"
upstreams:
  app:
    endpoints: ["%s"]
    breaker: {consecutive_failures: 3, open_timeout: 200ms, half_open_requests: 1}
routes: [{name: api, match: {path_prefix: /}, upstream: app}]
`, up.addr)
	for range 3 {
		if status, _, _ := do(t, addr, "GET", "/", ""); status != 500 {
			t.Fatalf("status %d, want the upstream's 500", status)
		}
	}
	seen := up.n.Load()
	for range 5 {
		status, body, h := do(t, addr, "GET", "/", "")
		if status != 503 || h.Get("X-Tailguard-Error") != "breaker_open" || h.Get("Retry-After") != "1" {
			t.Fatalf("got %d %q %v, want 503 breaker_open with Retry-After", status, body, h)
		}
	}
	if n := up.n.Load(); n != seen {
		t.Fatalf("%d requests reached the upstream while the breaker was open", n-seen)
	}
	healthy.Store(true)
	deadline := time.Now().Add(5 * time.Second)
	for {
		status, _, _ := do(t, addr, "GET", "/", "")
		if status == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the breaker never closed")
		}
		time.Sleep(20 * time.Millisecond)
	}
	for range 5 {
		if status, _, _ := do(t, addr, "GET", "/", ""); status != 200 {
			t.Fatalf("status %d after recovery", status)
		}
	}
}

// TestHedgeLoserNeverWritten: the first request stalls; its hedge answers
// at once and wins. The stalled one finishes later with its own body,
// which no client may ever see, and the next requests on the same client
// connection get their own answers.
func TestHedgeLoserNeverWritten(t *testing.T) {
	release := make(chan struct{})
	up := startCounted(t, func(n int64, w http.ResponseWriter, r *http.Request) {
		if n == 1 {
			<-release
			fmt.Fprint(w, "LOSER")
			return
		}
		fmt.Fprintf(w, "answer %d", n)
	})
	addr := startProxy(t, `
listen: "127.0.0.1:0"
upstreams: {app: {endpoints: ["%s"]}}
routes:
  - name: api
    match: {path_prefix: /}
    upstream: app
    timeout: 5s
    hedge: {delay: 20ms, max_extra: 1}
`, up.addr)
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	resp, err := client.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "answer 2" {
		t.Fatalf("first request got %q, want the hedge's answer", b)
	}
	close(release)
	for i := range 5 {
		resp, err := client.Get("http://" + addr + "/")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(string(b), "LOSER") || !strings.HasPrefix(string(b), "answer ") {
			t.Fatalf("request %d got %q", i, b)
		}
	}
}

// TestPostNeverHedged: a POST that stalls is waited for, not hedged.
func TestPostNeverHedged(t *testing.T) {
	up := startCounted(t, func(n int64, w http.ResponseWriter, r *http.Request) {
		time.Sleep(60 * time.Millisecond)
		fmt.Fprint(w, "done")
	})
	addr := startProxy(t, `
listen: "127.0.0.1:0"
upstreams: {app: {endpoints: ["%s"]}}
routes:
  - {name: api, match: {path_prefix: /}, upstream: app, hedge: {delay: 5ms, max_extra: 2}}
`, up.addr)
	if status, body, _ := do(t, addr, "POST", "/", "x"); status != 200 || body != "done" {
		t.Fatalf("got %d %q", status, body)
	}
	if n := up.n.Load(); n != 1 {
		t.Errorf("the upstream saw %d requests for one POST", n)
	}
}

// TestNoHedgeWhenItWouldAmplify: a slow GET that would be hedged at 5 ms
// is not while the route is at its concurrency limit (a hedge would add
// load to a saturated upstream), nor while it is the breaker's half-open
// probe (a probe must not be multiplied).
func TestNoHedgeWhenItWouldAmplify(t *testing.T) {
	tests := []struct {
		name, upstream, route string
		trip                  bool // fail once first, to open the breaker
	}{
		{"at the concurrency limit", "", ", shed: {max_concurrency: 1, queue: 0}", false},
		{"breaker half-open", ", breaker: {consecutive_failures: 1, open_timeout: 50ms, half_open_requests: 1}", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var slow atomic.Bool
			up := startCounted(t, func(_ int64, w http.ResponseWriter, _ *http.Request) {
				if !slow.Load() {
					w.WriteHeader(500)
					return
				}
				time.Sleep(60 * time.Millisecond)
				fmt.Fprint(w, "done")
			})
			slow.Store(!tt.trip)
			var before int64
			addr := startProxy(t, `
listen: "127.0.0.1:0"
upstreams: {app: {endpoints: ["%s"]`+tt.upstream+`}}
routes:
  - {name: api, match: {path_prefix: /}, upstream: app, hedge: {delay: 5ms, max_extra: 1}`+tt.route+`}
`, up.addr)
			if tt.trip {
				if status, _, _ := do(t, addr, "GET", "/", ""); status != 500 {
					t.Fatalf("tripping request: %d, want the upstream's 500", status)
				}
				waitFor(t, "the breaker to open", func() bool {
					_, _, h := do(t, addr, "GET", "/", "")
					return h.Get("X-Tailguard-Error") == "breaker_open"
				})
				slow.Store(true)
				before = up.n.Load()
				waitFor(t, "the breaker to let a probe through", func() bool {
					_, _, h := do(t, addr, "GET", "/", "")
					return h.Get("X-Tailguard-Error") != "breaker_open"
				})
			} else if status, body, _ := do(t, addr, "GET", "/", ""); status != 200 || body != "done" {
				t.Fatalf("got %d %q", status, body)
			}
			if n := up.n.Load() - before; n != 1 {
				t.Errorf("the upstream saw %d requests for one, want 1: no hedge, no retry", n)
			}
		})
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestDeadlineHeader: the upstream learns how long it has; a client's
// shorter deadline wins over the route's.
func TestDeadlineHeader(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	up := startCounted(t, func(_ int64, w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Get("X-Request-Timeout-Ms"))
		mu.Unlock()
	})
	addr := startProxy(t, `
listen: "127.0.0.1:0"
upstreams: {app: {endpoints: ["%s"]}}
routes: [{name: api, match: {path_prefix: /}, upstream: app, timeout: 2s}]
`, up.addr)
	do(t, addr, "GET", "/", "")
	do(t, addr, "GET", "/", "", "X-Request-Timeout-Ms", "300")
	do(t, addr, "GET", "/", "", "X-Request-Timeout-Ms", "9000")
	mu.Lock()
	defer mu.Unlock()
	ms := func(s string) int { var n int; fmt.Sscan(s, &n); return n }
	if n := ms(seen[0]); n <= 1000 || n > 2000 {
		t.Errorf("route deadline sent as %q ms, want just under 2000", seen[0])
	}
	if n := ms(seen[1]); n <= 0 || n > 300 {
		t.Errorf("client deadline 300 ms sent on as %q", seen[1])
	}
	if n := ms(seen[2]); n <= 1000 || n > 2000 {
		t.Errorf("a longer client deadline (9000 ms) must not extend the route's: sent %q", seen[2])
	}
}

func TestServerTimingHeader(t *testing.T) {
	up := startCounted(t, func(_ int64, w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "ok") })
	addr := startProxy(t, `
listen: "127.0.0.1:0"
upstreams: {app: {endpoints: ["%s"]}}
routes:
  - {name: timed, match: {path_prefix: /timed}, upstream: app, server_timing: true}
  - {name: plain, match: {path_prefix: /}, upstream: app}
`, up.addr)
	_, _, h := do(t, addr, "GET", "/timed", "")
	if v := h.Get("Server-Timing"); !strings.HasPrefix(v, "queue;dur=") || !strings.Contains(v, ", upstream;dur=") {
		t.Errorf("Server-Timing = %q", v)
	}
	if _, _, h := do(t, addr, "GET", "/other", ""); h.Get("Server-Timing") != "" {
		t.Errorf("Server-Timing on a route that did not ask for it")
	}
}
