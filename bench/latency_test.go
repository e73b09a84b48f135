package bench

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

const draws = 10000

// sampleN draws n service times with a fixed seed, without sleeping.
func sampleN(l Latency, n int) []time.Duration {
	r := rand.New(rand.NewPCG(7, 11))
	s := make([]time.Duration, n)
	for i := range s {
		s[i] = l.Sample(r)
	}
	slices.Sort(s)
	return s
}

func within(got, want, tol float64) bool { return math.Abs(got-want) <= tol }

func TestLogNormalMedianAndStragglers(t *testing.T) {
	l := Latency{Median: 2 * time.Millisecond, Sigma: 0.5, StragglerShare: 0.03, Straggler: 80 * time.Millisecond}
	s := sampleN(l, draws)
	var stragglers int
	for _, d := range s {
		if d == l.Straggler {
			stragglers++
		}
	}
	if share := float64(stragglers) / draws; !within(share, 0.03, 0.006) {
		t.Errorf("straggler share %.4f, want 0.03 ± 0.006", share)
	}
	// The median of the non-stragglers is the configured median.
	median := float64(s[(draws-stragglers)/2])
	if !within(median/float64(l.Median), 1, 0.05) {
		t.Errorf("median %v, want %v ± 5%%", time.Duration(median), l.Median)
	}
	// A log-normal's 84th percentile is median × e^sigma.
	p84 := float64(s[int(0.8413*float64(draws-stragglers))])
	if want := float64(l.Median) * math.Exp(l.Sigma); !within(p84/want, 1, 0.08) {
		t.Errorf("p84 %v, want %v ± 8%%", time.Duration(p84), time.Duration(want))
	}
}

func TestUniformStaysInRange(t *testing.T) {
	l := Latency{Dist: Uniform, Min: time.Millisecond, Max: 3 * time.Millisecond}
	s := sampleN(l, draws)
	if s[0] < l.Min || s[len(s)-1] > l.Max {
		t.Errorf("draws span [%v, %v], want within [%v, %v]", s[0], s[len(s)-1], l.Min, l.Max)
	}
	if m := float64(s[draws/2]); !within(m/float64(2*time.Millisecond), 1, 0.03) {
		t.Errorf("median %v, want 2ms ± 3%%", time.Duration(m))
	}
}

func TestFixedIsFixed(t *testing.T) {
	s := sampleN(Latency{Median: 5 * time.Millisecond}, 100)
	if s[0] != 5*time.Millisecond || s[99] != 5*time.Millisecond {
		t.Errorf("fixed draws span [%v, %v], want 5ms", s[0], s[99])
	}
}

func TestMean(t *testing.T) {
	l := Latency{Median: 4 * time.Millisecond, Sigma: 0.5, StragglerShare: 0.02, Straggler: 120 * time.Millisecond}
	var sum time.Duration
	s := sampleN(l, draws)
	for _, d := range s {
		sum += d
	}
	if got := float64(sum) / draws; !within(got/float64(l.Mean()), 1, 0.1) {
		t.Errorf("mean of draws %v, Mean() %v", time.Duration(got), l.Mean())
	}
}

// TestFaultSharesAndSeed: fates come in their shares, and a seed gives
// the same sequence of plans.
func TestFaultSharesAndSeed(t *testing.T) {
	f := Faults{ErrorShare: 0.1, ResetShare: 0.05, StallShare: 0.02, StrayShare: 0.01}
	count := map[fate]int{}
	var seq []plan
	r := rand.New(rand.NewPCG(3, 4))
	for range draws {
		p := f.draw(r)
		count[p.fate]++
		seq = append(seq, p)
	}
	for fa, want := range map[fate]float64{fail: 0.1, reset: 0.05, stall: 0.02, stray: 0.01} {
		if got := float64(count[fa]) / draws; !within(got, want, want/4+0.002) {
			t.Errorf("fate %d: share %.4f, want %.3f", fa, got, want)
		}
	}
	r2 := rand.New(rand.NewPCG(3, 4))
	for i := range 100 {
		if p := f.draw(r2); p != seq[i] {
			t.Fatalf("draw %d differs with the same seed: %v vs %v", i, p, seq[i])
		}
	}
}
