package resilience

import (
	"testing"
	"time"
)

func TestHedgeLiveDelay(t *testing.T) {
	ms := time.Millisecond
	type observation struct {
		p       time.Duration
		samples int64
	}
	tests := []struct {
		name    string
		s       HedgeSettings
		observe []observation
		want    time.Duration
		trusted bool
	}{
		{"untrusted at first", HedgeSettings{Percentile: 0.95}, nil, 0, false},
		{"below MinSamples", HedgeSettings{MinSamples: 100}, []observation{{20 * ms, 99}}, 0, false},
		{"at MinSamples", HedgeSettings{MinSamples: 100}, []observation{{20 * ms, 100}}, 20 * ms, true},
		{"default MinSamples is 100", HedgeSettings{}, []observation{{20 * ms, 99}}, 0, false},
		{"a quiet second keeps the last trusted value", HedgeSettings{MinSamples: 10},
			[]observation{{20 * ms, 50}, {90 * ms, 3}}, 20 * ms, true},
		{"later values replace earlier", HedgeSettings{MinSamples: 10},
			[]observation{{20 * ms, 50}, {30 * ms, 50}}, 30 * ms, true},
		{"clamped up to MinDelay", HedgeSettings{MinDelay: 2 * ms, MaxDelay: 500 * ms},
			[]observation{{ms / 2, 1000}}, 2 * ms, true},
		{"clamped down to MaxDelay", HedgeSettings{MinDelay: 2 * ms, MaxDelay: 500 * ms},
			[]observation{{3 * time.Second, 1000}}, 500 * ms, true},
		{"inside the bounds", HedgeSettings{MinDelay: 2 * ms, MaxDelay: 500 * ms},
			[]observation{{40 * ms, 1000}}, 40 * ms, true},
		{"no MaxDelay: no upper bound", HedgeSettings{MinDelay: 2 * ms},
			[]observation{{3 * time.Second, 1000}}, 3 * time.Second, true},
		{"MaxDelay below MinDelay is raised", HedgeSettings{MinDelay: 10 * ms, MaxDelay: 5 * ms},
			[]observation{{40 * ms, 1000}}, 10 * ms, true},
		{"negative percentile value", HedgeSettings{},
			[]observation{{-ms, 1000}}, 0, true},
		{"fixed is trusted at once", HedgeSettings{Fixed: 15 * ms}, nil, 15 * ms, true},
		{"fixed ignores Observe", HedgeSettings{Fixed: 15 * ms, MinDelay: 20 * ms},
			[]observation{{40 * ms, 1000}}, 15 * ms, true},
	}
	for _, tt := range tests {
		h := NewHedge(tt.s)
		for _, o := range tt.observe {
			h.Observe(o.p, o.samples)
		}
		if d, ok := h.Delay(); d != tt.want || ok != tt.trusted {
			t.Errorf("%s: Delay = %v, %v; want %v, %v", tt.name, d, ok, tt.want, tt.trusted)
		}
	}
}

func TestHedgeDefaults(t *testing.T) {
	tests := []struct {
		s          HedgeSettings
		percentile float64
		maxExtra   int
		ratio      float64
	}{
		{HedgeSettings{}, 0.95, 1, 0},
		{HedgeSettings{Percentile: 0.99, MaxExtra: 2, Ratio: 0.05}, 0.99, 2, 0.05},
		{HedgeSettings{Percentile: 1.5, MaxExtra: -1, Ratio: -1}, 0.95, 1, 0},
		{HedgeSettings{Percentile: 95}, 0.95, 1, 0},
	}
	for _, tt := range tests {
		h := NewHedge(tt.s)
		if h.Percentile() != tt.percentile || h.MaxExtra() != tt.maxExtra || h.Ratio() != tt.ratio {
			t.Errorf("NewHedge(%+v): Percentile %v, MaxExtra %d, Ratio %v; want %v, %d, %v",
				tt.s, h.Percentile(), h.MaxExtra(), h.Ratio(), tt.percentile, tt.maxExtra, tt.ratio)
		}
	}
}

// TestHedgeConcurrent has the tick write while requests read (run with
// -race): every read is untrusted or one of the clamped values written.
func TestHedgeConcurrent(t *testing.T) {
	h := NewHedge(HedgeSettings{MinDelay: time.Millisecond, MaxDelay: 100 * time.Millisecond, MinSamples: 1})
	budgetRace(4, func() {
		for i := range 1000 {
			h.Observe(time.Duration(i)*time.Millisecond, 1)
			if d, ok := h.Delay(); ok && (d < time.Millisecond || d > 100*time.Millisecond) {
				t.Errorf("Delay = %v outside [1ms, 100ms]", d)
				return
			}
		}
	})
}

func TestHedgeAllocs(t *testing.T) {
	h := NewHedge(HedgeSettings{Fixed: time.Millisecond})
	if n := testing.AllocsPerRun(100, func() { _, _ = h.Delay() }); n != 0 {
		t.Errorf("Delay: %v allocs, want 0", n)
	}
}

// BenchmarkHedgeDelay: go test -run=^$ -bench=HedgeDelay -cpu 1,2 (bigger
// machines: -cpu 1,4,16). One atomic load of a word written once a
// second: it should scale linearly.
func BenchmarkHedgeDelay(b *testing.B) {
	h := NewHedge(HedgeSettings{MinSamples: 1})
	h.Observe(20*time.Millisecond, 1)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			_, _ = h.Delay()
		}
	})
}
