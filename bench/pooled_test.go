package bench

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// syntheticPairs is n histograms of perPair log-normal latencies each
// (median 2 ms, sigma 0.5, in µs), every value times scale and pair i's
// also times drift(i): one arm of a paired run, drawn from seed so that
// a test's data are the same every time.
func syntheticPairs(seed uint64, n, perPair int, scale float64, drift func(i int) float64) []*hdrhistogram.Histogram {
	rng := rand.New(rand.NewPCG(seed, 1))
	hs := make([]*hdrhistogram.Histogram, n)
	for i := range hs {
		hs[i] = newHistogram()
		for range perPair {
			v := 2000 * math.Exp(0.5*rng.NormFloat64()) * scale * drift(i)
			_ = hs[i].RecordValue(max(int64(v), 1))
		}
	}
	return hs
}

func noDrift(int) float64 { return 1 }

// TestPooledQuantileMatchesMerge: the pooled quantile of weighted pairs
// is what hdrhistogram says of their histograms merged, a pair with
// weight 2 merged twice and one with weight 0 left out.
func TestPooledQuantileMatchesMerge(t *testing.T) {
	hs := syntheticPairs(1, 4, 500, 1, func(i int) float64 { return 1 + 0.3*float64(i) })
	for _, tt := range []struct {
		name    string
		weights []int64
	}{
		{"all once", []int64{1, 1, 1, 1}},
		{"one twice, one left out", []int64{2, 0, 1, 1}},
		{"one pair alone", []int64{0, 0, 0, 1}},
		{"the first four times", []int64{4, 0, 0, 0}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			merged := newHistogram()
			for i, w := range tt.weights {
				for range w {
					merged.Merge(hs[i])
				}
			}
			p := poolLatency(hs)
			for _, q := range []float64{0.001, 0.5, 0.9, 0.99, 0.999} {
				if got, want := p.quantile(tt.weights, q), merged.ValueAtQuantile(q*100); got != want {
					t.Errorf("q=%v: pooled %d µs, merged %d µs", q, got, want)
				}
			}
		})
	}
}

// TestPooledQuantileEmpty: a pool with no requests has no latency.
func TestPooledQuantileEmpty(t *testing.T) {
	p := poolLatency([]*hdrhistogram.Histogram{newHistogram(), syntheticPairs(2, 1, 10, 1, noDrift)[0]})
	if got := p.quantile([]int64{3, 0}, 0.99); got != 0 {
		t.Errorf("empty pool: %d µs, want 0", got)
	}
}

// TestComparePooled: arms drawn from one distribution pool to a ratio
// near 1 whose interval holds 1 and is narrow, drift that each pair
// shares between its arms included; an arm 10% slower pools to about
// 1.10, with an interval that excludes 1.
func TestComparePooled(t *testing.T) {
	const pairs, perPair = 20, 4000
	drift := func(i int) float64 { return 0.8 + 0.4*float64(i%5)/4 }
	for _, tt := range []struct {
		name        string
		scale       float64
		drift       func(int) float64
		ratio       float64 // want within 0.03
		holdsOne    bool
		widthAtMost float64
	}{
		{"identical arms", 1, noDrift, 1, true, 0.06},
		{"identical arms, pairs drifting alike", 1, drift, 1, true, 0.1},
		{"A 10% slower", 1.10, noDrift, 1.10, false, 0.07},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := poolLatency(syntheticPairs(10, pairs, perPair, tt.scale, tt.drift))
			b := poolLatency(syntheticPairs(20, pairs, perPair, 1, tt.drift))
			r := comparePooled(a, b, 0.99, bootstrapResamples, bootstrapSeed)
			t.Logf("pooled p99 %v ÷ %v ms = %v, interval %v–%v", r.a, r.b, r.ratio, r.low, r.high)
			if r.n != pairs || math.Abs(r.ratio-tt.ratio) > 0.03 || r.low > r.ratio || r.high < r.ratio {
				t.Fatalf("%+v: want n=%d and a ratio of %v±0.03 inside its interval", r, pairs, tt.ratio)
			}
			if holdsOne := r.low <= 1 && 1 <= r.high; holdsOne != tt.holdsOne {
				t.Errorf("interval %v–%v: holds 1 %v, want %v", r.low, r.high, holdsOne, tt.holdsOne)
			}
			if w := r.high - r.low; w > tt.widthAtMost {
				t.Errorf("interval %v–%v: %v wide, want at most %v", r.low, r.high, w, tt.widthAtMost)
			}
		})
	}
}

// TestComparePooledDeterministic: one seed and one set of data give one
// interval, every time; another seed resamples differently but pools
// the same whole arms.
func TestComparePooledDeterministic(t *testing.T) {
	a := poolLatency(syntheticPairs(3, 12, 1000, 1.02, noDrift))
	b := poolLatency(syntheticPairs(4, 12, 1000, 1, noDrift))
	first := comparePooled(a, b, 0.99, bootstrapResamples, bootstrapSeed)
	if again := comparePooled(a, b, 0.99, bootstrapResamples, bootstrapSeed); again != first {
		t.Errorf("same seed: %+v, then %+v", first, again)
	}
	other := comparePooled(a, b, 0.99, bootstrapResamples, bootstrapSeed+1)
	if other.ratio != first.ratio || other.a != first.a || other.b != first.b {
		t.Errorf("whole arms differ with the seed: %+v and %+v", first, other)
	}
	if other.low == first.low && other.high == first.high {
		t.Errorf("another seed gave the same interval %v–%v", first.low, first.high)
	}
}

// TestComparePooledNothing: no pairs, arms of different pair counts, or
// an arm with no latency compare to nothing rather than to a made-up
// ratio, and no verdict is taken from them.
func TestComparePooledNothing(t *testing.T) {
	two := poolLatency(syntheticPairs(5, 2, 10, 1, noDrift))
	three := poolLatency(syntheticPairs(6, 3, 10, 1, noDrift))
	for _, tt := range []struct {
		name string
		a, b *pooledLatency
	}{
		{"no pairs", poolLatency(nil), poolLatency(nil)},
		{"different pair counts", two, three},
		{"an empty arm", two, poolLatency([]*hdrhistogram.Histogram{newHistogram(), newHistogram()})},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := comparePooled(tt.a, tt.b, 0.99, 100, bootstrapSeed)
			if _, _, tooFew := r.ends(); r.b != 0 || r.ratio != 0 || r.cells()[0] != blank || tooFew == "" {
				t.Errorf("%+v, cells %v, ends' reason %q", r, r.cells(), tooFew)
			}
		})
	}
}

// TestPercentileOfSorted: nearest rank, the ⌈p·n⌉-th smallest.
func TestPercentileOfSorted(t *testing.T) {
	v := make([]float64, 2000)
	for i := range v {
		v[i] = float64(i + 1)
	}
	for _, tt := range []struct {
		values []float64
		p      float64
		want   float64
	}{
		{v, 0.025, 50},
		{v, 0.975, 1950},
		{[]float64{7}, 0.025, 7},
		{[]float64{1, 2, 3}, 0.975, 3},
		{[]float64{1, 2, 3}, 0.025, 1},
	} {
		if got := percentileOfSorted(tt.values, tt.p); got != tt.want {
			t.Errorf("n=%d p=%v: %v, want %v", len(tt.values), tt.p, got, tt.want)
		}
	}
}

// TestPairsOutcomePooledColumns: the ratios table carries each
// comparison's pooled p99 columns beside the median ratios, and the
// notes a pooled verdict for A/B and the pooled A/A spread.
func TestPairsOutcomePooledColumns(t *testing.T) {
	self, base, again := &pairArm{name: "tailguard"}, &pairArm{name: "tailguard baseline"}, &pairArm{name: "tailguard (second process)"}
	ab := &comparison{name: "A/B", a: self, b: base}
	aa := &comparison{name: "A/A", a: self, b: again, aa: true}
	for i, c := range []*comparison{ab, aa} {
		ha := syntheticPairs(uint64(30+i), 12, 1000, 1, noDrift)
		hb := syntheticPairs(uint64(40+i), 12, 1000, 1, noDrift)
		for j := range ha {
			ra := pairRow{name: c.a.name, rps: 10000, cpuUS: 50, rateCPU: 60, p99: 4, latency: ha[j]}
			rb := pairRow{name: c.b.name, rps: 10000, cpuUS: 50, rateCPU: 60, p99: 4, latency: hb[j]}
			c.a.rows, c.b.rows = append(c.a.rows, ra), append(c.b.rows, rb)
			c.pairs = append(c.pairs, [2]pairRow{ra, rb})
		}
	}
	out := pairsOutcome([]*pairArm{self, base, again}, []*comparison{ab, aa}, &Env{Baseline: "/old", Self: []string{"/new"}}, 2000, 0, nil)
	r := out.Tables[1]
	for _, row := range r.Rows {
		if len(row.Cells)+1 != len(r.Columns) {
			t.Fatalf("row %q has %d cells for %d columns", row.Name, len(row.Cells), len(r.Columns))
		}
		at := slices.Index(r.Columns, "pooled p99 A ÷ B") - 1
		if c := row.Cells[at]; c.Unit != unitRatio || math.Abs(c.Value-1) > 0.1 {
			t.Errorf("row %q: pooled p99 ratio %+v", row.Name, c)
		}
	}
	notes := strings.Join(r.Notes, "\n")
	// The synthetic pairs are seeded: the A/B pooled interval is
	// 1.01–1.10×, so the bound is not shown, and the A/A's reaches ±9.2%.
	for _, want := range []string{"pooled p99 new ÷ baseline ≤ 1.05× not shown: the bootstrap interval's top is 1.10×", "±9.2% in pooled p99"} {
		if !strings.Contains(notes, want) {
			t.Errorf("notes lack %q:\n%s", want, notes)
		}
	}
}

// BenchmarkComparePooled: the pooled p99 and its bootstrap interval for
// pairs pairs of 4,000 requests (a 2 s open loop at 2,000 req/s) a side.
func BenchmarkComparePooled(b *testing.B) {
	for _, pairs := range []int{40, 80} {
		b.Run(fmt.Sprintf("pairs=%d", pairs), func(b *testing.B) {
			pa := poolLatency(syntheticPairs(1, pairs, 4000, 1, noDrift))
			pb := poolLatency(syntheticPairs(2, pairs, 4000, 1, noDrift))
			for b.Loop() {
				comparePooled(pa, pb, 0.99, bootstrapResamples, bootstrapSeed)
			}
		})
	}
}
