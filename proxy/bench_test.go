package proxy

import (
	"bytes"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

// everyPolicy configures every policy on the route, none of which fires
// for a healthy, fast upstream: the hedge delay is long, the limit high.
const everyPolicy = `
listen: "127.0.0.1:0"
trusted_proxies: [127.0.0.0/8]
upstreams:
  app:
    endpoints: ["%s"]
    breaker: {consecutive_failures: 5, failure_ratio: 0.5, min_requests: 20, interval: 10s, open_timeout: 5s}
    outlier: {consecutive_5xx: 5, latency_factor: 3, ejection_time: 30s, max_ejected_percent: 50}
routes:
  - name: api
    match: {path_prefix: /}
    upstream: app
    timeout: 2s
    per_try_timeout: 1s
    retry: {attempts: 2, on: [connect_failure, reset, "503"], budget: 0.2, backoff: 25ms}
    hedge: {delay: 900ms, max_extra: 1, budget: 0.05}
    shed: {max_concurrency: 1000, queue: 128, queue_timeout: 50ms, priority_header: X-Priority}
    slo: {latency: 200ms, latency_target: 0.99, availability: 0.999}
    request_headers: {set: {X-Env: prod, X-Forwarded-Proto: https}, remove: [Cookie]}
    response_headers: {set: {Strict-Transport-Security: max-age=63072000}, remove: [Server]}
    server_timing: true
`

// everyPolicyShadow is everyPolicy with every policy that has a mode in
// shadow mode: deciding and counting, not acting.
var everyPolicyShadow = strings.NewReplacer(
	"open_timeout: 5s}", "open_timeout: 5s, mode: shadow}",
	"max_ejected_percent: 50}", "max_ejected_percent: 50, mode: shadow}",
	"backoff: 25ms}", "backoff: 25ms, mode: shadow}",
	"budget: 0.05}", "budget: 0.05, mode: shadow}",
	"queue_timeout: 50ms,", "queue_timeout: 50ms, mode: shadow,",
).Replace(everyPolicy)

var upstreamBody = []byte(`{"id":42,"name":"item"}`)

// startFastUpstream runs a minimal fasthttp upstream on loopback, so that
// benchmarks measure tailguard rather than the service.
func startFastUpstream(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		ctx.SetContentType("application/json")
		ctx.SetBody(upstreamBody)
	}}
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(func() { _ = s.Shutdown() })
	return ln.Addr().String()
}

// BenchmarkProxiedGET measures one proxied GET end to end over loopback,
// client and upstream included, one request at a time: with no policy,
// with every policy configured and none firing, with them all in shadow
// mode, and (buffering on, the default, in all four) with a small response
// the upstream sends chunked, which passes through the spool.
func BenchmarkProxiedGET(b *testing.B) {
	for _, bc := range []struct {
		name, cfg string
		upstream  func(testing.TB) string
	}{
		{"plain", oneRoute, startFastUpstream}, {"policies", everyPolicy, startFastUpstream},
		{"shadow", everyPolicyShadow, startFastUpstream},
		{"chunked", oneRoute, startChunkedUpstream},
	} {
		b.Run(bc.name, func(b *testing.B) {
			client, req, resp := proxiedGETFrom(b, bc.cfg, bc.upstream(b), nil)
			b.ReportAllocs()
			for b.Loop() {
				if err := client.Do(req, resp); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkProxiedGETParallel is the same with concurrent clients, with
// per-route metrics recorded and, side by side, not recorded: the cost of
// recording on throughput (compare with benchstat over -count runs).
func BenchmarkProxiedGETParallel(b *testing.B) {
	for _, bc := range []struct {
		name   string
		before func(*Server)
	}{
		{"metrics-on", nil},
		{"metrics-off", func(s *Server) {
			for _, r := range s.table.Load().routes {
				r.metrics = nil
			}
		}},
	} {
		b.Run(bc.name, func(b *testing.B) { parallelGET(b, bc.before) })
	}
}

func parallelGET(b *testing.B, before func(*Server)) {
	client, req, _ := proxiedGETWith(b, oneRoute, before)
	client.MaxConns = 1024
	b.ReportAllocs()
	b.SetParallelism(32) // 64 requests in flight on 2 CPUs, as wrk -c64
	b.RunParallel(func(pb *testing.PB) {
		r := fasthttp.AcquireRequest()
		resp := fasthttp.AcquireResponse()
		req.CopyTo(r)
		for pb.Next() {
			if err := client.Do(r, resp); err != nil {
				b.Fatal(err)
			}
		}
		fasthttp.ReleaseRequest(r)
		fasthttp.ReleaseResponse(resp)
	})
}

// BenchmarkMatch measures a route lookup in a table of several routes.
func BenchmarkMatch(b *testing.B) {
	t := testTable(b)
	host, path, method := []byte("api.example.com:8000"), []byte("/api/v1/items/42"), []byte("GET")
	b.ReportAllocs()
	for b.Loop() {
		if t.Match(host, path, method) == nil {
			b.Fatal("no route")
		}
	}
}

// proxiedGET starts a fasthttp upstream and tailguard in front of it, and
// returns a client and a request for a GET through tailguard.
func proxiedGET(t testing.TB, cfg string) (*fasthttp.HostClient, *fasthttp.Request, *fasthttp.Response) {
	return proxiedGETWith(t, cfg, nil)
}

// proxiedGETWith is proxiedGET with a hook that may change the server
// before any request.
func proxiedGETWith(t testing.TB, cfg string, before func(*Server)) (*fasthttp.HostClient, *fasthttp.Request, *fasthttp.Response) {
	return proxiedGETFrom(t, cfg, startFastUpstream(t), before)
}

// proxiedGETFrom is proxiedGETWith in front of the upstream at up.
func proxiedGETFrom(t testing.TB, cfg, up string, before func(*Server)) (*fasthttp.HostClient, *fasthttp.Request, *fasthttp.Response) {
	s, addr := startServer(t, cfg, up)
	if before != nil {
		before(s)
	}
	client := &fasthttp.HostClient{Addr: addr, MaxIdemponentCallAttempts: 1}
	req := fasthttp.AcquireRequest()
	req.SetRequestURI("http://" + addr + "/api/items?id=42")
	req.Header.Set("Accept", "application/json")
	resp := fasthttp.AcquireResponse()
	t.Cleanup(func() {
		fasthttp.ReleaseRequest(req)
		fasthttp.ReleaseResponse(resp)
		client.CloseIdleConnections()
	})
	for range 100 { // warm pools
		if err := client.Do(req, resp); err != nil {
			t.Fatal(err)
		}
	}
	return client, req, resp
}

// startChunkedUpstream runs an upstream that answers every request on a
// connection with the same small chunked response, written from a
// constant: no allocation of its own, so that a benchmark's count is
// tailguard's.
func startChunkedUpstream(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	answer := []byte("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" +
		strconv.FormatInt(int64(len(upstreamBody)), 16) + "\r\n" + string(upstreamBody) + "\r\n0\r\n\r\n")
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 8<<10)
				held := 0
				for {
					n, err := c.Read(buf[held:])
					if err != nil {
						return
					}
					held += n
					// Bodiless GETs: each head ends the request.
					for i := bytes.Index(buf[:held], strHeadEnd); i >= 0; i = bytes.Index(buf[:held], strHeadEnd) {
						held = copy(buf, buf[i+len(strHeadEnd):held])
						if _, err := c.Write(answer); err != nil {
							return
						}
					}
				}
			}()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().String()
}

var strHeadEnd = []byte("\r\n\r\n")
