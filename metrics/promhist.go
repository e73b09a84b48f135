package metrics

import (
	"math"
	"math/bits"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// promBuckets are one latency metric's counts since the route was
// configured, in the layouts /metrics serves: classic buckets and native
// ones. The tick adds each second's values to them (add), so a scrape
// copies a few KiB per histogram instead of reading every bucket of an
// HdrHistogram: with real traffic "all" populates most of its thousands
// of buckets, and reading them was most of a scrape's cost.
type promBuckets struct {
	classic classicCounts
	native  []int64 // by native bucket index − layout.minIndex
}

// classicCounts are a histogram's counts per classic bucket, not
// cumulative: index i counts the values in (bucketMicros[i-1],
// bucketMicros[i]], and the last index those above the last bound (+Inf).
type classicCounts [len(bucketMicros) + 1]uint64

// A nativeLayout is the native buckets at one schema that recorded values
// (1 µs to 1 h) can fall in.
type nativeLayout struct {
	schema   int32
	minIndex int // the index of the bucket of the smallest value
	// upper2 are the buckets' upper bounds, 2^(i/2^schema) s, in half
	// microseconds (the unit of twice an HdrHistogram bucket's middle),
	// from minIndex on.
	upper2 []float64
}

// nativeLayout4 is the layout of nativeSchema, the one /metrics serves.
var nativeLayout4 = newNativeLayout(nativeSchema)

func newNativeLayout(schema int32) *nativeLayout {
	perDoubling := math.Exp2(float64(schema))
	index := func(micros float64) int { return int(math.Ceil(math.Log2(micros/1e6) * perDoubling)) }
	l := &nativeLayout{schema: schema, minIndex: index(lowestMicros)}
	for i := l.minIndex; i <= index(2*float64(highestMicros)); i++ {
		l.upper2 = append(l.upper2, math.Exp2(float64(i)/perDoubling)*2e6)
	}
	return l
}

func newPromBuckets(l *nativeLayout) promBuckets {
	return promBuckets{native: make([]int64, len(l.upper2))}
}

// add adds p's values, in one pass over its populated buckets.
//
// Classic: an HdrHistogram bucket is counted under the first bound at or
// above its lowest value: a value at a bound is counted under it, as
// Prometheus's le says, and one above a bound by less than the
// histogram's precision (1% at 2 digits) may be counted under it too.
//
// Native: an HdrHistogram bucket is counted in the native bucket that
// holds its middle (HdrHistogram's median equivalent value, which its
// Mean uses too), so a value is counted at most half an HdrHistogram
// bucket from where it belongs. Native bucket i at schema s holds
// (2^((i-1)/2^s), 2^(i/2^s)] seconds.
func (b *promBuckets) add(p *hdr.PackedHistogram, l *nativeLayout) {
	subBits := hdrSubBucketBits(p.SignificantFigures())
	i, j := 0, 0 // the classic and native buckets of the last value; values rise
	for from, n := range p.ForEachBucket {
		for i < len(bucketMicros) && from > bucketMicros[i] {
			i++
		}
		b.classic[i] += uint64(n)
		middle2 := float64(2*from + hdrBucketWidth(from, subBits) - 1)
		for j < len(l.upper2)-1 && middle2 > l.upper2[j] {
			j++
		}
		b.native[j] += n
	}
}

// copyFrom makes b a copy of o without allocating.
func (b *promBuckets) copyFrom(o *promBuckets) {
	b.classic = o.classic
	copy(b.native, o.native)
}

// hdrSubBucketBits is log2 of the sub-bucket count of an HdrHistogram of
// the given significant digits: the smallest power of two at or above
// 2·10^digits, as HdrHistogram sizes it (unit resolution up to there).
func hdrSubBucketBits(digits int64) int {
	return bits.Len64(uint64(2*math.Pow10(int(digits))) - 1)
}

// hdrBucketWidth is the width of the HdrHistogram bucket whose lowest
// value is v, in a histogram whose lowest discernible value is 1 (as
// lowestMicros) and whose sub-bucket count is 2^subBits: 1 below the
// sub-bucket count, doubling with each power of two above it.
func hdrBucketWidth(v int64, subBits int) int64 {
	return 1 << max(bits.Len64(uint64(v))-subBits, 0)
}

// A routeScrape is what one scrape reads of a route under its read lock:
// the counters since the route was configured, its latency histograms'
// buckets and their exemplars. A scrapeBuf reuses it from route to route.
type routeScrape struct {
	c    counters
	prom [numMetrics]promBuckets // Overhead: empty, /metrics has no such histogram
	ex   routeExemplars
}

func newRouteScrape() routeScrape {
	var s routeScrape
	for _, m := range promMetrics {
		s.prom[m] = newPromBuckets(nativeLayout4)
	}
	return s
}

// promMetrics are the metrics /metrics has histograms of.
var promMetrics = [...]Metric{Queue, Service, Response}

// readScrape fills s with the route's counters and histogram buckets
// since it was configured ("all"), the native ones only if native, and
// its exemplars.
func (rt *Route) readScrape(s *routeScrape, native bool) {
	rt.mu.RLock()
	defer rt.mu.RUnlock()
	s.c = rt.win.allC
	s.ex = rt.win.ex
	for _, m := range promMetrics {
		if native {
			s.prom[m].copyFrom(&rt.win.prom[m])
		} else {
			s.prom[m].classic = rt.win.prom[m].classic
		}
	}
}

// A latencyHistogram is one route's latency histogram as /metrics shows
// it: classic buckets (bucketMicros) for text scrapes and, unless the
// scrape is text, native ones (nativeSchema) for scrapers that negotiate
// protobuf, in one metric, as client_golang's own histograms expose both.
// It is built straight into the exposition's data model (no maps, no
// sorting) and owns all of it but the route's label pairs and the
// buckets' bounds, which never change, so the scrape's buffers can be
// reused while client_golang encodes it. set rebuilds it in place, in the
// memory of the last scrape that used it (see scrapeBuf).
type latencyHistogram struct {
	desc   *prometheus.Desc
	labels []*dto.LabelPair
	h      dto.Histogram

	count, zeroCount uint64
	sum, zeroThresh  float64
	schema           int32
	// The classic buckets, and a +Inf one when an exemplar is above the
	// last bound (the exposition has no other place for it).
	cumulative [len(bucketMicros) + 1]uint64
	buckets    [len(bucketMicros) + 1]dto.Bucket
	bucketPtrs [len(bucketMicros) + 1]*dto.Bucket
	exemplars  []*dto.Exemplar // the classic buckets', for the native histogram
	native     nativeBuckets
}

var _ prometheus.Metric = (*latencyHistogram)(nil)

// classicBounds are the classic buckets' upper bounds in seconds, +Inf
// last: every histogram of every scrape points to them (client_golang
// never writes them).
var classicBounds = func() (b [len(bucketMicros) + 1]float64) {
	for i, us := range bucketMicros {
		b[i] = float64(us) / 1e6
	}
	b[len(bucketMicros)] = math.Inf(1)
	return b
}()

// set makes h metric d of a route (labels: its label pairs) from its
// buckets b, the sum of its values in microseconds and its exemplars by
// classic bucket (nil: none; the last one above the last bound), with
// native buckets at layout l (nil: classic buckets only). created is when
// the histogram started counting (the registry's start).
func (h *latencyHistogram) set(d *prometheus.Desc, labels []*dto.LabelPair, b *promBuckets, l *nativeLayout, sumMicros int64,
	exemplars *[len(bucketMicros) + 1]*dto.Exemplar, created *timestamppb.Timestamp) {
	h.desc, h.labels = d, labels
	h.sum = float64(sumMicros) / 1e6
	h.exemplars = h.exemplars[:0]
	var cum uint64
	for i, n := range b.classic {
		cum += n
		h.cumulative[i] = cum
		h.buckets[i] = dto.Bucket{CumulativeCount: &h.cumulative[i], UpperBound: &classicBounds[i], Exemplar: exemplars[i]}
		h.bucketPtrs[i] = &h.buckets[i]
		if exemplars[i] != nil {
			h.exemplars = append(h.exemplars, exemplars[i])
		}
	}
	h.count = cum
	classic := h.bucketPtrs[:len(bucketMicros)]
	if exemplars[len(bucketMicros)] != nil {
		classic = h.bucketPtrs[:]
	}
	h.h = dto.Histogram{
		SampleCount:      &h.count,
		SampleSum:        &h.sum,
		Bucket:           classic,
		CreatedTimestamp: created,
	}
	if l == nil {
		return
	}
	h.native.set(b, l)
	h.zeroCount, h.zeroThresh, h.schema = 0, nativeZeroThreshold, l.schema
	h.h.Exemplars = h.exemplars
	h.h.Schema, h.h.ZeroThreshold, h.h.ZeroCount = &h.schema, &h.zeroThresh, &h.zeroCount
	h.h.PositiveSpan, h.h.PositiveDelta = h.native.spans, h.native.deltas
}

// Desc implements prometheus.Metric.
func (h *latencyHistogram) Desc() *prometheus.Desc { return h.desc }

// Write implements prometheus.Metric.
func (h *latencyHistogram) Write(out *dto.Metric) error {
	out.Label = h.labels
	out.Histogram = &h.h
	return nil
}

// nativeBuckets are a native histogram's positive buckets as the
// exposition carries them: spans of consecutive indices and each bucket's
// count as a delta from the previous one's. A gap of one or two empty
// buckets is filled rather than opening a span, as client_golang does
// (fewer bytes).
type nativeBuckets struct {
	spans  []*dto.BucketSpan
	deltas []int64
	// at are the spans' offsets and lengths, which spans point to.
	at []spanAt
	// made are the BucketSpans allocated so far; spans are the first of
	// them.
	made []*dto.BucketSpan
}

// spanAt is a native span's offset from the end of the last one and its
// length, in buckets.
type spanAt struct {
	offset int32
	length uint32
}

// set makes nb b's native buckets at layout l, in the memory it had.
func (nb *nativeBuckets) set(b *promBuckets, l *nativeLayout) {
	nb.deltas, nb.at = nb.deltas[:0], nb.at[:0]
	next := 0      // the index after the last bucket
	var prev int64 // the last bucket's count
	for j, n := range b.native {
		if n == 0 {
			continue
		}
		idx := l.minIndex + j
		switch gap := idx - next; {
		case len(nb.deltas) > 0 && gap <= 2:
			for range gap {
				nb.deltas = append(nb.deltas, -prev)
				prev = 0
			}
			nb.at[len(nb.at)-1].length += uint32(gap + 1)
		default:
			nb.at = append(nb.at, spanAt{offset: int32(gap), length: 1})
		}
		nb.deltas = append(nb.deltas, n-prev)
		prev, next = n, idx+1
	}
	// Only now that at has stopped growing can the spans point into it.
	for len(nb.made) < len(nb.at) {
		nb.made = append(nb.made, new(dto.BucketSpan))
	}
	nb.spans = nb.made[:len(nb.at)]
	for i, s := range nb.spans {
		*s = dto.BucketSpan{Offset: &nb.at[i].offset, Length: &nb.at[i].length}
	}
}
