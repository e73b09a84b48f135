package metrics

import (
	"bytes"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"google.golang.org/protobuf/proto"
)

var updateGolden = flag.Bool("update-scrape", false, "rewrite the golden files of TestScrapeGolden")

// goldenRegistry is a registry on a fake clock that exercises every
// series the Collector exposes: a route with an SLO, every gauge and
// exemplars (among them one above the last bound), one with nothing but
// traffic, one never used, and the server's gauges; and its clock.
func goldenRegistry(t testing.TB) (*Registry, *fakeClock) {
	t.Helper()
	reg, clock := newTestRegistry(t,
		RouteConfig{
			Name: "api",
			SLO:  &SLO{Latency: 20 * time.Millisecond, LatencyTarget: 0.99, Availability: 0.999},
			Gauges: func() Gauges {
				return Gauges{Breaker: "half_open", ConcurrencyLimit: 64, InFlight: 3, Queued: 2,
					ShedByPriority: map[string]uint64{"critical": 0, "default": 1, "sheddable": 4},
					Fair:           &KeyGauges{Tracked: 5, MaxKeys: 1024},
					RateLimit:      &KeyGauges{Tracked: 7, MaxKeys: 4096}}
			},
		},
		RouteConfig{Name: "batch"},
		RouteConfig{Name: "idle", SLO: &SLO{Availability: 0.99}},
	)
	reg.SetServerGauges(testServerGauges)
	start, r := clock.Now(), rand.New(rand.NewPCG(3, 4))
	api, batch := reg.Route("api"), reg.Route("batch")
	fill(api, r, 2000)
	fill(batch, r, 500)
	for i, d := range []time.Duration{3 * time.Millisecond, 40 * time.Millisecond, 45 * time.Second} {
		s := ok(d)
		s.TraceID = []byte(traceOld)
		if i == 1 {
			s.TraceID, s.RequestID = nil, []byte("req-42")
		}
		api.Record(uint64(i), s)
	}
	api.Record(9, Sample{Queue: time.Millisecond, Response: 2 * time.Millisecond, Status: 503, Flags: Shed})
	batch.TunnelOpened()
	batch.TunnelOpened()
	batch.TunnelClosed()
	reg.Tick(clock.set(start, time.Second))
	s := ok(4 * time.Millisecond)
	s.TraceID = []byte(traceNew)
	api.Record(1, s)
	reg.Tick(clock.set(start, 2*time.Second))
	return reg, clock
}

// scrapeFormats are the expositions a scraper may negotiate, by golden
// file: the format and the Accept header that asks for it.
var scrapeFormats = map[string]struct {
	f      expfmt.Format
	accept string
}{
	"scrape.txt":       {expfmt.NewFormat(expfmt.TypeTextPlain), ""},
	"scrape.om.txt":    {expfmt.NewFormat(expfmt.TypeOpenMetrics), openMetricsAccept},
	"scrape.delimited": {expfmt.NewFormat(expfmt.TypeProtoDelim), protobufAccept},
}

// encodeScrape gathers g and encodes it in format f.
func encodeScrape(g prometheus.Gatherer, f expfmt.Format) ([]byte, error) {
	families, err := g.Gather()
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, f)
	for _, mf := range families {
		if err := enc.Encode(mf); err != nil {
			return nil, err
		}
	}
	if c, ok := enc.(expfmt.Closer); ok {
		err = c.Close()
	}
	return buf.Bytes(), err
}

// scrapeHTTP gets /metrics from h with the given Accept header.
func scrapeHTTP(h http.Handler, accept string) ([]byte, error) {
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %d %s", rec.Code, rec.Body)
	}
	return rec.Body.Bytes(), nil
}

// TestScrapeGolden checks that the exposition of a fixed registry
// (goldenRegistry) is the one in testdata, in the text, OpenMetrics and
// protobuf formats, from the Collector alone and from /metrics' handler,
// twice (the second scrape reuses the first one's memory): issue 16 made
// scrapes cheaper and must not have changed a byte of what they say. The
// files were written before that change. Run with -update-scrape to
// rewrite them after an intended change.
func TestScrapeGolden(t *testing.T) {
	reg, _ := goldenRegistry(t)
	p := prometheus.NewPedanticRegistry()
	p.MustRegister(NewCollector(reg))
	h := metricsHandler(reg)
	for name, sf := range scrapeFormats {
		path := filepath.Join("testdata", name)
		if *updateGolden {
			got, err := encodeScrape(p, sf.f)
			if err == nil {
				err = os.WriteFile(path, got, 0o644)
			}
			if err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for i, scrape := range []func() ([]byte, error){
			func() ([]byte, error) { return encodeScrape(p, sf.f) },
			func() ([]byte, error) { return scrapeHTTP(h, sf.accept) },
			func() ([]byte, error) { return scrapeHTTP(h, sf.accept) },
		} {
			got, err := scrape()
			if err != nil {
				t.Fatal(err)
			}
			how := fmt.Sprintf("%s, scrape %d (0: the Collector, 1 and 2: /metrics)", name, i)
			if sf.accept == protobufAccept {
				equalDelimited(t, how, got, want)
			} else if !bytes.Equal(got, want) {
				t.Errorf("%s: the exposition changed; got:\n%s", how, got)
			}
		}
	}
}

// equalDelimited compares two protobuf expositions message by message
// (the wire bytes of equal messages may differ).
func equalDelimited(t *testing.T, name string, got, want []byte) {
	t.Helper()
	g, w := decodeProtobuf(t, bytes.NewReader(got)), decodeProtobuf(t, bytes.NewReader(want))
	for n, wf := range w {
		if !proto.Equal(g[n], wf) {
			t.Errorf("%s: family %s changed:\ngot  %v\nwant %v", name, n, g[n], wf)
		}
	}
	for n := range g {
		if w[n] == nil {
			t.Errorf("%s: unexpected family %s", name, n)
		}
	}
}

// TestScrapesConcurrent runs /metrics scrapes in every format at once
// (under -race, a data race between them fails it) and checks that each
// says what a scrape alone says; then again while requests are recorded
// and ticked, checking only that the scrapes succeed.
func TestScrapesConcurrent(t *testing.T) {
	reg, clock := goldenRegistry(t)
	h := metricsHandler(reg)
	want := map[string][]byte{}
	for name, sf := range scrapeFormats {
		b, err := scrapeHTTP(h, sf.accept)
		if err != nil {
			t.Fatal(err)
		}
		want[name] = b
	}
	scrapes := func(check bool) {
		var wg sync.WaitGroup
		for range 4 {
			for name, sf := range scrapeFormats {
				wg.Go(func() {
					for range 10 {
						got, err := scrapeHTTP(h, sf.accept)
						if err != nil || check && !bytes.Equal(got, want[name]) {
							t.Errorf("%s: a concurrent scrape differs from one alone (%v)", name, err)
						}
					}
				})
			}
		}
		wg.Wait()
	}
	scrapes(true)
	stop, ticked := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(ticked)
		r, start := rand.New(rand.NewPCG(5, 6)), clock.Now()
		for sec := 1; ; sec++ {
			select {
			case <-stop:
				return
			default:
			}
			fill(reg.Route("api"), r, 100)
			reg.Tick(clock.set(start, time.Duration(sec)*time.Second))
		}
	}()
	scrapes(false)
	close(stop)
	<-ticked
}
