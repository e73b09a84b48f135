package proxy

import (
	"net"
	"net/http"
	"strings"
	"testing"

	"go.uber.org/zap"

	"tailguard/metrics"
	"tailguard/resilience"
)

// rateLimited is a route whose clients, told apart by X-Api-Key, may make
// two requests at once and then one every 100 s: slow enough that no
// test run earns a request back, so the figures below hold on any
// machine.
const rateLimited = `
listen: "127.0.0.1:0"
upstreams:
  app:
    endpoints: ["%s"]
routes:
  - name: api
    match: {path_prefix: /}
    upstream: app
    rate_limit: {rate: 0.01, burst: 2, key: "header:X-Api-Key", max_keys: 100}
    shed: {max_concurrency: 100, fair_by: client_ip, max_keys: 50}
`

// TestRateLimitAnswers: through the real proxy, a client over its rate
// gets 429 rate_limited with Retry-After; admitted and refused responses
// alike carry RateLimit-Policy and RateLimit; another key is not affected.
func TestRateLimitAnswers(t *testing.T) {
	up := startFastUpstream(t)
	s, addr := startServer(t, rateLimited, up)
	type want struct {
		status                                int
		rateLimit, retryAfter, tailguardError string
	}
	for i, c := range []struct {
		key  string
		want want
	}{
		{"alice", want{200, `"api";r=1;t=100`, "", ""}},
		{"alice", want{200, `"api";r=0;t=200`, "", ""}},
		{"alice", want{429, `"api";r=0;t=200`, "100", "rate_limited"}},
		{"bob", want{200, `"api";r=1;t=100`, "", ""}},
		{"", want{200, `"api";r=1;t=100`, "", ""}}, // no key: the keyless share one
		{"alice", want{429, `"api";r=0;t=200`, "100", "rate_limited"}},
	} {
		req, err := http.NewRequest("GET", "http://"+addr+"/items", nil)
		if err != nil {
			t.Fatal(err)
		}
		if c.key != "" {
			req.Header.Set("X-Api-Key", c.key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		got := want{resp.StatusCode, resp.Header.Get("RateLimit"), resp.Header.Get("Retry-After"), resp.Header.Get("X-Tailguard-Error")}
		if got != c.want {
			t.Errorf("%d (%s): got %+v, want %+v", i, c.key, got, c.want)
		}
		if p := resp.Header.Get("RateLimit-Policy"); p != `"api";q=2;w=200` {
			t.Errorf("%d: RateLimit-Policy %q", i, p)
		}
	}

	g := s.table.Load().routes[0].gauges()
	if g.RateLimit == nil || g.RateLimit.Tracked != 3 || g.RateLimit.MaxKeys != 100 ||
		len(g.RateLimit.TopRefused) != 1 || g.RateLimit.TopRefused[0].Key != "alice" || g.RateLimit.TopRefused[0].Refused != 2 {
		t.Errorf("rate limit gauges %+v", g.RateLimit)
	}
	if g.Fair == nil || g.Fair.MaxKeys != 50 || len(g.Fair.TopAdmitted) != 1 || g.Fair.TopAdmitted[0].Key != "127.0.0.1" {
		t.Errorf("fair gauges %+v: want the client's address admitted", g.Fair)
	}
}

// TestRateLimitBeforeAdmission: a refused request takes no admission slot
// and is counted as rate limited, not shed.
func TestRateLimitBeforeAdmission(t *testing.T) {
	up := startFastUpstream(t)
	s, addr := startServer(t, strings.Replace(rateLimited, "burst: 2", "burst: 1", 1), up)
	for range 3 {
		resp, err := http.Get("http://" + addr + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	r := s.table.Load().routes[0]
	if in := r.admission.InFlight(); in != 0 {
		t.Errorf("%d in flight after the requests ended", in)
	}
	if s, ok := r.admission.KeyStats(10); !ok || s.TopAdmitted[0].Admitted != 1 {
		t.Errorf("admission saw %+v, want the one request within the rate", s)
	}
}

// TestCarryFairness: a reload keeps the rate limiter, with every client's
// state, while its settings are unchanged, and fair_by is an admission
// setting.
func TestCarryFairness(t *testing.T) {
	base := carryBase + "    rate_limit: {rate: 5, key: \"header:X-Api-Key\"}\n"
	tests := []struct {
		name            string
		old, new        string
		limiter, admits fate
	}{
		{"nothing changed", "", "", kept, kept},
		{"rate", "rate: 5", "rate: 6", rebuilt, kept},
		{"burst written as its default", "rate: 5", "rate: 5, burst: 5", kept, kept},
		{"key", "X-Api-Key", "X-Tenant", rebuilt, kept},
		{"removed", "    rate_limit: {rate: 5, key: \"header:X-Api-Key\"}\n", "", absent, kept},
		{"fair_by added", "max_concurrency: adaptive", "max_concurrency: adaptive, fair_by: client_ip", kept, rebuilt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := metrics.NewRegistry(metrics.RegistryOptions{})
			before, err := Build(mustParse(t, "%s", base), reg, zap.NewNop(), nil)
			if err != nil {
				t.Fatal(err)
			}
			cfg := mustParse(t, "%s", strings.Replace(base, tt.old, tt.new, 1))
			after, err := Build(cfg, reg, zap.NewNop(), before)
			if err != nil {
				t.Fatal(err)
			}
			r0, r1 := before.routes[0], after.routes[0]
			var l1 *resilience.RateLimiter
			if r1.rateLimit != nil {
				l1 = r1.rateLimit.limiter
			}
			if got := fateOf(r0.rateLimit.limiter, l1); got != tt.limiter {
				t.Errorf("limiter %v, want %v", got, tt.limiter)
			}
			if got := fateOf(r0.admission, r1.admission); got != tt.admits {
				t.Errorf("admission %v, want %v", got, tt.admits)
			}
			if r1.policies != routePoliciesOf(cfg.Routes[0]) {
				t.Error("the new route does not hold the new settings")
			}
		})
	}
}

func TestClientKeyDisplay(t *testing.T) {
	ip := clientKey{}
	for _, c := range []struct {
		k         clientKey
		key, want string
	}{
		{ip, "\x0a\x00\x00\x07", "10.0.0.7"},
		{ip, string(net.ParseIP("2001:db8::1")), "2001:db8::1"},
		{ip, "(overflow)", "(overflow)"},
		{clientKey{header: "X-Tenant"}, "acme", "acme"},
		{clientKey{header: "X-Tenant"}, "abcd", "abcd"}, // 4 bytes, not an address
	} {
		if got := c.k.display(c.key); got != c.want {
			t.Errorf("%+v.display(%q) = %q, want %q", c.k, c.key, got, c.want)
		}
	}
}
