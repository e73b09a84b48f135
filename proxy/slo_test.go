package proxy

import (
	"testing"
	"time"

	"tailguard/config"
	"tailguard/metrics"
)

func TestSLO(t *testing.T) {
	if got := SLO(nil); got != nil {
		t.Errorf("SLO(nil) = %+v, want nil", got)
	}
	in := &config.SLO{
		Latency: config.Duration(250 * time.Millisecond), LatencyTarget: 0.99,
		Availability: 0.999, Period: config.Duration(28 * 24 * time.Hour),
	}
	want := metrics.SLO{Latency: 250 * time.Millisecond, LatencyTarget: 0.99, Availability: 0.999, Period: 28 * 24 * time.Hour}
	if got := SLO(in); got == nil || *got != want {
		t.Errorf("SLO(%+v) = %+v, want %+v", in, got, want)
	}
}
