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
	"tailguard/proxy/internal/cause"
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
// BenchmarkProxiedGET's ±15% cannot. Its arms are ownWork's steps.
func BenchmarkOwnWork(b *testing.B) {
	w := newOwnWork(b)
	for _, arm := range []struct {
		name string
		step func()
	}{{"request", w.request}, {"response", w.response}, {"bookkeeping", w.bookkeeping}, {"clock", w.clock}} {
		b.Run(arm.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				arm.step()
			}
		})
	}
}

// ownWork is what BenchmarkOwnWork's steps work on: a Server that never
// listens, its route, and a request context. Each step starts from the
// same parsed request or response; the copy is part of the step.
type ownWork struct {
	tb    testing.TB
	s     *Server
	route *Route
	ctx   fasthttp.RequestCtx
	req   *fasthttp.Request
	resp  *fasthttp.Response
	held  *exchange // the clock step's
}

func newOwnWork(tb testing.TB) *ownWork {
	w := &ownWork{tb: tb, req: parsedRequest(tb, ownWorkRequest), resp: parsedResponse(tb, ownWorkResponse)}
	w.s, w.route = ownWorkServer(tb)
	w.ctx.Init(w.req, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}, nil)
	var held fasthttp.RequestCtx
	held.Init(w.req, nil, nil)
	w.held = w.s.acquireExchange(&held, w.route)
	tb.Cleanup(w.held.release)
	return w
}

// request is the request's header pass (prepareHeaders: hop-by-hop
// headers, X-Forwarded-*, the route's header rules, X-Request-Id).
func (w *ownWork) request() {
	w.req.Header.CopyTo(&w.ctx.Request.Header)
	x := w.s.acquireExchange(&w.ctx, w.route)
	x.prepareHeaders()
	x.release()
}

// response is the response's header pass (respond).
func (w *ownWork) response() {
	w.resp.Header.CopyTo(&w.ctx.Response.Header)
	x := w.s.acquireExchange(&w.ctx, w.route)
	x.respond()
	x.release()
}

// bookkeeping is the exchange's clock and metrics: arrival and deadline,
// admission, an attempt's start and end (the two reads attempt.run makes
// around its round trip), the finish with Server-Timing and metrics
// Record.
func (w *ownWork) bookkeeping() {
	w.resp.Header.CopyTo(&w.ctx.Response.Header)
	x := w.s.acquireExchange(&w.ctx, w.route)
	permit, c := x.admit()
	if c != cause.None {
		w.tb.Fatalf("admit: %v", c)
	}
	start := x.now()
	x.service = x.now().Sub(start)
	permit.Release(x.service, true)
	w.s.record(x)
}

// clock is the exchange's clock reads alone, as a plain request makes
// them after arrival: at admission, an attempt's start and end, and the
// finish, on an exchange held for the whole run (held), so that the pool
// and the exchange's reset add nothing.
func (w *ownWork) clock() {
	admitted, start, end, finish := w.held.now(), w.held.now(), w.held.now(), w.held.now()
	w.held.service = end.Sub(start) + finish.Sub(admitted)
}

// ownWorkServer builds, without listening, a Server for everyPolicy in
// front of an endpoint it never dials, and returns its route.
func ownWorkServer(b testing.TB) (*Server, *Route) {
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

func parsedRequest(b testing.TB, raw string) *fasthttp.Request {
	req := new(fasthttp.Request)
	if err := req.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
		b.Fatalf("request: %v", err)
	}
	return req
}

func parsedResponse(b testing.TB, raw string) *fasthttp.Response {
	resp := new(fasthttp.Response)
	if err := resp.Header.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
		b.Fatalf("response: %v", err)
	}
	return resp
}
