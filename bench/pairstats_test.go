package bench

import (
	"math"
	"os"
	"testing"
)

// TestABBA: pairs alternate which arm goes first, so the sequence of
// measurements runs A,B,B,A,A,B,B,A.
func TestABBA(t *testing.T) {
	var seq []int
	for i := range 4 {
		o := abba(i)
		seq = append(seq, o[0], o[1])
	}
	want := []int{0, 1, 1, 0, 0, 1, 1, 0}
	for i := range want {
		if seq[i] != want[i] {
			t.Fatalf("order %v, want %v", seq, want)
		}
	}
}

// TestMedianIntervalRank: the ranks and levels of the distribution-free
// interval for a median, as in the standard tables (e.g. n = 20: the 6th
// smallest to the 6th largest, 95.86%).
func TestMedianIntervalRank(t *testing.T) {
	for _, tt := range []struct {
		n, k  int
		level float64
	}{
		{1, 1, 0},
		{2, 1, 0.5},
		{5, 1, 0.9375},
		{6, 1, 0.96875},
		{8, 1, 0.9921875},
		{9, 2, 0.9609375},
		{10, 2, 0.978515625},
		{15, 4, 0.96484375},
		{20, 6, 0.9586105346679688},
		{30, 10, 0.9572260547429323},
	} {
		k := medianIntervalRank(tt.n, 0.95)
		level := medianIntervalLevel(tt.n, k)
		if k != tt.k || math.Abs(level-tt.level) > 1e-12 {
			t.Errorf("n=%d: k=%d at %.10f, want k=%d at %.10f", tt.n, k, level, tt.k, tt.level)
		}
	}
}

// TestSummarizeRatios: the median of the ratios (the middle two's mean
// for an even count), and the interval's ends picked by rank from the
// sorted ratios, whatever order they came in.
func TestSummarizeRatios(t *testing.T) {
	for _, tt := range []struct {
		name              string
		ratios            []float64
		median, low, high float64
		under95           bool
	}{
		{"none", nil, 0, 0, 0, false},
		{"one", []float64{1.1}, 1.1, 1.1, 1.1, true},
		{"five, whole range", []float64{1.3, 0.9, 1.0, 1.1, 1.2}, 1.1, 0.9, 1.3, true},
		{"six, even count", []float64{1.05, 0.95, 1.0, 1.2, 0.9, 1.1}, 1.025, 0.9, 1.2, false},
		{"ten, an outlier each end is dropped", []float64{3, 1.02, 0.98, 1.01, 0.99, 1.0, 1.03, 0.97, 1.04, 0.2}, 1.005, 0.97, 1.04, false},
		{"fifteen", []float64{15, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14}, 8, 4, 12, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := summarizeRatios(tt.ratios)
			if s.n != len(tt.ratios) || !near(s.median, tt.median) || !near(s.low, tt.low) || !near(s.high, tt.high) {
				t.Errorf("got n=%d median %v [%v, %v], want n=%d median %v [%v, %v]",
					s.n, s.median, s.low, s.high, len(tt.ratios), tt.median, tt.low, tt.high)
			}
			if s.n > 0 && (s.level < 0.95) != tt.under95 {
				t.Errorf("level %v", s.level)
			}
		})
	}
}

// TestRatioSpread: how far an interval reaches from 1, either way; an
// interval there is too few pairs for claims no spread.
func TestRatioSpread(t *testing.T) {
	for _, tt := range []struct {
		r    ratioInterval
		want string
	}{
		{ratioSummary{n: 20, low: 0.97, high: 1.02, level: 0.9586}, "±3.0%"},
		{ratioSummary{n: 20, low: 0.99, high: 1.04, level: 0.9586}, "±4.0%"},
		{ratioSummary{n: 20, low: 1.01, high: 1.02, level: 0.9586}, "±2.0%"},
		{ratioSummary{n: 20, low: 0.9, high: 0.95, level: 0.9586}, "±10.0%"},
		{ratioSummary{n: 5, low: 0.99, high: 1.01, level: 0.9375}, "too few pairs"},
		{pooledRatio{n: 20, b: 4, low: 0.95, high: 1.1}, "±10.0%"},
		{pooledRatio{n: minBootstrapPairs - 1, b: 4, low: 0.99, high: 1.01}, "too few pairs"},
		{pooledRatio{n: 20}, "too few pairs"}, // nothing pooled
	} {
		if got := spread(tt.r); got != tt.want {
			t.Errorf("%+v: %q, want %q", tt.r, got, tt.want)
		}
	}
}

// TestRatioWithin: a bound is shown only by a whole 95% interval under
// it.
func TestRatioWithin(t *testing.T) {
	for _, tt := range []struct {
		s    ratioSummary
		want string
	}{
		{ratioSummary{n: 10, median: 0.98, low: 0.95, high: 1.04, level: 0.978}, "yes"},
		{ratioSummary{n: 10, median: 0.98, low: 0.95, high: 1.05, level: 0.978}, "yes"},
		{ratioSummary{n: 10, median: 0.98, low: 0.91, high: 1.07, level: 0.978}, "no"},
		{ratioSummary{n: 5, median: 0.98, low: 0.97, high: 0.99, level: 0.9375}, "too few pairs"},
		{ratioSummary{}, "too few pairs"},
	} {
		if got := tt.s.within(1.05); got != tt.want {
			t.Errorf("%+v: %q, want %q", tt.s, got, tt.want)
		}
	}
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

// TestCPUNanos: this process's CPU time, summed over its threads, is
// read and does not go backwards.
func TestCPUNanos(t *testing.T) {
	t0, err := cpuNanos(os.Getpid())
	if err != nil {
		t.Skipf("no /proc schedstat here: %v", err)
	}
	x := 0
	for i := range 1_000_000 {
		x += i % 7
	}
	t1, err := cpuNanos(os.Getpid())
	if err != nil || t0 <= 0 || t1 < t0 {
		t.Errorf("cpuNanos %d then %d (%v); x %d", t0, t1, err, x)
	}
}
