package metrics

import "time"

// SLO is a route's service level objectives (DESIGN.md's slo:). Targets
// are shares in (0, 1), as config validation ensures; a target outside is
// treated as no objective.
type SLO struct {
	// Latency is the latency objective's threshold: a request is good if
	// its Response ≤ Latency. 0: no latency objective.
	Latency time.Duration
	// LatencyTarget is the share of requests that must be good by latency.
	LatencyTarget float64
	// Availability is the share of requests that must not be 5xx
	// (tailguard's own 5xx included). 0: no availability objective.
	Availability float64
	// Period is the span the objectives hold over, and so the error
	// budget's: a whole number of hours, as config validation ensures;
	// 0: DefaultSLOPeriod. Only SLORules uses it: /stats and /metrics
	// report over their own windows.
	Period time.Duration
}

// sloReport is a route's SLIs over a window, with the error budget and
// the SRE workbook's burn rates.
type sloReport struct {
	// LatencySLI is the share of requests with Response ≤ SLO.Latency;
	// nil without a latency objective.
	LatencySLI *float64 `json:"latency_sli"`
	// AvailabilitySLI is the share of requests that were not 5xx.
	AvailabilitySLI float64 `json:"availability_sli"`
	// ErrorBudgetRemaining is 1 − bad share / (1 − target) over the
	// window: 1 untouched, 0 spent, negative overspent.
	ErrorBudgetRemaining float64 `json:"error_budget_remaining"`
	// BurnRate5m and BurnRate1h are bad share / (1 − target) over the
	// last 5 minutes and hour: 1 spends the budget exactly by the end of
	// the SLO period.
	BurnRate5m float64 `json:"burn_rate_5m"`
	BurnRate1h float64 `json:"burn_rate_1h"`
}

// budgetGood returns the counts the error budget is measured on, and the
// objective's target: the availability objective when there is one (not
// 5xx is good), else the latency objective (fast enough is good). ok is
// false when the SLO has neither.
func (o *SLO) budgetGood(c *counters) (good int64, target float64, ok bool) {
	switch {
	case validTarget(o.Availability):
		return c.availabilityGood(), o.Availability, true
	case o.Latency > 0 && validTarget(o.LatencyTarget):
		return c.latencyGood, o.LatencyTarget, true
	default:
		return 0, 0, false
	}
}

func validTarget(t float64) bool { return t > 0 && t < 1 }

// share is good/total; 1 when there were no requests (nothing went
// wrong).
func share(good, total int64) float64 {
	if total == 0 {
		return 1
	}
	return float64(good) / float64(total)
}

// burnRate is the bad share over the budget's share, 1 − target; 0 when
// there were no requests.
func (o *SLO) burnRate(c *counters) float64 {
	good, target, ok := o.budgetGood(c)
	if !ok {
		return 0
	}
	return (1 - share(good, c.requests)) / (1 - target)
}

// report computes the SLIs and budget over window w and the burn rates
// over the last 5 minutes and hour.
func (o *SLO) report(w, last5m, last1h *counters) *sloReport {
	r := &sloReport{
		AvailabilitySLI:      share(w.availabilityGood(), w.requests),
		ErrorBudgetRemaining: 1 - o.burnRate(w),
		BurnRate5m:           o.burnRate(last5m),
		BurnRate1h:           o.burnRate(last1h),
	}
	if o.Latency > 0 {
		sli := share(w.latencyGood, w.requests)
		r.LatencySLI = &sli
	}
	return r
}
