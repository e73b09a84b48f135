package bench

import (
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// pooledLatency is one arm's latency histograms, one per pair, held as
// counts over the buckets any of them used. Pooling pairs is then a
// weighted sum of counts, which the bootstrap does thousands of times;
// merging hdrhistogram.Histograms that often would re-record every
// bucket each time. It is read-only once built, so safe for concurrent
// use.
type pooledLatency struct {
	// uppers are the used buckets' highest equivalent values (µs),
	// ascending: a quantile that falls in a bucket is its upper value,
	// as hdrhistogram's ValueAtQuantile has it.
	uppers []int64
	// counts[k][i] is pair i's count in bucket k; one bucket's counts
	// lie together, as quantile sums them.
	counts [][]int64
	// totals[i] is pair i's request count.
	totals []int64
}

// poolLatency holds hs, pair i's histogram at i. Each is re-recorded
// into newHistogram's geometry first, so that buckets line up whatever
// geometry a report was encoded with.
func poolLatency(hs []*hdrhistogram.Histogram) *pooledLatency {
	byUpper := map[int64][]int64{}
	p := &pooledLatency{totals: make([]int64, len(hs))}
	for i, h := range hs {
		same := newHistogram()
		same.Merge(h)
		for _, bar := range same.Distribution() {
			if bar.Count == 0 {
				continue
			}
			if byUpper[bar.To] == nil {
				byUpper[bar.To] = make([]int64, len(hs))
			}
			byUpper[bar.To][i] = bar.Count
		}
		p.totals[i] = same.TotalCount()
	}
	p.uppers = slices.Sorted(maps.Keys(byUpper))
	p.counts = make([][]int64, len(p.uppers))
	for k, u := range p.uppers {
		p.counts[k] = byUpper[u]
	}
	return p
}

// pairs is how many histograms p holds.
func (p *pooledLatency) pairs() int { return len(p.totals) }

// quantile is the latency (µs) at q (0 < q < 1) of the pairs pooled with
// weights (weights[i]: how many times pair i is in the pool): what
// hdrhistogram's ValueAtQuantile says of their merged histograms. It is
// 0 for an empty pool. It walks down from the slowest bucket, so a tail
// quantile sums only the few buckets above it.
func (p *pooledLatency) quantile(weights []int64, q float64) int64 {
	total := dot(p.totals, weights)
	if total == 0 {
		return 0
	}
	rank := quantileRank(q, total)
	// below is the pool's count in the buckets under k: k is the first
	// bucket from the bottom whose cumulative count reaches rank.
	below := total
	for k := len(p.uppers) - 1; k > 0; k-- {
		below -= dot(p.counts[k], weights)
		if below < rank {
			return p.uppers[k]
		}
	}
	return p.uppers[0]
}

// quantileRank is the 1-based rank of the value at q among total, as
// hdrhistogram rounds it: q·total rounded half up, within [1, total].
func quantileRank(q float64, total int64) int64 {
	rank := q*float64(total) + 0.5
	switch {
	case !(rank >= 1):
		return 1
	case rank >= float64(total):
		return total
	}
	return int64(rank)
}

// dot is Σ counts[i]·weights[i].
func dot(counts, weights []int64) int64 {
	var s int64
	for i, c := range counts {
		s += c * weights[i]
	}
	return s
}

// Bootstrap settings for pooled ratios. 2,000 resamples put the 2.5%
// and 97.5% points of the ratio's bootstrap distribution 50 resamples
// from each end; the fixed seed makes the interval a function of the
// measurements alone, so that one run's data always give one answer.
const (
	bootstrapResamples = 2000
	bootstrapSeed      = 0x7a11_6a2d
	// minBootstrapPairs is the fewest pairs a pooled verdict is given
	// on: a percentile bootstrap over fewer draws from few distinct
	// pools, and its interval comes out narrower than the truth.
	minBootstrapPairs = 10
)

// pooledRatio is what pooling the pairs says of one latency quantile:
// each arm's value over all its pairs merged (ms), their ratio a ÷ b,
// and a 95% percentile-bootstrap interval for the ratio over pairs.
type pooledRatio struct {
	n                int
	a, b             float64
	ratio, low, high float64
}

// comparePooled is the pooled ratio a ÷ b at quantile q and its
// interval: resamples times, it draws as many pair indices as there are
// pairs, with replacement and the same for both arms (a pair's two
// measurements stay together), pools each arm's drawn pairs and takes
// the ratio of their quantiles; the interval is those ratios' 2.5th to
// 97.5th percentile. a and b hold the same pairs, in order. A
// pooledRatio without b (zero) says there was nothing to compare.
func comparePooled(a, b *pooledLatency, q float64, resamples int, seed uint64) pooledRatio {
	n := a.pairs()
	if n == 0 || n != b.pairs() {
		return pooledRatio{}
	}
	all := slices.Repeat([]int64{1}, n)
	qa, qb := a.quantile(all, q), b.quantile(all, q)
	ratios := bootstrapRatios(a, b, q, resamples, seed)
	if qb == 0 || len(ratios) == 0 {
		return pooledRatio{n: n}
	}
	slices.Sort(ratios)
	return pooledRatio{
		n: n, a: float64(qa) / 1e3, b: float64(qb) / 1e3,
		ratio: float64(qa) / float64(qb),
		low:   percentileOfSorted(ratios, 0.025), high: percentileOfSorted(ratios, 0.975),
	}
}

// bootstrapRatios are the pooled ratios a ÷ b at q of resamples
// resamples of the pairs, drawn from a generator seeded with seed;
// a resample whose b pool is empty has none.
func bootstrapRatios(a, b *pooledLatency, q float64, resamples int, seed uint64) []float64 {
	rng := rand.New(rand.NewPCG(seed, seed))
	n := a.pairs()
	weights := make([]int64, n)
	ratios := make([]float64, 0, resamples)
	for range resamples {
		clear(weights)
		for range n {
			weights[rng.IntN(n)]++
		}
		if qb := b.quantile(weights, q); qb > 0 {
			ratios = append(ratios, float64(a.quantile(weights, q))/float64(qb))
		}
	}
	return ratios
}

// percentileOfSorted is the value at p (0 < p < 1) of sorted values by
// nearest rank: the ⌈p·n⌉-th smallest.
func percentileOfSorted(sorted []float64, p float64) float64 {
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// cells are the pooled ratio and its interval, for a table; blanks when
// there was nothing to compare.
func (r pooledRatio) cells() []Cell {
	if r.b == 0 {
		return []Cell{blank, blank}
	}
	return []Cell{numCell(r.ratio, unitRatio), textCell(fmt.Sprintf("%#.3g–%#.3g×", r.low, r.high))}
}

// armCells are each arm's pooled value, for a table.
func (r pooledRatio) armCells() []Cell {
	if r.b == 0 {
		return []Cell{blank, blank}
	}
	return []Cell{numCell(r.a, unitMS), numCell(r.b, unitMS)}
}

// ends are the bootstrap interval's bottom and top, and, under
// minBootstrapPairs, how many pairs there are and how many a verdict
// needs; with no pooled quantile to compare, why.
func (r pooledRatio) ends() (low, high float64, tooFew string) {
	switch {
	case r.n < minBootstrapPairs:
		return r.low, r.high, fmt.Sprintf("%d, need %d", r.n, minBootstrapPairs)
	case r.b == 0:
		return r.low, r.high, "no open-loop latency to pool"
	}
	return r.low, r.high, ""
}

func (pooledRatio) intervalName() string { return "bootstrap interval" }
