package metrics

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"

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

// TestGrafanaDashboardMetrics checks that grafana-dashboard.json is valid
// JSON and queries only metrics /metrics exposes.
func TestGrafanaDashboardMetrics(t *testing.T) {
	raw, err := os.ReadFile("grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("grafana-dashboard.json: %v", err)
	}
	a, _ := newStatsAdmin(t, "")
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(get(a, "/metrics", "").Body)
	if err != nil {
		t.Fatal(err)
	}
	name := regexp.MustCompile(`tailguard_[a-z_]+`)
	queries := 0
	for _, p := range dash.Panels {
		for _, target := range p.Targets {
			queries++
			for _, n := range name.FindAllString(target.Expr, -1) {
				if families[strings.TrimSuffix(n, "_bucket")] == nil {
					t.Errorf("panel %q queries %s, which /metrics does not expose", p.Title, n)
				}
			}
		}
	}
	if queries == 0 {
		t.Error("the dashboard has no queries")
	}
}
