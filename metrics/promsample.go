package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Issue 16: collecting a scrape of 50 routes (BenchmarkScrape) spent a
// third of its time in prometheus.MustNewConstMetric, which checks the
// label values and builds new label pairs (three allocations a label and
// one for the slice) for each of the thousand or so series, then four
// allocations more for the value. A route's label
// pairs never change, so they are built once, when the route is; and the
// series of a scrape are allocated a chunk at a time and reused by the
// next scrape (sampleBuf).

// routeLabels are a route's label pairs as the exposition carries them,
// sorted by name as client_golang wants them. They are built with the
// route and never modified, so every scrape shares them (client_golang
// only reads label pairs).
type routeLabels struct {
	route  []*dto.LabelPair                   // {route}
	code   [numClasses][]*dto.LabelPair       // {code, route}, by status class
	table  [len(keyTables)][]*dto.LabelPair   // {route, table}
	window [len(burnWindows)][]*dto.LabelPair // {route, window}
}

// keyTables are the values of tailguard_keys_tracked's table label, and
// burnWindows those of tailguard_slo_burn_rate's window label.
var (
	keyTables   = [...]string{"fair", "rate_limit"}
	burnWindows = [...]string{"5m", "1h"}
)

func newRouteLabels(route string) routeLabels {
	pair := func(name, value string) *dto.LabelPair { return &dto.LabelPair{Name: new(name), Value: new(value)} }
	r := pair("route", route)
	l := routeLabels{route: []*dto.LabelPair{r}}
	for i, code := range classNames {
		l.code[i] = []*dto.LabelPair{pair("code", code), r}
	}
	for i, table := range keyTables {
		l.table[i] = []*dto.LabelPair{r, pair("table", table)}
	}
	for i, w := range burnWindows {
		l.window[i] = []*dto.LabelPair{r, pair("window", w)}
	}
	return l
}

// A constSample is one series of a counter or a gauge, with a value that
// never changes: what prometheus.MustNewConstMetric makes, without
// checking or building its label pairs. It is written once and then only
// read (Write may run on several goroutines).
type constSample struct {
	desc    *prometheus.Desc
	labels  []*dto.LabelPair
	value   float64
	counter dto.Counter // Value: &value, if a counter
	gauge   dto.Gauge   // Value: &value, if a gauge
}

var _ prometheus.Metric = (*constSample)(nil)

// Desc implements prometheus.Metric.
func (s *constSample) Desc() *prometheus.Desc { return s.desc }

// Write implements prometheus.Metric.
func (s *constSample) Write(out *dto.Metric) error {
	out.Label = s.labels
	if s.counter.Value != nil {
		out.Counter = &s.counter
	} else {
		out.Gauge = &s.gauge
	}
	return nil
}

// sampleChunk is how many constSamples a sampleBuf allocates at once: a
// route's counters and gauges, about twenty, several times over.
const sampleChunk = 128

// A sampleBuf hands out the constSamples of a scrape from chunks it
// allocates as needed and keeps for the next scrape (see scrapeBuf).
type sampleBuf struct {
	chunks [][]constSample
	n      int // samples handed out since reset
}

// reset takes back every sample handed out.
func (b *sampleBuf) reset() { b.n = 0 }

// next returns the next sample, from a new chunk if the last is full.
func (b *sampleBuf) next() *constSample {
	i, j := b.n/sampleChunk, b.n%sampleChunk
	if i == len(b.chunks) {
		b.chunks = append(b.chunks, make([]constSample, sampleChunk))
	}
	b.n++
	return &b.chunks[i][j]
}

// counter returns a counter series of d with labels and value v.
func (b *sampleBuf) counter(d *prometheus.Desc, labels []*dto.LabelPair, v float64) prometheus.Metric {
	s := b.next()
	*s = constSample{desc: d, labels: labels, value: v}
	s.counter.Value = &s.value
	return s
}

// gauge returns a gauge series of d with labels and value v.
func (b *sampleBuf) gauge(d *prometheus.Desc, labels []*dto.LabelPair, v float64) prometheus.Metric {
	s := b.next()
	*s = constSample{desc: d, labels: labels, value: v}
	s.gauge.Value = &s.value
	return s
}
