package proxy

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"tailguard/metrics"
)

// TestExemplarIDs: a proxied request's trace id (from its traceparent)
// or, without one, its X-Request-Id reaches the route's latency
// histograms as an exemplar, as an OpenMetrics scrape shows it.
func TestExemplarIDs(t *testing.T) {
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	for _, c := range []struct {
		name, traceparent, requestID, want string
	}{
		{"traceparent", "00-" + traceID + "-00f067aa0ba902b7-01", "req-7", `{trace_id="` + traceID + `"}`},
		{"request id", "", "req-7", `{request_id="req-7"}`},
		{"malformed traceparent", "00-" + strings.ToUpper(traceID) + "-00f067aa0ba902b7-01", "req-8", `{request_id="req-8"}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			var s *Server
			client, req, resp := proxiedGETWith(t, oneRoute, func(srv *Server) { s = srv })
			s.reg.Tick(time.Now()) // the warm-up requests' exemplars are older
			if c.traceparent != "" {
				req.Header.Set("Traceparent", c.traceparent)
			}
			req.Header.Set("X-Request-Id", c.requestID)
			if err := client.Do(req, resp); err != nil || resp.StatusCode() != 200 {
				t.Fatalf("status %d, err %v", resp.StatusCode(), err)
			}
			s.reg.Tick(time.Now())
			a := metrics.NewAdmin(metrics.AdminOptions{Ready: func() bool { return true }, Config: func() any { return nil }, Stats: s.reg})
			scrape := httptest.NewRequest(http.MethodGet, "/metrics", nil)
			scrape.Header.Set("Accept", "application/openmetrics-text;version=1.0.0")
			rec := httptest.NewRecorder()
			a.ServeHTTP(rec, scrape)
			if !strings.Contains(rec.Body.String(), `tailguard_response_seconds_bucket{route="default",le="0.`) ||
				!strings.Contains(rec.Body.String(), " # "+c.want+" ") {
				t.Errorf("no exemplar %s in the scrape:\n%s", c.want, rec.Body)
			}
		})
	}
}
