package bench

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestReportHistogramRoundTrip: a report's latency histogram comes back
// from its JSON bucket for bucket, and a report without one says so and
// carries no latency_hdr key.
func TestReportHistogramRoundTrip(t *testing.T) {
	for _, tt := range []struct {
		name string
		lats []time.Duration
	}{
		{"no requests", nil},
		{"one request", []time.Duration{3 * time.Millisecond}},
		{"a spread", []time.Duration{0, time.Microsecond, 250 * time.Microsecond, 2 * time.Millisecond, 2 * time.Millisecond, 41 * time.Millisecond, 3 * time.Second}},
		{"past the longest tracked", []time.Duration{time.Millisecond, time.Hour}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res := newResult()
			for _, d := range tt.lats {
				res.record("200", d, 1)
			}
			rep := NewReport("", Load{URL: "http://127.0.0.1:1/", Rate: 100, Duration: time.Second}, res)
			if err := rep.attachHistogram(res.Latency); err != nil {
				t.Fatal(err)
			}
			b, err := json.Marshal(rep)
			if err != nil {
				t.Fatal(err)
			}
			var back Report
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatal(err)
			}
			h, err := back.LatencyHistogram()
			if err != nil {
				t.Fatal(err)
			}
			if !h.Equals(res.Latency) || h.TotalCount() != int64(len(tt.lats)) {
				t.Errorf("decoded %d values, p99 %d µs; recorded %d, p99 %d µs",
					h.TotalCount(), h.ValueAtQuantile(99), res.Latency.TotalCount(), res.Latency.ValueAtQuantile(99))
			}
		})
	}
}

// TestReportWithoutHistogram: by default a report stays small: no
// latency_hdr key, and asking for the histogram is an error.
func TestReportWithoutHistogram(t *testing.T) {
	res := newResult()
	res.record("200", time.Millisecond, 1)
	rep := NewReport("", Load{URL: "http://127.0.0.1:1/", Rate: 100, Duration: time.Second}, res)
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "latency_hdr") {
		t.Errorf("report without -hdr has latency_hdr: %s", b)
	}
	if _, err := rep.LatencyHistogram(); !errors.Is(err, errNoHistogram) {
		t.Errorf("LatencyHistogram: %v, want errNoHistogram", err)
	}
}

// TestBenchCLIWritesHistogram: `bench -hdr` puts every request in the
// report's histogram, agreeing with its percentiles.
func TestBenchCLIWritesHistogram(t *testing.T) {
	skipShort(t)
	up := startTestUpstream(t, UpstreamOptions{})
	var r Report
	out := tailguard(t, "bench", "-url", "http://"+up.Addr()+"/", "-rate", "500", "-count", "50", "-json", "-", "-quiet", "-hdr")
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v in %s", err, out)
	}
	h, err := r.LatencyHistogram()
	if err != nil {
		t.Fatal(err)
	}
	if h.TotalCount() != r.Requests || msOf(quantile(h, 0.99)) != r.LatencyMS.P99 {
		t.Errorf("histogram of %d, p99 %v ms; report %d requests, p99 %v ms", h.TotalCount(), msOf(quantile(h, 0.99)), r.Requests, r.LatencyMS.P99)
	}
}
