package metrics

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// openMetricsAccept is the Accept header of a scraper that asks for
// OpenMetrics, as Prometheus does without native histograms.
const openMetricsAccept = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"

// Trace and request ids of TestExemplars' samples.
const (
	traceOld  = "4bf92f3577b34da6a3ce929d0e0e4736"
	traceNew  = "0af7651916cd43dd8448eb211c80319c"
	traceSlow = "11111111111111111111111111111111"
)

// exemplarAdmin records samples with ids on route "api", over two ticks,
// and returns its admin handler and the second tick's time:
//
//   - 3 ms with traceOld, then (second tick) 4 ms with traceNew: the
//     newer one in le=0.005;
//   - 40 ms with only the request id "req-42": le=0.05;
//   - 45 s with traceSlow: above the last bound, +Inf;
//   - ids that are not kept: too long, not UTF-8.
func exemplarAdmin(t *testing.T) (*Admin, time.Time) {
	t.Helper()
	reg, clock := newTestRegistry(t, RouteConfig{Name: "api"})
	rt, start := reg.Route("api"), clock.Now()
	withID := func(d time.Duration, trace, request string) Sample {
		s := ok(d)
		s.TraceID, s.RequestID = []byte(trace), []byte(request)
		return s
	}
	rt.Record(1, withID(3*time.Millisecond, traceOld, "req-1"))
	rt.Record(2, withID(40*time.Millisecond, "", "req-42"))
	rt.Record(3, withID(45*time.Second, traceSlow, ""))
	reg.Tick(clock.set(start, time.Second))
	rt.Record(4, withID(4*time.Millisecond, traceNew, ""))
	rt.Record(5, withID(200*time.Millisecond, "", strings.Repeat("x", maxExemplarID+1)))
	rt.Record(6, withID(800*time.Millisecond, "", "\xff\xfe"))
	second := clock.set(start, 2*time.Second)
	reg.Tick(second)
	return NewAdmin(AdminOptions{Ready: func() bool { return true }, Config: func() any { return nil }, Stats: reg}), second
}

// TestExemplarsOpenMetrics scrapes /metrics as Prometheus does without
// native histograms (OpenMetrics) and checks each exemplar's bucket, id,
// value and timestamp.
func TestExemplarsOpenMetrics(t *testing.T) {
	a, second := exemplarAdmin(t)
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	req.Header.Set("Accept", openMetricsAccept)
	rec := httptest.NewRecorder()
	a.ServeHTTP(rec, req)
	if ct := rec.Header().Get("Content-Type"); rec.Code != http.StatusOK || !strings.HasPrefix(ct, "application/openmetrics-text") {
		t.Fatalf("GET /metrics with OpenMetrics accepted: %d %q", rec.Code, ct)
	}
	// series{labels} count # {label="id"} value timestamp
	line := regexp.MustCompile(`(?m)^(tailguard_\w+_seconds)_bucket\{route="api",le="([^"]+)"\} \d+ # \{(\w+)="([^"]*)"\} (\S+) (\S+)$`)
	got := map[string]string{}
	for _, m := range line.FindAllStringSubmatch(rec.Body.String(), -1) {
		at, err := strconv.ParseFloat(m[6], 64)
		if err != nil {
			t.Fatalf("exemplar timestamp %q: %v", m[6], err)
		}
		got[m[1]+" le="+m[2]] = fmt.Sprintf("%s=%s %s at %.3f", m[3], m[4], m[5], at)
	}
	ts := func(tm time.Time) string { return fmt.Sprintf("%.3f", float64(tm.UnixMilli())/1e3) }
	first := second.Add(-time.Second)
	want := map[string]string{
		"tailguard_response_seconds le=0.005": "trace_id=" + traceNew + " 0.004 at " + ts(second),
		"tailguard_response_seconds le=0.05":  "request_id=req-42 0.04 at " + ts(first),
		"tailguard_response_seconds le=+Inf":  "trace_id=" + traceSlow + " 45.0 at " + ts(first),
		// The same requests in the queue (a tenth) and service (half)
		// histograms, by their own times: traceNew's 0.4 ms and traceOld's
		// 0.3 ms share le=0.0005, where the newer one shows.
		"tailguard_queue_seconds le=0.0005":   "trace_id=" + traceNew + " 0.0004 at " + ts(second),
		"tailguard_queue_seconds le=0.005":    "request_id=req-42 0.004 at " + ts(first),
		"tailguard_queue_seconds le=5.0":      "trace_id=" + traceSlow + " 4.5 at " + ts(first),
		"tailguard_service_seconds le=0.0025": "trace_id=" + traceNew + " 0.002 at " + ts(second),
		"tailguard_service_seconds le=0.025":  "request_id=req-42 0.02 at " + ts(first),
		"tailguard_service_seconds le=30.0":   "trace_id=" + traceSlow + " 22.5 at " + ts(first),
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s: exemplar %q, want %q", k, got[k], w)
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: unexpected exemplar %q", k, g)
		}
	}
	if t.Failed() {
		t.Logf("scraped:\n%s", rec.Body)
	}
}

// TestExemplarsProtobuf checks the exemplars a protobuf scrape carries:
// on the classic buckets, and in the native histogram's list, with
// timestamps (Prometheus keeps a native histogram's exemplars only with
// one).
func TestExemplarsProtobuf(t *testing.T) {
	a, second := exemplarAdmin(t)
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	req.Header.Set("Accept", protobufAccept)
	rec := httptest.NewRecorder()
	a.ServeHTTP(rec, req)
	h := decodeProtobuf(t, rec.Body)["tailguard_response_seconds"].GetMetric()[0].GetHistogram()
	byBound := map[float64]*dto.Exemplar{}
	for _, b := range h.GetBucket() {
		if e := b.GetExemplar(); e != nil {
			byBound[b.GetUpperBound()] = e
		}
	}
	e := byBound[0.005]
	if e == nil || e.GetLabel()[0].GetValue() != traceNew || e.GetValue() != 0.004 || !e.GetTimestamp().AsTime().Equal(second) {
		t.Errorf("le=0.005: exemplar %v, want %s 0.004 at %v", e, traceNew, second)
	}
	if len(byBound) != 3 || len(h.GetExemplars()) != 3 {
		t.Errorf("%d classic buckets with an exemplar and %d native exemplars, want 3 and 3", len(byBound), len(h.GetExemplars()))
	}
	for _, e := range h.GetExemplars() {
		if e.GetTimestamp() == nil {
			t.Errorf("native exemplar %v has no timestamp", e)
		}
	}
	if last := h.GetBucket()[len(h.GetBucket())-1]; last.GetCumulativeCount() != h.GetSampleCount() {
		t.Errorf("+Inf bucket: %d, want the count %d", last.GetCumulativeCount(), h.GetSampleCount())
	}
}

// TestExemplarsTextFormat checks that the Prometheus text format, which
// has no exemplars, still parses with the +Inf bucket an exemplar added.
func TestExemplarsTextFormat(t *testing.T) {
	a, _ := exemplarAdmin(t)
	body := get(a, "/metrics", "").Body.Bytes()
	if n := bytes.Count(body, []byte(`tailguard_response_seconds_bucket{route="api",le="+Inf"}`)); n != 1 {
		t.Errorf("%d +Inf buckets, want 1", n)
	}
	if bytes.Contains(body, []byte("trace_id")) {
		t.Error("the text format carries exemplars")
	}
}

func TestTraceparentID(t *testing.T) {
	const id = "4bf92f3577b34da6a3ce929d0e0e4736"
	for _, c := range []struct{ in, want string }{
		{"00-" + id + "-00f067aa0ba902b7-01", id},
		{"01-" + id + "-00f067aa0ba902b7-01-future", id}, // a later version may add fields
		{"01-" + id + "-00f067aa0ba902b7-01", id},
		{"00-" + id + "-00f067aa0ba902b7-01-extra", ""}, // version 00 has none
		{"ff-" + id + "-00f067aa0ba902b7-01", ""},
		{"00-" + strings.ToUpper(id) + "-00f067aa0ba902b7-01", ""},
		{"00-00000000000000000000000000000000-00f067aa0ba902b7-01", ""},
		{"00-" + id + "-00f067aa0ba902b7-0", ""},
		{"00_" + id + "-00f067aa0ba902b7-01", ""},
		{"01-" + id + "-00f067aa0ba902b7-01x", ""},
		{"", ""},
	} {
		if got := string(TraceparentID([]byte(c.in))); got != c.want {
			t.Errorf("TraceparentID(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
