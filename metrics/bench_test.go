package metrics

import (
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// BenchmarkRecord is the hot path's cost on one goroutine.
func BenchmarkRecord(b *testing.B) {
	reg, _ := newTestRegistry(b, RouteConfig{Name: "api", SLO: &SLO{Latency: 5 * time.Millisecond}})
	rt := reg.Route("api")
	s := ok(3 * time.Millisecond)
	b.ReportAllocs()
	var i uint64
	for b.Loop() {
		i++
		rt.Record(i>>4, s) // a connection makes several requests in a row
	}
}

// BenchmarkRecordExemplar is BenchmarkRecord with a trace id on every
// request, each kept as its bucket's exemplar: the hot path's cost when
// every request carries a traceparent.
func BenchmarkRecordExemplar(b *testing.B) {
	reg, _ := newTestRegistry(b, RouteConfig{Name: "api", SLO: &SLO{Latency: 5 * time.Millisecond}})
	rt := reg.Route("api")
	s := ok(3 * time.Millisecond)
	s.TraceID, s.RequestID = []byte("4bf92f3577b34da6a3ce929d0e0e4736"), []byte("0af7651916cd43dd8448eb211c80319c")
	b.ReportAllocs()
	var i uint64
	for b.Loop() {
		i++
		rt.Record(i>>4, s)
	}
}

// BenchmarkRecordParallel is the hot path's cost with one connection per
// goroutine, as fasthttp's ConnID gives (different shards while there
// are at least as many shards as goroutines).
func BenchmarkRecordParallel(b *testing.B) {
	reg := NewRegistry(RegistryOptions{})
	reg.Configure([]RouteConfig{{Name: "api", SLO: &SLO{Latency: 5 * time.Millisecond}}})
	rt := reg.Route("api")
	var conns atomic.Uint64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		conn := conns.Add(1)
		s := ok(3 * time.Millisecond)
		for pb.Next() {
			rt.Record(conn, s)
		}
	})
}

// BenchmarkTick is the reader's cost per route and second at 1000
// requests per second.
func BenchmarkTick(b *testing.B) {
	for _, digits := range []int{2, 3} {
		b.Run(fmt.Sprintf("digits=%d", digits), func(b *testing.B) {
			clock := newFakeClock()
			reg := NewRegistry(RegistryOptions{Now: clock.Now, Digits: digits})
			reg.Configure([]RouteConfig{{Name: "api"}})
			rt, r, start := reg.Route("api"), rand.New(rand.NewPCG(1, 2)), clock.Now()
			sec := 0
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				fill(rt, r, 1000)
				sec++
				now := clock.set(start, time.Duration(sec)*time.Second)
				b.StartTimer()
				reg.Tick(now)
			}
		})
	}
}

// BenchmarkPromBucketsAdd is what the tick does more for /metrics, per
// route, second and latency histogram (three of them): one second's
// values, 1000 log-normal requests, added to the classic and native
// buckets a scrape copies.
func BenchmarkPromBucketsAdd(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	second := hdr.NewPacked(lowestMicros, highestMicros, DefaultDigits)
	for range 1000 {
		_ = second.RecordValue(micros(time.Duration(math.Exp(math.Log(5000)+r.NormFloat64())) * time.Microsecond))
	}
	all := newPromBuckets(nativeLayout4)
	b.ReportAllocs()
	for b.Loop() {
		all.add(second, nativeLayout4)
	}
	b.ReportMetric(float64(second.Populated()), "buckets")
}

// fill records n requests with log-normal times: service median 5 ms,
// queue median 20 µs, overhead median 50 µs.
func fill(rt *Route, r *rand.Rand, n int) {
	logNormal := func(median, sigma float64) time.Duration {
		return time.Duration(math.Exp(math.Log(median)+sigma*r.NormFloat64())) * time.Microsecond
	}
	for i := range n {
		s := Sample{Queue: logNormal(20, 1.5), Service: logNormal(5000, 1), Status: 200}
		s.Response = s.Queue + s.Service + logNormal(50, 0.5)
		rt.Record(uint64(i), s)
	}
}

// BenchmarkMemoryPerRoute measures a route's memory at 2 and 3
// significant digits: empty (just configured), and with every window
// full (5 minutes of log-normal traffic at the given rate, ticked every
// second). Run it alone, once:
//
//	go test -run='^$' -bench=MemoryPerRoute -benchtime=1x ./metrics/
func BenchmarkMemoryPerRoute(b *testing.B) {
	const routes = 4
	for _, digits := range []int{2, 3} {
		for _, rps := range []int{100, 10_000} {
			b.Run(fmt.Sprintf("digits=%d/rps=%d", digits, rps), func(b *testing.B) {
				for b.Loop() {
					heap0, rss0 := memory()
					clock := newFakeClock()
					reg := NewRegistry(RegistryOptions{Now: clock.Now, Digits: digits})
					var cfg []RouteConfig
					for i := range routes {
						cfg = append(cfg, RouteConfig{Name: strconv.Itoa(i)})
					}
					reg.Configure(cfg)
					heap1, _ := memory()
					start, r := clock.Now(), rand.New(rand.NewPCG(1, 2))
					for sec := 1; sec <= 300; sec++ {
						for _, c := range cfg {
							fill(reg.Route(c.Name), r, rps)
						}
						reg.Tick(clock.set(start, time.Duration(sec)*time.Second))
					}
					heap2, rss2 := memory()
					b.ReportMetric(float64(heap1-heap0)/routes/(1<<20), "MiB-empty/route")
					b.ReportMetric(float64(heap2-heap0)/routes/(1<<20), "MiB-heap/route")
					b.ReportMetric(float64(rss2-rss0)/routes/(1<<20), "MiB-rss/route")
					b.ReportMetric(float64(len(reg.Route("0").shards)), "shards")
					runtime.KeepAlive(reg)
				}
			})
		}
	}
}

// memory returns the live heap after a collection, and the process's
// resident set size, in bytes.
func memory() (heap, rss int64) {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	status, _ := os.ReadFile("/proc/self/status")
	for line := range strings.Lines(string(status)) {
		if kb, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(kb), " kB"), 10, 64)
			rss = n << 10
		}
	}
	return int64(m.HeapAlloc), rss
}

// BenchmarkScrape is a /metrics scrape's cost with 50 routes, each with
// its three latency histograms filled by 10,000 log-normal requests, in
// the text format (classic buckets) and in protobuf (native buckets as
// well), as Prometheus negotiates with native histograms on.
func BenchmarkScrape(b *testing.B) {
	const routes = 50
	reg, clock := newTestRegistry(b)
	var cfg []RouteConfig
	for i := range routes {
		cfg = append(cfg, RouteConfig{Name: "route" + strconv.Itoa(i)})
	}
	reg.Configure(cfg)
	r := rand.New(rand.NewPCG(1, 2))
	for _, c := range cfg {
		fill(reg.Route(c.Name), r, 10_000)
	}
	reg.Tick(clock.set(clock.Now(), 2*time.Second))
	h := NewAdmin(AdminOptions{Ready: func() bool { return true }, Config: func() any { return nil }, Stats: reg})
	for _, accept := range []struct{ name, header string }{{"text", ""}, {"protobuf", protobufAccept}} {
		b.Run(accept.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
				if accept.header != "" {
					req.Header.Set("Accept", accept.header)
				}
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatalf("GET /metrics: %d", rec.Code)
				}
			}
		})
	}
}
