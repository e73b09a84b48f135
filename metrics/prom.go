package metrics

import (
	"math"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// bucketMicros are the upper bounds of the Prometheus histograms, in
// microseconds: 100 µs to 30 s, roughly 1-2.5-5 per decade. They are the
// same for every route and every pod, so histogram_quantile can aggregate
// them (sum by (le) of rate(..._bucket[1m])).
var bucketMicros = []int64{
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

	requests, shed, timeouts, breakerRejects *prometheus.Desc
	retries, hedgesSent, hedgesWon           *prometheus.Desc
	wouldRetry, wouldHedge, wouldReject      *prometheus.Desc
	breakerState, limit, inFlight, queued    *prometheus.Desc
	shedByPriority                           *prometheus.Desc
	tunnelsActive, tunnelsTotal              *prometheus.Desc
	latencyGood, latencySLI, availabilitySLI *prometheus.Desc
	budget, burnRate                         *prometheus.Desc
	histograms                               [numMetrics]*prometheus.Desc // Overhead: nil

	// Outside routes: the listener, and each upstream and endpoint.
	listenerConns, listenerErrors                      *prometheus.Desc
	upstreamBreaker                                    *prometheus.Desc
	ejections, latencyEjections, wouldEject            *prometheus.Desc
	endpointHealthy, endpointEjected, endpointOutstand *prometheus.Desc
	endpointLatency, endpointRequests, endpointFails   *prometheus.Desc
}

var _ prometheus.Collector = (*Collector)(nil)

// NewCollector returns a Collector of reg's routes.
func NewCollector(reg *Registry) *Collector {
	route := []string{"route"}
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("tailguard_"+name, help, append(route, labels...), nil)
	}
	return &Collector{
		reg:             reg,
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
	}
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
		c.latencyGood, c.latencySLI, c.availabilitySLI, c.budget, c.burnRate,
		c.listenerConns, c.listenerErrors, c.upstreamBreaker, c.endpointHealthy, c.endpointEjected,
		c.endpointOutstand, c.endpointLatency, c.endpointRequests, c.endpointFails,
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
	for _, rt := range c.reg.configured() {
		all := rt.view(winAll, true)
		cfg := rt.cfg.Load()
		c.collectCounters(ch, rt.name, &all.c)
		c.collectHistograms(ch, rt.name, all)
		active, total := rt.Tunnels()
		ch <- prometheus.MustNewConstMetric(c.tunnelsActive, prometheus.GaugeValue, float64(active), rt.name)
		ch <- prometheus.MustNewConstMetric(c.tunnelsTotal, prometheus.CounterValue, float64(total), rt.name)
		if cfg.Gauges != nil {
			c.collectGauges(ch, rt.name, cfg.Gauges())
		}
		if cfg.SLO != nil {
			c.collectSLO(ch, rt, cfg.SLO, &all.c)
		}
	}
	c.collectServer(ch, c.reg.serverGauges())
}

// collectServer exposes the figures outside routes: the listener's, and
// each upstream's breaker and endpoints.
func (c *Collector) collectServer(ch chan<- prometheus.Metric, g ServerGauges) {
	ch <- prometheus.MustNewConstMetric(c.listenerConns, prometheus.GaugeValue, float64(g.Listener.Connections))
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

func (c *Collector) collectCounters(ch chan<- prometheus.Metric, route string, n *counters) {
	for i, code := range classNames {
		ch <- prometheus.MustNewConstMetric(c.requests, prometheus.CounterValue, float64(n.status[i]), route, code)
	}
	for d, v := range map[*prometheus.Desc]int64{
		c.shed: n.shed, c.timeouts: n.timeouts, c.breakerRejects: n.breakerRejects,
		c.retries: n.retries, c.hedgesSent: n.hedgesSent, c.hedgesWon: n.hedgesWon,
		c.wouldRetry: n.wouldRetry, c.wouldHedge: n.wouldHedge, c.wouldReject: n.wouldReject,
	} {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), route)
	}
}

func (c *Collector) collectHistograms(ch chan<- prometheus.Metric, route string, s *Snapshot) {
	for m, d := range c.histograms {
		if d == nil {
			continue
		}
		b := histogramBuckets(s, Metric(m), nativeSchema)
		sum := float64(s.c.sum[m]) / 1e6
		// Created: the registry's start. A route configured later had
		// recorded nothing until then, so its histogram was empty since.
		ch <- nativeAndClassic{
			native: prometheus.MustNewConstNativeHistogram(d, b.count, sum, b.native, nil, 0,
				nativeSchema, nativeZeroThreshold, c.reg.start, route),
			classic: prometheus.MustNewConstHistogram(d, b.count, sum, b.classic, route),
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

// histBuckets are one histogram's observations in both layouts.
type histBuckets struct {
	count   uint64
	classic map[float64]uint64 // cumulative, by upper bound in seconds (bucketMicros)
	native  map[int]int64      // by bucket index at the schema asked for
}

// histogramBuckets returns metric m's count and buckets, in one pass over
// the HdrHistogram.
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
func histogramBuckets(s *Snapshot, m Metric, schema int32) histBuckets {
	per := make([]uint64, len(bucketMicros)+1) // the last one is +Inf
	var b histBuckets
	perDoubling := math.Exp2(float64(schema))
	i := 0 // the classic bucket of the last value
	// Values rise: a native bucket is complete when a value goes past its
	// upper bound. native are the complete ones, in order.
	type bucket struct {
		idx   int
		count int64
	}
	var native []bucket
	upper := math.Inf(-1)
	for _, bar := range s.h[m].Distribution() {
		if bar.Count == 0 {
			continue
		}
		for i < len(bucketMicros) && bar.From > bucketMicros[i] {
			i++
		}
		per[i] += uint64(bar.Count)
		b.count += uint64(bar.Count)
		if v := float64(bar.From+bar.To) / 2 / 1e6; v > upper {
			idx := int(math.Ceil(math.Log2(v) * perDoubling))
			upper = math.Exp2(float64(idx) / perDoubling)
			native = append(native, bucket{idx: idx})
		}
		native[len(native)-1].count += bar.Count
	}
	b.native = make(map[int]int64, len(native))
	for _, n := range native {
		b.native[n.idx] += n.count // += : Log2 and Exp2 may disagree by an ulp at a bound
	}
	b.classic = make(map[float64]uint64, len(bucketMicros))
	var cum uint64
	for i, le := range bucketMicros {
		cum += per[i]
		b.classic[float64(le)/1e6] = cum
	}
	return b
}

// nativeAndClassic is one histogram in both layouts, as client_golang's
// own histograms expose it when given both: a scraper that negotiates
// protobuf (Prometheus with native histograms on) reads the native
// buckets, the text format carries the classic ones.
type nativeAndClassic struct {
	native  prometheus.Metric // a const native histogram: the Desc, labels, count, sum and native buckets
	classic prometheus.Metric // a const histogram of the same observations: its buckets
}

// Desc implements prometheus.Metric.
func (h nativeAndClassic) Desc() *prometheus.Desc { return h.native.Desc() }

// Write implements prometheus.Metric: the native histogram, with the
// classic one's buckets added.
func (h nativeAndClassic) Write(out *dto.Metric) error {
	var classic dto.Metric
	if err := h.classic.Write(&classic); err != nil {
		return err
	}
	if err := h.native.Write(out); err != nil {
		return err
	}
	out.Histogram.Bucket = classic.Histogram.Bucket
	return nil
}

func (c *Collector) collectGauges(ch chan<- prometheus.Metric, route string, g Gauges) {
	if v, ok := breakerStates[g.Breaker]; ok {
		ch <- prometheus.MustNewConstMetric(c.breakerState, prometheus.GaugeValue, v, route)
	}
	ch <- prometheus.MustNewConstMetric(c.limit, prometheus.GaugeValue, float64(g.ConcurrencyLimit), route)
	ch <- prometheus.MustNewConstMetric(c.inFlight, prometheus.GaugeValue, float64(g.InFlight), route)
	ch <- prometheus.MustNewConstMetric(c.queued, prometheus.GaugeValue, float64(g.Queued), route)
	for p, n := range g.ShedByPriority {
		ch <- prometheus.MustNewConstMetric(c.shedByPriority, prometheus.CounterValue, float64(n), route, p)
	}
}

// collectSLO exposes the SLIs and budget over the last hour (the window
// of the slower burn rate) and both burn rates. Longer SLO periods are
// PromQL's: use tailguard_requests_total and
// tailguard_slo_latency_good_total.
func (c *Collector) collectSLO(ch chan<- prometheus.Metric, rt *Route, o *SLO, all *counters) {
	hour := rt.view(win1h, false)
	rep := o.report(&hour.c, &rt.view(win5m, false).c, &hour.c)
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, append([]string{rt.name}, labels...)...)
	}
	if rep.LatencySLI != nil {
		ch <- prometheus.MustNewConstMetric(c.latencyGood, prometheus.CounterValue, float64(all.latencyGood), rt.name)
		gauge(c.latencySLI, *rep.LatencySLI)
	}
	gauge(c.availabilitySLI, rep.AvailabilitySLI)
	gauge(c.budget, rep.ErrorBudgetRemaining)
	gauge(c.burnRate, rep.BurnRate5m, "5m")
	gauge(c.burnRate, rep.BurnRate1h, "1h")
}
