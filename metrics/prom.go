package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// bucketMicros are the upper bounds of the Prometheus histograms, in
// microseconds: 100 µs to 30 s, roughly 1-2.5-5 per decade. They are the
// same for every route and every pod, so histogram_quantile can aggregate
// them (sum by (le) of rate(..._bucket[1m])).
var bucketMicros = [...]int64{
	100, 250, 500,
	1_000, 2_500, 5_000, 10_000, 25_000, 50_000,
	100_000, 250_000, 500_000, 1_000_000, 2_500_000, 5_000_000, 10_000_000, 30_000_000,
}

// breakerStates are tailguard_breaker_state's values.
var breakerStates = map[string]float64{"closed": 0, "half_open": 1, "open": 2}

// A Collector exposes a Registry's routes to Prometheus. It reads
// snapshots when scraped; the hot path never calls client_golang. It is
// safe for concurrent use.
type Collector struct {
	reg *Registry
	// created is the registry's start, when every histogram started
	// counting: a route configured later had recorded nothing until then.
	created *timestamppb.Timestamp
	// native is whether the latency histograms carry native buckets:
	// false for a Collector that only text scrapes read (see
	// metricsHandler).
	native bool
	// lent, if not nil, is the memory of the scrape in progress, which a
	// scrapeGatherer lends its own Collector while it gathers; without
	// it, Collect allocates a scrapeBuf of its own.
	lent *scrapeBuf

	requests, shed, timeouts, breakerRejects *prometheus.Desc
	retries, hedgesSent, hedgesWon           *prometheus.Desc
	wouldRetry, wouldHedge, wouldReject      *prometheus.Desc
	breakerState, limit, inFlight, queued    *prometheus.Desc
	shedByPriority                           *prometheus.Desc
	rateLimited, keysTracked, keysMax        *prometheus.Desc
	tunnelsActive, tunnelsTotal              *prometheus.Desc
	latencyGood, latencySLI, availabilitySLI *prometheus.Desc
	budget, burnRate                         *prometheus.Desc
	histograms                               [numMetrics]*prometheus.Desc // Overhead: nil

	// Outside routes: the listener, and each upstream and endpoint.
	listenerConns, listenerParked, listenerErrors      *prometheus.Desc
	upstreamBreaker                                    *prometheus.Desc
	ejections, latencyEjections, wouldEject            *prometheus.Desc
	endpointHealthy, endpointEjected, endpointOutstand *prometheus.Desc
	endpointLatency, endpointRequests, endpointFails   *prometheus.Desc
	bufferBytes, bufferSpills, bufferFallbacks         *prometheus.Desc
}

var _ prometheus.Collector = (*Collector)(nil)

// NewCollector returns a Collector of reg's routes.
func NewCollector(reg *Registry) *Collector {
	route := []string{"route"}
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("tailguard_"+name, help, append(route, labels...), nil)
	}
	c := &Collector{
		reg:             reg,
		created:         timestamppb.New(reg.start),
		native:          true,
		requests:        d("requests_total", "Requests answered, by status class (tailguard's own errors included).", "code"),
		shed:            d("shed_total", "Requests refused by admission control."),
		timeouts:        d("timeouts_total", "Requests answered with 504 because a deadline passed."),
		breakerRejects:  d("breaker_rejects_total", "Requests refused because the breaker was open."),
		retries:         d("retries_total", "Retry attempts made."),
		hedgesSent:      d("hedges_sent_total", "Hedge attempts sent."),
		hedgesWon:       d("hedges_won_total", "Responses that came from a hedge attempt."),
		wouldRetry:      d("would_retry_total", "Requests a shadow-mode retry policy would have retried."),
		wouldHedge:      d("would_hedge_total", "Hedges a shadow-mode hedge policy would have sent."),
		wouldReject:     d("would_reject_total", "Requests a shadow-mode breaker would have refused."),
		breakerState:    d("breaker_state", "Breaker state: 0 closed, 1 half-open, 2 open."),
		limit:           d("concurrency_limit", "Admission concurrency limit (0: none)."),
		inFlight:        d("in_flight", "Requests admitted and not finished."),
		queued:          d("queued", "Requests waiting for admission."),
		shedByPriority:  d("shed_by_priority_total", "Admission refusals by request priority (would-be refusals in shadow mode).", "priority"),
		rateLimited:     d("rate_limited_total", "Requests refused because their client was over the route's rate limit."),
		keysTracked:     d("keys_tracked", "Client keys with state in a per-key table: fair admission (table=fair) or rate limit (table=rate_limit).", "table"),
		keysMax:         d("keys_max", "The most client keys a per-key table tracks.", "table"),
		tunnelsActive:   d("tunnels_active", "Upgraded connections (WebSocket) open now."),
		tunnelsTotal:    d("tunnels_total", "Upgraded connections (WebSocket) opened."),
		latencyGood:     d("slo_latency_good_total", "Requests within the SLO latency."),
		latencySLI:      d("slo_latency_sli", "Share of requests within the SLO latency, over the last hour."),
		availabilitySLI: d("slo_availability_sli", "Share of requests not 5xx, over the last hour."),
		budget:          d("slo_error_budget_remaining", "Error budget remaining over the last hour (availability objective, else latency)."),
		burnRate:        d("slo_burn_rate", "Error budget burn rate: bad share / (1 - target).", "window"),
		histograms: [numMetrics]*prometheus.Desc{
			Queue:    d("queue_seconds", "Time from arrival to admission (waiting in tailguard)."),
			Service:  d("service_seconds", "The winning attempt's upstream time."),
			Response: d("response_seconds", "Time from arrival to response handed back."),
		},
		listenerConns:    desc("listener_connections", "Client connections open now."),
		listenerParked:   desc("listener_connections_parked", "Client connections open now that are parked: idle, held without a goroutine or buffers."),
		listenerErrors:   desc("listener_errors_total", "Connections and requests refused before a route was chosen, by cause.", "cause"),
		upstreamBreaker:  desc("upstream_breaker_state", "Upstream breaker state: 0 closed, 1 half-open, 2 open.", "upstream"),
		ejections:        desc("outlier_ejections_total", "Endpoint ejections made by outlier detection.", "upstream"),
		latencyEjections: desc("outlier_latency_ejections_total", "Endpoint ejections decided for tail latency (latency_factor), in shadow mode too.", "upstream"),
		wouldEject:       desc("outlier_would_eject_total", "Endpoint ejections a shadow-mode outlier detection decided and did not make.", "upstream"),
		endpointHealthy:  desc("endpoint_healthy", "1 if the endpoint passes its health checks (always 1 without them).", endpoint...),
		endpointEjected:  desc("endpoint_ejected", "1 while outlier detection keeps the endpoint out.", endpoint...),
		endpointOutstand: desc("endpoint_outstanding", "Attempts sent to the endpoint and not finished.", endpoint...),
		endpointLatency:  desc("endpoint_latency_ewma_seconds", "The balancer's peak-EWMA round-trip estimate for the endpoint (0: no sample yet).", endpoint...),
		endpointRequests: desc("endpoint_requests_total", "Attempts sent to the endpoint.", endpoint...),
		endpointFails:    desc("endpoint_failures_total", "Attempts sent to the endpoint that failed (5xx, timeout, connection error, malformed response).", endpoint...),
		bufferBytes:      desc("buffer_bytes", "Room buffered bodies hold now, in memory or on disk.", "where"),
		bufferSpills:     desc("buffer_spills_total", "Buffered bodies that outgrew memory and went on to disk."),
		bufferFallbacks:  desc("buffer_fallbacks_total", "Bodies streamed unbuffered, whole or in part, because memory and disk were full."),
	}
	return c
}

// endpoint are the labels of the per-endpoint metrics; their cardinality
// is bounded by the config (at most 64 endpoints an upstream).
var endpoint = []string{"upstream", "endpoint"}

// desc describes a metric without the route label.
func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("tailguard_"+name, help, labels, nil)
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		c.requests, c.shed, c.timeouts, c.breakerRejects, c.retries, c.hedgesSent, c.hedgesWon,
		c.wouldRetry, c.wouldHedge, c.wouldReject, c.ejections, c.latencyEjections, c.wouldEject,
		c.breakerState, c.limit, c.inFlight, c.queued, c.shedByPriority, c.tunnelsActive, c.tunnelsTotal,
		c.rateLimited, c.keysTracked, c.keysMax,
		c.latencyGood, c.latencySLI, c.availabilitySLI, c.budget, c.burnRate,
		c.listenerConns, c.listenerParked, c.listenerErrors, c.upstreamBreaker, c.endpointHealthy, c.endpointEjected,
		c.endpointOutstand, c.endpointLatency, c.endpointRequests, c.endpointFails,
		c.bufferBytes, c.bufferSpills, c.bufferFallbacks,
	} {
		ch <- d
	}
	for _, d := range c.histograms {
		if d != nil {
			ch <- d
		}
	}
}

// Collect implements prometheus.Collector: counters and histograms since
// the route was first configured, gauges as they are now.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	buf := c.lent
	if buf == nil {
		buf = newScrapeBuf()
	}
	buf.reset()
	s, b := &buf.route, &buf.samples
	for _, rt := range c.reg.configured() {
		rt.readScrape(s, c.native)
		cfg := rt.cfg.Load()
		c.collectCounters(ch, b, &rt.labels, &s.c)
		c.collectHistograms(ch, buf, &rt.labels)
		active, total := rt.Tunnels()
		ch <- b.gauge(c.tunnelsActive, rt.labels.route, float64(active))
		ch <- b.counter(c.tunnelsTotal, rt.labels.route, float64(total))
		if cfg.Gauges != nil {
			c.collectGauges(ch, b, rt, cfg.Gauges())
		}
		if cfg.SLO != nil {
			c.collectSLO(ch, b, rt, cfg.SLO, &s.c)
		}
	}
	c.collectServer(ch, c.reg.serverGauges())
}

// collectServer exposes the figures outside routes: the listener's, the
// buffers', and each upstream's breaker and endpoints.
func (c *Collector) collectServer(ch chan<- prometheus.Metric, g ServerGauges) {
	ch <- prometheus.MustNewConstMetric(c.listenerConns, prometheus.GaugeValue, float64(g.Listener.Connections))
	ch <- prometheus.MustNewConstMetric(c.listenerParked, prometheus.GaugeValue, float64(g.Listener.Parked))
	ch <- prometheus.MustNewConstMetric(c.bufferBytes, prometheus.GaugeValue, float64(g.Buffers.MemoryBytes), "memory")
	ch <- prometheus.MustNewConstMetric(c.bufferBytes, prometheus.GaugeValue, float64(g.Buffers.DiskBytes), "disk")
	ch <- prometheus.MustNewConstMetric(c.bufferSpills, prometheus.CounterValue, float64(g.Buffers.Spills))
	ch <- prometheus.MustNewConstMetric(c.bufferFallbacks, prometheus.CounterValue, float64(g.Buffers.Fallbacks))
	for _, e := range g.Listener.Errors {
		ch <- prometheus.MustNewConstMetric(c.listenerErrors, prometheus.CounterValue, float64(e.Count), e.Cause)
	}
	for _, u := range g.Upstreams {
		if v, ok := breakerStates[u.Breaker]; ok {
			ch <- prometheus.MustNewConstMetric(c.upstreamBreaker, prometheus.GaugeValue, v, u.Name)
		}
		for d, v := range map[*prometheus.Desc]uint64{
			c.ejections: u.Ejections, c.latencyEjections: u.LatencyEjections, c.wouldEject: u.WouldEject,
		} {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), u.Name)
		}
		for _, e := range u.Endpoints {
			gauge := func(d *prometheus.Desc, v float64) {
				ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, u.Name, e.Address)
			}
			gauge(c.endpointHealthy, boolValue(e.Healthy))
			gauge(c.endpointEjected, boolValue(e.Ejected))
			gauge(c.endpointOutstand, float64(e.Outstanding))
			gauge(c.endpointLatency, e.LatencyEWMA.Seconds())
			ch <- prometheus.MustNewConstMetric(c.endpointRequests, prometheus.CounterValue, float64(e.Requests), u.Name, e.Address)
			ch <- prometheus.MustNewConstMetric(c.endpointFails, prometheus.CounterValue, float64(e.Failures), u.Name, e.Address)
		}
	}
}

// boolValue is a gauge's value for b: 1 or 0.
func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// collectCounters exposes the route's counters n, labelled l.
func (c *Collector) collectCounters(ch chan<- prometheus.Metric, b *sampleBuf, l *routeLabels, n *counters) {
	for i := range classNames {
		ch <- b.counter(c.requests, l.code[i], float64(n.status[i]))
	}
	for _, v := range [...]struct {
		d *prometheus.Desc
		n int64
	}{
		{c.shed, n.shed}, {c.rateLimited, n.rateLimited}, {c.timeouts, n.timeouts}, {c.breakerRejects, n.breakerRejects},
		{c.retries, n.retries}, {c.hedgesSent, n.hedgesSent}, {c.hedgesWon, n.hedgesWon},
		{c.wouldRetry, n.wouldRetry}, {c.wouldHedge, n.wouldHedge}, {c.wouldReject, n.wouldReject},
	} {
		ch <- b.counter(v.d, l.route, float64(v.n))
	}
}

// collectHistograms exposes the latency histograms of the route read
// into buf, labelled l, each in both layouts unless c is not native (see
// latencyHistogram), with their exemplars.
func (c *Collector) collectHistograms(ch chan<- prometheus.Metric, buf *scrapeBuf, l *routeLabels) {
	var layout *nativeLayout
	if c.native {
		layout = nativeLayout4
	}
	s := &buf.route
	for m, d := range c.histograms {
		if d != nil {
			exemplars := s.ex.forMetric(Metric(m))
			h := buf.histogram()
			h.set(d, l.route, &s.prom[m], layout, s.c.sum[m], &exemplars, c.created)
			ch <- h
		}
	}
}

// nativeSchema is the resolution of the native histograms: bucket i holds
// the values in (2^((i-1)/16), 2^(i/16)] seconds, 16 buckets a doubling
// (53 a decade), each γ = 2^(1/16) ≈ 1.0443 times as wide as the last.
//
// Why 4. histogram_quantile finds the bucket where the rank falls and
// interpolates inside it (linearly, in Prometheus 2.x), so its answer may
// be anywhere in the bucket that holds the true quantile: the error it
// can promise is the bucket's width, γ-1. Schema 3 (γ = 2^(1/8)) promises
// 9.05%; its often-quoted 4.4% (√γ-1) is the error at the bucket's
// geometric middle, where interpolation lands only when values spread
// evenly over the bucket, not for a spike (requests that all end at a
// timeout, a cache's fixed cost). Schema 4 promises 4.43% whatever the
// distribution; a value within HdrHistogram's resolution of a bucket
// boundary (half a sub-bucket: 0.4% at 2 digits) may be counted on the
// boundary's other side, which keeps the total under 5%. Schema 5 (2.2%)
// would double the buckets again. TestNativeQuantileError measures both
// on five distributions: schema 4 is at most 3.2% off HdrHistogram's
// quantiles, schema 3 7.7% (p99.9 of a 1 s timeout spike).
const nativeSchema = 4

// nativeZeroThreshold bounds the native histograms' zero bucket: values
// at or under 2^-20 s (0.95 µs). Recorded values are whole microseconds,
// at least 1 (see lowestMicros), so it stays empty. It is a bucket
// boundary at every schema, as Prometheus wants of histograms it merges,
// and it is not 0, which tells Prometheus 2.x that a histogram without
// observations yet is a native one.
const nativeZeroThreshold = 0x1p-20

// collectGauges exposes the route's live state g.
func (c *Collector) collectGauges(ch chan<- prometheus.Metric, b *sampleBuf, rt *Route, g Gauges) {
	l := &rt.labels
	if v, ok := breakerStates[g.Breaker]; ok {
		ch <- b.gauge(c.breakerState, l.route, v)
	}
	ch <- b.gauge(c.limit, l.route, float64(g.ConcurrencyLimit))
	ch <- b.gauge(c.inFlight, l.route, float64(g.InFlight))
	ch <- b.gauge(c.queued, l.route, float64(g.Queued))
	for p, n := range g.ShedByPriority {
		ch <- prometheus.MustNewConstMetric(c.shedByPriority, prometheus.CounterValue, float64(n), rt.name, p)
	}
	for i, k := range [len(keyTables)]*KeyGauges{g.Fair, g.RateLimit} {
		if k != nil {
			ch <- b.gauge(c.keysTracked, l.table[i], float64(k.Tracked))
			ch <- b.gauge(c.keysMax, l.table[i], float64(k.MaxKeys))
		}
	}
}

// collectSLO exposes the SLIs and budget over the last hour (the window
// of the slower burn rate) and both burn rates. Longer SLO periods are
// PromQL's: use tailguard_requests_total and
// tailguard_slo_latency_good_total.
func (c *Collector) collectSLO(ch chan<- prometheus.Metric, b *sampleBuf, rt *Route, o *SLO, all *counters) {
	hour := rt.view(win1h, false)
	rep := o.report(&hour.c, &rt.view(win5m, false).c, &hour.c)
	l := &rt.labels
	if rep.LatencySLI != nil {
		ch <- b.counter(c.latencyGood, l.route, float64(all.latencyGood))
		ch <- b.gauge(c.latencySLI, l.route, *rep.LatencySLI)
	}
	ch <- b.gauge(c.availabilitySLI, l.route, rep.AvailabilitySLI)
	ch <- b.gauge(c.budget, l.route, rep.ErrorBudgetRemaining)
	for i, v := range [len(burnWindows)]float64{rep.BurnRate5m, rep.BurnRate1h} {
		ch <- b.gauge(c.burnRate, l.window[i], v)
	}
}
