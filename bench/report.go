package bench

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Report is a run as JSON: what was sent, what came back, the latency
// percentiles and the percentile spectrum to plot. `tailguard bench
// -json` writes it and `tailguard bench plot` reads it back.
type Report struct {
	Label       string  `json:"label,omitempty"`
	URL         string  `json:"url"`
	Mode        string  `json:"mode"` // open or closed
	Rate        float64 `json:"rate,omitempty"`
	Connections int     `json:"connections"`
	Fanout      int     `json:"fanout"`
	Requests    int64   `json:"requests"`
	Calls       int64   `json:"calls"`
	ElapsedS    float64 `json:"elapsed_s"`
	// Throughput is requests completed a second over the run.
	Throughput float64 `json:"throughput"`
	// LatencyMS covers every request; Classes each outcome apart.
	LatencyMS Percentiles            `json:"latency_ms"`
	Classes   map[string]Percentiles `json:"classes"`
	// Spectrum is the percentile spectrum, for plots.
	Spectrum []Point `json:"spectrum"`
	// LatencyHDR, only with `bench -hdr`, is the histogram LatencyMS
	// comes from, whole, in HdrHistogram's compressed encoding (see
	// attachHistogram and LatencyHistogram), values in microseconds.
	LatencyHDR string `json:"latency_hdr,omitempty"`
}

// Percentiles are one set of latencies, in milliseconds.
type Percentiles struct {
	Count int64   `json:"count"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	P999  float64 `json:"p99.9"`
	P9999 float64 `json:"p99.99"`
	Max   float64 `json:"max"`
	Mean  float64 `json:"mean"`
}

// Point is one point of a percentile spectrum: the latency at quantile Q.
type Point struct {
	Q  float64 `json:"q"`
	MS float64 `json:"ms"`
}

// NewReport describes res, a run of l.
func NewReport(label string, l Load, res *Result) *Report {
	l, _ = l.defaults()
	r := &Report{
		Label: label, URL: l.URL, Mode: "open", Rate: l.Rate, Connections: l.Connections, Fanout: l.Fanout,
		Requests: res.Count(), Calls: res.Calls, ElapsedS: res.Elapsed.Seconds(),
		LatencyMS: percentiles(res.Latency), Classes: map[string]Percentiles{}, Spectrum: spectrum(res.Latency),
	}
	if l.Closed {
		r.Mode, r.Rate = "closed", 0
	}
	if res.Elapsed > 0 {
		r.Throughput = float64(res.Count()) / res.Elapsed.Seconds()
	}
	for c, h := range res.Classes {
		r.Classes[c] = percentiles(h)
	}
	return r
}

func percentiles(h *hdrhistogram.Histogram) Percentiles {
	return Percentiles{
		Count: h.TotalCount(), P50: msOf(quantile(h, 0.5)), P90: msOf(quantile(h, 0.9)), P99: msOf(quantile(h, 0.99)),
		P999: msOf(quantile(h, 0.999)), P9999: msOf(quantile(h, 0.9999)), Max: msOf(quantile(h, 1)),
		Mean: h.Mean() / 1000,
	}
}

func msOf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func msDur(ms float64) time.Duration { return time.Duration(ms * float64(time.Millisecond)) }

// spectrumStep is the spacing of spectrum points in decades of
// 1/(1−q): 20 points from p0 to p90, 20 more to p99, and so on.
const spectrumStep = 0.05

// spectrum samples h's percentile spectrum from p0 to the highest
// percentile its count resolves (p99.999 at most), and ends at its max.
func spectrum(h *hdrhistogram.Histogram) []Point {
	n := h.TotalCount()
	if n == 0 {
		return nil
	}
	top := min(math.Log10(float64(n)), 5)
	var pts []Point
	for x := 0.0; x < top; x += spectrumStep {
		q := 1 - math.Pow(10, -x)
		pts = append(pts, Point{Q: q, MS: msOf(quantile(h, q))})
	}
	return append(pts, Point{Q: 1 - math.Pow(10, -top), MS: msOf(quantile(h, 1))})
}

// WriteTable prints the report as a table a person reads: throughput,
// percentiles and the count of each outcome.
func (r *Report) WriteTable(out io.Writer) {
	fmt.Fprintf(out, "%-10s %s %s", "target", r.Mode, r.URL)
	if r.Mode == "open" {
		fmt.Fprintf(out, " at %g/s", r.Rate)
	}
	fmt.Fprintf(out, ", %d connections\n", r.Connections)
	fmt.Fprintf(out, "%-10s %d in %.2fs (%.0f/s)\n", "requests", r.Requests, r.ElapsedS, r.Throughput)
	p := r.LatencyMS
	for _, row := range []struct {
		name string
		ms   float64
	}{{"p50", p.P50}, {"p90", p.P90}, {"p99", p.P99}, {"p99.9", p.P999}, {"p99.99", p.P9999}, {"max", p.Max}} {
		fmt.Fprintf(out, "%-10s %s\n", row.name, fmtMS(row.ms))
	}
	classes := make([]string, 0, len(r.Classes))
	for c := range r.Classes {
		classes = append(classes, c)
	}
	slices.Sort(classes)
	for _, c := range classes {
		fmt.Fprintf(out, "%-10s %-22s %8d  p99 %s\n", "outcome", c, r.Classes[c].Count, fmtMS(r.Classes[c].P99))
	}
}

// fmtMS prints milliseconds with three significant digits and a unit
// that suits them.
func fmtMS(ms float64) string {
	switch {
	case ms == 0:
		return "0"
	case ms < 1:
		return strings.TrimSuffix(fmt.Sprintf("%.3g", ms*1000), ".0") + "µs"
	case ms < 1000:
		return fmt.Sprintf("%.3gms", ms)
	default:
		return fmt.Sprintf("%.3gs", ms/1000)
	}
}
