package proxy

import (
	"fmt"
	"net/http"
	"testing"
	"time"
)

// TestLatencyProbation: round robin over three real endpoints, the third
// answering one request in five after 40 ms. With latency_factor it is
// ejected once its p99 has been seen (100 samples, a comparison a
// second) and gets nothing more; in shadow mode it keeps its third of the
// traffic and the ejection is only counted.
func TestLatencyProbation(t *testing.T) {
	for _, mode := range []string{"enforce", "shadow"} {
		t.Run(mode, func(t *testing.T) {
			fast := func(_ int64, w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "ok") }
			a, b := startCounted(t, fast), startCounted(t, fast)
			gray := startCounted(t, func(n int64, w http.ResponseWriter, _ *http.Request) {
				if n%5 == 0 {
					time.Sleep(40 * time.Millisecond) // the gray endpoint's stragglers
				}
				fmt.Fprint(w, "ok")
			})
			srv, addr := startServer(t, `
listen: "127.0.0.1:0"
upstreams:
  app:
    endpoints: ["%s", "%s", "%s"]
    balance: round_robin
    outlier: {latency_factor: 3, ejection_time: 1h, max_ejected_percent: 34, mode: `+mode+`}
routes: [{name: api, match: {path_prefix: /}, upstream: app}]
`, a.addr, b.addr, gray.addr)
			// Until the comparison has run with enough samples: at most
			// 3,000 requests, about three seconds of them.
			for range 3000 {
				do(t, addr, "GET", "/", "")
				if g := upstreamGauges(t, srv, "app"); g.LatencyEjections > 0 {
					break
				}
			}
			g := upstreamGauges(t, srv, "app")
			if g.LatencyEjections != 1 {
				t.Fatalf("latency ejections %d, want 1", g.LatencyEjections)
			}
			before := gray.n.Load()
			for range 30 {
				do(t, addr, "GET", "/", "")
			}
			got := gray.n.Load() - before
			switch mode {
			case "enforce":
				if got != 0 || g.Ejections != 1 || !upstreamGauges(t, srv, "app").Endpoints[2].Ejected {
					t.Errorf("enforce: the gray endpoint got %d of 30 requests after its ejection (ejections %d)", got, g.Ejections)
				}
			case "shadow":
				if got != 10 || g.WouldEject != 1 || g.Ejections != 0 {
					t.Errorf("shadow: the gray endpoint got %d of 30 requests (want its 10), would_eject %d, ejections %d",
						got, g.WouldEject, g.Ejections)
				}
			}
		})
	}
}
