package metrics

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

func TestMetricsLint(t *testing.T) {
	_, reg := newStatsAdmin(t, "")
	problems, err := testutil.CollectAndLint(NewCollector(reg))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

// TestMetricsParse parses /metrics with expfmt's text parser and checks
// the names, types and a few values.
func TestMetricsParse(t *testing.T) {
	a, _ := newStatsAdmin(t, "")
	rec := get(a, "/metrics", "")
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(rec.Body)
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	want := map[string]dto.MetricType{
		"tailguard_requests_total":             dto.MetricType_COUNTER,
		"tailguard_shed_total":                 dto.MetricType_COUNTER,
		"tailguard_timeouts_total":             dto.MetricType_COUNTER,
		"tailguard_breaker_rejects_total":      dto.MetricType_COUNTER,
		"tailguard_retries_total":              dto.MetricType_COUNTER,
		"tailguard_hedges_sent_total":          dto.MetricType_COUNTER,
		"tailguard_hedges_won_total":           dto.MetricType_COUNTER,
		"tailguard_slo_latency_good_total":     dto.MetricType_COUNTER,
		"tailguard_breaker_state":              dto.MetricType_GAUGE,
		"tailguard_concurrency_limit":          dto.MetricType_GAUGE,
		"tailguard_in_flight":                  dto.MetricType_GAUGE,
		"tailguard_queued":                     dto.MetricType_GAUGE,
		"tailguard_shed_by_priority_total":     dto.MetricType_COUNTER,
		"tailguard_slo_latency_sli":            dto.MetricType_GAUGE,
		"tailguard_slo_availability_sli":       dto.MetricType_GAUGE,
		"tailguard_slo_error_budget_remaining": dto.MetricType_GAUGE,
		"tailguard_slo_burn_rate":              dto.MetricType_GAUGE,
		"tailguard_queue_seconds":              dto.MetricType_HISTOGRAM,
		"tailguard_service_seconds":            dto.MetricType_HISTOGRAM,
		"tailguard_response_seconds":           dto.MetricType_HISTOGRAM,
		"go_goroutines":                        dto.MetricType_GAUGE,
	}
	for name, typ := range want {
		f, ok := families[name]
		if !ok {
			t.Errorf("%s: missing", name)
			continue
		}
		if f.GetType() != typ {
			t.Errorf("%s: type %s, want %s", name, f.GetType(), typ)
		}
	}
	for name, f := range families {
		if !strings.HasPrefix(name, "tailguard_") {
			continue
		}
		if (f.GetType() == dto.MetricType_COUNTER) != strings.HasSuffix(name, "_total") {
			t.Errorf("%s: a counter, and only a counter, ends in _total", name)
		}
		if f.GetType() == dto.MetricType_HISTOGRAM && !strings.HasSuffix(name, "_seconds") {
			t.Errorf("%s: a duration histogram ends in _seconds", name)
		}
	}
	if v := value(families["tailguard_shed_by_priority_total"], "priority", "sheddable"); v != 4 {
		t.Errorf("tailguard_shed_by_priority_total{priority=sheddable} = %v, want 4", v)
	}
	if v := value(families["tailguard_requests_total"], "code", "5xx"); v != 1 {
		t.Errorf(`tailguard_requests_total{code="5xx"} = %v, want 1`, v)
	}
	if v := value(families["tailguard_slo_burn_rate"], "window", "1h"); !near(v, 0.01/0.001) {
		t.Errorf(`tailguard_slo_burn_rate{window="1h"} = %v, want 10`, v)
	}
	checkResponseBuckets(t, families["tailguard_response_seconds"].GetMetric()[0].GetHistogram())
}

// checkResponseBuckets checks the buckets of newStatsAdmin's responses,
// 1 ms to 100 ms by 1 ms.
func checkResponseBuckets(t *testing.T, h *dto.Histogram) {
	t.Helper()
	if h.GetSampleCount() != 100 || !within(h.GetSampleSum(), 5.05, 1e-9) {
		t.Errorf("count %d sum %v, want 100 and 5.05", h.GetSampleCount(), h.GetSampleSum())
	}
	want := map[float64]uint64{0.0005: 0, 0.001: 1, 0.01: 10, 0.025: 25, 0.05: 50, 0.1: 100, 30: 100}
	for _, b := range h.GetBucket() {
		if w, ok := want[b.GetUpperBound()]; ok && b.GetCumulativeCount() != w {
			t.Errorf("le=%v: %d, want %d", b.GetUpperBound(), b.GetCumulativeCount(), w)
		}
	}
	if got := len(h.GetBucket()); got != len(bucketMicros)+1 {
		t.Errorf("%d buckets, want %d and +Inf", got, len(bucketMicros))
	}
}

// value returns the value of the family's metric with the given label.
func value(f *dto.MetricFamily, label, v string) float64 {
	for _, m := range f.GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == label && l.GetValue() == v {
				if m.GetCounter() != nil {
					return m.GetCounter().GetValue()
				}
				return m.GetGauge().GetValue()
			}
		}
	}
	return -1
}

// grafanaDashboard is what the tests read of grafana-dashboard.json: each
// panel's queries and the template variables' queries.
type grafanaDashboard struct {
	Panels []struct {
		Title   string
		Targets []struct{ Expr string }
	}
	Templating struct {
		List []struct {
			Name       string
			Definition string
		}
	}
}

// readDashboard parses grafana-dashboard.json and returns its queries, by
// where they are ("panel ...", "variable ...").
func readDashboard(t *testing.T) map[string][]string {
	t.Helper()
	raw, err := os.ReadFile("grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash grafanaDashboard
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("grafana-dashboard.json: %v", err)
	}
	queries := map[string][]string{}
	for _, p := range dash.Panels {
		for _, target := range p.Targets {
			queries["panel "+strconv.Quote(p.Title)] = append(queries["panel "+strconv.Quote(p.Title)], target.Expr)
		}
	}
	for _, v := range dash.Templating.List {
		if v.Definition != "" {
			queries["variable "+v.Name] = append(queries["variable "+v.Name], v.Definition)
		}
	}
	return queries
}

// TestGrafanaDashboardMetrics checks that grafana-dashboard.json is valid
// JSON and queries only metrics /metrics serves (with the proxy's
// listener and endpoint figures present), that its percentiles read the
// native histograms, and that it charts the endpoints and the listener's
// errors.
func TestGrafanaDashboardMetrics(t *testing.T) {
	queries := readDashboard(t)
	a, reg := newStatsAdmin(t, "")
	reg.SetServerGauges(func() ServerGauges {
		return ServerGauges{
			Listener: ListenerGauges{Connections: 3, Errors: []CauseCount{{Cause: "no_route", Count: 2}}},
			Upstreams: []UpstreamGauges{{Name: "app", Breaker: "closed", Endpoints: []EndpointGauges{
				{Address: "10.0.0.1:8080", Healthy: true, Outstanding: 1, LatencyEWMA: time.Millisecond, Requests: 10, Failures: 1},
			}}},
		}
	})
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(get(a, "/metrics", "").Body)
	if err != nil {
		t.Fatal(err)
	}
	name := regexp.MustCompile(`tailguard_[a-z_]+`)
	native := regexp.MustCompile(`histogram_quantile\([0-9.]+, sum by \(route\) \(rate\(tailguard_[a-z]+_seconds\{`)
	seen := map[string]bool{}
	for where, exprs := range queries {
		for _, expr := range exprs {
			for _, n := range name.FindAllString(expr, -1) {
				base := n
				for _, suffix := range []string{"_bucket", "_sum", "_count"} {
					if f := families[strings.TrimSuffix(n, suffix)]; f != nil && f.GetType() == dto.MetricType_HISTOGRAM {
						base = strings.TrimSuffix(n, suffix)
					}
				}
				if families[base] == nil {
					t.Errorf("%s queries %s, which /metrics does not serve", where, n)
				}
				seen[base] = true
			}
			if strings.Contains(expr, "histogram_quantile") && !native.MatchString(expr) {
				t.Errorf("%s: a percentile not read from the native histograms: %s", where, expr)
			}
		}
	}
	for _, n := range []string{
		"tailguard_response_seconds", "tailguard_listener_errors_total", "tailguard_endpoint_requests_total",
		"tailguard_endpoint_failures_total", "tailguard_endpoint_latency_ewma_seconds", "tailguard_endpoint_outstanding",
		"tailguard_endpoint_ejected", "tailguard_endpoint_healthy", "tailguard_upstream_breaker_state",
	} {
		if !seen[n] {
			t.Errorf("the dashboard does not chart %s", n)
		}
	}
}

// TestGrafanaDashboardPromQL has promtool parse every query of the
// dashboard (the template variables replaced by ".*"), as recording rules.
func TestGrafanaDashboardPromQL(t *testing.T) {
	promtool(t)
	var rules strings.Builder
	rules.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	n := 0
	for where, exprs := range readDashboard(t) {
		if strings.HasPrefix(where, "variable ") {
			continue // label_values(...) is Grafana's, not PromQL
		}
		for _, expr := range exprs {
			n++
			expr = strings.NewReplacer("$route", ".*", "$upstream", ".*").Replace(expr)
			fmt.Fprintf(&rules, "      - record: dashboard:query%d\n        expr: %s\n", n, strconv.Quote(expr))
		}
	}
	path := filepath.Join(t.TempDir(), "dashboard.rules.yaml")
	if err := os.WriteFile(path, []byte(rules.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	runPromtool(t, "check", "rules", path)
}
