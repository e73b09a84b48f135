package proxy

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"go.uber.org/zap"

	"tailguard/config"
	"tailguard/metrics"
)

// ownWorkRequest is a request as a browser or another service sends it
// through a sidecar: a keep-alive connection, a proxy before tailguard, a
// trace context and a cookie the route removes.
const ownWorkRequest = "GET /api/items?id=42 HTTP/1.1\r\n" +
	"Host: api.example.com\r\n" +
	"User-Agent: bench/1.0\r\n" +
	"Accept: application/json\r\n" +
	"Accept-Encoding: gzip\r\n" +
	"Connection: keep-alive\r\n" +
	"X-Forwarded-For: 203.0.113.9\r\n" +
	"Traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n" +
	"Cookie: session=abc\r\n\r\n"

// ownWorkResponse is the head of a small upstream response with the
// headers a web framework sends.
const ownWorkResponse = "HTTP/1.1 200 OK\r\n" +
	"Content-Type: application/json\r\n" +
	"Content-Length: 23\r\n" +
	"Date: Sat, 05 Dec 2026 15:00:00 GMT\r\n" +
	"Server: app\r\n" +
	"Cache-Control: no-cache\r\n" +
	"Vary: Accept-Encoding\r\n" +
	"Connection: keep-alive\r\n\r\n"

// BenchmarkOwnWork measures tailguard's own per-request work on a route
// with every policy configured (everyPolicy), without sockets, so that a
// change of a few tens of ns shows under benchstat where the end-to-end
// BenchmarkProxiedGET's ±15% cannot:
//
//   - request: the request's header pass (prepareHeaders: hop-by-hop
//     headers, X-Forwarded-*, the route's header rules, X-Request-Id);
//   - response: the response's header pass (respond);
//   - bookkeeping: the exchange's clock and metrics: arrival and
//     deadline, admission, an attempt's start and end (the two reads
//     attempt.run makes around its round trip), the finish with
//     Server-Timing and metrics Record.
//
// Each iteration starts from the same parsed request and response; the
// copy is part of every arm.
func BenchmarkOwnWork(b *testing.B) {
	s, route := ownWorkServer(b)
	req, resp := parsedRequest(b, ownWorkRequest), parsedResponse(b, ownWorkResponse)
	var ctx fasthttp.RequestCtx
	ctx.Init(req, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}, nil)
	b.Run("request", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			req.Header.CopyTo(&ctx.Request.Header)
			x := s.acquireExchange(&ctx, route)
			x.prepareHeaders()
			x.release()
		}
	})
	b.Run("response", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			resp.Header.CopyTo(&ctx.Response.Header)
			x := s.acquireExchange(&ctx, route)
			x.respond()
			x.release()
		}
	})
	b.Run("bookkeeping", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			resp.Header.CopyTo(&ctx.Response.Header)
			x := s.acquireExchange(&ctx, route)
			permit, c := x.admit()
			if c != 0 {
				b.Fatalf("admit: cause %v", c)
			}
			start := x.now()
			x.service = x.now().Sub(start)
			permit.Release(x.service, true)
			s.record(x)
		}
	})
}

// ownWorkServer builds, without listening, a Server for everyPolicy in
// front of an endpoint it never dials, and returns its route.
func ownWorkServer(b *testing.B) (*Server, *Route) {
	cfg, err := config.Parse("bench.yaml", fmt.Appendf(nil, everyPolicy, "127.0.0.1:1"))
	if err != nil {
		b.Fatalf("config: %v", err)
	}
	s, err := NewServer(cfg, metrics.NewRegistry(metrics.RegistryOptions{}), zap.NewNop())
	if err != nil {
		b.Fatalf("build: %v", err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			b.Errorf("shutdown: %v", err)
		}
	})
	route := s.table.Load().Match([]byte("api.example.com"), []byte("/api/items"), []byte("GET"))
	if route == nil {
		b.Fatal("no route")
	}
	return s, route
}

func parsedRequest(b *testing.B, raw string) *fasthttp.Request {
	req := new(fasthttp.Request)
	if err := req.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
		b.Fatalf("request: %v", err)
	}
	return req
}

func parsedResponse(b *testing.B, raw string) *fasthttp.Response {
	resp := new(fasthttp.Response)
	if err := resp.Header.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
		b.Fatalf("response: %v", err)
	}
	return resp
}
