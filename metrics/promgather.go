package metrics

import (
	"net/http"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// Issue 16: a scrape of 50 routes × 3 latency histograms must take under
// 5 ms. Two things /metrics does for that besides what promsample.go
// says. A scrape builds its series in the memory the last scrape built
// them in (a scrapeGatherer lends it a scrapeBuf until the scrape is
// encoded) instead of allocating about 1 MiB. And a text or OpenMetrics
// scrape, whose formats have no native histograms, is gathered from a
// Collector that does not build them: they were a fifth of a text
// scrape's collecting.

// metricsHandler serves reg's routes, and the Go runtime's and process's
// metrics, in Prometheus exposition from registries of its own (never the
// global one, which other code may fill): one whose Collector builds
// native histograms, for protobuf scrapes, and one whose Collector does
// not, for text and OpenMetrics scrapes. Both hold the same other
// collectors.
func metricsHandler(reg *Registry, others ...prometheus.Collector) http.Handler {
	// OpenMetrics, to a scraper that asks for it, carries the latency
	// histograms' exemplars; the Prometheus text format has no place for
	// them (protobuf does).
	opts := promhttp.HandlerOpts{EnableOpenMetrics: true}
	native := promhttp.HandlerForTransactional(newScrapeGatherer(reg, true, others...), opts)
	classic := promhttp.HandlerForTransactional(newScrapeGatherer(reg, false, others...), opts)
	formats := expfmt.DefaultOpenMetricsAcceptedFormats() // what promhttp offers with EnableOpenMetrics
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch expfmt.NegotiateAccept(r.Header, formats...).FormatType() {
		case expfmt.TypeTextPlain, expfmt.TypeOpenMetrics:
			classic.ServeHTTP(w, r)
		default:
			native.ServeHTTP(w, r)
		}
	})
}

// A scrapeGatherer gathers a registry that holds a Collector of its own,
// and lends that Collector the memory of each scrape (a scrapeBuf) from
// Gather until the done it returns, which promhttp calls once it has
// encoded the scrape: until then client_golang reads the series built in
// it. Concurrent scrapes gather one at a time (the Collector's lent is
// one scrape's), each in a scrapeBuf of its own, and encode at the same
// time. It is safe for concurrent use.
type scrapeGatherer struct {
	reg *prometheus.Registry
	c   *Collector
	mu  sync.Mutex // serializes gathering; guards c.lent
	// free are scrapeBufs no scrape uses. It keeps as many as two
	// scrapes at once use (Prometheus's HA pair), not a sync.Pool's: a
	// garbage collection, likely between scrapes 15 s apart, would empty
	// that.
	free chan *scrapeBuf
}

// freeScrapeBufs is how many unused scrapeBufs a scrapeGatherer keeps,
// under 1 MiB each at 50 routes.
const freeScrapeBufs = 2

var _ prometheus.TransactionalGatherer = (*scrapeGatherer)(nil)

// newScrapeGatherer returns a scrapeGatherer of reg's routes, with native
// histograms or not, and of the other collectors.
func newScrapeGatherer(reg *Registry, native bool, others ...prometheus.Collector) *scrapeGatherer {
	g := &scrapeGatherer{reg: prometheus.NewRegistry(), c: NewCollector(reg), free: make(chan *scrapeBuf, freeScrapeBufs)}
	g.c.native = native
	g.reg.MustRegister(g.c)
	g.reg.MustRegister(others...)
	return g
}

// Gather implements prometheus.TransactionalGatherer.
func (g *scrapeGatherer) Gather() ([]*dto.MetricFamily, func(), error) {
	var buf *scrapeBuf
	select {
	case buf = <-g.free:
	default:
		buf = newScrapeBuf()
	}
	g.mu.Lock()
	g.c.lent = buf
	families, err := g.reg.Gather()
	g.c.lent = nil
	g.mu.Unlock()
	return families, func() {
		select {
		case g.free <- buf:
		default: // enough kept; the garbage collector frees it
		}
	}, err
}

// A scrapeBuf is the memory a Collector builds one scrape's series in:
// the route being read, the counters' and gauges' samples and the latency
// histograms. reset takes it all back for the next scrape, which must not
// start before client_golang has encoded the last one.
type scrapeBuf struct {
	route   routeScrape
	samples sampleBuf
	hists   []*latencyHistogram
	nhists  int // hists handed out since reset
}

func newScrapeBuf() *scrapeBuf { return &scrapeBuf{route: newRouteScrape()} }

// reset takes back every sample and histogram handed out.
func (b *scrapeBuf) reset() {
	b.samples.reset()
	b.nhists = 0
}

// histogram returns the next latencyHistogram, new if none is left.
func (b *scrapeBuf) histogram() *latencyHistogram {
	if b.nhists == len(b.hists) {
		b.hists = append(b.hists, new(latencyHistogram))
	}
	b.nhists++
	return b.hists[b.nhists-1]
}
