package proxy

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
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

// TestClientKey: the client's address is the peer's, or behind a trusted
// proxy the last X-Forwarded-For entry; a header key is the header's
// value, and requests without it share the empty key.
func TestClientKey(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	for i, c := range []struct {
		k    clientKey
		peer string
		xff  []string
		want string
	}{
		{clientKey{}, "192.0.2.7", nil, "192.0.2.7"},
		{clientKey{}, "192.0.2.7", []string{"203.0.113.9"}, "192.0.2.7"}, // untrusted peer: its XFF is ignored
		{clientKey{}, "10.1.2.3", []string{"198.51.100.1, 203.0.113.9"}, "203.0.113.9"},
		{clientKey{}, "10.1.2.3", []string{"198.51.100.1", " 203.0.113.9 "}, "203.0.113.9"},
		{clientKey{}, "10.1.2.3", nil, "10.1.2.3"},
		{clientKey{}, "2001:db8::1", nil, "2001:db8::1"},
		{clientKey{header: "X-Tenant"}, "192.0.2.7", nil, ""},
	} {
		var ctx fasthttp.RequestCtx
		ctx.Init(&fasthttp.Request{}, &net.TCPAddr{IP: net.ParseIP(c.peer), Port: 1}, nil)
		for _, v := range c.xff {
			ctx.Request.Header.Add("X-Forwarded-For", v)
		}
		if got, _ := c.k.of(&ctx, trusted, nil); string(got) != c.want {
			t.Errorf("%d: key %q, want %q", i, got, c.want)
		}
	}
	var ctx fasthttp.RequestCtx
	ctx.Init(&fasthttp.Request{}, &net.TCPAddr{IP: net.ParseIP("192.0.2.7")}, nil)
	ctx.Request.Header.Set("X-Tenant", "acme")
	if got, _ := (clientKey{header: "X-Tenant"}).of(&ctx, nil, nil); string(got) != "acme" {
		t.Errorf("header key %q, want acme", got)
	}
}

// TestClientKeyLeavesTheRequestIntact: reading the keys (a header, the
// last X-Forwarded-For entry) changes nothing the upstream gets.
func TestClientKeyLeavesTheRequestIntact(t *testing.T) {
	up := startHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Got-Api-Key", r.Header.Get("X-Api-Key"))
		w.Header().Set("Got-Forwarded-For", r.Header.Get("X-Forwarded-For"))
		w.Header().Set("Got-Accept", r.Header.Get("Accept"))
	}))
	addr := startProxy(t, `
listen: "127.0.0.1:0"
trusted_proxies: [127.0.0.0/8]
upstreams:
  app:
    endpoints: ["%s"]
routes:
  - name: api
    match: {path_prefix: /}
    upstream: app
    rate_limit: {rate: 1000, key: "header:X-Api-Key"}
    shed: {max_concurrency: 100, fair_by: client_ip}
`, up)
	for range 3 {
		req, err := http.NewRequest("GET", "http://"+addr+"/", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Api-Key", "key-0123456789")
		req.Header.Set("X-Forwarded-For", "198.51.100.1, 203.0.113.9")
		req.Header.Set("Accept", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := [3]string{resp.Header.Get("Got-Api-Key"), resp.Header.Get("Got-Forwarded-For"), resp.Header.Get("Got-Accept")}; got !=
			[3]string{"key-0123456789", "198.51.100.1, 203.0.113.9, 127.0.0.1", "application/json"} {
			t.Errorf("upstream got %q", got)
		}
	}
}
