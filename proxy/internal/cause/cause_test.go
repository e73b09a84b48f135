package cause

import (
	"strings"
	"testing"

	"tailguard/metrics"
)

// TestTable: every cause has a status, a header value of its own and a
// body naming its route; the metrics flags follow the cause, so that a
// connect timeout counts as a timeout like any other 504 of tailguard's.
func TestTable(t *testing.T) {
	tests := []struct {
		c      Cause
		status int
		name   string
		flags  metrics.Flag
		closes bool
	}{
		{BadRequest, 400, "bad_request", 0, true},
		{NoRoute, 404, "no_route", 0, false},
		{HeaderTimeout, 408, "header_timeout", 0, false},
		{BodyTimeout, 408, "body_timeout", 0, true},
		{BodyTooLarge, 413, "body_too_large", 0, true},
		{URITooLong, 414, "uri_too_long", 0, false},
		{HeadersTooLarge, 431, "headers_too_large", 0, false},
		{TooManyHeaders, 431, "too_many_headers", 0, false},
		{ConnectFailure, 502, "connect_failure", 0, false},
		{UpstreamReset, 502, "upstream_reset", 0, false},
		{BadResponse, 502, "bad_response", 0, false},
		{TLSFailure, 502, "tls_failure", 0, false},
		{MidBodyFailure, 502, "mid_body_failure", 0, true},
		{PoolFull, 503, "pool_exhausted", 0, false},
		{Shed, 503, "shed", metrics.Shed, false},
		{BreakerOpen, 503, "breaker_open", metrics.BreakerRejected, false},
		{ConnLimit, 503, "connection_limit", 0, false},
		{RateLimited, 429, "rate_limited", metrics.RateLimited, false},
		{ConnectTimeout, 504, "connect_timeout", metrics.TimedOut, false},
		{Timeout, 504, "timeout", metrics.TimedOut, false},
	}
	if len(tests) != int(count)-1 {
		t.Fatalf("%d causes tested, %d defined", len(tests), count-1)
	}
	bodies := NewBodies("api")
	for _, tt := range tests {
		if tt.c.Status() != tt.status || tt.c.String() != tt.name || tt.c.Flags() != tt.flags || tt.c.Closes() != tt.closes {
			t.Errorf("%s: %d %q %v %v, want %d %q %v %v", tt.name, tt.c.Status(), tt.c, tt.c.Flags(), tt.c.Closes(),
				tt.status, tt.name, tt.flags, tt.closes)
		}
		if b := string(bodies.Of(tt.c)); !strings.HasPrefix(b, "tailguard: ") || !strings.Contains(b, `(route "api")`) {
			t.Errorf("%s: body %q", tt.name, b)
		}
		if b := string(Unrouted.Of(tt.c)); strings.Contains(b, "route") && tt.c != NoRoute {
			t.Errorf("%s: unrouted body %q names a route", tt.name, b)
		}
	}
	if None.String() != "" || None.Flags() != 0 {
		t.Errorf("None: %q %v", None, None.Flags())
	}
}

// TestCounts: each cause counts on its own counter, and BeforeRouting
// names the listener's causes as DESIGN.md spells them.
func TestCounts(t *testing.T) {
	var n Counts
	n.Add(NoRoute)
	n.Add(NoRoute)
	n.Add(ConnLimit)
	seen := map[Cause]uint64{}
	n.Each(func(c Cause, v uint64) { seen[c] = v })
	if len(seen) != int(count)-1 || seen[NoRoute] != 2 || seen[ConnLimit] != 1 || n.Get(BadRequest) != 0 {
		t.Errorf("counts %v", seen)
	}
	var names []string
	for _, c := range BeforeRouting {
		names = append(names, c.String())
	}
	want := "bad_request no_route header_timeout headers_too_large too_many_headers uri_too_long connection_limit"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("BeforeRouting %q, want %q", got, want)
	}
	if allocs := testing.AllocsPerRun(100, func() { n.Add(Shed) }); allocs != 0 {
		t.Errorf("Add allocates %v", allocs)
	}
}
