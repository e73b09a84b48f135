package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestFairnessThroughTheBinary: the built binary, a real upstream and
// curl. A client over its rate limit gets 429 rate_limited with
// Retry-After and the IETF RateLimit-Policy and RateLimit headers, which
// its admitted responses carry too; /stats and /metrics count the refusals
// by cause and show the clients tracked, the top clients in /stats only.
func TestFairnessThroughTheBinary(t *testing.T) {
	up := startGoUpstream(t)
	// One request every 100 s after a burst of 2: no test run earns one
	// back, so the figures hold on any machine.
	tg := startWithConfig(t, fmt.Sprintf(`
listen: "127.0.0.1:0"
admin: "127.0.0.1:0"
drain: {delay: 0s}
upstreams:
  app:
    endpoints: [%q]
routes:
  - name: default
    upstream: app
    rate_limit: {rate: 0.01, burst: 2, key: "header:X-Api-Key"}
    shed: {max_concurrency: 64, fair_by: client_ip}
`, up.addr))
	for i, want := range []struct {
		code                  int
		rateLimit, retryAfter string
	}{
		{200, `"default";r=1;t=100`, ""},
		{200, `"default";r=0;t=200`, ""},
		{429, `"default";r=0;t=200`, "100"},
	} {
		code, h, body := curlGet(t, "-i", "-H", "X-Api-Key: tenant-a", tg.url("/echo"))
		got := [3]string{fmt.Sprint(code), h.Get("RateLimit"), h.Get("Retry-After")}
		if got != [3]string{fmt.Sprint(want.code), want.rateLimit, want.retryAfter} {
			t.Errorf("%d: got %q, want %+v", i, got, want)
		}
		if p := h.Get("RateLimit-Policy"); p != `"default";q=2;w=200` {
			t.Errorf("%d: RateLimit-Policy %q", i, p)
		}
		if code == 429 && (h.Get("X-Tailguard-Error") != "rate_limited" || !strings.Contains(string(body), "rate limit")) {
			t.Errorf("429 without X-Tailguard-Error: rate_limited or its body: %q %q", h.Get("X-Tailguard-Error"), body)
		}
	}

	// The request counts show once the metrics tick (about a second) has
	// taken them in.
	var body []byte
	pollUntil(100, 100*time.Millisecond, func() bool {
		_, body = newClient(t, ioTimeout).get(t, tg.adminURL("/stats?window=all"))
		return strings.Contains(string(body), `"rate_limited":1`)
	})
	var stats struct {
		Routes []struct {
			RateLimited int64 `json:"rate_limited"`
			Shed        int64 `json:"shed"`
			RateLimit   struct {
				Tracked    int `json:"keys_tracked"`
				TopRefused []struct {
					Key     string `json:"key"`
					Refused int    `json:"refused"`
				} `json:"top_refused"`
			} `json:"rate_limit"`
			Fair struct {
				Tracked     int `json:"keys_tracked"`
				TopAdmitted []struct {
					Key string `json:"key"`
				} `json:"top_admitted"`
			} `json:"fair"`
		} `json:"routes"`
	}
	if err := json.Unmarshal(body, &stats); err != nil {
		t.Fatalf("/stats: %v\n%s", err, body)
	}
	r := stats.Routes[0]
	if r.RateLimited != 1 || r.Shed != 0 || r.RateLimit.Tracked != 1 || len(r.RateLimit.TopRefused) != 1 ||
		r.RateLimit.TopRefused[0].Key != "tenant-a" || r.Fair.Tracked != 1 || r.Fair.TopAdmitted[0].Key != "127.0.0.1" {
		t.Errorf("/stats: %+v", r)
	}

	_, metrics := newClient(t, ioTimeout).get(t, tg.adminURL("/metrics"))
	for _, want := range []string{
		`tailguard_rate_limited_total{route="default"} 1`,
		`tailguard_keys_tracked{route="default",table="rate_limit"} 1`,
		`tailguard_keys_max{route="default",table="fair"} 10000`,
	} {
		if !strings.Contains(string(metrics), want+"\n") {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(string(metrics), "tenant-a") {
		t.Error("/metrics names a client")
	}
}
