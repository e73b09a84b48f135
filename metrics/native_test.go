package metrics

import (
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// protobufAccept is the Accept header of a scraper that negotiates
// protobuf, as Prometheus does with native histograms on.
const protobufAccept = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited"

// TestMetricsNativeProtobuf scrapes /metrics as Prometheus does with
// native histograms on, decodes it with expfmt, and checks that each
// latency histogram carries native buckets (schema, zero threshold,
// buckets adding up to the count) and the classic ones in the same
// metric, and that a quantile read from the native buckets is within 5%
// of the HdrHistogram's.
func TestMetricsNativeProtobuf(t *testing.T) {
	a, reg := newStatsAdmin(t, "")
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	req.Header.Set("Accept", protobufAccept)
	rec := httptest.NewRecorder()
	a.ServeHTTP(rec, req)
	if f := expfmt.ResponseFormat(rec.Header()); rec.Code != http.StatusOK || f.FormatType() != expfmt.TypeProtoDelim {
		t.Fatalf("GET /metrics with protobuf accepted: %d %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	families := decodeProtobuf(t, rec.Body)
	snap := reg.Route("api").view(winAll, true)
	for name, m := range map[string]Metric{
		"tailguard_queue_seconds":    Queue,
		"tailguard_service_seconds":  Service,
		"tailguard_response_seconds": Response,
	} {
		f := families[name]
		if f == nil || f.GetType() != dto.MetricType_HISTOGRAM || len(f.GetMetric()) != 1 {
			t.Errorf("%s: want one histogram, got %v", name, f)
			continue
		}
		h := f.GetMetric()[0].GetHistogram()
		if h.GetSchema() != nativeSchema || h.GetZeroThreshold() != nativeZeroThreshold {
			t.Errorf("%s: schema %d, zero threshold %g; want %d and %g", name, h.GetSchema(), h.GetZeroThreshold(), nativeSchema, nativeZeroThreshold)
		}
		if got := len(h.GetBucket()); got != len(bucketMicros) {
			t.Errorf("%s: %d classic buckets, want %d", name, got, len(bucketMicros))
		}
		buckets := nativeBucketsOf(h)
		var total uint64
		for _, n := range buckets {
			total += uint64(n)
		}
		if total+h.GetZeroCount() != h.GetSampleCount() || h.GetSampleCount() != uint64(snap.Samples(m)) {
			t.Errorf("%s: native buckets add up to %d (zero bucket %d), count %d, recorded %d",
				name, total, h.GetZeroCount(), h.GetSampleCount(), snap.Samples(m))
		}
		for _, q := range []float64{0.5, 0.9, 0.99} {
			got := nativeQuantile(q, h.GetSchema(), buckets)
			want := snap.Quantile(m, q).Seconds()
			if e := relErr(got, want); e > 0.05 {
				t.Errorf("%s p%g: %.6f s from the native buckets, %.6f s from HdrHistogram: %.1f%% off", name, q*100, got, want, e*100)
			}
		}
	}
	h := families["tailguard_response_seconds"].GetMetric()[0].GetHistogram()
	if h.GetSampleCount() != 100 || !within(h.GetSampleSum(), 5.05, 1e-9) {
		t.Errorf("response: count %d sum %v, want 100 and 5.05", h.GetSampleCount(), h.GetSampleSum())
	}
	for _, b := range h.GetBucket() {
		if b.GetUpperBound() == 0.05 && b.GetCumulativeCount() != 50 {
			t.Errorf("response: classic le=0.05: %d, want 50", b.GetCumulativeCount())
		}
	}
}

// TestNativeQuantileError reads quantiles from the native buckets as
// Prometheus does and compares them with the HdrHistogram's, for a few
// distributions, at nativeSchema (where they must be within 5%) and at
// schema 3 (logged, for the record of nativeSchema's choice: a spike just
// above a bucket boundary, as requests ending at a 1 s timeout make,
// reads up to a bucket's width, 9%, off).
func TestNativeQuantileError(t *testing.T) {
	const n = 50_000
	logNormal := func(r *rand.Rand, median time.Duration, sigma float64) time.Duration {
		return time.Duration(float64(median) * math.Exp(sigma*r.NormFloat64()))
	}
	dists := []struct {
		name string
		gen  func(r *rand.Rand) time.Duration
	}{
		{"uniform 1us-100ms", func(r *rand.Rand) time.Duration {
			return time.Duration(1+r.IntN(100_000)) * time.Microsecond
		}},
		{"log-normal median 5ms sigma 1.2", func(r *rand.Rand) time.Duration {
			return logNormal(r, 5*time.Millisecond, 1.2)
		}},
		{"log-normal median 150us sigma 0.5", func(r *rand.Rand) time.Duration {
			return logNormal(r, 150*time.Microsecond, 0.5)
		}},
		{"bimodal 2ms and 80ms", func(r *rand.Rand) time.Duration {
			if r.Float64() < 0.1 {
				return logNormal(r, 80*time.Millisecond, 0.3)
			}
			return logNormal(r, 2*time.Millisecond, 0.3)
		}},
		{"5% at a 1s timeout", func(r *rand.Rand) time.Duration {
			if r.Float64() < 0.05 {
				return time.Second + time.Duration(9_000+r.IntN(2_000))*time.Microsecond
			}
			return logNormal(r, 20*time.Millisecond, 0.8)
		}},
	}
	quantiles := []float64{0.5, 0.9, 0.99, 0.999}
	worst := map[int32]float64{}
	for _, digits := range []int{DefaultDigits, 3} {
		for _, d := range dists {
			t.Run(fmt.Sprintf("%s/%d digits", d.name, digits), func(t *testing.T) {
				s := newSnapshot(digits, true)
				r := rand.New(rand.NewPCG(7, uint64(digits)))
				for range n {
					if err := s.h[Response].RecordValue(micros(d.gen(r))); err != nil {
						t.Fatal(err)
					}
				}
				p := hdr.NewPacked(lowestMicros, highestMicros, digits)
				p.MergeFrom(s.h[Response])
				for _, schema := range []int32{nativeSchema, 3} {
					layout := newNativeLayout(schema)
					b := newPromBuckets(layout)
					b.add(p, layout)
					var nb nativeBuckets
					nb.set(&b, layout)
					native := nativeBucketsOf(&dto.Histogram{PositiveSpan: nb.spans, PositiveDelta: nb.deltas})
					var total int64
					for _, c := range native {
						total += c
					}
					var classicTotal uint64
					for _, c := range b.classic[:len(bucketMicros)] {
						classicTotal += c
					}
					if total != n || classicTotal != n {
						t.Fatalf("schema %d: native buckets add up to %d, classic to %d; want %d",
							schema, total, classicTotal, n)
					}
					var errs []string
					for _, q := range quantiles {
						got := nativeQuantile(q, schema, native)
						want := s.Quantile(Response, q).Seconds()
						e := relErr(got, want)
						worst[schema] = max(worst[schema], e)
						errs = append(errs, fmt.Sprintf("p%g %.2f%%", q*100, e*100))
						if schema == nativeSchema && e > 0.05 {
							t.Errorf("schema %d p%g: %.6f s from the native buckets, %.6f s from HdrHistogram: %.2f%% off",
								schema, q*100, got, want, e*100)
						}
					}
					t.Logf("schema %d (%d buckets): %v", schema, len(native), errs)
				}
			})
		}
	}
	t.Logf("largest error: schema %d %.2f%%, schema 3 %.2f%%", nativeSchema, worst[nativeSchema]*100, worst[3]*100)
}

// decodeProtobuf decodes a delimited protobuf exposition.
func decodeProtobuf(t *testing.T, r io.Reader) map[string]*dto.MetricFamily {
	t.Helper()
	dec := expfmt.NewDecoder(r, expfmt.NewFormat(expfmt.TypeProtoDelim))
	families := map[string]*dto.MetricFamily{}
	for {
		f := &dto.MetricFamily{}
		err := dec.Decode(f)
		if errors.Is(err, io.EOF) {
			return families
		}
		if err != nil {
			t.Fatalf("decode protobuf exposition: %v", err)
		}
		families[f.GetName()] = f
	}
}

// nativeBucketsOf returns h's positive native buckets by index, from its
// spans and deltas.
func nativeBucketsOf(h *dto.Histogram) map[int]int64 {
	buckets := map[int]int64{}
	idx, i, count := 0, 0, int64(0)
	for _, span := range h.GetPositiveSpan() {
		idx += int(span.GetOffset())
		for range span.GetLength() {
			count += h.GetPositiveDelta()[i]
			if count != 0 {
				buckets[idx] = count
			}
			i, idx = i+1, idx+1
		}
	}
	return buckets
}

// nativeQuantile is histogram_quantile(q) over positive native buckets
// at schema, as Prometheus 2.42 computes it (promql/quantile.go): find
// the bucket where the rank q·count falls and interpolate linearly in it.
func nativeQuantile(q float64, schema int32, buckets map[int]int64) float64 {
	keys := slices.Sorted(func(yield func(int) bool) {
		for k := range buckets {
			if !yield(k) {
				return
			}
		}
	})
	var total float64
	for _, k := range keys {
		total += float64(buckets[k])
	}
	rank, count := q*total, 0.0
	for _, k := range keys {
		n := float64(buckets[k])
		if count+n >= rank {
			width := math.Exp2(-float64(schema))
			lower, upper := math.Exp2(float64(k-1)*width), math.Exp2(float64(k)*width)
			return lower + (upper-lower)*(rank-count)/n
		}
		count += n
	}
	return math.NaN()
}

// relErr is got's error relative to want.
func relErr(got, want float64) float64 { return math.Abs(got-want) / want }

// TestHDRBucketWidth checks hdrBucketWidth against HdrHistogram's own
// buckets, every one of them, at 1 to 4 digits (5 would list 2.7 million
// buckets): the native buckets place each HdrHistogram bucket by its
// middle, from its lowest value and this width.
func TestHDRBucketWidth(t *testing.T) {
	for digits := 1; digits <= 4; digits++ {
		h := newHistogram(digits)
		_ = h.RecordValue(highestMicros) // Distribution stops at the last value recorded
		subBits := hdrSubBucketBits(h.SignificantFigures())
		bars := h.Distribution()
		if len(bars) < 400 {
			t.Fatalf("%d digits: %d buckets", digits, len(bars))
		}
		for _, bar := range bars {
			if got, want := hdrBucketWidth(bar.From, subBits), bar.To-bar.From+1; got != want {
				t.Fatalf("%d digits: the bucket from %d is %d wide, hdrBucketWidth says %d", digits, bar.From, want, got)
			}
		}
	}
}

// TestPromBucketsFollowAll checks that the buckets the tick keeps for
// /metrics, added second by second, are those of the cumulative
// HdrHistogram computed at once.
func TestPromBucketsFollowAll(t *testing.T) {
	reg, clock := newTestRegistry(t, RouteConfig{Name: "api"})
	rt, r, start := reg.Route("api"), rand.New(rand.NewPCG(3, 4)), clock.Now()
	for sec := 1; sec <= 5; sec++ {
		fill(rt, r, 2000)
		reg.Tick(clock.set(start, time.Duration(sec)*time.Second))
	}
	for _, m := range promMetrics {
		p := hdr.NewPacked(lowestMicros, highestMicros, DefaultDigits)
		p.MergeFrom(rt.win.all[m])
		want := newPromBuckets(nativeLayout4)
		want.add(p, nativeLayout4)
		got := rt.win.prom[m]
		if got.classic != want.classic || !slices.Equal(got.native, want.native) {
			t.Errorf("%s: the buckets added tick by tick differ from those of the cumulative histogram:\nclassic %v\nwant    %v", m, got.classic, want.classic)
		}
		if total := p.TotalCount(); total != 10_000 {
			t.Errorf("%s: %d values recorded", m, total)
		}
	}
}
