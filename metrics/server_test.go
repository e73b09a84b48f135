package metrics

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// designServerStats is the listener, upstreams and buffers part of /stats
// as DESIGN.md ("Fleet observability") and the README name them: the
// fields a script relies on.
const designServerStats = `{
 "listener": {"connections": 3, "errors": {"bad_request": 1, "no_route": 2, "header_timeout": 0,
   "headers_too_large": 0, "too_many_headers": 0, "uri_too_long": 0, "connection_limit": 4}},
 "upstreams": [{"name": "app", "breaker": "closed",
   "endpoints": [{"address": "10.0.0.1:8080", "healthy": true, "ejected": false, "outstanding": 2,
     "latency_ewma_ms": 3.5, "requests": 100, "failures": 1}]}],
 "buffers": {"memory_bytes": 1, "disk_bytes": 2, "spills": 3, "fallbacks": 4}}`

// testServerGauges are an app upstream with an open breaker, one endpoint
// ejected and one failing health checks, and a db upstream without a
// breaker; every listener cause has a count of its own.
func testServerGauges() ServerGauges {
	var errs []CauseCount
	for i, c := range []string{"bad_request", "no_route", "header_timeout", "headers_too_large",
		"too_many_headers", "uri_too_long", "connection_limit"} {
		errs = append(errs, CauseCount{Cause: c, Count: uint64(i + 1)})
	}
	return ServerGauges{
		Listener: ListenerGauges{Connections: 7, Parked: 5, Errors: errs},
		Upstreams: []UpstreamGauges{
			{Name: "app", Breaker: "open", Endpoints: []EndpointGauges{
				{Address: "10.0.0.1:8080", Healthy: true, Ejected: true, Outstanding: 2,
					LatencyEWMA: 1500 * time.Microsecond, Requests: 100, Failures: 30},
				{Address: "10.0.0.2:8080", Healthy: false, Requests: 5, Failures: 5},
			}},
			{Name: "db", Endpoints: []EndpointGauges{{Address: "db:5432", Healthy: true}}},
		},
		Buffers: BufferGauges{MemoryBytes: 3 << 20, DiskBytes: 5 << 30, Spills: 11, Fallbacks: 2},
	}
}

// newServerAdmin is newStatsAdmin with testServerGauges.
func newServerAdmin(t *testing.T) (*Admin, *Registry) {
	t.Helper()
	a, reg := newStatsAdmin(t, "")
	reg.SetServerGauges(testServerGauges)
	return a, reg
}

func TestServerStatsMatchesDesign(t *testing.T) {
	a, _ := newServerAdmin(t)
	var want, got any
	if err := json.Unmarshal([]byte(designServerStats), &want); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(get(a, "/stats", "").Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	sameShape(t, "", want, got)
}

func TestServerStatsValues(t *testing.T) {
	a, _ := newServerAdmin(t)
	var doc statsDoc
	if err := json.Unmarshal(get(a, "/stats", "").Body.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Upstreams) != 2 || len(doc.Upstreams[0].Endpoints) != 2 {
		t.Fatalf("upstreams %+v", doc.Upstreams)
	}
	app, e0, e1 := doc.Upstreams[0], doc.Upstreams[0].Endpoints[0], doc.Upstreams[0].Endpoints[1]
	tests := []struct {
		name      string
		got, want any
	}{
		{"connections", doc.Listener.Connections, int64(7)},
		{"parked", doc.Listener.Parked, int64(5)},
		{"bad_request", doc.Listener.Errors["bad_request"], uint64(1)},
		{"connection_limit", doc.Listener.Errors["connection_limit"], uint64(7)},
		{"error causes", len(doc.Listener.Errors), 7},
		{"upstream name", app.Name, "app"},
		{"breaker", app.Breaker, "open"},
		{"no breaker", doc.Upstreams[1].Breaker, ""},
		{"address", e0.Address, "10.0.0.1:8080"},
		{"ejected", e0.Ejected, true},
		{"healthy", e0.Healthy, true},
		{"unhealthy", e1.Healthy, false},
		{"not ejected", e1.Ejected, false},
		{"outstanding", e0.Outstanding, int64(2)},
		{"latency ewma ms", e0.LatencyEWMAMS, 1.5},
		{"requests", e0.Requests, uint64(100)},
		{"failures", e1.Failures, uint64(5)},
		{"buffers memory", doc.Buffers.MemoryBytes, int64(3 << 20)},
		{"buffers disk", doc.Buffers.DiskBytes, int64(5 << 30)},
		{"buffers spills", doc.Buffers.Spills, uint64(11)},
		{"buffers fallbacks", doc.Buffers.Fallbacks, uint64(2)},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, tt.got, tt.want)
		}
	}
}

// TestServerStatsWithoutGauges: a registry no proxy has given its gauges
// still serves the fields, empty.
func TestServerStatsWithoutGauges(t *testing.T) {
	a, _ := newStatsAdmin(t, "")
	body := get(a, "/stats", "").Body.String()
	for _, want := range []string{`"listener": {`, `"connections": 0`, `"errors": {}`, `"upstreams": []`} {
		if !strings.Contains(body, want) {
			t.Errorf("/stats lacks %s:\n%s", want, body)
		}
	}
}

func TestServerStatsText(t *testing.T) {
	a, _ := newServerAdmin(t)
	body := get(a, "/stats?format=text", "").Body.String()
	for _, want := range []string{
		"listener  connections 7 (5 parked)  refused before routing: bad_request 1, connection_limit 7,",
		"upstream  breaker       endpoint  healthy",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("text lacks %q:\n%s", want, body)
		}
	}
	var rows int
	for _, l := range strings.Split(body, "\n") {
		if f := strings.Fields(l); len(f) == 9 && (f[0] == "app" || f[0] == "db") {
			rows++
		}
	}
	if rows != 3 {
		t.Errorf("%d endpoint rows, want 3:\n%s", rows, body)
	}
}

// TestServerMetrics parses /metrics with expfmt and reads back every
// listener, upstream and endpoint series.
func TestServerMetrics(t *testing.T) {
	a, _ := newServerAdmin(t)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(get(a, "/metrics", "").Body)
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	app1 := map[string]string{"upstream": "app", "endpoint": "10.0.0.1:8080"}
	app2 := map[string]string{"upstream": "app", "endpoint": "10.0.0.2:8080"}
	tests := []struct {
		name   string
		typ    dto.MetricType
		labels map[string]string
		want   float64
	}{
		{"tailguard_listener_connections", dto.MetricType_GAUGE, nil, 7},
		{"tailguard_listener_connections_parked", dto.MetricType_GAUGE, nil, 5},
		{"tailguard_listener_errors_total", dto.MetricType_COUNTER, map[string]string{"cause": "bad_request"}, 1},
		{"tailguard_listener_errors_total", dto.MetricType_COUNTER, map[string]string{"cause": "no_route"}, 2},
		{"tailguard_listener_errors_total", dto.MetricType_COUNTER, map[string]string{"cause": "connection_limit"}, 7},
		{"tailguard_upstream_breaker_state", dto.MetricType_GAUGE, map[string]string{"upstream": "app"}, 2},
		{"tailguard_endpoint_healthy", dto.MetricType_GAUGE, app1, 1},
		{"tailguard_endpoint_healthy", dto.MetricType_GAUGE, app2, 0},
		{"tailguard_endpoint_ejected", dto.MetricType_GAUGE, app1, 1},
		{"tailguard_endpoint_ejected", dto.MetricType_GAUGE, app2, 0},
		{"tailguard_endpoint_outstanding", dto.MetricType_GAUGE, app1, 2},
		{"tailguard_endpoint_latency_ewma_seconds", dto.MetricType_GAUGE, app1, 0.0015},
		{"tailguard_endpoint_requests_total", dto.MetricType_COUNTER, app1, 100},
		{"tailguard_endpoint_failures_total", dto.MetricType_COUNTER, app2, 5},
		{"tailguard_buffer_bytes", dto.MetricType_GAUGE, map[string]string{"where": "memory"}, 3 << 20},
		{"tailguard_buffer_bytes", dto.MetricType_GAUGE, map[string]string{"where": "disk"}, 5 << 30},
		{"tailguard_buffer_spills_total", dto.MetricType_COUNTER, nil, 11},
		{"tailguard_buffer_fallbacks_total", dto.MetricType_COUNTER, nil, 2},
	}
	for _, tt := range tests {
		f := families[tt.name]
		if f == nil {
			t.Errorf("%s: missing", tt.name)
			continue
		}
		if f.GetType() != tt.typ {
			t.Errorf("%s: type %s, want %s", tt.name, f.GetType(), tt.typ)
		}
		m := findSeries(f, tt.labels)
		if m == nil {
			t.Errorf("%s%v: no such series", tt.name, tt.labels)
			continue
		}
		got := m.GetGauge().GetValue()
		if tt.typ == dto.MetricType_COUNTER {
			got = m.GetCounter().GetValue()
		}
		if !within(got, tt.want, 1e-9) {
			t.Errorf("%s%v = %v, want %v", tt.name, tt.labels, got, tt.want)
		}
	}
	if n := len(families["tailguard_upstream_breaker_state"].GetMetric()); n != 1 {
		t.Errorf("tailguard_upstream_breaker_state: %d series, want 1 (db has no breaker)", n)
	}
	if n := len(families["tailguard_endpoint_requests_total"].GetMetric()); n != 3 {
		t.Errorf("tailguard_endpoint_requests_total: %d series, want one an endpoint, 3", n)
	}
}

// findSeries returns the series of f whose labels are exactly labels.
func findSeries(f *dto.MetricFamily, labels map[string]string) *dto.Metric {
	for _, m := range f.GetMetric() {
		if len(m.GetLabel()) != len(labels) {
			continue
		}
		match := true
		for _, l := range m.GetLabel() {
			match = match && labels[l.GetName()] == l.GetValue()
		}
		if match {
			return m
		}
	}
	return nil
}

func TestServerMetricsLint(t *testing.T) {
	_, reg := newServerAdmin(t)
	problems, err := testutil.CollectAndLint(NewCollector(reg))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}
