package proxy

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// streamStats are the /stats figures the streamed-failure tests read.
type streamStats struct {
	Routes []struct {
		Status map[string]int64 `json:"status"`
		SLO    struct {
			AvailabilitySLI float64 `json:"availability_sli"`
		} `json:"slo"`
	} `json:"routes"`
	Upstreams []struct {
		Breaker   string `json:"breaker"`
		Ejections uint64 `json:"ejections"`
		Endpoints []struct {
			Requests    uint64 `json:"requests"`
			Failures    uint64 `json:"failures"`
			Outstanding int64  `json:"outstanding"`
		} `json:"endpoints"`
	} `json:"upstreams"`
}

// streamStatsOf ticks srv's registry and reads /stats?window=all.
func streamStatsOf(t *testing.T, srv *Server) streamStats {
	t.Helper()
	var doc streamStats
	readStats(t, srv, &doc)
	if len(doc.Routes) != 1 || len(doc.Upstreams) != 1 || len(doc.Upstreams[0].Endpoints) != 1 {
		t.Fatalf("/stats: %+v; want one route, one upstream, one endpoint", doc)
	}
	return doc
}

const (
	streamedSize = 1 << 20   // the body the head announces
	streamedPart = 100 << 10 // what a failing upstream sends of it
)

// streamFailConfig has a breaker that opens after 3 failures, outlier
// detection that ejects after 3, an availability SLO and a route timeout
// (in %%s); the variants below make its responses stream.
const streamFailConfig = `
listen: "127.0.0.1:0"
%s
upstreams:
  app:
    endpoints: ["%%s"]
    breaker: {consecutive_failures: 3, open_timeout: 1h}
    outlier: {consecutive_5xx: 3, ejection_time: 1h, max_ejected_percent: 100}
routes:
  - name: default
    match: {path_prefix: /}
    upstream: app
    timeout: %s
    slo: {latency: 1s, latency_target: 0.99, availability: 0.999}
%s`

// streamingRoutes are the ways a response streams from the upstream to
// the client: buffering off, on the plain path or a hedged route's
// (whose hedge never fires), and buffering on with no room left, so that
// the body streams behind what was buffered (the spool holds 64 KiB).
var streamingRoutes = []struct{ name, limits, route string }{
	{"buffering off", "", "    buffering: {response: off}\n"},
	{"buffering off, hedged route", "", "    buffering: {response: off}\n    hedge: {delay: 10s, max_extra: 1, budget: 1}\n"},
	{"buffered past the budget", "limits: {buffer_memory: 64KiB, buffer_disk: 0}", ""},
}

// TestStreamBrokenOffCountsAsFailure (issue 16, item 5): a streamed response
// that breaks off after its head was sent (the upstream resets or closes
// mid-body, stalls past the route timeout, or sends a truncated or
// malformed chunked body) ends the client's connection without the full
// body, and counts as a failed request with its own cause: a 5xx in the
// route's status counts and its SLO, logged as mid_body_failure with the
// status sent, a failure of the endpoint for outlier detection (which
// ejects it after 3) and for the breaker (which opens after 3, so the
// next request is refused). A complete 1 MiB stream counts as a success.
// Each case runs on every route of streamingRoutes.
func TestStreamBrokenOffCountsAsFailure(t *testing.T) {
	// Each upstream connection serves one response (Connection: close):
	// a closed connection is never the next request's failure.
	const ok = "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Type: application/octet-stream\r\n"
	head := ok + fmt.Sprintf("Content-Length: %d\r\n\r\n", streamedSize)
	chunked := ok + "Transfer-Encoding: chunked\r\n\r\n"
	part := strings.Repeat("x", streamedPart)
	tests := []struct {
		name    string
		reply   func(c net.Conn)
		fails   bool
		timeout string // the route's: short only where it is what fails
	}{
		{"reset after 100 KiB of 1 MiB", func(c net.Conn) {
			io.WriteString(c, head+part)
			time.Sleep(20 * time.Millisecond) // let the part leave before the RST
			c.(*net.TCPConn).SetLinger(0)
		}, true, "10s"},
		{"closed after 100 KiB of 1 MiB", func(c net.Conn) { io.WriteString(c, head+part) }, true, "10s"},
		{"stall after 100 KiB past the route timeout", func(c net.Conn) {
			io.WriteString(c, head+part)
			io.Copy(io.Discard, c) // until tailguard gives up on the connection
		}, true, "500ms"},
		{"truncated chunked body", func(c net.Conn) {
			io.WriteString(c, chunked+fmt.Sprintf("%x\r\n%s\r\n", len(part), part)+"10\r\nonly")
		}, true, "10s"},
		{"malformed chunked body", func(c net.Conn) {
			io.WriteString(c, chunked+fmt.Sprintf("%x\r\n%s\r\n", len(part), part)+"zz\r\nSECRET\r\n0\r\n\r\n")
		}, true, "10s"},
		{"complete 1 MiB (control)", func(c net.Conn) { io.WriteString(c, head+strings.Repeat("x", streamedSize)) }, false, "10s"},
	}
	for _, tt := range tests {
		for _, v := range streamingRoutes {
			cfg := fmt.Sprintf(streamFailConfig, v.limits, tt.timeout, v.route)
			t.Run(tt.name+", "+v.name, func(t *testing.T) {
				up := startRaw(t, func(c net.Conn, _ int, _ string) {
					tt.reply(c)
					c.Close()
				})
				core, logs := observer.New(zap.InfoLevel)
				srv, addr := startLoggingServer(t, zap.New(core), cfg, up.addr())
				checkStreamedFailures(t, srv, addr, tt.fails)
				n := logs.Filter(func(e observer.LoggedEntry) bool {
					f := e.ContextMap()
					return f["error"] == "mid_body_failure" && f["status"] == int64(200)
				}).Len()
				if tt.fails && n != 3 || !tt.fails && n != 0 {
					t.Errorf("%d access log lines with error mid_body_failure and status 200; all: %v", n, logs.All())
				}
			})
		}
	}
}

// checkStreamedFailures sends three GETs through addr and checks what
// the client got and what srv counted: three failures (fails) or three
// successes.
func checkStreamedFailures(t *testing.T, srv *Server, addr string, fails bool) {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second}
	for i := range 3 {
		resp, err := client.Get("http://" + addr + "/")
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("request %d: status %d, want the upstream's 200", i, resp.StatusCode)
		}
		if fails && (err == nil || n >= streamedSize) {
			t.Fatalf("request %d: read %d bytes, err %v; want the connection to end short of the body", i, n, err)
		}
		if !fails && (err != nil || n != streamedSize) {
			t.Fatalf("request %d: read %d bytes, err %v; want all %d", i, n, err, streamedSize)
		}
	}
	var st streamStats
	waitFor(t, "three requests recorded", func() bool {
		st = streamStatsOf(t, srv)
		return st.Routes[0].Status["2xx"]+st.Routes[0].Status["5xx"] == 3
	})
	r, u := st.Routes[0], st.Upstreams[0]
	e := u.Endpoints[0]
	if e.Requests != 3 || e.Outstanding != 0 {
		t.Errorf("endpoint: %d attempts, %d outstanding; want 3, 0", e.Requests, e.Outstanding)
	}
	if !fails {
		if r.Status["2xx"] != 3 || r.SLO.AvailabilitySLI != 1 || e.Failures != 0 || u.Ejections != 0 || u.Breaker != "closed" {
			t.Errorf("complete streams: status %v, availability %v, endpoint failures %d, ejections %d, breaker %s; want 3 2xx, 1, 0, 0, closed",
				r.Status, r.SLO.AvailabilitySLI, e.Failures, u.Ejections, u.Breaker)
		}
		return
	}
	if r.Status["5xx"] != 3 || r.SLO.AvailabilitySLI != 0 {
		t.Errorf("route: status %v, availability SLI %v; want 3 5xx, 0", r.Status, r.SLO.AvailabilitySLI)
	}
	if e.Failures != 3 || u.Ejections != 1 {
		t.Errorf("outlier detection: %d endpoint failures, %d ejections; want 3, 1", e.Failures, u.Ejections)
	}
	if u.Breaker != "open" {
		t.Fatalf("breaker %s after 3 failed streams, want open", u.Breaker)
	}
	resp, err := client.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get("X-Tailguard-Error") != "breaker_open" {
		t.Errorf("after 3 failed streams: %d %q, want 503 breaker_open", resp.StatusCode, resp.Header.Get("X-Tailguard-Error"))
	}
}

// TestClientGoneMidStreamIsNotUpstreamFailure: a client that goes away mid-body is not
// the upstream's failure: the request keeps the upstream's status, and
// neither outlier detection nor the breaker counts a failure.
func TestClientGoneMidStreamIsNotUpstreamFailure(t *testing.T) {
	part := strings.Repeat("x", streamedPart)
	up := startRaw(t, func(c net.Conn, _ int, _ string) {
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s", 64*streamedPart, part)
		for range 63 { // until tailguard, unable to write on, closes the connection
			time.Sleep(5 * time.Millisecond)
			if _, err := io.WriteString(c, part); err != nil {
				break
			}
		}
		c.Close()
	})
	cfg := fmt.Sprintf(streamFailConfig, "", "10s", "    buffering: {response: off}\n")
	srv, addr := startServer(t, cfg, up.addr())
	for range 3 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		if _, err := io.ReadFull(c, make([]byte, streamedPart)); err != nil {
			t.Fatal(err)
		}
		c.(*net.TCPConn).SetLinger(0)
		c.Close() // with unread bytes: a reset
	}
	var st streamStats
	waitFor(t, "three requests recorded", func() bool {
		st = streamStatsOf(t, srv)
		return st.Routes[0].Status["2xx"]+st.Routes[0].Status["5xx"] == 3
	})
	r, u := st.Routes[0], st.Upstreams[0]
	if e := u.Endpoints[0]; r.Status["2xx"] != 3 || e.Requests != 3 || e.Failures != 0 || u.Breaker != "closed" {
		t.Errorf("status %v, endpoint %d attempts, %d failures, breaker %s; want 3 2xx, 3, 0, closed",
			r.Status, e.Requests, e.Failures, u.Breaker)
	}
}
