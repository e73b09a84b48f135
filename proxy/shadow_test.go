package proxy

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// shadowStats are the /stats figures the shadow-mode tests compare.
type shadowStats struct {
	Routes []struct {
		Name           string           `json:"name"`
		Requests       int64            `json:"requests"`
		Status         map[string]int64 `json:"status"`
		BreakerRejects int64            `json:"breaker_rejects"`
		Retries        int64            `json:"retries"`
		Hedges         struct{ Sent int64 }
		WouldRetry     int64 `json:"would_retry"`
		WouldHedge     int64 `json:"would_hedge"`
		WouldReject    int64 `json:"would_reject"`
	} `json:"routes"`
	Upstreams []struct {
		Name       string `json:"name"`
		Ejections  uint64 `json:"ejections"`
		WouldEject uint64 `json:"would_eject"`
		Endpoints  []struct {
			Ejected  bool   `json:"ejected"`
			Requests uint64 `json:"requests"`
		} `json:"endpoints"`
	} `json:"upstreams"`
}

// statsOf ticks srv's registry, so that every request so far is in the
// windows, and reads /stats?window=all.
func statsOf(t *testing.T, srv *Server) shadowStats {
	t.Helper()
	var doc shadowStats
	readStats(t, srv, &doc)
	if len(doc.Routes) != 1 || len(doc.Upstreams) != 1 {
		t.Fatalf("/stats: %d routes, %d upstreams; want one of each", len(doc.Routes), len(doc.Upstreams))
	}
	return doc
}

// firstFails is an upstream that answers 503 to the first request for
// each path and 200 to the later ones, so that two proxies sent the same
// paths see the same answers whatever they do.
func firstFails(t *testing.T) *counted {
	var mu sync.Mutex
	seen := map[string]bool{}
	return startCounted(t, func(_ int64, w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		again := seen[r.URL.Path]
		seen[r.URL.Path] = true
		mu.Unlock()
		if !again && strings.HasPrefix(r.URL.Path, "/fail") {
			w.WriteHeader(503)
			return
		}
		fmt.Fprint(w, "ok")
	})
}

// shadowRun starts a proxy for config (one "%s" endpoint per addr) in mode
// (enforce or shadow, substituted for MODE), sends it requests GETs of
// paths, and returns its /stats and the statuses the client got.
func shadowRun(t *testing.T, config, mode string, paths []string, addrs ...any) (shadowStats, map[int]int) {
	t.Helper()
	srv, addr := startServer(t, strings.ReplaceAll(config, "MODE", mode), addrs...)
	statuses := map[int]int{}
	for _, p := range paths {
		status, _, _ := do(t, addr, "GET", p, "")
		statuses[status]++
	}
	return statsOf(t, srv), statuses
}

// TestShadowModes runs the same traffic through a proxy enforcing a
// policy and one with the policy in shadow mode, against upstreams whose
// answers depend only on the request. In shadow mode the upstream sees
// one request per client request (nothing retried, hedged, refused or
// ejected), the client gets the upstream's own answers, and the would-be
// counts are what enforce mode did.
func TestShadowModes(t *testing.T) {
	fails := func(n int) []string {
		var p []string
		for i := range n {
			p = append(p, fmt.Sprintf("/fail/%d", i), fmt.Sprintf("/ok/%d", i))
		}
		return p
	}
	slow := func(n int) []string {
		var p []string
		for range n {
			p = append(p, "/slow", "/fast", "/fast")
		}
		return p
	}
	tests := []struct {
		name   string
		config string
		paths  []string
		// upstreams starts the test's upstreams and returns their
		// addresses and a count of the requests they received.
		upstreams func(t *testing.T) ([]any, func() int64)
		// enforced and would are what enforce mode did and what shadow
		// mode says it would have done, from their /stats.
		enforced, would func(s shadowStats) int64
		wantCount       int64
	}{
		{
			name: "retry",
			config: `
listen: "127.0.0.1:0"
upstreams: {app: {endpoints: ["%s"]}}
routes: [{name: api, match: {path_prefix: /}, upstream: app, retry: {attempts: 2, on: ["503"], mode: MODE}}]
`,
			paths: fails(5),
			upstreams: func(t *testing.T) ([]any, func() int64) {
				up := firstFails(t)
				return []any{up.addr}, up.n.Load
			},
			enforced:  func(s shadowStats) int64 { return s.Routes[0].Retries },
			would:     func(s shadowStats) int64 { return s.Routes[0].WouldRetry },
			wantCount: 5,
		},
		{
			name: "hedge",
			config: `
listen: "127.0.0.1:0"
upstreams: {app: {endpoints: ["%s"]}}
routes: [{name: api, match: {path_prefix: /}, upstream: app, timeout: 5s, hedge: {delay: 200ms, max_extra: 1, mode: MODE}}]
`,
			paths: slow(4),
			upstreams: func(t *testing.T) ([]any, func() int64) {
				up := startCounted(t, func(_ int64, w http.ResponseWriter, r *http.Request) {
					if r.URL.Path == "/slow" {
						// Well past the delay, which is well past what
						// /fast takes on a loaded machine under -race.
						time.Sleep(500 * time.Millisecond)
					}
					fmt.Fprint(w, "ok")
				})
				return []any{up.addr}, up.n.Load
			},
			enforced:  func(s shadowStats) int64 { return s.Routes[0].Hedges.Sent },
			would:     func(s shadowStats) int64 { return s.Routes[0].WouldHedge },
			wantCount: 4,
		},
		{
			name: "breaker",
			config: `
listen: "127.0.0.1:0"
upstreams: {app: {endpoints: ["%s"], breaker: {consecutive_failures: 3, open_timeout: 1h, mode: MODE}}}
routes: [{name: api, match: {path_prefix: /}, upstream: app}]
`,
			paths: strings.Fields(strings.Repeat("/ ", 10)),
			upstreams: func(t *testing.T) ([]any, func() int64) {
				up := startCounted(t, func(_ int64, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(500) })
				return []any{up.addr}, up.n.Load
			},
			enforced:  func(s shadowStats) int64 { return s.Routes[0].BreakerRejects },
			would:     func(s shadowStats) int64 { return s.Routes[0].WouldReject },
			wantCount: 7,
		},
		{
			name: "outlier",
			config: `
listen: "127.0.0.1:0"
upstreams:
  app:
    endpoints: ["%s", "%s"]
    balance: round_robin
    outlier: {consecutive_5xx: 2, ejection_time: 1h, max_ejected_percent: 50, mode: MODE}
routes: [{name: api, match: {path_prefix: /}, upstream: app}]
`,
			paths: strings.Fields(strings.Repeat("/ ", 20)),
			upstreams: func(t *testing.T) ([]any, func() int64) {
				bad := startCounted(t, func(_ int64, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(502) })
				good := startCounted(t, func(_ int64, w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "ok") })
				return []any{bad.addr, good.addr}, func() int64 { return bad.n.Load() + good.n.Load() }
			},
			enforced:  func(s shadowStats) int64 { return int64(s.Upstreams[0].Ejections) },
			would:     func(s shadowStats) int64 { return int64(s.Upstreams[0].WouldEject) },
			wantCount: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addrs, _ := tt.upstreams(t)
			enforce, _ := shadowRun(t, tt.config, "enforce", tt.paths, addrs...)
			addrs, sent := tt.upstreams(t)
			shadow, statuses := shadowRun(t, tt.config, "shadow", tt.paths, addrs...)
			if got := tt.enforced(enforce); got != tt.wantCount {
				t.Errorf("enforce mode did %d, want %d", got, tt.wantCount)
			}
			if got, want := tt.would(shadow), tt.enforced(enforce); got != want {
				t.Errorf("shadow mode counts %d, enforce mode did %d", got, want)
			}
			if n := sent(); n != int64(len(tt.paths)) {
				t.Errorf("in shadow mode the upstream saw %d requests for %d", n, len(tt.paths))
			}
			s := shadow.Routes[0]
			if s.Retries != 0 || s.Hedges.Sent != 0 || s.BreakerRejects != 0 || shadow.Upstreams[0].Ejections != 0 {
				t.Errorf("shadow mode acted: %+v, ejections %d", s, shadow.Upstreams[0].Ejections)
			}
			for _, e := range shadow.Upstreams[0].Endpoints {
				if e.Ejected {
					t.Error("shadow mode: an endpoint shows as ejected")
				}
			}
			if statuses[503] != 0 && tt.name != "retry" {
				t.Errorf("shadow mode: the client got %d 503s: %v", statuses[503], statuses)
			}
		})
	}
}

// TestShadowModeReload switches a breaker from shadow to enforce and back
// by reload: the state its shadow run reached (open) is kept and enforced
// at once, and switched back the breaker lets everything through again.
func TestShadowModeReload(t *testing.T) {
	up := startCounted(t, func(_ int64, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(500) })
	const cfg = `
listen: "127.0.0.1:0"
upstreams: {app: {endpoints: ["%s"], breaker: {consecutive_failures: 3, open_timeout: 1h, mode: %s}}}
routes: [{name: api, match: {path_prefix: /}, upstream: app, hedge: {delay: 1s, mode: %s}}]
`
	srv, addr := startServer(t, cfg, up.addr, "shadow", "shadow")
	for range 4 {
		if status, _, _ := do(t, addr, "GET", "/", ""); status != 500 {
			t.Fatalf("shadow: status %d, want the upstream's 500", status)
		}
	}
	before := srv.table.Load()
	if err := srv.Reload(mustParse(t, cfg, up.addr, "enforce", "enforce")); err != nil {
		t.Fatal(err)
	}
	after := srv.table.Load()
	if after.upstreams["app"] != before.upstreams["app"] || after.routes[0].hedge != before.routes[0].hedge {
		t.Error("switching modes rebuilt the upstream or the hedge instead of keeping them")
	}
	seen := up.n.Load()
	if _, _, h := do(t, addr, "GET", "/", ""); h.Get("X-Tailguard-Error") != "breaker_open" {
		t.Error("enforce after shadow: the breaker the shadow run opened did not refuse")
	}
	if up.n.Load() != seen {
		t.Error("enforce after shadow: the request reached the upstream")
	}
	if err := srv.Reload(mustParse(t, cfg, up.addr, "shadow", "enforce")); err != nil {
		t.Fatal(err)
	}
	if status, _, _ := do(t, addr, "GET", "/", ""); status != 500 || up.n.Load() != seen+1 {
		t.Errorf("shadow again: status %d, upstream saw %d more; want its 500, one", status, up.n.Load()-seen)
	}
}
