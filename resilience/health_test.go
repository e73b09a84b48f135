package resilience

import (
	"sync"
	"testing"
)

func TestHealthReport(t *testing.T) {
	type probe struct {
		ok, changed, healthy bool
	}
	tests := []struct {
		name   string
		s      HealthSettings
		probes []probe // on endpoint 0; endpoint 1 stays healthy
	}{
		{"defaults: one failure keeps it", HealthSettings{}, []probe{
			{false, false, true}}},
		{"defaults: two take it out, one pass brings it back", HealthSettings{}, []probe{
			{false, false, true}, {false, true, false}, {false, false, false}, {true, true, true}}},
		{"defaults: a pass between failures resets", HealthSettings{}, []probe{
			{false, false, true}, {true, false, true}, {false, false, true}, {false, true, false}}},
		{"3 down, 2 up", HealthSettings{UnhealthyThreshold: 3, HealthyThreshold: 2}, []probe{
			{false, false, true}, {false, false, true}, {false, true, false},
			{true, false, false}, {false, false, false}, {true, false, false}, {true, true, true}}},
		{"long runs change nothing more", HealthSettings{UnhealthyThreshold: 1, HealthyThreshold: 1}, []probe{
			{true, false, true}, {true, false, true}, {false, true, false}, {false, false, false},
			{false, false, false}, {true, true, true}}},
	}
	for _, tt := range tests {
		h := NewHealth(tt.s, 2)
		for k, p := range tt.probes {
			if got := h.Report(0, p.ok); got != p.changed {
				t.Errorf("%s: probe #%d (ok %v): changed = %v, want %v", tt.name, k, p.ok, got, p.changed)
			}
			want := uint64(0b10)
			if p.healthy {
				want = 0b11
			}
			if got := h.Healthy(); got != want {
				t.Errorf("%s: probe #%d: Healthy = %b, want %b", tt.name, k, got, want)
			}
		}
	}
}

func TestHealthAnyHealthy(t *testing.T) {
	h := NewHealth(HealthSettings{UnhealthyThreshold: 1}, 3)
	if !h.AnyHealthy() || h.Healthy() != 0b111 {
		t.Fatalf("start: AnyHealthy %v, Healthy %b; want all healthy", h.AnyHealthy(), h.Healthy())
	}
	for i := range 3 {
		h.Report(i, false)
	}
	if h.AnyHealthy() || h.Healthy() != 0 {
		t.Errorf("all failed: AnyHealthy %v, Healthy %b", h.AnyHealthy(), h.Healthy())
	}
	h.Report(1, true)
	if !h.AnyHealthy() || h.Healthy() != 0b010 {
		t.Errorf("one back: AnyHealthy %v, Healthy %b", h.AnyHealthy(), h.Healthy())
	}
}

func TestHealthEdges(t *testing.T) {
	for _, n := range []int{0, -1} {
		if h := NewHealth(HealthSettings{}, n); h.AnyHealthy() || h.Healthy() != 0 || h.Report(0, false) {
			t.Errorf("n = %d: want nothing healthy and nothing to report", n)
		}
	}
	var none *Health
	if none.Report(0, false) || none.Healthy() != 1<<64-1 || !none.AnyHealthy() {
		t.Error("nil Health: want every endpoint healthy")
	}
	h := NewHealth(HealthSettings{UnhealthyThreshold: 1}, 100)
	if h.Healthy() != 1<<64-1 {
		t.Errorf("n = 100: Healthy = %b, want the 64 clamped endpoints", h.Healthy())
	}
	for _, i := range []int{-1, 64} {
		if h.Report(i, false) {
			t.Errorf("Report(%d) changed something", i)
		}
	}
	if !h.Report(63, false) || h.Healthy() != 1<<63-1 {
		t.Errorf("endpoint 63 down: Healthy = %b", h.Healthy())
	}
}

// TestHealthConcurrent: probes and readers at once; run it with -race.
func TestHealthConcurrent(t *testing.T) {
	h := NewHealth(HealthSettings{}, 4)
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			for k := range 1000 {
				h.Report(i, k%3 != 0)
				h.AnyHealthy()
			}
		})
	}
	wg.Wait()
	for i := range 4 {
		h.Report(i, true)
	}
	if h.Healthy() != 0b1111 {
		t.Errorf("after a final pass each: Healthy = %b", h.Healthy())
	}
}
