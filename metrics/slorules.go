package metrics

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
)

// DefaultSLOPeriod is the span an SLO holds over when SLO.Period is 0.
const DefaultSLOPeriod = 30 * 24 * time.Hour

// A burnAlert is one of the SRE workbook's multi-window, multi-burn-rate
// alerts ("Alerting on SLOs", the sixth and recommended iteration): it
// fires when the error ratio over both windows is at least factor × the
// error budget, the factor being the burn rate that spends budgetPercent
// of the period's budget in the long window. The short window, 1/12 of
// the long one, lets the alert stop soon after the burn does; forFor
// rides out a single bad evaluation.
type burnAlert struct {
	name, severity string
	long, short    time.Duration
	budgetPercent  int64
	forFor         time.Duration
}

// burnAlerts are the workbook's four; at a 30-day period their factors
// are 14.4, 6, 3 and 1. The fast burns page, the slow ones open a ticket.
var burnAlerts = []burnAlert{
	{"TailguardSLOFastBurn", "page", time.Hour, 5 * time.Minute, 2, 2 * time.Minute},
	{"TailguardSLOFastBurn", "page", 6 * time.Hour, 30 * time.Minute, 5, 15 * time.Minute},
	{"TailguardSLOSlowBurn", "ticket", 24 * time.Hour, 2 * time.Hour, 10, time.Hour},
	{"TailguardSLOSlowBurn", "ticket", 72 * time.Hour, 6 * time.Hour, 10, 3 * time.Hour},
}

// factor is the burn rate that spends the alert's share of a period's
// budget in its long window: 2% of 30 days in an hour is 14.4. Periods
// and windows are whole hours, so the division is the only rounding.
func (a burnAlert) factor(period time.Duration) float64 {
	return float64(a.budgetPercent*int64(period/time.Hour)) / float64(100*int64(a.long/time.Hour))
}

// The names of the recorded series, labelled {route, slo}: an objective's
// error ratio over a window (the name ends with the window, e.g.
// ratio_rate5m), and the share of its error budget left over the period.
const (
	errorRatioRecord = "route:tailguard_slo_errors_per_request:ratio_rate"
	budgetLeftRecord = "route:tailguard_slo_error_budget_remaining:ratio"
)

// sloObjective is one objective of a route, as its rules need it.
type sloObjective struct {
	Route, Name string
	// Summary states the objective, e.g. "99.9% of requests not 5xx".
	Summary string
	Target  float64
	Period  time.Duration
	// bad says what a bad request is, e.g. "5xx".
	bad string
	// Exactly one of badCounter and goodCounter is set: the PromQL
	// selector of the counter of the requests that spend the budget, or
	// of those that do not.
	badCounter, goodCounter string
}

// sloObjectives returns route r's objectives, availability first; none
// without an SLO.
func sloObjectives(r RouteConfig) []sloObjective {
	o := r.SLO
	if o == nil {
		return nil
	}
	period := o.Period
	if period <= 0 {
		period = DefaultSLOPeriod
	}
	route := "route=" + strconv.Quote(r.Name)
	var objs []sloObjective
	if validTarget(o.Availability) {
		objs = append(objs, sloObjective{
			Route: r.Name, Name: "availability", Target: o.Availability, Period: period,
			Summary: percent(o.Availability) + " of requests not 5xx", bad: "5xx",
			badCounter: "tailguard_requests_total{" + route + `,code="5xx"}`,
		})
	}
	if o.Latency > 0 && validTarget(o.LatencyTarget) {
		objs = append(objs, sloObjective{
			Route: r.Name, Name: "latency", Target: o.LatencyTarget, Period: period,
			Summary:     percent(o.LatencyTarget) + " of requests answered within " + o.Latency.String(),
			bad:         "slower than " + o.Latency.String(),
			goodCounter: "tailguard_slo_latency_good_total{" + route + "}",
		})
	}
	return objs
}

// Budget is the objective's error budget, the share of requests that may
// be bad: 1 − target.
func (o sloObjective) Budget() float64 { return 1 - o.Target }

// Windows returns the windows the error ratio is recorded over, shortest
// first: the alerts' and the period.
func (o sloObjective) Windows() []time.Duration {
	ws := []time.Duration{o.Period}
	for _, a := range burnAlerts {
		ws = append(ws, a.short, a.long)
	}
	slices.Sort(ws)
	return slices.Compact(ws)
}

// ErrorRatio returns the PromQL of the objective's error ratio over
// window w, summed over pods by route.
func (o sloObjective) ErrorRatio(w time.Duration) string {
	sum := func(sel string) string {
		return "sum by (route) (rate(" + sel + "[" + promDuration(w) + "]))"
	}
	total := sum("tailguard_requests_total{route=" + strconv.Quote(o.Route) + "}")
	if o.badCounter != "" {
		return sum(o.badCounter) + "\n/\n" + total
	}
	return "1 - (\n  " + sum(o.goodCounter) + "\n  /\n  " + total + "\n)"
}

// Recorded returns the selector of the recorded error ratio over window
// w.
func (o sloObjective) Recorded(w time.Duration) string {
	return errorRatioRecord + promDuration(w) +
		"{route=" + strconv.Quote(o.Route) + ",slo=" + strconv.Quote(o.Name) + "}"
}

// BudgetLeft returns the PromQL of the share of the period's error budget
// left: 1 untouched, 0 spent, negative overspent.
func (o sloObjective) BudgetLeft() string {
	return "1 - " + o.Recorded(o.Period) + " / " + number(o.Budget())
}

// Alerts returns the objective's burn-rate alerts.
func (o sloObjective) Alerts() []sloAlert {
	as := make([]sloAlert, len(burnAlerts))
	for i, a := range burnAlerts {
		as[i] = sloAlert{a, o}
	}
	return as
}

// An sloAlert is a burn-rate alert on one objective. Its methods give
// writeSLORoute what it writes.
type sloAlert struct {
	a   burnAlert
	Obj sloObjective
}

// Name returns the alert's name.
func (s sloAlert) Name() string { return s.a.name }

// Severity returns "page" or "ticket".
func (s sloAlert) Severity() string { return s.a.severity }

// Long returns the long window, e.g. "1h".
func (s sloAlert) Long() string { return promDuration(s.a.long) }

// Short returns the short window, e.g. "5m".
func (s sloAlert) Short() string { return promDuration(s.a.short) }

// For returns how long the condition must hold, e.g. "2m".
func (s sloAlert) For() string { return promDuration(s.a.forFor) }

// BudgetPercent returns the share of the period's budget, in percent,
// that burning at Factor spends in the long window.
func (s sloAlert) BudgetPercent() int64 { return s.a.budgetPercent }

// Factor returns the burn rate the alert fires at, e.g. "14.4", to 4
// significant digits.
func (s sloAlert) Factor() string { return prose(s.a.factor(s.Obj.Period)) }

// Expr returns the alert's PromQL: the error ratio over both windows at
// or above Factor × the budget for a page, above it for a ticket. A page
// burns the budget so fast that its very factor is an emergency; a ticket
// at its factor (1× for the slowest pair) spends the budget exactly by the
// period's end, which meets the SLO, so only a burn beyond it opens one.
func (s sloAlert) Expr() string {
	threshold := " >= " + number(s.a.factor(s.Obj.Period)*s.Obj.Budget()) + " * (1 - 1e-9)"
	if s.a.severity != "page" {
		threshold = " > " + number(s.a.factor(s.Obj.Period)*s.Obj.Budget()) + " * (1 + 1e-9)"
	}
	return s.Obj.Recorded(s.a.long) + threshold + "\nand\n" + s.Obj.Recorded(s.a.short) + threshold
}

// Summary returns the alert's summary annotation.
func (s sloAlert) Summary() string {
	if s.a.severity != "page" {
		return "Route " + s.Obj.Route + " is spending its " + s.Obj.Name + " error budget more than " + s.Factor() + " times as fast as the SLO allows"
	}
	return "Route " + s.Obj.Route + " is spending its " + s.Obj.Name + " error budget " + s.Factor() + " times as fast as the SLO allows, or faster"
}

// Description returns the alert's description annotation, a template
// Prometheus expands.
func (s sloAlert) Description() string {
	threshold := s.a.factor(s.Obj.Period) * s.Obj.Budget()
	return "{{ $value | humanizePercentage }} of requests were " + s.Obj.bad + " over the last " + s.Long() +
		", and at least " + prose(threshold*100) + "% over the last " + s.Short() + "; at a burn rate of " + s.Factor() +
		", " + strconv.FormatInt(s.a.budgetPercent, 10) + "% of the " + promDuration(s.Obj.Period) +
		" error budget goes in " + s.Long() + ". Objective: " + s.Obj.Summary + "."
}

const sloRulesHeader = `# Prometheus rules for tailguard's SLOs, written by "tailguard slo rules".
# Per route and objective: the error ratio summed over pods, recorded over
# the windows of the SRE workbook's multi-window, multi-burn-rate alerts and
# over the SLO period; the share of the period's error budget left; and the
# alerts, their burn-rate factors scaled to the period (14.4, 6, 3 and 1 at
# 30d). Fast burns page, at their factor or above; slow burns open a
# ticket, above their factor only (a burn of 1× spends the budget exactly
# by the period's end: the SLO is met). Thresholds are moved by a
# billionth of themselves so that float rounding cannot decide the edge.
`

// writeSLORoute writes a route's rule group. It is plain code, not
// text/template: a template's reflection keeps every exported method of
// the binary alive and would add megabytes to it.
func writeSLORoute(b *bytes.Buffer, r sloRoute) {
	fmt.Fprintf(b, "  - name: %s\n    rules:\n", strconv.Quote("tailguard-slo-"+r.Name))
	for _, o := range r.Objectives {
		fmt.Fprintf(b, "      # %s, %s: %s over %s; error budget %s.\n", o.Route, o.Name, o.Summary, promDuration(o.Period), number(o.Budget()))
		for _, w := range o.Windows() {
			fmt.Fprintf(b, "      - record: %s%s\n        expr: |\n%s\n        labels:\n          slo: %s\n",
				errorRatioRecord, promDuration(w), indent(10, o.ErrorRatio(w)), o.Name)
		}
		fmt.Fprintf(b, "      - record: %s\n        expr: %s\n        labels:\n          slo: %s\n", budgetLeftRecord, o.BudgetLeft(), o.Name)
		for _, a := range o.Alerts() {
			fmt.Fprintf(b, "      # %s: a burn rate of %s spends %d%% of the %s budget in %s.\n",
				a.Severity(), a.Factor(), a.BudgetPercent(), promDuration(o.Period), a.Long())
			fmt.Fprintf(b, "      - alert: %s\n        expr: |\n%s\n        for: %s\n", a.Name(), indent(10, a.Expr()), a.For())
			fmt.Fprintf(b, "        labels:\n          slo: %s\n          severity: %s\n          long_window: %s\n          short_window: %s\n",
				o.Name, a.Severity(), a.Long(), a.Short())
			fmt.Fprintf(b, "        annotations:\n          summary: %s\n          description: %s\n",
				strconv.Quote(a.Summary()), strconv.Quote(a.Description()))
		}
	}
}

// sloRoute is a route with its objectives.
type sloRoute struct {
	Name       string
	Objectives []sloObjective
}

// SLORules returns a Prometheus rule file (YAML, for rule_files) with a
// group for each route that has an SLO. For each of its objectives the
// group records the error ratio (5xx for availability, slower than the
// latency threshold for latency) summed over pods by route, over the
// windows of the SRE workbook's multi-window, multi-burn-rate alerts and
// over the SLO period, and the share of the period's error budget left;
// then come the alerts: TailguardSLOFastBurn (severity page, 1h/5m and
// 6h/30m) and TailguardSLOSlowBurn (severity ticket, 1d/2h and 3d/6h),
// their burn-rate factors scaled to the period (14.4, 6, 3 and 1 at 30
// days). Routes without an SLO are left out; with none, the file has no
// groups.
func SLORules(routes []RouteConfig) []byte {
	var rs []sloRoute
	for _, r := range routes {
		if objs := sloObjectives(r); len(objs) > 0 {
			rs = append(rs, sloRoute{r.Name, objs})
		}
	}
	var b bytes.Buffer
	b.WriteString(sloRulesHeader)
	if len(rs) == 0 {
		b.WriteString("# No route has an SLO.\ngroups: []\n")
		return b.Bytes()
	}
	b.WriteString("groups:\n")
	for _, r := range rs {
		writeSLORoute(&b, r)
	}
	return b.Bytes()
}

// promDuration writes d as Prometheus does: "5m", "1h", "30d".
func promDuration(d time.Duration) string { return model.Duration(d).String() }

// number writes v with at most 12 significant digits, so that 14.4 ×
// 0.001 reads 0.0144, not 0.014400000000000001.
func number(v float64) string { return strconv.FormatFloat(v, 'g', 12, 64) }

// prose writes v for people, to 4 significant digits: 0.9333.
func prose(v float64) string { return strconv.FormatFloat(v, 'g', 4, 64) }

// percent writes a share as a percentage, e.g. "99.9%".
func percent(v float64) string { return number(v*100) + "%" }

// indent indents each line of s by n spaces.
func indent(n int, s string) string {
	pad := strings.Repeat(" ", n)
	return pad + strings.ReplaceAll(s, "\n", "\n"+pad)
}
