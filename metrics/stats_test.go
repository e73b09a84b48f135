package metrics

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// designStats is the /stats example of DESIGN.md, copied verbatim: the
// fields a script relies on.
const designStats = `{"uptime_s": 12.5, "window": "1m",
 "routes": [{"name": "api", "requests": 1200, "rps": 20.0,
   "status": {"2xx": 1190, "3xx": 0, "4xx": 2, "5xx": 8},
   "shed": 0, "timeouts": 1, "breaker_rejects": 0, "retries": 3,
   "hedges": {"sent": 12, "won": 7}, "breaker": "closed", "concurrency_limit": 64,
   "latency_ms": {"queue":    {"p50": 0.01, "p90": 0.02, "p99": 0.1, "p999": 0.3, "max": 1.2},
                  "service":  {"p50": 3.1,  "p90": 5.0,  "p99": 40,  "p999": 90,  "max": 120},
                  "response": {"p50": 3.2,  "p90": 5.1,  "p99": 41,  "p999": 91,  "max": 121}},
   "slo": {"latency_sli": 0.995, "availability_sli": 0.9993, "error_budget_remaining": 0.7,
           "burn_rate_5m": 0.4, "burn_rate_1h": 0.3}}]}`

// newStatsAdmin returns an admin over a registry with one route, "api",
// that has an SLO, gauges and some traffic, ticked at t=2s.
func newStatsAdmin(t *testing.T, token string) (*Admin, *Registry) {
	t.Helper()
	reg, clock := newTestRegistry(t, RouteConfig{
		Name: "api",
		SLO:  &SLO{Latency: 20 * time.Millisecond, LatencyTarget: 0.99, Availability: 0.999},
		Gauges: func() Gauges {
			return Gauges{Breaker: "closed", ConcurrencyLimit: 64, InFlight: 3,
				ShedByPriority: map[string]uint64{"critical": 0, "default": 1, "sheddable": 4}}
		},
	})
	rt := reg.Route("api")
	for i := range 100 {
		s := ok(time.Duration(i+1) * time.Millisecond)
		if i == 0 {
			s.Status, s.Flags = 503, Shed
		}
		rt.Record(uint64(i), s)
	}
	reg.Tick(clock.set(clock.Now(), 2*time.Second))
	a := NewAdmin(AdminOptions{Token: token, Ready: func() bool { return true }, Config: func() any { return nil }, Stats: reg})
	return a, reg
}

func get(a http.Handler, path, auth string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, path, nil)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	rec := httptest.NewRecorder()
	a.ServeHTTP(rec, req)
	return rec
}

func TestStatsMatchesDesign(t *testing.T) {
	a, _ := newStatsAdmin(t, "")
	rec := get(a, "/stats", "")
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("GET /stats: %d %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	var want, got any
	if err := json.Unmarshal([]byte(designStats), &want); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatalf("/stats is not JSON: %v", err)
	}
	sameShape(t, "", want, got)
}

// sameShape checks that every field of want exists in got with the same
// JSON type, recursively (an array's first element stands for all).
func sameShape(t *testing.T, path string, want, got any) {
	t.Helper()
	if fmt.Sprintf("%T", want) != fmt.Sprintf("%T", got) {
		t.Errorf("%s: %T, want %T", path, got, want)
		return
	}
	switch w := want.(type) {
	case map[string]any:
		g := got.(map[string]any)
		for k, v := range w {
			if _, ok := g[k]; !ok {
				t.Errorf("%s.%s: missing", path, k)
				continue
			}
			sameShape(t, path+"."+k, v, g[k])
		}
	case []any:
		g := got.([]any)
		if len(g) == 0 {
			t.Errorf("%s: empty", path)
			return
		}
		sameShape(t, path+"[0]", w[0], g[0])
	}
}

func TestStatsValues(t *testing.T) {
	a, _ := newStatsAdmin(t, "")
	var doc statsDoc
	if err := json.Unmarshal(get(a, "/stats?window=10s", "").Body.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	r := doc.Routes[0]
	checks := []struct {
		name      string
		got, want any
	}{
		{"window", doc.Window, "10s"},
		{"uptime", doc.UptimeS, 2.0},
		{"requests", r.Requests, int64(100)},
		{"rps", r.RPS, 50.0}, // 100 requests over the route's 2 s
		{"5xx", r.Status["5xx"], int64(1)},
		{"shed", r.Shed, int64(1)},
		{"breaker", r.Breaker, "closed"},
		{"concurrency limit", r.ConcurrencyLimit, 64},
		{"shed sheddable", r.ShedByPriority["sheddable"], uint64(4)},
		{"response p50 ms", r.LatencyMS.Response.P50, 50.0},
		{"response max ms", r.LatencyMS.Response.Max, 100.0},
		{"latency sli", *r.SLO.LatencySLI, 0.2},
		{"availability sli", r.SLO.AvailabilitySLI, 0.99},
		{"budget", r.SLO.ErrorBudgetRemaining, 1 - 0.01/0.001},
	}
	for _, c := range checks {
		if g, ok := c.got.(float64); ok && within(g, c.want.(float64), 0.01) {
			continue // latencies are within HdrHistogram's precision, 1% at 2 digits
		}
		if c.got != c.want {
			t.Errorf("%s: %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestStatsRequests(t *testing.T) {
	tests := []struct {
		name, path, auth string
		want             int
		body             string
	}{
		{"default window", "/stats", "", 200, `"window": "1m"`},
		{"10s", "/stats?window=10s", "", 200, `"window": "10s"`},
		{"5m", "/stats?window=5m", "", 200, `"window": "5m"`},
		{"all", "/stats?window=all", "", 200, `"window": "all"`},
		{"bad window", "/stats?window=1h", "", 400, "window must be"},
		{"bad format", "/stats?format=xml", "", 400, "format must be"},
		{"text", "/stats?format=text&window=all", "", 200, "window all"},
		{"hdr bad window", "/stats/hdr?window=2m", "", 400, "window must be"},
		{"no token", "/stats", "Bearer x", 401, "unauthorized"},
		{"hdr no token", "/stats/hdr", "", 401, "unauthorized"},
		{"metrics no token", "/metrics", "", 401, "unauthorized"},
		{"token", "/stats", "Bearer s3cret", 200, `"routes"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			token := ""
			if tt.auth != "" || strings.Contains(tt.name, "no token") {
				token = "s3cret"
			}
			a, _ := newStatsAdmin(t, token)
			rec := get(a, tt.path, tt.auth)
			if rec.Code != tt.want || !strings.Contains(rec.Body.String(), tt.body) {
				t.Errorf("GET %s: %d %q, want %d containing %q", tt.path, rec.Code, rec.Body.String(), tt.want, tt.body)
			}
		})
	}
}

func TestStatsText(t *testing.T) {
	a, _ := newStatsAdmin(t, "")
	body := get(a, "/stats?format=text&window=10s", "").Body.String()
	lines := strings.Split(strings.TrimRight(body, "\n"), "\n")
	if len(lines) != 4 {
		t.Fatalf("want title, blank, header and one route row:\n%s", body)
	}
	var doc statsDoc
	if err := json.Unmarshal(get(a, "/stats?window=10s", "").Body.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	l := doc.Routes[0].LatencyMS
	wantRow := []string{"api", "50.0"}
	for _, q := range []quantiles{l.Queue, l.Service, l.Response} {
		wantRow = append(wantRow, strings.Fields(q.text())...)
	}
	wantRow = append(wantRow, "1", "1", "closed")
	header, row := strings.Fields(lines[2]), strings.Fields(lines[3])
	if strings.Join(row, " ") != strings.Join(wantRow, " ") {
		t.Errorf("row %q, want %q\n%s", row, wantRow, body)
	}
	if header[0] != "route" || len(lines[2]) != len(lines[3]) {
		t.Errorf("header and row are not aligned:\n%s", body)
	}
}

// within reports whether got is within rel of want, relatively.
func within(got, want, rel float64) bool {
	return math.Abs(got-want) <= rel*math.Abs(want)+1e-9
}

func TestNoRegistryNoStats(t *testing.T) {
	a := NewAdmin(AdminOptions{Ready: func() bool { return true }, Config: func() any { return nil }})
	for _, path := range []string{"/stats", "/stats/hdr", "/metrics"} {
		if rec := get(a, path, ""); rec.Code != http.StatusNotFound {
			t.Errorf("GET %s without a registry: %d, want 404", path, rec.Code)
		}
	}
}
