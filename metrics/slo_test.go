package metrics

import (
	"testing"
	"time"
)

func TestSLOReport(t *testing.T) {
	// 1000 requests: 20 were 5xx, 900 were within the latency threshold.
	c := counters{requests: 1000, latencyGood: 900}
	c.status[class2xx], c.status[class5xx] = 980, 20
	none := counters{}
	tests := []struct {
		name                  string
		slo                   SLO
		w                     *counters
		latency               float64 // -1: no latency SLI
		avail, budget, burn5m float64
	}{
		{"availability objective", SLO{Availability: 0.99}, &c, -1, 0.98, 1 - 2, 2},
		{"both: availability wins", SLO{Latency: time.Second, LatencyTarget: 0.5, Availability: 0.9}, &c, 0.9, 0.98, 1 - 0.2, 0.2},
		{"latency only", SLO{Latency: time.Second, LatencyTarget: 0.8}, &c, 0.9, 0.98, 1 - 0.5, 0.5},
		{"no valid target", SLO{Availability: 1}, &c, -1, 0.98, 1, 0},
		{"no requests", SLO{Latency: time.Second, LatencyTarget: 0.99, Availability: 0.999}, &none, 1, 1, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.slo.report(tt.w, tt.w, &none)
			if (tt.latency < 0) != (r.LatencySLI == nil) || r.LatencySLI != nil && !near(*r.LatencySLI, tt.latency) {
				t.Errorf("latency SLI %v, want %v", r.LatencySLI, tt.latency)
			}
			if !near(r.AvailabilitySLI, tt.avail) || !near(r.ErrorBudgetRemaining, tt.budget) ||
				!near(r.BurnRate5m, tt.burn5m) || r.BurnRate1h != 0 {
				t.Errorf("availability %v budget %v burn 5m %v 1h %v, want %v %v %v 0",
					r.AvailabilitySLI, r.ErrorBudgetRemaining, r.BurnRate5m, r.BurnRate1h, tt.avail, tt.budget, tt.burn5m)
			}
		})
	}
}

func TestClassOf(t *testing.T) {
	for _, tt := range []struct{ status, want int }{
		{101, class2xx}, {200, class2xx}, {299, class2xx}, {304, class3xx}, {404, class4xx},
		{499, class4xx}, {500, class5xx}, {504, class5xx}, {0, class5xx}, {600, class5xx},
	} {
		if got := classOf(tt.status); got != tt.want {
			t.Errorf("classOf(%d) = %s, want %s", tt.status, classNames[got], classNames[tt.want])
		}
	}
}
