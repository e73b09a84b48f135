package metrics

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"

	"tailguard/internal/golden"
)

// sloTestRoutes are the routes of testdata/slo.rules.yaml, which
// testdata/slo_rules_test.yaml tests with promtool: api has both
// objectives over the default 30 days, checkout availability over 28
// days, static no SLO.
var sloTestRoutes = []RouteConfig{
	{Name: "api", SLO: &SLO{Latency: 250 * time.Millisecond, LatencyTarget: 0.99, Availability: 0.999}},
	{Name: "checkout", SLO: &SLO{Availability: 0.99, Period: 28 * 24 * time.Hour}},
	{Name: "static"},
}

// TestSLORulesGolden pins the generated rule file; rerun with -update
// after a deliberate change, and read the diff.
func TestSLORulesGolden(t *testing.T) {
	golden.Check(t, "testdata/slo.rules.yaml", string(SLORules(sloTestRoutes)))
}

// promtool returns the path of Prometheus's promtool, or skips t.
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not found (Debian: apt-get install prometheus); the SLO rules are not checked by Prometheus")
	}
	return p
}

// runPromtool runs promtool with args and fails t with its output if it
// fails.
func runPromtool(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command(promtool(t), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// TestSLORulesPromtool runs testdata/slo_rules_test.yaml, promtool's unit
// tests of the alerts, on the rules SLORules writes now (not on the
// golden copy, which may be stale): a 14.4× burn pages within 5 minutes,
// a 1× burn never pages, and the rest the file lists.
func TestSLORulesPromtool(t *testing.T) {
	promtool(t)
	dir := t.TempDir()
	tests, err := os.ReadFile("testdata/slo_rules_test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{
		"slo.rules.yaml":      SLORules(sloTestRoutes),
		"slo_rules_test.yaml": tests,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	runPromtool(t, "check", "rules", filepath.Join(dir, "slo.rules.yaml"))
	runPromtool(t, "test", "rules", filepath.Join(dir, "slo_rules_test.yaml"))
}

// sloRuleFile is what TestSLORules reads back of a rule file.
type sloRuleFile struct {
	Groups []struct {
		Name  string
		Rules []struct {
			Record, Alert, Expr, For string
			Labels                   map[string]string
		}
	}
}

// TestSLORules checks the rules' shape for several SLOs without
// Prometheus: a group per route with an SLO; per objective, the error
// ratio recorded over each window, the budget left over the period, and
// the four alerts with their windows, thresholds and for.
func TestSLORules(t *testing.T) {
	days := func(n int) time.Duration { return time.Duration(n) * 24 * time.Hour }
	// obj is an objective's slo label and its four alert thresholds (the
	// burn-rate factors times its budget).
	type obj struct {
		name       string
		thresholds [4]string
	}
	tests := []struct {
		name    string
		slo     *SLO
		windows []string // the recorded windows; the period's is last but one or last
		period  string
		objs    []obj
	}{
		{name: "no SLO"},
		{name: "no valid target", slo: &SLO{Availability: 1}},
		{"availability, 30 days by default", &SLO{Availability: 0.999},
			[]string{"5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d"}, "30d",
			[]obj{{"availability", [4]string{"0.0144", "0.006", "0.003", "0.001"}}}},
		{"both, 30 days", &SLO{Availability: 0.995, Latency: time.Second, LatencyTarget: 0.9, Period: days(30)},
			[]string{"5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d"}, "30d",
			[]obj{
				{"availability", [4]string{"0.072", "0.03", "0.015", "0.005"}},
				{"latency", [4]string{"1.44", "0.6", "0.3", "0.1"}},
			}},
		// Factors 13.44, 5.6, 2.8 and 0.9333….
		{"latency, 28 days", &SLO{Latency: 300 * time.Millisecond, LatencyTarget: 0.99, Period: days(28)},
			[]string{"5m", "30m", "1h", "2h", "6h", "1d", "3d", "4w"}, "4w",
			[]obj{{"latency", [4]string{"0.1344", "0.056", "0.028", "0.00933333333333"}}}},
		// Factors 0.96, 0.4, 0.2 and 0.0666….
		{"2 days: the period among the windows", &SLO{Availability: 0.9, Period: days(2)},
			[]string{"5m", "30m", "1h", "2h", "6h", "1d", "2d", "3d"}, "2d",
			[]obj{{"availability", [4]string{"0.096", "0.04", "0.02", "0.00666666666667"}}}},
	}
	alerts := []struct{ name, severity, long, short, forFor string }{
		{"TailguardSLOFastBurn", "page", "1h", "5m", "2m"},
		{"TailguardSLOFastBurn", "page", "6h", "30m", "15m"},
		{"TailguardSLOSlowBurn", "ticket", "1d", "2h", "1h"},
		{"TailguardSLOSlowBurn", "ticket", "3d", "6h", "3h"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := SLORules([]RouteConfig{{Name: "r", SLO: tt.slo}})
			var f sloRuleFile
			if err := yaml.Unmarshal(out, &f); err != nil {
				t.Fatalf("not YAML: %v\n%s", err, out)
			}
			if len(tt.objs) == 0 {
				if len(f.Groups) != 0 {
					t.Errorf("%d groups, want none:\n%s", len(f.Groups), out)
				}
				return
			}
			if len(f.Groups) != 1 || f.Groups[0].Name != "tailguard-slo-r" {
				t.Fatalf("want one group, tailguard-slo-r:\n%s", out)
			}
			rules := f.Groups[0].Rules
			per := len(tt.windows) + 1 + len(alerts)
			if len(rules) != per*len(tt.objs) {
				t.Fatalf("%d rules, want %d per objective × %d:\n%s", len(rules), per, len(tt.objs), out)
			}
			for i, o := range tt.objs {
				rs := rules[i*per : (i+1)*per]
				for j, w := range tt.windows {
					r := rs[j]
					if r.Record != errorRatioRecord+w || r.Labels["slo"] != o.name ||
						!strings.Contains(r.Expr, "["+w+"]") || !strings.Contains(r.Expr, `route="r"`) {
						t.Errorf("%s, window %s: record %s %v, expr %q", o.name, w, r.Record, r.Labels, r.Expr)
					}
				}
				budget := rs[len(tt.windows)]
				if budget.Record != budgetLeftRecord || !strings.Contains(budget.Expr, errorRatioRecord+tt.period+"{") {
					t.Errorf("%s: budget rule %s: %s", o.name, budget.Record, budget.Expr)
				}
				for j, a := range alerts {
					r := rs[len(tt.windows)+1+j]
					if r.Alert != a.name || r.For != a.forFor || r.Labels["slo"] != o.name || r.Labels["severity"] != a.severity ||
						r.Labels["long_window"] != a.long || r.Labels["short_window"] != a.short {
						t.Errorf("%s alert %d: %s for %s, labels %v; want %+v", o.name, j, r.Alert, r.For, r.Labels, a)
					}
					for _, w := range []string{a.long, a.short} {
						op := " >= " + o.thresholds[j] + " * (1 - 1e-9)"
						if a.severity != "page" {
							op = " > " + o.thresholds[j] + " * (1 + 1e-9)"
						}
						cond := errorRatioRecord + w + `{route="r",slo="` + o.name + `"}` + op
						if !strings.Contains(r.Expr, cond) {
							t.Errorf("%s alert %s/%s: expr lacks %q:\n%s", o.name, a.long, a.short, cond, r.Expr)
						}
					}
				}
			}
		})
	}
}

// TestBurnAlertFactors checks the burn-rate factors against the SRE
// workbook's table for 30 days, and their scaling with the period.
func TestBurnAlertFactors(t *testing.T) {
	tests := []struct {
		period time.Duration
		want   []string
	}{
		{30 * 24 * time.Hour, []string{"14.4", "6", "3", "1"}},
		{28 * 24 * time.Hour, []string{"13.44", "5.6", "2.8", "0.933333333333"}},
		{7 * 24 * time.Hour, []string{"3.36", "1.4", "0.7", "0.233333333333"}},
	}
	for _, tt := range tests {
		for i, a := range burnAlerts {
			if got := number(a.factor(tt.period)); got != tt.want[i] {
				t.Errorf("period %v, alert %d (%v/%v): factor %s, want %s", tt.period, i, a.long, a.short, got, tt.want[i])
			}
		}
	}
}
