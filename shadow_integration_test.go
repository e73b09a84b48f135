package main

// Integration test of the shadow modes (issue 17): the built binary, real
// upstreams, the same traffic once with the policies enforced and once
// in shadow mode.

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// shadowUpstream answers by path, the same whoever asks and however
// often: /flaky always 500; /bad always 502; /slow after 250 ms; /first/N
// 503 the first time N is asked and 200 after; anything else 200 at
// once. A healthy one answers every path 200 at once. It counts the
// requests it got.
type shadowUpstream struct {
	addr string
	n    atomic.Int64
}

func startShadowUpstream(t *testing.T, healthy bool) *shadowUpstream {
	t.Helper()
	u := &shadowUpstream{}
	var mu sync.Mutex
	seen := map[string]bool{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &httptest.Server{Listener: ln, Config: &http.Server{ReadHeaderTimeout: ioTimeout,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			u.n.Add(1)
			p := r.URL.Path
			switch {
			case healthy:
			case strings.HasPrefix(p, "/flaky"):
				w.WriteHeader(500)
			case strings.HasPrefix(p, "/bad"):
				w.WriteHeader(502)
			case strings.HasPrefix(p, "/slow"):
				time.Sleep(250 * time.Millisecond) // the slow service under test
			case strings.HasPrefix(p, "/first/"):
				mu.Lock()
				again := seen[p]
				seen[p] = true
				mu.Unlock()
				if !again {
					w.WriteHeader(503)
				}
			}
		})}}
	srv.Start()
	t.Cleanup(srv.Close)
	u.addr = ln.Addr().String()
	return u
}

// shadowConfig has a route and an upstream of its own for each policy,
// all in mode, so that the policies do not see each other's traffic.
func shadowConfig(mode string, flaky, first, slow, bad, good string) string {
	return configHead + fmt.Sprintf(`upstreams:
  flaky: {endpoints: [%[1]q], breaker: {consecutive_failures: 3, open_timeout: 1h, mode: %[6]s}}
  first: {endpoints: [%[2]q]}
  slow: {endpoints: [%[3]q]}
  pair:
    endpoints: [%[4]q, %[5]q]
    balance: round_robin
    outlier: {consecutive_5xx: 2, ejection_time: 1h, max_ejected_percent: 50, mode: %[6]s}
routes:
  - {name: flaky, match: {path_prefix: /flaky}, upstream: flaky}
  - {name: first, match: {path_prefix: /first/}, upstream: first, retry: {attempts: 2, on: ["503"], mode: %[6]s}}
  - {name: slow, match: {path_prefix: /}, upstream: slow, timeout: 5s, hedge: {delay: 100ms, max_extra: 1, mode: %[6]s}}
  - {name: pair, match: {path_prefix: /bad}, upstream: pair}
`, flaky, first, slow, bad, good, mode)
}

// shadowDoc is the part of /stats the test compares.
type shadowDoc struct {
	Routes []struct {
		Name           string `json:"name"`
		Requests       int64  `json:"requests"`
		BreakerRejects int64  `json:"breaker_rejects"`
		Retries        int64  `json:"retries"`
		Hedges         struct {
			Sent int64 `json:"sent"`
		} `json:"hedges"`
		WouldRetry  int64 `json:"would_retry"`
		WouldHedge  int64 `json:"would_hedge"`
		WouldReject int64 `json:"would_reject"`
	} `json:"routes"`
	Upstreams []struct {
		Name       string `json:"name"`
		Ejections  uint64 `json:"ejections"`
		WouldEject uint64 `json:"would_eject"`
	} `json:"upstreams"`
}

// TestShadowModesBinary: with breaker, retry, hedge and outlier in shadow
// mode every client request reaches the upstreams exactly once and gets
// the upstream's own answer, and /stats' would-be counts equal what the
// same binary did, on the same traffic, with the policies enforced.
func TestShadowModesBinary(t *testing.T) {
	paths := strings.Fields(strings.Repeat("/flaky ", 8) + "/first/1 /first/2 /first/3 /ok /ok /slow /ok /slow " +
		strings.Repeat("/bad ", 10))
	run := func(mode string) (shadowDoc, int64, map[int]int) {
		ups := make([]*shadowUpstream, 5)
		for i := range ups {
			ups[i] = startShadowUpstream(t, i == 4) // the pair's good endpoint
		}
		p := startWithConfig(t, shadowConfig(mode, ups[0].addr, ups[1].addr, ups[2].addr, ups[3].addr, ups[4].addr))
		client := newClient(t, ioTimeout)
		statuses := map[int]int{}
		for _, path := range paths {
			resp, _ := client.get(t, p.url(path))
			statuses[resp.StatusCode]++
		}
		var doc shadowDoc
		// /stats windows take requests in once a second.
		if !pollUntil(40, 100*time.Millisecond, func() bool {
			resp, body := client.get(t, p.adminURL("/stats?window=all"))
			if resp.StatusCode != 200 || json.Unmarshal(body, &doc) != nil {
				return false
			}
			seen := int64(0)
			for _, r := range doc.Routes {
				seen += r.Requests
			}
			return seen == int64(len(paths))
		}) {
			t.Fatalf("%s: /stats never showed the requests", mode)
		}
		var sent int64
		for _, u := range ups {
			sent += u.n.Load()
		}
		return doc, sent, statuses
	}
	enforce, _, _ := run("enforce")
	shadow, sent, statuses := run("shadow")

	route := func(d shadowDoc, name string) (retries, hedges, rejects, wouldRetry, wouldHedge, wouldReject int64) {
		for _, r := range d.Routes {
			if r.Name == name {
				return r.Retries, r.Hedges.Sent, r.BreakerRejects, r.WouldRetry, r.WouldHedge, r.WouldReject
			}
		}
		t.Fatalf("no route %q in /stats", name)
		return
	}
	upstream := func(d shadowDoc, name string) (ejections, would uint64) {
		for _, u := range d.Upstreams {
			if u.Name == name {
				return u.Ejections, u.WouldEject
			}
		}
		t.Fatalf("no upstream %q in /stats", name)
		return
	}
	_, _, rejects, _, _, _ := route(enforce, "flaky")
	_, _, shadowRejects, _, _, wouldReject := route(shadow, "flaky")
	retries, _, _, _, _, _ := route(enforce, "first")
	shadowRetries, _, _, wouldRetry, _, _ := route(shadow, "first")
	_, hedges, _, _, _, _ := route(enforce, "slow")
	_, shadowHedges, _, _, wouldHedge, _ := route(shadow, "slow")
	ejections, _ := upstream(enforce, "pair")
	shadowEjections, wouldEject := upstream(shadow, "pair")
	for _, c := range []struct {
		what            string
		enforced, would int64
		want            int64
	}{
		{"breaker refusals", rejects, wouldReject, 5},
		{"retries", retries, wouldRetry, 3},
		{"hedges", hedges, wouldHedge, 2},
		{"ejections", int64(ejections), int64(wouldEject), 1},
	} {
		if c.enforced != c.want || c.would != c.enforced {
			t.Errorf("%s: enforce mode made %d (want %d), shadow mode counts %d", c.what, c.enforced, c.want, c.would)
		}
	}
	if shadowRejects != 0 || shadowRetries != 0 || shadowHedges != 0 || shadowEjections != 0 {
		t.Errorf("shadow mode acted: %d refusals, %d retries, %d hedges, %d ejections",
			shadowRejects, shadowRetries, shadowHedges, shadowEjections)
	}
	if sent != int64(len(paths)) {
		t.Errorf("shadow mode: the upstreams saw %d requests for %d", sent, len(paths))
	}
	if statuses[503] != 3 || statuses[500] != 8 || statuses[502] != 5 || statuses[200] != len(paths)-16 {
		t.Errorf("shadow mode: statuses %v, want the upstreams' own (3 × 503, 8 × 500, 5 × 502, the rest 200)", statuses)
	}
}
